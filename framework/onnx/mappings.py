"""ONNX export mappings, one function per framework op, attached to the OpDefs by name.

A mapping is `fn(ctx, ins, attrs, outs)`: `ctx` is exporter.ExportContext (ctx.add emits a
node, ctx.const an initializer, ctx.shape_tensor a possibly symbolic int64 shape,
ctx.in_spec(i)/ctx.out_spec(i) give the IR specs), `ins` the ONNX names of the node's inputs
(None for an absent optional input), `attrs` the node's attributes in kernel order and
`outs` the names its outputs must get. Adding an op's export = one `@maps("op")` function
here; `attach()` sets `REGISTRY[name].onnx` for every registered op that has one.
Fused ops created by graph passes are mapped here too, as the standard ops they fuse.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as D
from ..jit.symbolic import SymInt
from ._proto import OnnxError, onnx_dtype

MAPPINGS: dict = {}


def maps(*names):
    """Decorator: the export mapping of the framework ops `names`."""

    def wrap(fn):
        for n in names:
            MAPPINGS[n] = fn
        return fn

    return wrap


def attach() -> None:
    """Sets OpDef.onnx for every registered op with a mapping (idempotent)."""
    from ..ops.registry import REGISTRY

    for name, fn in MAPPINGS.items():
        op = REGISTRY.get(name)
        if op is not None and op.onnx is None:
            op.onnx = fn


# ---------------------------------------------------------------------------------------
# elementwise

_UNARY = {"neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin",
          "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "erf": "Erf",
          "reciprocal": "Reciprocal", "sign": "Sign", "floor": "Floor", "ceil": "Ceil",
          "round": "Round", "logical_not": "Not", "tan": "Tan", "asin": "Asin", "acos": "Acos",
          "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh"}


def _unary(op_type):
    def fn(ctx, ins, attrs, outs):
        ctx.add(op_type, [ins[0]], outs[0])

    return fn


for _name, _op in _UNARY.items():
    maps(_name)(_unary(_op))


@maps("clone")
def _clone(ctx, ins, attrs, outs):
    ctx.add("Identity", [ins[0]], outs[0])


@maps("to")
def _to(ctx, ins, attrs, outs):
    ctx.add("Cast", [ins[0]], outs[0], to=onnx_dtype(D.BY_CODE[attrs[0]]))


@maps("log1p")
def _log1p(ctx, ins, attrs, outs):
    one = ctx.scalar(1, ctx.in_spec(0))
    ctx.add("Log", [ctx.add("Add", [ins[0], one])], outs[0])


@maps("rsqrt")
def _rsqrt(ctx, ins, attrs, outs):
    ctx.add("Reciprocal", [ctx.add("Sqrt", [ins[0]])], outs[0])


@maps("silu")
def _silu(ctx, ins, attrs, outs):
    ctx.add("Mul", [ins[0], ctx.add("Sigmoid", [ins[0]])], outs[0])


@maps("gelu")
def _gelu(ctx, ins, attrs, outs):
    _gelu_expr(ctx, ins[0], attrs[0], outs[0], ctx.in_spec(0))


@maps("leaky_relu")
def _leaky_relu(ctx, ins, attrs, outs):
    ctx.add("LeakyRelu", [ins[0]], outs[0], alpha=float(attrs[0]))


@maps("elu")
def _elu(ctx, ins, attrs, outs):
    ctx.add("Elu", [ins[0]], outs[0], alpha=float(attrs[0]))


@maps("softplus")
def _softplus(ctx, ins, attrs, outs):
    beta, threshold = float(attrs[0]), float(attrs[1])
    spec = ctx.in_spec(0)
    x = ins[0]
    bx = x if beta == 1.0 else ctx.add("Mul", [x, ctx.scalar(beta, spec)])
    sp = ctx.add("Softplus", [bx])
    if beta != 1.0:
        sp = ctx.add("Div", [sp, ctx.scalar(beta, spec)])
    cond = ctx.add("Greater", [bx, ctx.scalar(threshold, spec)])
    ctx.add("Where", [cond, x, sp], outs[0])


@maps("clamp")
def _clamp(ctx, ins, attrs, outs):
    spec = ctx.in_spec(0)
    lo = None if attrs[0] is None else ctx.scalar(attrs[0], spec)
    hi = None if attrs[1] is None else ctx.scalar(attrs[1], spec)
    if spec.dtype is D.bool_:
        raise OnnxError("clamp on bool tensors has no ONNX mapping")
    ctx.add("Clip", [ins[0], lo, hi], outs[0])


def _scaled(ctx, name, alpha, i):
    if alpha == 1:
        return name
    return ctx.add("Mul", [name, ctx.scalar(alpha, ctx.in_spec(i))])


@maps("add")
def _add(ctx, ins, attrs, outs):
    ctx.add("Add", [ins[0], _scaled(ctx, ins[1], attrs[0], 1)], outs[0])


@maps("sub")
def _sub(ctx, ins, attrs, outs):
    ctx.add("Sub", [ins[0], _scaled(ctx, ins[1], attrs[0], 1)], outs[0])


_BINARY = {"mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max", "minimum": "Min",
           "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
           "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or"}


def _binary(op_type):
    def fn(ctx, ins, attrs, outs):
        a, b = ins
        if op_type in ("Max", "Min") and ctx.in_spec(0).shape != ctx.in_spec(1).shape:
            pass  # Max/Min broadcast multidirectionally (opset >= 8)
        ctx.add(op_type, [a, b], outs[0])

    return fn


for _name, _op in _BINARY.items():
    maps(_name)(_binary(_op))


@maps("ne")
def _ne(ctx, ins, attrs, outs):
    ctx.add("Not", [ctx.add("Equal", ins)], outs[0])


@maps("where")
def _where(ctx, ins, attrs, outs):
    ctx.add("Where", ins, outs[0])


@maps("masked_fill")
def _masked_fill(ctx, ins, attrs, outs):
    ctx.add("Where", [ins[1], ctx.scalar(attrs[0], ctx.in_spec(0)), ins[0]], outs[0])


# ---------------------------------------------------------------------------------------
# linear algebra


@maps("matmul")
def _matmul(ctx, ins, attrs, outs):
    ctx.add("MatMul", ins, outs[0])


def linear_onnx(ctx, x, w, b, out, x_ndim: int):
    """x @ w.T + b as Gemm (2-d x) or MatMul + Add."""
    if x_ndim == 2:
        return ctx.add("Gemm", [x, w, b], out, transB=1)
    wt = ctx.add("Transpose", [w], perm=[1, 0])
    if b is None:
        return ctx.add("MatMul", [x, wt], out)
    return ctx.add("Add", [ctx.add("MatMul", [x, wt]), b], out)


@maps("linear")
def _linear(ctx, ins, attrs, outs):
    linear_onnx(ctx, ins[0], ins[1], ins[2], outs[0], ctx.in_spec(0).ndim)


@maps("addmm")
def _addmm(ctx, ins, attrs, outs):
    beta, alpha = attrs
    ctx.add("Gemm", [ins[1], ins[2], ins[0]], outs[0], alpha=float(alpha), beta=float(beta))


@maps("baddbmm")
def _baddbmm(ctx, ins, attrs, outs):
    beta, alpha = attrs
    mm = _scaled(ctx, ctx.add("MatMul", [ins[1], ins[2]]), alpha, 1)
    ctx.add("Add", [_scaled(ctx, ins[0], beta, 0), mm], outs[0])


# ---------------------------------------------------------------------------------------
# reductions


def cast_to_out(ctx, x: str, i: int = 0) -> str:
    """x cast to the node's output dtype when it differs from input 0's (sum of int32 -> int64)."""
    if ctx.in_spec(0).dtype is ctx.out_spec(i).dtype:
        return x
    return ctx.add("Cast", [x], to=onnx_dtype(ctx.out_spec(i).dtype))


def _reduce(op_type):
    def fn(ctx, ins, attrs, outs):
        dims, keepdim = attrs[0], attrs[-1]
        x = cast_to_out(ctx, ins[0])
        if not dims:
            ctx.add("Identity", [x], outs[0])
            return
        ctx.reduce(op_type, x, dims, keepdim, outs[0])

    return fn


for _name, _op in {"sum": "ReduceSum", "mean": "ReduceMean", "prod": "ReduceProd",
                   "amax": "ReduceMax", "amin": "ReduceMin"}.items():
    maps(_name)(_reduce(_op))


def _count(ctx, dims, spec) -> str:
    """The number of reduced elements as a 0-d tensor of spec's dtype (symbolic dims ok)."""
    n = 1
    for d in dims:
        n = n * spec.shape[d]
    if isinstance(n, SymInt):
        return ctx.add("Cast", [ctx.scalar_sym(n)], to=onnx_dtype(spec.dtype))
    return ctx.scalar(n, spec)


@maps("var", "std")
def _var(ctx, ins, attrs, outs):
    dims, correction, keepdim = attrs
    spec = ctx.in_spec(0)
    is_std = ctx.node.target == "std"
    x = ins[0]
    mean = ctx.reduce("ReduceMean", x, dims, True)
    d = ctx.add("Sub", [x, mean])
    ss = ctx.reduce("ReduceSum", ctx.add("Mul", [d, d]), dims, keepdim)
    n = _count(ctx, dims, spec)
    denom = ctx.add("Max", [ctx.add("Sub", [n, ctx.scalar(correction, spec)]), ctx.scalar(0, spec)])
    if is_std:
        ctx.add("Sqrt", [ctx.add("Div", [ss, denom])], outs[0])
    else:
        ctx.add("Div", [ss, denom], outs[0])


@maps("logsumexp")
def _logsumexp(ctx, ins, attrs, outs):
    dims, keepdim = attrs
    x = ins[0]
    m = ctx.reduce("ReduceMax", x, dims, True)
    # guard -inf maxima (all -inf rows) so x - m stays finite
    spec = ctx.in_spec(0)
    fin = ctx.add("Where", [ctx.add("IsInf", [m]), ctx.scalar(0, spec), m])
    s = ctx.reduce("ReduceSum", ctx.add("Exp", [ctx.add("Sub", [x, fin])]), dims, keepdim)
    mk = fin if keepdim else ctx.squeeze(fin, dims)
    ctx.add("Add", [ctx.add("Log", [s]), mk], outs[0])


@maps("norm")
def _norm(ctx, ins, attrs, outs):
    dims, p, keepdim = attrs
    x = ins[0]
    if p in ("fro", 2, 2.0):
        ctx.reduce("ReduceL2", x, dims, keepdim, outs[0])
    elif p in (1, 1.0):
        ctx.reduce("ReduceL1", x, dims, keepdim, outs[0])
    elif p == math.inf:
        ctx.reduce("ReduceMax", ctx.add("Abs", [x]), dims, keepdim, outs[0])
    elif p == -math.inf:
        ctx.reduce("ReduceMin", ctx.add("Abs", [x]), dims, keepdim, outs[0])
    else:
        spec = ctx.in_spec(0)
        s = ctx.reduce("ReduceSum", ctx.add("Pow", [ctx.add("Abs", [x]), ctx.scalar(p, spec)]),
                       dims, keepdim)
        ctx.add("Pow", [s, ctx.scalar(1.0 / p, spec)], outs[0])


@maps("all", "any")
def _all_any(ctx, ins, attrs, outs):
    dims, keepdim = attrs
    as_int = ctx.add("Cast", [ins[0]], to=onnx_dtype(D.int64))
    op = "ReduceMin" if ctx.node.target == "all" else "ReduceMax"
    if not dims:
        r = as_int
    else:
        r = ctx.reduce(op, as_int, dims, keepdim)
    ctx.add("Cast", [r], outs[0], to=onnx_dtype(D.bool_))


@maps("max", "min")
def _max_min_dim(ctx, ins, attrs, outs):
    dim, keepdim = attrs
    is_max = ctx.node.target == "max"
    ctx.reduce("ReduceMax" if is_max else "ReduceMin", ins[0], [dim], keepdim, outs[0])
    ctx.add("ArgMax" if is_max else "ArgMin", [ins[0]], outs[1], axis=int(dim),
            keepdims=int(keepdim))


@maps("argmax", "argmin")
def _argmax(ctx, ins, attrs, outs):
    dim, keepdim = attrs
    op = "ArgMax" if ctx.node.target == "argmax" else "ArgMin"
    if dim is None:
        flat = ctx.add("Reshape", [ins[0], ctx.ints([-1])])
        r = ctx.add(op, [flat], axis=0, keepdims=int(keepdim))
        if keepdim:
            ctx.add("Reshape", [r, ctx.ints([1] * ctx.in_spec(0).ndim)], outs[0])
        else:
            ctx.squeeze(r, [0], outs[0])
        return
    ctx.add(op, [ins[0]], outs[0], axis=int(dim), keepdims=int(keepdim))


@maps("cumsum")
def _cumsum(ctx, ins, attrs, outs):
    ctx.add("CumSum", [cast_to_out(ctx, ins[0]), ctx.const(np.asarray(attrs[0], dtype=np.int64))], outs[0])


# ---------------------------------------------------------------------------------------
# shapes


@maps("reshape")
def _reshape(ctx, ins, attrs, outs):
    # allowzero: a 0 in the target is a real empty dim, not "copy the input's dim"
    zero = any(isinstance(d, int) and d == 0 for d in attrs[0])
    ctx.add("Reshape", [ins[0], ctx.shape_tensor(attrs[0])], outs[0], allowzero=1 if zero else None)


@maps("permute")
def _permute(ctx, ins, attrs, outs):
    ctx.add("Transpose", [ins[0]], outs[0], perm=[int(d) for d in attrs[0]])


@maps("expand")
def _expand(ctx, ins, attrs, outs):
    ctx.add("Expand", [ins[0], ctx.shape_tensor(attrs[0])], outs[0])


@maps("slice")
def _slice(ctx, ins, attrs, outs):
    dim, start, end, step = attrs
    ctx.add("Slice", [ins[0], ctx.shape_tensor([start]), ctx.shape_tensor([end]),
                      ctx.ints([dim]), ctx.ints([step])], outs[0])


@maps("select")
def _select(ctx, ins, attrs, outs):
    dim, index = attrs
    ctx.add("Gather", [ins[0], ctx.scalar_sym(index)], outs[0], axis=int(dim))


def _scatter_along(ctx, x, updates_front, positions, dim, ndim, out):
    """x with its slices `positions` along dim replaced by updates (dim first): ScatterND."""
    if any(isinstance(p, SymInt) for p in positions):
        raise OnnxError("scatter into symbolic positions has no ONNX mapping")
    perm = [dim] + [d for d in range(ndim) if d != dim]
    inv = [perm.index(d) for d in range(ndim)]
    xt = x if dim == 0 else ctx.add("Transpose", [x], perm=perm)
    idx = ctx.const(np.asarray(positions, dtype=np.int64).reshape(-1, 1))
    y = ctx.add("ScatterND", [xt, idx, updates_front], None if dim else out)
    if dim:
        ctx.add("Transpose", [y], out, perm=inv)


@maps("slice_scatter")
def _slice_scatter(ctx, ins, attrs, outs):
    dim, start, end, step = attrs
    nd = ctx.in_spec(0).ndim
    perm = [dim] + [d for d in range(nd) if d != dim]
    upd = ins[1] if dim == 0 else ctx.add("Transpose", [ins[1]], perm=perm)
    positions = list(range(start, end, step)) if not any(isinstance(v, SymInt) for v in (start, end)) \
        else [start]
    if len(positions) != ctx.in_spec(1).shape[dim]:
        raise OnnxError("slice_scatter with a symbolic range has no ONNX mapping")
    _scatter_along(ctx, ins[0], upd, positions, dim, nd, outs[0])


@maps("select_scatter")
def _select_scatter(ctx, ins, attrs, outs):
    dim, index = attrs
    nd = ctx.in_spec(0).ndim
    _scatter_along(ctx, ins[0], ctx.unsqueeze(ins[1], [0]), [index], dim, nd, outs[0])


@maps("full")
def _full(ctx, ins, attrs, outs):
    shape, value, code = attrs
    dt = D.BY_CODE[code]
    ctx.add("ConstantOfShape", [ctx.shape_tensor(shape)], outs[0],
            value=_tensor_attr(np.asarray([value], dtype=dt.np)))


def _tensor_attr(arr):
    from onnx import numpy_helper

    return numpy_helper.from_array(arr)


@maps("arange")
def _arange(ctx, ins, attrs, outs):
    n, start, step, code = attrs
    dt = D.BY_CODE[code]
    if not isinstance(n, SymInt):
        # exact element values (start + i*step) even where float accumulation would drift
        vals = np.asarray(start, np.float64) + np.arange(int(n), dtype=np.float64) * step
        ctx.add("Identity", [ctx.const(vals.astype(dt.np))], outs[0])
        return
    idx = ctx.add("Range", [ctx.const(np.asarray(0, np.int64)), ctx.scalar_sym(n),
                            ctx.const(np.asarray(1, np.int64))])
    f = ctx.add("Cast", [idx], to=onnx_dtype(D.float64))
    v = ctx.add("Add", [ctx.add("Mul", [f, ctx.const(np.asarray(step, np.float64))]),
                        ctx.const(np.asarray(start, np.float64))])
    ctx.add("Cast", [v], outs[0], to=onnx_dtype(dt))


@maps("linspace")
def _linspace(ctx, ins, attrs, outs):
    # all attrs are concrete: evaluate with the framework kernel and export the values
    from ..ops.dispatch import dispatch
    from ..ops.registry import REGISTRY

    t = dispatch(REGISTRY["linspace"], [], tuple(attrs))
    ctx.add("Identity", [ctx.const(t.numpy().copy())], outs[0])


# ---------------------------------------------------------------------------------------
# convolution, pooling, padding, resizing


@maps("conv2d")
def _conv2d(ctx, ins, attrs, outs):
    stride, p4, dilation, groups = attrs
    k = list(ctx.in_spec(1).shape[2:])
    ctx.add("Conv", ins, outs[0], kernel_shape=k, strides=list(stride), pads=list(p4),
            dilations=list(dilation), group=int(groups))


@maps("conv_transpose2d")
def _conv_transpose2d(ctx, ins, attrs, outs):
    stride, p4, output_padding, groups, dilation = attrs
    k = list(ctx.in_spec(1).shape[2:])
    ctx.add("ConvTranspose", ins, outs[0], kernel_shape=k, strides=list(stride), pads=list(p4),
            output_padding=list(output_padding), dilations=list(dilation), group=int(groups))


@maps("max_pool2d")
def _max_pool2d(ctx, ins, attrs, outs):
    k, s, p, d, ceil_mode = attrs[:5]  # attrs[5]: with_indices
    kw = dict(kernel_shape=list(k), strides=list(s), pads=[p[0], p[1], p[0], p[1]],
              dilations=list(d), ceil_mode=int(ceil_mode))
    with_indices = attrs[5] if len(attrs) > 5 else True
    if not with_indices or not ctx.node.outputs[1].users:
        ctx.add("MaxPool", [ins[0]], outs[0], **kw)
        if ctx.node.outputs[1].users:  # computed without indices: output #1 is empty
            ctx.add("Identity", [ctx.const(np.zeros((0,), np.int64))], outs[1])
        return
    # ONNX indices count over the whole NCHW tensor; framework's within each (n, c) plane
    y, idx = ctx.add("MaxPool", [ins[0]], [outs[0], ctx.fresh("indices")], **kw)
    H, W = ctx.in_spec(0).shape[2:]
    ctx.add("Mod", [idx, ctx.shape_tensor([H * W])], outs[1])


@maps("avg_pool2d")
def _avg_pool2d(ctx, ins, attrs, outs):
    k, s, p, ceil_mode, count_include_pad, divisor = attrs
    kw = dict(kernel_shape=list(k), strides=list(s), pads=[p[0], p[1], p[0], p[1]],
              ceil_mode=int(ceil_mode))
    if divisor is None:
        ctx.add("AveragePool", [ins[0]], outs[0], count_include_pad=int(count_include_pad), **kw)
        return
    # sum of the window (count_include_pad averages over k0*k1 exactly) / divisor
    avg = ctx.add("AveragePool", [ins[0]], count_include_pad=1, **kw)
    ctx.add("Mul", [avg, ctx.scalar(k[0] * k[1] / divisor, ctx.in_spec(0))], outs[0])


@maps("adaptive_avg_pool2d")
def _adaptive_avg_pool2d(ctx, ins, attrs, outs):
    (oh, ow), = attrs
    H, W = ctx.in_spec(0).shape[2:]
    if (oh, ow) == (1, 1):
        ctx.add("GlobalAveragePool", [ins[0]], outs[0])
        return
    if not all(isinstance(v, int) for v in (H, W)):
        raise OnnxError("adaptive_avg_pool2d over dynamic spatial dims has no ONNX mapping")
    if H % oh == 0 and W % ow == 0:
        kh, kw = H // oh, W // ow
        ctx.add("AveragePool", [ins[0]], outs[0], kernel_shape=[kh, kw], strides=[kh, kw])
        return
    # uneven windows: the mean over a rectangle is the mean over its rows of the row means
    rows = _adaptive_axis(ctx, ins[0], 2, H, oh)
    _adaptive_axis(ctx, rows, 3, W, ow, outs[0])


def _adaptive_axis(ctx, x, axis, n, out_n, out=None):
    parts = []
    for i in range(out_n):
        lo, hi = (i * n) // out_n, -((-(i + 1) * n) // out_n)
        sl = ctx.add("Slice", [x, ctx.ints([lo]), ctx.ints([hi]), ctx.ints([axis])])
        parts.append(ctx.reduce("ReduceMean", sl, [axis], True))
    return ctx.add("Concat", parts, out, axis=axis)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@maps("pad")
def _pad(ctx, ins, attrs, outs):
    pads, mode, value = attrs
    n = len(pads) // 2
    onnx_pads = [pads[2 * d] for d in range(n)] + [pads[2 * d + 1] for d in range(n)]
    cval = ctx.scalar(value, ctx.in_spec(0)) if mode == "constant" else None
    ctx.add("Pad", [ins[0], ctx.ints(onnx_pads), cval], outs[0], mode=_PAD_MODES[mode])


@maps("interpolate")
def _interpolate(ctx, ins, attrs, outs):
    size, mode, align_corners, scale_h, scale_w = attrs
    if mode == "nearest":
        kw = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        kw = dict(mode="linear", coordinate_transformation_mode="align_corners" if align_corners
                  else "pytorch_half_pixel")
    if scale_h is not None or scale_w is not None:
        # torch maps coordinates with the given scale factor (not out/in): so does Resize(scales).
        # An axis without a scale keeps its size here (1-d inputs run as height-1 images).
        spatial = ctx.in_spec(0).shape[2:]
        sc = [s if s is not None else (1.0 if n == o else None)
              for s, n, o in zip((scale_h, scale_w), spatial, size)]
        if None not in sc and all(isinstance(n, int) for n in spatial) and \
                all(math.floor(n * s) == o for n, s, o in zip(spatial, sc, size)):
            scales = ctx.const(np.asarray([1.0, 1.0, *sc], dtype=np.float32))
            ctx.add("Resize", [ins[0], None, scales], outs[0], **kw)
            return
    N, C = ctx.in_spec(0).shape[:2]
    ctx.add("Resize", [ins[0], None, None, ctx.shape_tensor([N, C, *size])], outs[0], **kw)


# ---------------------------------------------------------------------------------------
# nn: softmax, normalization, attention, embedding


def _only_first_output(ctx, what: str) -> None:
    for v in ctx.node.outputs[1:]:
        if v.users:
            raise OnnxError(f"{what}: only the first output can be exported (%{v.name} is used)")


def _softmax_like(op_type):
    def fn(ctx, ins, attrs, outs):
        if ctx.in_spec(0).ndim == 0:  # ONNX wants rank >= 1
            y = ctx.add(op_type, [ctx.unsqueeze(ins[0], [0])], axis=0)
            ctx.squeeze(y, [0], outs[0])
            return
        ctx.add(op_type, [ins[0]], outs[0], axis=int(attrs[0]))

    return fn


maps("softmax")(_softmax_like("Softmax"))
maps("log_softmax")(_softmax_like("LogSoftmax"))


def _param_or(ctx, name, shape, fill, spec):
    if name is not None:
        return name
    if not all(isinstance(d, int) for d in shape):
        raise OnnxError("a missing affine parameter over dynamic dims cannot be exported")
    return ctx.const(np.full(tuple(shape), fill, dtype=spec.dtype.np))


@maps("layer_norm")
def _layer_norm(ctx, ins, attrs, outs):
    nd, eps = attrs
    spec = ctx.in_spec(0)
    shape = spec.shape[spec.ndim - nd:]
    w = _param_or(ctx, ins[1], shape, 1.0, spec)
    kw = dict(axis=-int(nd), epsilon=float(eps))
    if not any(v.users for v in ctx.node.outputs[1:]):
        ctx.add("LayerNormalization", [ins[0], w, ins[2]], outs[0], **kw)
        return
    # saved statistics: ONNX keeps the normalized dims as 1s, framework drops them
    y, mean, rstd = ctx.add("LayerNormalization", [ins[0], w, ins[2]], 3, **kw)
    ctx.add("Identity", [y], outs[0])
    stat_shape = ctx.shape_tensor(ctx.out_spec(1).shape)
    for stat, out in ((mean, outs[1]), (rstd, outs[2])):
        if spec.dtype is not D.float32:  # ONNX keeps the statistics in float32 (stash_type)
            stat = ctx.add("Cast", [stat], to=onnx_dtype(spec.dtype))
        ctx.add("Reshape", [stat, stat_shape], out)


@maps("batch_norm")
def _batch_norm(ctx, ins, attrs, outs):
    training, momentum, eps = attrs
    if training:
        raise OnnxError("batch_norm in training mode has no ONNX mapping (export the model in "
                        "eval mode)")
    spec = ctx.in_spec(0)
    c = (spec.shape[1],)
    if ins[3] is None or ins[4] is None:
        raise OnnxError("batch_norm without running statistics has no ONNX mapping")
    w = _param_or(ctx, ins[1], c, 1.0, spec)
    b = _param_or(ctx, ins[2], c, 0.0, spec)
    ctx.add("BatchNormalization", [ins[0], w, b, ins[3], ins[4]], outs[0], epsilon=float(eps),
            momentum=float(1.0 - momentum))
    # eval-mode statistics outputs: the running mean and 1/sqrt(running_var + eps)
    ctx.add("Identity", [ins[3]], outs[1])
    ctx.add("Reciprocal", [ctx.add("Sqrt", [ctx.add("Add", [ins[4], ctx.scalar(eps, spec)])])], outs[2])


@maps("group_norm")
def _group_norm(ctx, ins, attrs, outs):
    groups, eps = attrs
    spec = ctx.in_spec(0)
    N, C = spec.shape[:2]
    g = ctx.add("Reshape", [ins[0], ctx.shape_tensor([N, groups, -1])])
    mean = ctx.reduce("ReduceMean", g, [2], True)
    d = ctx.add("Sub", [g, mean])
    var = ctx.reduce("ReduceMean", ctx.add("Mul", [d, d]), [2], True)
    rstd = ctx.add("Reciprocal", [ctx.add("Sqrt", [ctx.add("Add", [var, ctx.scalar(eps, spec)])])])
    y = ctx.add("Reshape", [ctx.add("Mul", [d, rstd]), ctx.shape_tensor(spec.shape)])
    stat_shape = ctx.shape_tensor([N, groups])
    ctx.add("Reshape", [mean, stat_shape], outs[1])
    ctx.add("Reshape", [rstd, stat_shape], outs[2])
    bshape = [C] + [1] * (spec.ndim - 2)
    if ins[1] is not None:
        y = ctx.add("Mul", [y, ctx.add("Reshape", [ins[1], ctx.ints(bshape)])])
    if ins[2] is not None:
        y = ctx.add("Add", [y, ctx.add("Reshape", [ins[2], ctx.ints(bshape)])])
    ctx.add("Identity", [y], outs[0])


@maps("scaled_dot_product_attention")
def _sdpa(ctx, ins, attrs, outs):
    is_causal, scale, dropout_p, _seed = attrs
    if dropout_p:
        raise OnnxError("attention dropout has no ONNX mapping (export in eval mode)")
    q, k, v, mask = ins
    spec = ctx.in_spec(0)
    nd = spec.ndim
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    scores = ctx.add("MatMul", [q, ctx.add("Transpose", [k], perm=perm)])
    scores = ctx.add("Mul", [scores, ctx.scalar(scale, spec)])
    neg_inf = ctx.scalar(-np.inf, spec)
    if is_causal:
        L, S = spec.shape[-2], ctx.in_spec(1).shape[-2]
        ones = ctx.add("ConstantOfShape", [ctx.shape_tensor([L, S])],
                       value=_tensor_attr(np.ones(1, dtype=np.bool_)))
        keep = ctx.add("Trilu", [ones], upper=0)
        scores = ctx.add("Where", [keep, scores, neg_inf])
    if mask is not None:
        if ctx.in_spec(3).dtype is D.bool_:
            scores = ctx.add("Where", [mask, scores, neg_inf])
        else:
            scores = ctx.add("Add", [scores, mask])
    if is_causal or mask is not None:
        # a fully masked row is all -inf: framework gives zero weights there, Softmax NaN
        w = ctx.add("Softmax", [scores], axis=-1)
        w = ctx.add("Where", [ctx.add("IsNaN", [w]), ctx.scalar(0, spec), w], outs[1])
    else:
        w = ctx.add("Softmax", [scores], outs[1], axis=-1)
    ctx.add("MatMul", [w, v], outs[0])


@maps("embedding")
def _embedding(ctx, ins, attrs, outs):
    ctx.add("Gather", [ins[1], ins[0]], outs[0], axis=0)


@maps("one_hot")
def _one_hot(ctx, ins, attrs, outs):
    depth = ctx.const(np.asarray(int(attrs[0]), dtype=np.int64))
    values = ctx.const(np.asarray([0, 1], dtype=np.int64))
    if ctx.in_spec(0).ndim == 0:  # ONNX wants rank >= 1
        y = ctx.add("OneHot", [ctx.unsqueeze(ins[0], [0]), depth, values], axis=-1)
        ctx.squeeze(y, [0], outs[0])
        return
    ctx.add("OneHot", [ins[0], depth, values], outs[0], axis=-1)


# ---------------------------------------------------------------------------------------
# fused ops created by the graph passes (framework/ops/fused.py): standard ONNX subgraphs


def _activation(ctx, x: str, act: str, out, spec) -> str:
    if act == "none":
        return ctx.add("Identity", [x], out)
    if act in ("relu", "sigmoid", "tanh"):
        return ctx.add(act.capitalize(), [x], out)
    if act == "silu":
        return ctx.add("Mul", [x, ctx.add("Sigmoid", [x])], out)
    if act in ("gelu", "gelu_tanh"):
        return _gelu_expr(ctx, x, "tanh" if act == "gelu_tanh" else "none", out, spec)
    raise OnnxError(f"unknown activation {act!r}")


def _gelu_expr(ctx, x, approximate, out, spec):
    """GELU from standard ops (ONNX Gelu itself is opset 20)."""
    half, one = ctx.scalar(0.5, spec), ctx.scalar(1.0, spec)
    if approximate == "tanh":
        x3 = ctx.add("Mul", [ctx.add("Mul", [x, x]), x])
        inner = ctx.add("Add", [x, ctx.add("Mul", [x3, ctx.scalar(0.044715, spec)])])
        t = ctx.add("Tanh", [ctx.add("Mul", [inner, ctx.scalar(math.sqrt(2 / math.pi), spec)])])
        cdf = ctx.add("Mul", [ctx.add("Add", [t, one]), half])
    else:
        e = ctx.add("Erf", [ctx.add("Mul", [x, ctx.scalar(1 / math.sqrt(2), spec)])])
        cdf = ctx.add("Mul", [ctx.add("Add", [e, one]), half])
    return ctx.add("Mul", [x, cdf], out)


@maps("linear_act")
def _linear_act(ctx, ins, attrs, outs):
    spec = ctx.out_spec(0)
    if attrs[0] == "none":
        linear_onnx(ctx, ins[0], ins[1], ins[2], outs[0], ctx.in_spec(0).ndim)
        return
    y = linear_onnx(ctx, ins[0], ins[1], ins[2], None, ctx.in_spec(0).ndim)
    _activation(ctx, y, attrs[0], outs[0], spec)


@maps("conv2d_act")
def _conv2d_act(ctx, ins, attrs, outs):
    stride, p4, dilation, groups, act = attrs
    k = list(ctx.in_spec(1).shape[2:])
    residual = ins[3] if len(ins) > 3 and ins[3] else None
    last = act == "none" and residual is None
    y = ctx.add("Conv", ins[:3], outs[0] if last else None,
                kernel_shape=k, strides=list(stride), pads=list(p4), dilations=list(dilation), group=int(groups))
    if residual is not None:
        y = ctx.add("Add", [y, residual], outs[0] if act == "none" else None)
    if act != "none":
        _activation(ctx, y, act, outs[0], ctx.out_spec(0))


@maps("conv2d_act_maxpool")
def _conv2d_act_maxpool(ctx, ins, attrs, outs):
    stride, p4, dilation, groups, act, k, s, p, d, ceil_mode = attrs
    residual = ins[3] if len(ins) > 3 and ins[3] else None
    y = ctx.add("Conv", ins[:3], kernel_shape=list(ctx.in_spec(1).shape[2:]), strides=list(stride), pads=list(p4),
                dilations=list(dilation), group=int(groups))
    if residual is not None:
        y = ctx.add("Add", [y, residual])
    if act != "none":
        y = _activation(ctx, y, act, None, ctx.out_spec(0))
    ctx.add("MaxPool", [y], outs[0], kernel_shape=list(k), strides=list(s), pads=[p[0], p[1], p[0], p[1]],
            dilations=list(d), ceil_mode=int(ceil_mode))


@maps("fused_elementwise")
def _fused_elementwise(ctx, ins, attrs, outs):
    from ..ops import fused as F

    program, consts = attrs
    spec = ctx.out_spec(0)
    names = {v: k for k, v in {**F.UNARY_OPCODES, **F.PARAM_OPCODES, **F.BINARY_OPCODES}.items()}
    onnx_binary = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
                   "maximum": "Max", "minimum": "Min"}
    stack = []
    n = len(program) // 2
    for pc in range(n):
        op, a = program[2 * pc], program[2 * pc + 1]
        last = outs[0] if pc == n - 1 else None
        if op == F.LOAD:
            x = ins[a]
            # Max/Min need equal dtypes only; broadcasting inputs are handled by each node
            stack.append(x if last is None else ctx.add("Identity", [x], last))
            continue
        if op == F.CONST:
            c = ctx.scalar(consts[a], spec)
            stack.append(c if last is None else ctx.add("Identity", [c], last))
            continue
        name = names[op]
        if op in F.BINARY_OPCODES.values():
            b = stack.pop()
            stack.append(ctx.add(onnx_binary[name], [stack.pop(), b], last))
        elif op in F.PARAM_OPCODES.values():
            stack.append(_param_unary(ctx, name, stack.pop(), consts, a, last, spec))
        else:
            stack.append(_fused_unary(ctx, name, stack.pop(), last, spec))


def _fused_unary(ctx, name, x, out, spec):
    simple = {"neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin",
              "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "erf": "Erf",
              "reciprocal": "Reciprocal", "floor": "Floor", "ceil": "Ceil", "round": "Round",
              "sign": "Sign"}
    if name in simple:
        return ctx.add(simple[name], [x], out)
    if name == "log1p":
        return ctx.add("Log", [ctx.add("Add", [x, ctx.scalar(1.0, spec)])], out)
    if name == "rsqrt":
        return ctx.add("Reciprocal", [ctx.add("Sqrt", [x])], out)
    if name == "silu":
        return ctx.add("Mul", [x, ctx.add("Sigmoid", [x])], out)
    return _gelu_expr(ctx, x, "tanh" if name == "gelu_tanh" else "none", out, spec)


def _param_unary(ctx, name, x, consts, a, out, spec):
    if name == "leaky_relu":
        return ctx.add("LeakyRelu", [x], out, alpha=float(consts[a]))
    if name == "elu":
        return ctx.add("Elu", [x], out, alpha=float(consts[a]))
    if name == "clamp_min":
        return ctx.add("Max", [x, ctx.scalar(consts[a], spec)], out)
    if name == "clamp_max":
        return ctx.add("Min", [x, ctx.scalar(consts[a], spec)], out)
    beta, threshold = float(consts[a]), float(consts[a + 1])  # softplus
    bx = x if beta == 1.0 else ctx.add("Mul", [x, ctx.scalar(beta, spec)])
    sp = ctx.add("Softplus", [bx])
    if beta != 1.0:
        sp = ctx.add("Div", [sp, ctx.scalar(beta, spec)])
    return ctx.add("Where", [ctx.add("Greater", [bx, ctx.scalar(threshold, spec)]), x, sp], out)


# ---------------------------------------------------------------------------------------
# movement, gather/scatter, sorting


@maps("cat")
def _cat(ctx, ins, attrs, outs):
    ctx.add("Concat", list(ins), outs[0], axis=int(attrs[0]))


@maps("index_select")
def _index_select(ctx, ins, attrs, outs):
    ctx.add("Gather", [ins[0], ins[1]], outs[0], axis=int(attrs[0]))


@maps("gather")
def _gather(ctx, ins, attrs, outs):
    if ctx.in_spec(0).ndim == 0:  # ONNX wants rank >= 1
        y = ctx.add("GatherElements", [ctx.unsqueeze(ins[0], [0]), ctx.unsqueeze(ins[1], [0])], axis=0)
        ctx.squeeze(y, [0], outs[0])
        return
    ctx.add("GatherElements", [ins[0], ins[1]], outs[0], axis=int(attrs[0]))


def _fit_to(ctx, src: str, src_spec, index_spec) -> str:
    """src cut to the index's shape (torch reads only that corner; ONNX wants equal shapes)."""
    if tuple(src_spec.shape) == tuple(index_spec.shape):
        return src
    n = index_spec.ndim
    return ctx.add("Slice", [src, ctx.ints([0] * n), ctx.shape_tensor(index_spec.shape),
                             ctx.ints(list(range(n)))])


@maps("scatter")
def _scatter(ctx, ins, attrs, outs):
    dim, value, reduce = attrs
    spec, ispec = ctx.in_spec(0), ctx.in_spec(1)
    if ins[2] is None:
        src = ctx.add("Expand", [ctx.scalar(value, spec), ctx.shape_tensor(ispec.shape)])
    else:
        src = _fit_to(ctx, ins[2], ctx.in_spec(2), ispec)
    red = {"none": None, "add": "add", "multiply": "mul"}[reduce]
    ctx.add("ScatterElements", [ins[0], ins[1], src], outs[0], axis=int(dim), reduction=red)


@maps("scatter_add")
def _scatter_add(ctx, ins, attrs, outs):
    src = _fit_to(ctx, ins[2], ctx.in_spec(2), ctx.in_spec(1))
    ctx.add("ScatterElements", [ins[0], ins[1], src], outs[0], axis=int(attrs[0]), reduction="add")


@maps("flip")
def _flip(ctx, ins, attrs, outs):
    dims = [int(d) for d in attrs[0]]
    if not dims:
        ctx.add("Identity", [ins[0]], outs[0])
        return
    n = len(dims)
    ctx.add("Slice", [ins[0], ctx.ints([-1] * n), ctx.ints([-(2 ** 63)] * n), ctx.ints(dims),
                      ctx.ints([-1] * n)], outs[0])


@maps("roll")
def _roll(ctx, ins, attrs, outs):
    shifts, dims = attrs
    x = ins[0]
    shape = ctx.in_spec(0).shape
    for i, (s, d) in enumerate(zip(shifts, dims)):
        n = shape[d]
        if isinstance(n, SymInt):
            raise OnnxError("roll along a dynamic dim has no ONNX mapping")
        k = s % n if n else 0
        last = outs[0] if i == len(dims) - 1 else None
        if k == 0:
            x = ctx.add("Identity", [x], last) if last else x
            continue
        tail = ctx.add("Slice", [x, ctx.ints([n - k]), ctx.ints([n]), ctx.ints([d])])
        head = ctx.add("Slice", [x, ctx.ints([0]), ctx.ints([n - k]), ctx.ints([d])])
        x = ctx.add("Concat", [tail, head], last, axis=int(d))


@maps("repeat")
def _repeat(ctx, ins, attrs, outs):
    reps = list(attrs[0])
    x = ins[0]
    nd = ctx.in_spec(0).ndim
    if len(reps) > nd:
        x = ctx.add("Reshape", [x, ctx.shape_tensor([1] * (len(reps) - nd) + list(ctx.in_spec(0).shape))])
    ctx.add("Tile", [x, ctx.ints(reps)], outs[0])


def _topk_0d(ctx, ins, outs) -> bool:
    """A 0-d input (ONNX TopK wants rank >= 1): the value itself and index 0."""
    if ctx.in_spec(0).ndim:
        return False
    ctx.add("Identity", [ins[0]], outs[0])
    ctx.add("Identity", [ctx.const(np.asarray(0, dtype=np.int64))], outs[1])
    return True


@maps("topk")
def _topk(ctx, ins, attrs, outs):
    k, dim, largest, sorted_ = attrs
    if _topk_0d(ctx, ins, outs):
        return
    ctx.add("TopK", [ins[0], ctx.shape_tensor([k])], list(outs), axis=int(dim),
            largest=int(largest), sorted=int(sorted_))


@maps("sort")
def _sort(ctx, ins, attrs, outs):
    dim, descending, _stable = attrs
    if _topk_0d(ctx, ins, outs):
        return
    n = ctx.in_spec(0).shape[dim]
    ctx.add("TopK", [ins[0], ctx.shape_tensor([n])], list(outs), axis=int(dim),
            largest=int(descending), sorted=1)


@maps("tril", "triu")
def _trilu(ctx, ins, attrs, outs):
    k = ctx.const(np.asarray(int(attrs[0]), dtype=np.int64))
    ctx.add("Trilu", [ins[0], k], outs[0], upper=int(ctx.node.target == "triu"))
