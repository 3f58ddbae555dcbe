"""Import rules: one function per ONNX op type, turning an ONNX node into framework ops.

A rule gets the importer, the NodeProto, its inputs (graph `Value`s, known numpy arrays, or
None for absent optional inputs) and its attributes as a dict, and returns the outputs.
`fold` functions run instead when every input is known (shape arithmetic, constants): they
compute with numpy on small integer arrays that may hold SymInts, which is how shape
subgraphs become symbolic attributes. Attribute defaults follow the ONNX operator specs.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as D
from ..jit.ir import Value
from ..jit.symbolic import SymInt
from ..ops._common import broadcast_shapes
from ._proto import OnnxError, fw_dtype
from .importer import is_known, rule

INT64_MAX = 2 ** 63 - 1
_BIG = 2 ** 62


def _wrap(axis: int, ndim: int, imp, what="axis") -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise OnnxError(f"{imp.where()}: {what} {axis} is out of range for rank {ndim}")
    return axis % max(ndim, 1)


def _ndim(imp, x) -> int:
    return len(imp.shape(x))


def _prod(xs):
    n = 1
    for x in xs:
        n = n * x
    return n


def _is_float(imp, x) -> bool:
    if isinstance(x, Value):
        return x.spec.dtype.is_floating_point
    return x.dtype != object and x.dtype.kind == "f"


# ---------------------------------------------------------------------------------------
# passthrough and constants


@rule("Identity", fold=lambda imp, ins, at: [ins[0]])
def _identity(imp, node, ins, at):
    return [ins[0]]


@rule("Dropout", attrs=("seed",))
def _dropout(imp, node, ins, at):
    if len(ins) > 2 and ins[2] is not None:
        t = ins[2]
        if not is_known(t) or bool(np.asarray(t).reshape(-1)[0]):
            raise OnnxError(f"{imp.where()}: Dropout in training mode is not supported")
    return [ins[0]]


_CONST_ATTRS = ("value", "value_float", "value_floats", "value_int", "value_ints")


@rule("Constant", attrs=_CONST_ATTRS + ("sparse_value", "value_string", "value_strings"))
def _constant(imp, node, ins, at):
    for k in _CONST_ATTRS:
        if k in at:
            v = at[k]
            if k == "value":
                return [v]
            if k in ("value_float", "value_floats"):
                return [np.asarray(v, dtype=np.float32)]
            return [np.asarray(v, dtype=np.int64)]
    raise OnnxError(f"{imp.where()}: Constant needs one of {list(_CONST_ATTRS)}")


def _small(shape) -> bool:
    """Whether a folded array of this (static) shape is small enough to build at import."""
    from .importer import MAX_FOLD_ELEMENTS

    return all(isinstance(s, int) and s >= 0 for s in shape) and _prod(shape) <= MAX_FOLD_ELEMENTS


def _fold_cos(imp, ins, at):
    shape = imp.ints(ins[0], "shape")
    if not _small(shape):
        return None
    v = at.get("value")
    fill = np.zeros((1,), np.float32) if v is None else v
    return [np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype)]


@rule("ConstantOfShape", attrs=("value",), needs=("full",), fold=_fold_cos)
def _constant_of_shape(imp, node, ins, at):
    shape = imp.ints(ins[0], "shape")
    v = at.get("value")
    fill = np.zeros((1,), np.float32) if v is None else v
    dt = D.from_numpy_dtype(fill.dtype)
    val = fill.reshape(-1)[0].item()
    return [imp.call("full", [], (tuple(shape), float(val) if dt.is_floating_point else int(val),
                                  dt.code))]


def _fold_range(imp, ins, at):
    vals = [np.asarray(x).reshape(-1)[0] for x in ins]
    if any(isinstance(v, SymInt) for v in vals) or vals[2] == 0:
        return None
    n = int(np.ceil((float(vals[1]) - float(vals[0])) / float(vals[2])))
    if not _small([max(n, 0)]):
        return None
    return [np.arange(vals[0], vals[1], vals[2]).astype(np.asarray(ins[0]).dtype)]


@rule("Range", needs=("arange",), fold=_fold_range)
def _range(imp, node, ins, at):
    start, limit, delta = (imp.ints(x, "Range input")[0] for x in ins)
    if not isinstance(start, int) or not isinstance(delta, int) or delta <= 0:
        raise OnnxError(f"{imp.where()}: only Range(int start, symbolic limit, positive int delta)"
                        " is supported with dynamic dims")
    n = (limit - start + delta - 1) // delta
    return [imp.call("arange", [], (n, float(start), float(delta), D.int64.code))]


# ---------------------------------------------------------------------------------------
# shapes


@rule("Shape", attrs=("start", "end"))
def _shape(imp, node, ins, at):
    shape = list(imp.shape(ins[0]))
    n = len(shape)
    start = at.get("start", 0)
    end = at.get("end", n)
    start = min(max(start + n if start < 0 else start, 0), n)
    end = min(max(end + n if end < 0 else end, 0), n)
    return [_known(shape[start:end])]


@rule("Size")
def _size(imp, node, ins, at):
    return [_known(_prod(imp.shape(ins[0]))).reshape(())]


def _known(values) -> np.ndarray:
    """A known int64 array (object dtype if it holds SymInts)."""
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if any(isinstance(v, SymInt) for v in values):
        arr = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            arr[i] = v
        return arr
    return np.asarray(values, dtype=np.int64)


def _reshape_target(imp, x, shape, allowzero) -> tuple:
    in_shape = imp.shape(x)
    out = []
    for i, s in enumerate(shape):
        if isinstance(s, int) and s == 0 and not allowzero:
            if i >= len(in_shape):
                raise OnnxError(f"{imp.where()}: Reshape 0 at position {i} copies a dim the input "
                                f"{list(map(str, in_shape))} does not have")
            s = in_shape[i]
        out.append(s)
    neg = [i for i, s in enumerate(out) if isinstance(s, int) and s == -1]
    if len(neg) > 1:
        raise OnnxError(f"{imp.where()}: Reshape target {shape} has more than one -1")
    numel = _prod(in_shape)
    if neg:
        known = _prod(s for i, s in enumerate(out) if i != neg[0])
        out[neg[0]] = numel // known
    elif _prod(out) != numel and all(isinstance(s, int) for s in list(in_shape) + out):
        raise OnnxError(f"{imp.where()}: cannot reshape {list(in_shape)} to {list(out)}")
    return tuple(out)


def _reshape_value(imp, x, shape):
    if tuple(shape) == imp.shape(x):
        return x
    if is_known(x):
        return x.reshape(tuple(int(s) for s in shape))
    return imp.call("reshape", [x], (tuple(shape),))


def _fold_reshape(imp, ins, at):
    shape = imp.ints(ins[1], "shape")
    return [ins[0].reshape(_reshape_target(imp, ins[0], shape, at.get("allowzero", 0)))]


@rule("Reshape", attrs=("allowzero",), needs=("reshape",), fold=_fold_reshape)
def _reshape(imp, node, ins, at):
    shape = _reshape_target(imp, ins[0], imp.ints(ins[1], "shape"), at.get("allowzero", 0))
    return [_reshape_value(imp, ins[0], shape)]


def _flatten_shape(imp, x, at):
    shape = imp.shape(x)
    axis = at.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise OnnxError(f"{imp.where()}: Flatten axis {at.get('axis')} out of range for rank {len(shape)}")
    return (_prod(shape[:axis]), _prod(shape[axis:]))


@rule("Flatten", attrs=("axis",), needs=("reshape",),
      fold=lambda imp, ins, at: [ins[0].reshape(_flatten_shape(imp, ins[0], at))])
def _flatten(imp, node, ins, at):
    return [_reshape_value(imp, ins[0], _flatten_shape(imp, ins[0], at))]


def _axes(imp, ins, at, idx=1, name="axes"):
    """Axes from the attribute (older opsets) or the input (newer); None when absent."""
    if len(ins) > idx and ins[idx] is not None:
        return imp.ints(ins[idx], name)
    if name in at:
        return list(at[name])
    return None


def _unsqueeze_shape(imp, x, axes):
    shape = list(imp.shape(x))
    n = len(shape) + len(axes)
    axes = sorted(_wrap(a, n, imp) for a in axes)
    for a in axes:
        shape.insert(a, 1)
    return tuple(shape)


@rule("Unsqueeze", attrs=("axes",), needs=("reshape",),
      fold=lambda imp, ins, at: [ins[0].reshape(_unsqueeze_shape(imp, ins[0], _axes(imp, ins, at)))])
def _unsqueeze(imp, node, ins, at):
    return [_reshape_value(imp, ins[0], _unsqueeze_shape(imp, ins[0], _axes(imp, ins, at)))]


def _squeeze_shape(imp, x, axes):
    shape = imp.shape(x)
    if axes is None:
        if any(isinstance(s, SymInt) for s in shape):
            raise OnnxError(f"{imp.where()}: Squeeze without axes on a tensor with dynamic dims "
                            f"{list(map(str, shape))}")
        return tuple(s for s in shape if s != 1)
    axes = {_wrap(a, len(shape), imp) for a in axes}
    for a in axes:
        if isinstance(shape[a], int) and shape[a] != 1:
            raise OnnxError(f"{imp.where()}: cannot squeeze dim {a} of size {shape[a]}")
    return tuple(s for i, s in enumerate(shape) if i not in axes)


@rule("Squeeze", attrs=("axes",), needs=("reshape",),
      fold=lambda imp, ins, at: [ins[0].reshape(_squeeze_shape(imp, ins[0], _axes(imp, ins, at)))])
def _squeeze(imp, node, ins, at):
    return [_reshape_value(imp, ins[0], _squeeze_shape(imp, ins[0], _axes(imp, ins, at)))]


def _perm(imp, x, at):
    n = _ndim(imp, x)
    perm = at.get("perm")
    perm = list(range(n))[::-1] if perm is None else [_wrap(p, n, imp, "perm") for p in perm]
    if sorted(perm) != list(range(n)):
        raise OnnxError(f"{imp.where()}: perm {at.get('perm')} is not a permutation of {n} dims")
    return tuple(perm)


@rule("Transpose", attrs=("perm",), needs=("permute",),
      fold=lambda imp, ins, at: [np.require(ins[0].transpose(_perm(imp, ins[0], at)), requirements="C")])
def _transpose(imp, node, ins, at):
    perm = _perm(imp, ins[0], at)
    if perm == tuple(range(len(perm))):
        return [ins[0]]
    return [imp.call("permute", [ins[0]], (perm,))]


def _expand_shape(imp, x, shape):
    try:
        return broadcast_shapes(imp.shape(x), tuple(shape))
    except RuntimeError as e:
        raise OnnxError(f"{imp.where()}: {e}") from None


def _fold_expand(imp, ins, at):
    shape = _expand_shape(imp, ins[0], imp.ints(ins[1], "shape"))
    if not _small(shape):
        return None
    return [np.require(np.broadcast_to(ins[0], shape), requirements="C")]


@rule("Expand", needs=("expand",), fold=_fold_expand)
def _expand(imp, node, ins, at):
    shape = _expand_shape(imp, ins[0], imp.ints(ins[1], "shape"))
    if shape == imp.shape(ins[0]):
        return [ins[0]]
    x = ins[0]
    if len(shape) > _ndim(imp, x):
        x = _reshape_value(imp, x, (1,) * (len(shape) - _ndim(imp, x)) + imp.shape(x))
    return [imp.call("expand", [x], (tuple(shape),))]


# ---- Gather / Slice / Concat / Split ------------------------------------------------------


def _fold_gather(imp, ins, at):
    data, idx = ins
    axis = _wrap(at.get("axis", 0), data.ndim, imp)
    idx = np.asarray(idx)
    n = data.shape[axis]
    idx = np.where(idx < 0, idx + n, idx)
    return [np.take(data, idx, axis=axis)]


@rule("Gather", attrs=("axis",), needs=("select",), fold=_fold_gather)
def _gather(imp, node, ins, at):
    data, idx = ins
    shape = imp.shape(data)
    axis = _wrap(at.get("axis", 0), len(shape), imp)
    if is_known(idx):
        vals = imp.ints(idx, "indices")
        n = shape[axis]
        norm = []
        for v in vals:
            if v < 0:
                v = v + n
            norm.append(v)
        if idx.ndim == 0:
            return [imp.call("select", [data], (axis, norm[0]))]
        if idx.ndim == 1 and len(norm) > 0 and all(isinstance(v, int) for v in norm) \
                and norm == list(range(norm[0], norm[0] + len(norm))):
            return [imp.call("slice", [data], (axis, norm[0], norm[0] + len(norm), 1))]
    from ..ops.registry import REGISTRY

    if axis == 0 and len(shape) == 2 and "embedding" in REGISTRY and isinstance(idx, Value) \
            and idx.spec.dtype in (D.int64, D.int32):
        return [imp.call("embedding", [idx, data], (None, False))]
    if "index_select" in REGISTRY:
        v = imp.value(idx, "indices")
        flat = _reshape_value(imp, v, (_prod(imp.shape(v)),)) if len(imp.shape(v)) != 1 else v
        out = imp.call("index_select", [data, flat], (axis,))
        out_shape = shape[:axis] + imp.shape(v) + shape[axis + 1:]
        return [_reshape_value(imp, out, out_shape)]
    raise OnnxError(f"{imp.where()}: Gather with run-time or non-contiguous indices needs the "
                    "framework op 'index_select', which is not available")


def _slice_params(imp, ins, at):
    """[(axis, start, end, step)] normalized against the data's shape (ints or SymInts)."""
    shape = imp.shape(ins[0])
    starts = imp.ints(ins[1], "starts")
    ends = imp.ints(ins[2], "ends")
    axes = imp.ints(ins[3], "axes") if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
    steps = imp.ints(ins[4], "steps") if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise OnnxError(f"{imp.where()}: starts, ends, axes and steps differ in length")
    out = []
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _wrap(a, len(shape), imp)
        d = shape[a]
        if not isinstance(st, int) or st <= 0:
            raise OnnxError(f"{imp.where()}: Slice step {st} is not supported (positive steps only)")
        if isinstance(d, int) and isinstance(s, int) and isinstance(e, int):
            s, e, _ = slice(s, e, st).indices(d)
            e = max(e, s)
        else:
            s = _clamp_sym(s, d)
            e = _clamp_sym(e, d)
        out.append((a, s, e, st))
    return out


def _clamp_sym(i, d):
    """Start/end index i (int or SymInt) against a dim d, where one of them is symbolic."""
    if isinstance(i, int):
        if i >= _BIG:
            return d
        if i < 0:
            return d + i if i > -_BIG else 0
        return i
    return i


def _fold_slice(imp, ins, at):
    data = ins[0]
    starts, ends = imp.ints(ins[1], "starts"), imp.ints(ins[2], "ends")
    axes = imp.ints(ins[3], "axes") if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
    steps = imp.ints(ins[4], "steps") if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise OnnxError(f"{imp.where()}: starts, ends, axes and steps differ in length")
    idx = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if not all(isinstance(v, int) for v in (s, e, st)) or st == 0:
            return None
        idx[_wrap(a, data.ndim, imp)] = slice(s, e, st)  # numpy clamps like ONNX Slice
    return [data[tuple(idx)]]


@rule("Slice", needs=("slice",), fold=_fold_slice)
def _slice(imp, node, ins, at):
    x = ins[0]
    for a, s, e, st in _slice_params(imp, ins, at):
        d = imp.shape(x)[a]
        if isinstance(s, int) and s == 0 and st == 1 and (e is d or (isinstance(e, int) and e == d)):
            continue
        x = imp.call("slice", [x], (a, s, e, st))
    return [x]


def _fold_concat(imp, ins, at):
    axis = _wrap(at["axis"], ins[0].ndim, imp)
    parts = [p for p in ins if p.size or p.ndim != 1]
    if any(p.dtype == object for p in parts):
        parts = [p.astype(object) for p in parts]
    return [np.concatenate(parts, axis=axis) if parts else ins[0]]


@rule("Concat", attrs=("axis",), needs=("cat",), fold=_fold_concat)
def _concat(imp, node, ins, at):
    n = _ndim(imp, ins[0])
    axis = _wrap(at["axis"], n, imp)
    parts = [x for x in ins if not (imp.shape(x)[axis] == 0 if isinstance(imp.shape(x)[axis], int) else False)]
    if len(parts) == 1:
        return [parts[0]]
    return [imp.call("cat", [imp.value(p) for p in parts], (axis,))]


@rule("Split", attrs=("axis", "num_outputs", "split"), needs=("slice",))
def _split(imp, node, ins, at):
    x = ins[0]
    shape = imp.shape(x)
    axis = _wrap(at.get("axis", 0), len(shape), imp)
    n_out = len(node.output)
    sizes = imp.ints(ins[1], "split") if len(ins) > 1 and ins[1] is not None else at.get("split")
    d = shape[axis]
    if sizes is None:
        if not isinstance(d, int):
            raise OnnxError(f"{imp.where()}: Split of a dynamic dim needs explicit sizes")
        k = -(-d // n_out)
        sizes = [min(k, d - i * k) for i in range(n_out)]
    if len(sizes) != n_out:
        raise OnnxError(f"{imp.where()}: {len(sizes)} split sizes for {n_out} outputs")
    outs, start = [], 0
    for s in sizes:
        if is_known(x):
            idx = [slice(None)] * x.ndim
            idx[axis] = slice(start, start + s)
            outs.append(x[tuple(idx)])
        else:
            outs.append(imp.call("slice", [x], (axis, start, start + s, 1)))
        start = start + s
    return outs


# ---------------------------------------------------------------------------------------
# elementwise


def _np_div(a, b):
    if a.dtype == object or b.dtype == object:
        return np.vectorize(lambda x, y: x // y, otypes=[object])(a, b)
    if np.issubdtype(a.dtype, np.integer):
        q = np.abs(a) // np.abs(b)
        return (q * np.sign(a) * np.sign(b)).astype(a.dtype)
    return (a / b).astype(a.dtype)


_BINARY = {"Add": ("add", lambda a, b: a + b), "Sub": ("sub", lambda a, b: a - b),
           "Mul": ("mul", lambda a, b: a * b), "Div": ("div", _np_div),
           "Pow": ("pow", None), "Equal": ("eq", lambda a, b: a == b),
           "Less": ("lt", lambda a, b: a < b), "Greater": ("gt", lambda a, b: a > b),
           "LessOrEqual": ("le", None), "GreaterOrEqual": ("ge", None),
           "And": ("logical_and", lambda a, b: a & b), "Or": ("logical_or", lambda a, b: a | b)}


def _binary_fold(fn):
    def fold(imp, ins, at):
        a, b = ins
        if fn is None or ((a.dtype.kind == "f" or b.dtype.kind == "f") and
                          (a.dtype == object or b.dtype == object)):
            return None
        try:
            out = fn(a, b)
        except TypeError:  # e.g. comparing a SymInt: decided at run time
            return None
        out = np.asarray(out)
        if out.dtype == object and fn is not None and not any(isinstance(v, SymInt) for v in out.reshape(-1)):
            out = out.astype(bool if isinstance(out.reshape(-1)[0] if out.size else 0, bool) else np.int64)
        return [out]

    return fold


def _make_binary(op_type, target, fn):
    def imp_fn(imp, node, ins, at):
        a, b = ins
        if target == "div" and not _is_float(imp, a):
            raise OnnxError(f"{imp.where()}: integer Div on run-time tensors is not supported")
        return [imp.call(target, [a, b], (1,) if target in ("add", "sub") else ())]

    rule(op_type, needs=(target,), fold=_binary_fold(fn))(imp_fn)


for _k, (_t, _f) in _BINARY.items():
    _make_binary(_k, _t, _f)


def _fold_mod(imp, ins, at):
    a, b = ins
    if at.get("fmod", 0):
        return [np.fmod(a, b)]
    if a.dtype == object or b.dtype == object:
        return [np.vectorize(lambda x, y: x % y, otypes=[object])(a, b)]
    return [np.mod(a, b)]


@rule("Mod", attrs=("fmod",), fold=_fold_mod)
def _mod(imp, node, ins, at):
    raise OnnxError(f"{imp.where()}: Mod on run-time tensors is not supported")


def _variadic(op_type, target):
    def fn(imp, node, ins, at):
        out = ins[0]
        for x in ins[1:]:
            out = imp.call(target, [out, x])
        return [out]

    def fold(imp, ins, at):
        if any(x.dtype == object for x in ins):
            return None
        out = ins[0]
        for x in ins[1:]:
            out = (np.maximum if target == "maximum" else np.minimum)(out, x)
        return [out]

    rule(op_type, needs=(target,), fold=fold)(fn)


_variadic("Max", "maximum")
_variadic("Min", "minimum")

_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log",
          "Sqrt": "sqrt", "Abs": "abs", "Neg": "neg", "Erf": "erf", "Reciprocal": "reciprocal",
          "Sign": "sign", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sin": "sin",
          "Cos": "cos", "Not": "logical_not", "Softplus": "softplus", "Tan": "tan", "Asin": "asin",
          "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh"}
_UNARY_FOLD = {"Neg": np.negative, "Not": np.logical_not, "Sqrt": np.sqrt, "Abs": np.abs}


def _make_unary(op_type, target):
    def fn(imp, node, ins, at):
        attrs = (1.0, 20.0) if target == "softplus" else ()
        return [imp.call(target, [ins[0]], attrs)]

    f = _UNARY_FOLD.get(op_type)

    def fold(imp, ins, at):
        if f is None or ins[0].dtype == object:
            return None
        return [np.asarray(f(ins[0])).astype(ins[0].dtype)]

    rule(op_type, needs=(target,), fold=fold)(fn)


for _k, _t in _UNARY.items():
    _make_unary(_k, _t)


@rule("LeakyRelu", attrs=("alpha",), needs=("leaky_relu",))
def _leaky_relu(imp, node, ins, at):
    return [imp.call("leaky_relu", [ins[0]], (float(at.get("alpha", 0.01)),))]


@rule("Elu", attrs=("alpha",), needs=("elu",))
def _elu(imp, node, ins, at):
    return [imp.call("elu", [ins[0]], (float(at.get("alpha", 1.0)),))]


@rule("Gelu", attrs=("approximate",), needs=("gelu",))
def _gelu(imp, node, ins, at):
    return [imp.call("gelu", [ins[0]], (at.get("approximate", "none"),))]


def _scalar(imp, x, what):
    if x is None:
        return None
    if not is_known(x) or x.size != 1 or x.dtype == object:
        raise OnnxError(f"{imp.where()}: {what} must be a constant scalar")
    return float(x.reshape(-1)[0])


@rule("Clip", needs=("clamp",))
def _clip(imp, node, ins, at):
    lo = _scalar(imp, ins[1] if len(ins) > 1 else None, "min")
    hi = _scalar(imp, ins[2] if len(ins) > 2 else None, "max")
    if lo == 0.0 and hi is None:
        return [imp.call("relu", [ins[0]])]
    return [imp.call("clamp", [ins[0]], (lo, hi))]


def _fold_where(imp, ins, at):
    c, a, b = ins
    if c.dtype == object:
        return None
    out = np.where(c, a, b)
    if out.dtype == object:
        return [out]
    return [out.astype(a.dtype if a.dtype != object else np.int64)]


@rule("Where", needs=("where",), fold=_fold_where)
def _where(imp, node, ins, at):
    return [imp.call("where", list(ins))]


def _cast_known(imp, x, to):
    dt = fw_dtype(to, imp.where())
    if x.dtype == object:
        if dt in (D.int64, D.int32):
            return x
        return None
    return x.astype(dt.np)


@rule("Cast", attrs=("to", "saturate"), needs=("to",),
      fold=lambda imp, ins, at: (lambda r: None if r is None else [r])(_cast_known(imp, ins[0], at["to"])))
def _cast(imp, node, ins, at):
    dt = fw_dtype(at["to"], imp.where())
    x = ins[0]
    if isinstance(x, Value) and x.spec.dtype is dt:
        return [x]
    return [imp.call("to", [x], (dt.code,))]


@rule("CastLike", attrs=("saturate",), needs=("to",))
def _cast_like(imp, node, ins, at):
    dt = ins[1].spec.dtype if isinstance(ins[1], Value) else D.from_numpy_dtype(ins[1].dtype)
    x = ins[0]
    if isinstance(x, Value) and x.spec.dtype is dt:
        return [x]
    return [imp.call("to", [x], (dt.code,))]


# ---------------------------------------------------------------------------------------
# linear algebra


@rule("MatMul", needs=("matmul",))
def _matmul(imp, node, ins, at):
    a, b = ins
    if is_known(b) and b.ndim == 2 and _ndim(imp, a) >= 2 and b.dtype != object:
        return [imp.call("linear", [a, np.require(b.T, requirements="C"), None])]
    return [imp.call("matmul", [a, b])]


@rule("Gemm", attrs=("alpha", "beta", "transA", "transB"), needs=("linear", "matmul", "mul", "add"))
def _gemm(imp, node, ins, at):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    if at.get("transA", 0):
        a = imp.call("permute", [a], ((1, 0),)) if not is_known(a) else np.require(a.T, requirements="C")
    # linear wants the weight as (N, K)
    if at.get("transB", 0):
        w = b
    else:
        w = np.require(b.T, requirements="C") if is_known(b) else imp.call("permute", [b], ((1, 0),))
    if alpha != 1.0:
        w = w * np.asarray(alpha, dtype=w.dtype) if is_known(w) else imp.call("mul", [w, np.asarray(alpha, np.float32)])
    bias = None
    if c is not None:
        n = imp.shape(w)[0]
        cs = imp.shape(c)
        if beta != 1.0:
            c = c * np.asarray(beta, dtype=c.dtype) if is_known(c) else imp.call("mul", [c, np.asarray(beta, np.float32)])
        if is_known(c) and (cs == (n,) or cs == (1, n)):
            bias = c if c.ndim == 1 else c.reshape(-1)
        elif len(cs) == 1 and cs[0] == n:
            bias = c
        else:
            out = imp.call("linear", [a, w, None])
            return [imp.call("add", [out, c], (1,))]
    return [imp.call("linear", [a, w, bias])]


# ---------------------------------------------------------------------------------------
# reductions


def _reduce(op_type, target):
    def fn(imp, node, ins, at):
        x = ins[0]
        n = _ndim(imp, x)
        axes = _axes(imp, ins, at)
        if not axes:
            if at.get("noop_with_empty_axes", 0) and axes is not None or \
                    (at.get("noop_with_empty_axes", 0) and axes is None):
                return [x]
            axes = list(range(n))
        dims = tuple(sorted({_wrap(a, n, imp) for a in axes}))
        return [imp.call(target, [x], (dims, bool(at.get("keepdims", 1))))]

    rule(op_type, attrs=("axes", "keepdims", "noop_with_empty_axes"), needs=(target,))(fn)


for _k, _t in {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "ReduceMin": "amin",
               "ReduceProd": "prod"}.items():
    _reduce(_k, _t)


def _argreduce(op_type, target):
    def fn(imp, node, ins, at):
        if at.get("select_last_index", 0):
            raise OnnxError(f"{imp.where()}: select_last_index=1 is not supported")
        n = _ndim(imp, ins[0])
        return [imp.call(target, [ins[0]], (_wrap(at.get("axis", 0), n, imp),
                                            bool(at.get("keepdims", 1))))]

    rule(op_type, attrs=("axis", "keepdims", "select_last_index"), needs=(target,))(fn)


_argreduce("ArgMax", "argmax")
_argreduce("ArgMin", "argmin")


@rule("CumSum", attrs=("exclusive", "reverse"), needs=("cumsum",))
def _cumsum(imp, node, ins, at):
    if at.get("exclusive", 0) or at.get("reverse", 0):
        raise OnnxError(f"{imp.where()}: CumSum exclusive/reverse is not supported")
    axis = imp.ints(ins[1], "axis")[0]
    return [imp.call("cumsum", [ins[0]], (_wrap(axis, _ndim(imp, ins[0]), imp),))]


# ---------------------------------------------------------------------------------------
# nn


@rule("Softmax", attrs=("axis",), needs=("softmax",))
def _softmax(imp, node, ins, at):
    return [imp.call("softmax", [ins[0]], (_wrap(at.get("axis", -1), _ndim(imp, ins[0]), imp),))]


@rule("LogSoftmax", attrs=("axis",), needs=("log_softmax",))
def _log_softmax(imp, node, ins, at):
    return [imp.call("log_softmax", [ins[0]], (_wrap(at.get("axis", -1), _ndim(imp, ins[0]), imp),))]


@rule("LayerNormalization", attrs=("axis", "epsilon", "stash_type"), needs=("layer_norm",))
def _layer_norm(imp, node, ins, at):
    x = ins[0]
    n = _ndim(imp, x)
    axis = _wrap(at.get("axis", -1), n, imp)
    bias = ins[2] if len(ins) > 2 else None
    out = imp.call("layer_norm", [x, ins[1], bias], (n - axis, float(at.get("epsilon", 1e-5))))
    return [out[0] if isinstance(out, list) else out]


@rule("BatchNormalization", attrs=("epsilon", "momentum", "training_mode"), needs=("batch_norm",))
def _batch_norm(imp, node, ins, at):
    if at.get("training_mode", 0):
        raise OnnxError(f"{imp.where()}: BatchNormalization training_mode=1 is not supported")
    x, scale, b, mean, var = ins
    out = imp.call("batch_norm", [x, scale, b, mean, var],
                   (False, float(at.get("momentum", 0.9)), float(at.get("epsilon", 1e-5))))
    return [out[0] if isinstance(out, list) else out]


@rule("GlobalAveragePool", needs=("mean",))
def _global_avg_pool(imp, node, ins, at):
    n = _ndim(imp, ins[0])
    return [imp.call("mean", [ins[0]], (tuple(range(2, n)), True))]


@rule("GlobalMaxPool", needs=("amax",))
def _global_max_pool(imp, node, ins, at):
    n = _ndim(imp, ins[0])
    return [imp.call("amax", [ins[0]], (tuple(range(2, n)), True))]


# ---------------------------------------------------------------------------------------
# convolution, pooling, padding, resizing (2-d spatial; 1-d convs as height-1 images)


def _window(imp, at, x, kernel):
    """(strides, (top, left, bottom, right) pads, dilations) from ONNX attributes."""
    nsp = len(kernel)
    strides = list(at.get("strides", [1] * nsp))
    dil = list(at.get("dilations", [1] * nsp))
    pads = list(at.get("pads", [0] * (2 * nsp)))
    auto = at.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        spatial = imp.shape(x)[2:]
        if not all(isinstance(v, int) for v in spatial):
            raise OnnxError(f"{imp.where()}: auto_pad={auto} over dynamic spatial dims")
        pads = [0] * (2 * nsp)
        for i, (n, k, s, d) in enumerate(zip(spatial, kernel, strides, dil)):
            out = -(-n // s)
            total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nsp] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * (2 * nsp)
    elif auto != "NOTSET":
        raise OnnxError(f"{imp.where()}: auto_pad={auto!r} is not supported")
    if nsp == 1:
        return [1] + strides, [0, pads[0], 0, pads[1]], [1] + dil
    if nsp != 2:
        raise OnnxError(f"{imp.where()}: only 1-d and 2-d spatial inputs are supported")
    return strides, pads, dil


def _to_2d(imp, x):
    """A 3-d (N, C, L) input as (N, C, 1, L)."""
    s = imp.shape(x)
    return _reshape_value(imp, x, s[:2] + (1,) + s[2:])


def _from_2d(imp, y):
    s = imp.shape(y)
    return _reshape_value(imp, y, s[:2] + s[3:])


_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


@rule("Conv", attrs=_CONV_ATTRS, needs=("conv2d",))
def _conv(imp, node, ins, at):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    kernel = list(imp.shape(w)[2:])
    strides, p4, dil = _window(imp, at, x, kernel)
    one_d = len(kernel) == 1
    if one_d:
        x = _to_2d(imp, x)
        w = w.reshape(w.shape[:2] + (1,) + w.shape[2:]) if is_known(w) else _to_2d(imp, w)
    y = imp.call("conv2d", [x, w, b], (tuple(strides), tuple(p4), tuple(dil), int(at.get("group", 1))))
    return [_from_2d(imp, y) if one_d else y]


@rule("ConvTranspose", attrs=_CONV_ATTRS + ("output_padding", "output_shape"),
      needs=("conv_transpose2d",))
def _conv_transpose(imp, node, ins, at):
    if "output_shape" in at or at.get("auto_pad", "NOTSET") != "NOTSET":
        raise OnnxError(f"{imp.where()}: ConvTranspose output_shape/auto_pad is not supported")
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    kernel = list(imp.shape(w)[2:])
    if len(kernel) != 2:
        raise OnnxError(f"{imp.where()}: only 2-d ConvTranspose is supported")
    strides, p4, dil = _window(imp, at, x, kernel)
    if p4[0] != p4[2] or p4[1] != p4[3]:
        raise OnnxError(f"{imp.where()}: asymmetric ConvTranspose pads {p4} are not supported")
    opad = tuple(at.get("output_padding", [0, 0]))
    return [imp.call("conv_transpose2d", [x, w, b], (tuple(strides), tuple(p4), opad,
                                                     int(at.get("group", 1)), tuple(dil)))]


def _pool_window(imp, at, x):
    kernel = list(at["kernel_shape"])
    strides, p4, dil = _window(imp, at, x, kernel)
    if p4[0] != p4[2] or p4[1] != p4[3]:
        raise OnnxError(f"{imp.where()}: asymmetric pooling pads {p4} are not supported")
    if len(kernel) == 1:
        kernel = [1] + kernel
    return tuple(kernel), tuple(strides), (p4[0], p4[1]), tuple(dil)


@rule("MaxPool", attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                        "storage_order", "strides"), needs=("max_pool2d",))
def _max_pool(imp, node, ins, at):
    x = ins[0]
    one_d = _ndim(imp, x) == 3
    if one_d:
        x = _to_2d(imp, x)
    k, s, p, d = _pool_window(imp, at, ins[0])
    out = imp.call("max_pool2d", [x], (k, s, p, d, bool(at.get("ceil_mode", 0)), False))
    y = out[0] if isinstance(out, list) else out
    return [_from_2d(imp, y) if one_d else y]


@rule("AveragePool", attrs=("auto_pad", "ceil_mode", "count_include_pad", "dilations",
                            "kernel_shape", "pads", "strides"), needs=("avg_pool2d",))
def _avg_pool(imp, node, ins, at):
    x = ins[0]
    one_d = _ndim(imp, x) == 3
    if one_d:
        x = _to_2d(imp, x)
    k, s, p, d = _pool_window(imp, at, ins[0])
    if any(v != 1 for v in d):
        raise OnnxError(f"{imp.where()}: AveragePool dilations are not supported")
    y = imp.call("avg_pool2d", [x], (k, s, p, bool(at.get("ceil_mode", 0)),
                                     bool(at.get("count_include_pad", 0)), None))
    return [_from_2d(imp, y) if one_d else y]


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


@rule("Pad", attrs=("mode",), needs=("pad",))
def _pad(imp, node, ins, at):
    x = ins[0]
    n = _ndim(imp, x)
    pads = imp.ints(ins[1], "pads")
    axes = imp.ints(ins[3], "axes") if len(ins) > 3 and ins[3] is not None else list(range(n))
    if len(pads) != 2 * len(axes) or not all(isinstance(p, int) for p in pads):
        raise OnnxError(f"{imp.where()}: pads {pads} do not match axes {axes}")
    mode = at.get("mode", "constant")
    if mode not in _PAD_MODES:
        raise OnnxError(f"{imp.where()}: Pad mode {mode!r} is not supported")
    if any(p < 0 for p in pads):
        raise OnnxError(f"{imp.where()}: negative pads (cropping) are not supported")
    flat = [0] * (2 * n)
    for i, a in enumerate(axes):
        a = _wrap(a, n, imp)
        flat[2 * a], flat[2 * a + 1] = pads[i], pads[i + len(axes)]
    if not any(flat):
        return [x]
    value = _scalar(imp, ins[2], "constant_value") if len(ins) > 2 and ins[2] is not None else 0.0
    if mode != "constant":
        value = 0.0
    return [imp.call("pad", [x], (tuple(flat), _PAD_MODES[mode], float(value)))]


@rule("Resize", attrs=("antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a",
                       "exclude_outside", "extrapolation_value", "keep_aspect_ratio_policy",
                       "mode", "nearest_mode"), needs=("interpolate",))
def _resize(imp, node, ins, at):
    x = ins[0]
    shape = imp.shape(x)
    mode = at.get("mode", "nearest")
    ctm = at.get("coordinate_transformation_mode", "half_pixel")
    if at.get("antialias", 0) or "axes" in at or len(shape) != 4:
        raise OnnxError(f"{imp.where()}: Resize with antialias, axes or a non-4-d input is not supported")
    if mode == "nearest":
        if ctm != "asymmetric" or at.get("nearest_mode", "round_prefer_floor") != "floor":
            raise OnnxError(f"{imp.where()}: nearest Resize is supported with coordinate_transformation"
                            f"_mode='asymmetric' and nearest_mode='floor' (got {ctm!r}, "
                            f"{at.get('nearest_mode', 'round_prefer_floor')!r})")
        align = False
    elif mode == "linear":
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise OnnxError(f"{imp.where()}: linear Resize with coordinate_transformation_mode "
                            f"{ctm!r} is not supported")
        align = ctm == "align_corners"
        mode = "bilinear"
    else:
        raise OnnxError(f"{imp.where()}: Resize mode {mode!r} is not supported (nearest, linear)")
    scales = ins[2] if len(ins) > 2 and ins[2] is not None and ins[2].size else None
    sizes = ins[3] if len(ins) > 3 and ins[3] is not None and ins[3].size else None
    if sizes is not None:
        out = imp.ints(sizes, "sizes")
        if list(out[:2]) != list(shape[:2]):
            raise OnnxError(f"{imp.where()}: Resize of the batch/channel dims is not supported")
        sh = sw = None
    elif scales is not None:
        if not is_known(scales):
            raise OnnxError(f"{imp.where()}: Resize scales must be constants")
        sc = [float(v) for v in scales.reshape(-1)]
        if len(sc) != 4 or sc[0] != 1 or sc[1] != 1:
            raise OnnxError(f"{imp.where()}: Resize scales {sc} must be [1, 1, sh, sw]")
        out = list(shape[:2]) + [_scaled_dim(imp, shape[2], sc[2]), _scaled_dim(imp, shape[3], sc[3])]
        sh, sw = sc[2], sc[3]
    else:
        raise OnnxError(f"{imp.where()}: Resize needs scales or sizes")
    return [imp.call("interpolate", [x], (tuple(out[2:]), mode, align, sh, sw))]


def _scaled_dim(imp, n, scale):
    if isinstance(n, int):
        return int(np.floor(n * scale))
    if float(scale).is_integer():
        return n * int(scale)
    raise OnnxError(f"{imp.where()}: a non-integer Resize scale {scale} on a dynamic dim")


# ---------------------------------------------------------------------------------------
# gather/scatter, tiling, top-k


@rule("GatherElements", attrs=("axis",), needs=("gather",))
def _gather_elements(imp, node, ins, at):
    return [imp.call("gather", [ins[0], ins[1]], (_wrap(at.get("axis", 0), _ndim(imp, ins[0]), imp),))]


@rule("ScatterElements", attrs=("axis", "reduction"), needs=("scatter",))
def _scatter_elements(imp, node, ins, at):
    red = {"none": "none", "add": "add", "mul": "multiply"}.get(at.get("reduction", "none"))
    if red is None:
        raise OnnxError(f"{imp.where()}: ScatterElements reduction {at.get('reduction')!r} is not supported")
    axis = _wrap(at.get("axis", 0), _ndim(imp, ins[0]), imp)
    return [imp.call("scatter", [ins[0], ins[1], ins[2]], (axis, None, red))]


@rule("Tile", needs=("repeat",))
def _tile(imp, node, ins, at):
    reps = imp.ints(ins[1], "repeats")
    if all(isinstance(r, int) and r == 1 for r in reps):
        return [ins[0]]
    return [imp.call("repeat", [ins[0]], (tuple(reps),))]


@rule("TopK", attrs=("axis", "largest", "sorted"), needs=("topk",))
def _topk(imp, node, ins, at):
    k = imp.ints(ins[1], "K")[0]
    axis = _wrap(at.get("axis", -1), _ndim(imp, ins[0]), imp)
    out = imp.call("topk", [ins[0]], (k, axis, bool(at.get("largest", 1)), bool(at.get("sorted", 1))))
    return list(out)


def _fold_trilu(imp, ins, at):
    k = imp.ints(ins[1], "k")[0] if len(ins) > 1 and ins[1] is not None else 0
    if ins[0].dtype == object or not isinstance(k, int):
        return None
    return [(np.triu if at.get("upper", 1) else np.tril)(ins[0], k)]


@rule("Trilu", attrs=("upper",), needs=("tril", "triu"), fold=_fold_trilu)
def _trilu(imp, node, ins, at):
    k = imp.ints(ins[1], "k")[0] if len(ins) > 1 and ins[1] is not None else 0
    if not isinstance(k, int):
        raise OnnxError(f"{imp.where()}: a symbolic Trilu diagonal is not supported")
    return [imp.call("triu" if at.get("upper", 1) else "tril", [ins[0]], (k,))]
