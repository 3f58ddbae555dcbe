"""torch functions written from registered ops, with no kernel of their own: einsum, outer,
trace, diagonal, diag, index_add, cdist, bucketize, movedim, repeat_interleave, isnan /
isinf / isfinite / isclose / nan_to_num, lerp, addcmul / addcdiv, log2 / log10 / logit,
clamp_min / clamp_max, pixel_shuffle, unfold / fold, and the losses and similarities
nn.functional adds (kl_div, huber_loss, cosine_similarity).

Each is an OpDef with `kernel=None, composite=fn` (docs/adding_an_op.md): autograd and the
tracer see the primitives it runs, and the registry's tests check it against torch (forward,
gradients, finite differences). Plain functions at the end (allclose, meshgrid, std_mean,
var_mean, unique, multinomial, max_pool1d, avg_pool1d) return Python values, several tensors or
random draws, which OpDef samples cannot compare with torch; tests/ops/test_composites.py
covers them.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as D
from ._common import arg
from .dispatch import dispatch
from .registry import Sample, defop

_ONNX = "a composite: exported as the ops it is built from"


def _E():
    from . import elementwise

    return elementwise


def _R():
    from . import reduce

    return reduce


# ---- predicates and cleanup -----------------------------------------------------------------


def _isnan(x):
    return x != x


@defop(name="isnan", inputs=("input",), kernel=None, composite=_isnan, promote=None, differentiable=False,
       methods=("isnan",), torch_ref="torch.isnan", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((np.array([1.0, np.nan, -np.inf, 0.0], dt.np),))])
def isnan(input):
    """True where input is NaN."""
    return dispatch(isnan.opdef, [input], ())


def _isinf(x):
    if not x.dtype.is_floating_point:
        return x != x
    return _E().abs(x) == math.inf


@defop(name="isinf", inputs=("input",), kernel=None, composite=_isinf, promote=None, differentiable=False,
       methods=("isinf",), torch_ref="torch.isinf", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((np.array([1.0, np.nan, -np.inf, np.inf], dt.np),))])
def isinf(input):
    """True where input is +inf or -inf."""
    return dispatch(isinf.opdef, [input], ())


def _isfinite(x):
    if not x.dtype.is_floating_point:
        return x == x
    return _E().abs(x) < math.inf  # NaN compares false


@defop(name="isfinite", inputs=("input",), kernel=None, composite=_isfinite, promote=None, differentiable=False,
       methods=("isfinite",), torch_ref="torch.isfinite", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((np.array([1.0, np.nan, -np.inf, np.inf, -3.0], dt.np),))])
def isfinite(input):
    """True where input is neither NaN nor infinite."""
    return dispatch(isfinite.opdef, [input], ())


def _nan_to_num(x, nan, posinf, neginf):
    E = _E()
    if not x.dtype.is_floating_point:
        return x.clone()
    info = np.finfo(x.dtype.np)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    x = E.where(x != x, nan, x)
    x = E.where(x == math.inf, posinf, x)
    return E.where(x == -math.inf, neginf, x)


@defop(name="nan_to_num", inputs=("input",), attrs=("nan", "posinf", "neginf"), kernel=None,
       composite=_nan_to_num, promote=None, methods=("nan_to_num",), torch_ref="torch.nan_to_num",
       onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((np.array([1.5, np.nan, -np.inf, np.inf], dt.np),), grad=False),
                           Sample((np.array([1.5, np.nan, -np.inf, np.inf], dt.np), 2.0, 9.0, -9.0), note="values",
                                  grad=False),
                           Sample((arg((3, 4), dt),), note="finite")])
def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN -> nan, +inf -> posinf, -inf -> neginf (the dtype's largest / lowest by default)."""
    return dispatch(nan_to_num.opdef, [input], (float(nan), posinf, neginf))


def _isclose(a, b, rtol, atol, equal_nan):
    E = _E()
    diff = E.abs(a - b)
    close = E.logical_or(a == b, E.logical_and(diff <= atol + rtol * E.abs(b), diff < math.inf))
    if equal_nan:
        close = E.logical_or(close, E.logical_and(a != a, b != b))
    return close


@defop(name="isclose", inputs=("input", "other"), attrs=("rtol", "atol", "equal_nan"), kernel=None,
       composite=_isclose, differentiable=False, methods=("isclose",), torch_ref="torch.isclose",
       onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [
           Sample((np.array([1.0, 1.0 + 1e-9, np.nan, np.inf, 2.0, -np.inf], dt.np),
                   np.array([1.0, 1.0, np.nan, np.inf, 2.1, np.inf], dt.np))),
           Sample((np.array([1.0, np.nan, 2.0], dt.np), np.array([1.05, np.nan, 2.0], dt.np)),
                  {"rtol": 0.1, "equal_nan": True}, note="rtol, equal_nan"),
       ])
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| elementwise (equal infinities are close)."""
    return dispatch(isclose.opdef, [input, other], (float(rtol), float(atol), bool(equal_nan)))


# ---- arithmetic ---------------------------------------------------------------------------------


def _lerp(start, end, weight):
    return start + weight * (end - start)


@defop(name="lerp", inputs=("input", "end", "weight"), kernel=None, composite=_lerp, promote=None,
       methods=("lerp",), torch_ref="torch.lerp", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt), arg((3, 4), dt), 0.3)),
                           Sample((arg((3, 4), dt), arg((4,), dt), arg((3, 1), dt, 0.0, 1.0)), note="tensor weight")])
def lerp(input, end, weight):
    """input + weight * (end - input)."""
    return dispatch(lerp.opdef, [input, end, weight], ())


def _addcmul(x, t1, t2, value):
    return x + value * (t1 * t2)


@defop(name="addcmul", inputs=("input", "tensor1", "tensor2"), attrs=("value",), kernel=None, composite=_addcmul,
       promote=None, methods=("addcmul",), torch_ref="torch.addcmul", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt), arg((3, 4), dt), arg((4,), dt)), {"value": 0.5})])
def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2."""
    return dispatch(addcmul.opdef, [input, tensor1, tensor2], (value,))


def _addcdiv(x, t1, t2, value):
    return x + value * (t1 / t2)


@defop(name="addcdiv", inputs=("input", "tensor1", "tensor2"), attrs=("value",), kernel=None, composite=_addcdiv,
       promote=None, methods=("addcdiv",), torch_ref="torch.addcdiv", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt), arg((3, 4), dt), arg((4,), dt, 0.5, 2.0)), {"value": -2.0})])
def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2."""
    return dispatch(addcdiv.opdef, [input, tensor1, tensor2], (value,))


def _log_base(base):
    scale = 1.0 / math.log(base)

    def composite(x):
        return _E().log(x) * scale
    return composite


@defop(name="log2", inputs=("input",), kernel=None, composite=_log_base(2.0), float_compute=True, methods=("log2",),
       torch_ref="torch.log2", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt, 0.1, 9.0),))])
def log2(input):
    """Base-2 logarithm."""
    return dispatch(log2.opdef, [input], ())


@defop(name="log10", inputs=("input",), kernel=None, composite=_log_base(10.0), float_compute=True,
       methods=("log10",), torch_ref="torch.log10", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt, 0.1, 900.0),))])
def log10(input):
    """Base-10 logarithm."""
    return dispatch(log10.opdef, [input], ())


def _logit(x, eps):
    E = _E()
    if eps is not None:
        x = E.clamp(x, eps, 1.0 - eps)
    return E.log(x / (1.0 - x))


@defop(name="logit", inputs=("input",), attrs=("eps",), kernel=None, composite=_logit, float_compute=True,
       methods=("logit",), torch_ref="torch.logit", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt, 0.05, 0.95),)),
                           Sample((np.array([0.0, 0.01, 0.5, 0.97, 1.0], dt.np), 0.05), note="eps", grad=False)])
def logit(input, eps=None):
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when eps is given."""
    return dispatch(logit.opdef, [input], (None if eps is None else float(eps),))


def _clamp_min(x, lo):
    return _E().clamp(x, lo, None)


def _clamp_max(x, hi):
    return _E().clamp(x, None, hi)


@defop(name="clamp_min", inputs=("input",), attrs=("min",), kernel=None, composite=_clamp_min, promote=None,
       methods=("clamp_min",), torch_ref="torch.clamp_min", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt), 0.25))])
def clamp_min(input, min):
    """max(input, min)."""
    return dispatch(clamp_min.opdef, [input], (min,))


@defop(name="clamp_max", inputs=("input",), attrs=("max",), kernel=None, composite=_clamp_max, promote=None,
       methods=("clamp_max",), torch_ref="torch.clamp_max", onnx_reason=_ONNX, tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt), -0.25))])
def clamp_max(input, max):
    """min(input, max)."""
    return dispatch(clamp_max.opdef, [input], (max,))


# ---- products and shapes --------------------------------------------------------------------------


def _outer(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"outer: expected 1-D vectors, got {a.ndim}-D and {b.ndim}-D")
    return a.unsqueeze(1) * b.unsqueeze(0)


@defop(name="outer", inputs=("input", "vec2"), kernel=None, composite=_outer, methods=("outer", "ger"),
       torch_ref="torch.outer", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((3,), dt), arg((4,), dt)))])
def outer(input, vec2):
    """The outer product of two vectors: (n,) x (m,) -> (n, m)."""
    return dispatch(outer.opdef, [input, vec2], ())


ger = outer


def _trace(x):
    if x.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {x.ndim}")
    return _R().sum(_diagonal(x, 0, 0, 1))


@defop(name="trace", inputs=("input",), kernel=None, composite=_trace, promote=None, methods=("trace",),
       torch_ref="torch.trace", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((4, 4), dt),)), Sample((arg((3, 5), dt),), note="wide"),
                           Sample((arg((5, 2), dt),), note="tall")])
def trace(input):
    """The sum of a matrix's main diagonal."""
    return dispatch(trace.opdef, [input], ())


def _movedim_perm(ndim, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({src} dims) should contain "
                           f"the same number of dims as destination ({dst} dims)")

    def norm(d):
        if not -ndim <= d < max(ndim, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
        return d % max(ndim, 1)
    src, dst = [norm(d) for d in src], [norm(d) for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError("movedim: repeated dim in `source` or `destination`")
    perm = [-1] * ndim
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(d for d in range(ndim) if d not in src)
    return tuple(p if p >= 0 else next(rest) for p in perm)


def _movedim(x, perm):
    return x.permute(*perm)


@defop(name="movedim", inputs=("input",), attrs=("perm",), kernel=None, composite=_movedim, promote=None,
       methods=("movedim", "moveaxis"), torch_ref="torch.movedim", onnx_reason=_ONNX, tags=("view",),
       samples=lambda dt: [Sample((arg((2, 3, 4), dt), 0, -1)), Sample((arg((2, 3, 4, 5), dt), (0, 3), (2, 0)))])
def movedim(input, source, destination):
    """Moves dims `source` to positions `destination`; the others keep their order."""
    return dispatch(movedim.opdef, [input], (_movedim_perm(input.ndim, source, destination),))


moveaxis = movedim


def _repeat_interleave(x, repeats, dim):
    from .shape import reshape

    if dim is None:
        x, dim = reshape(x, (-1,)), 0
    shape = list(x.shape)
    y = x.unsqueeze(dim + 1).expand(*shape[:dim + 1], repeats, *shape[dim + 1:])
    shape[dim] *= repeats
    return reshape(y, tuple(shape))


@defop(name="repeat_interleave", inputs=("input",), attrs=("repeats", "dim"), kernel=None,
       composite=_repeat_interleave, promote=None, methods=("repeat_interleave",),
       torch_ref="torch.repeat_interleave", onnx_reason=_ONNX, tags=("value_dependent",),
       samples=lambda dt: [Sample((arg((2, 3), dt), 2)), Sample((arg((2, 3), dt), 3), {"dim": 1}),
                           Sample((arg((2, 3), dt), np.array([1, 0, 2])), {"dim": 1}, note="tensor repeats"),
                           Sample((arg((2, 3), dt), 2), {"dim": -2}, note="negative dim")])
def repeat_interleave(input, repeats, dim=None, *, output_size=None):
    """Repeats each element `repeats` times along dim (the flattened input when dim is None);
    repeats: an int or a 1-D tensor of per-element counts."""
    from ..tensor import Tensor

    if dim is not None:
        nd = max(input.ndim, 1)
        if not -nd <= dim < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
        dim %= nd
    if isinstance(repeats, Tensor):
        if repeats.ndim == 0:
            repeats = int(repeats.item())
        else:  # per-element counts: one index_select with the repeated positions
            from ..creation import tensor
            from .gather import index_select
            from .shape import reshape

            counts = repeats.tolist()
            x, d = (reshape(input, (-1,)), 0) if dim is None else (input, dim)
            if len(counts) != x.shape[d]:
                raise RuntimeError(f"repeat_interleave: repeats must have the same size as input along dim, "
                                   f"got {len(counts)} and {x.shape[d]}")
            if any(c < 0 for c in counts):
                raise RuntimeError("repeat_interleave: repeats can not be negative")
            idx = [i for i, c in enumerate(counts) for _ in range(int(c))]
            return index_select(x, d, tensor(idx, dtype=D.int64))
    if repeats < 0:
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    return dispatch(repeat_interleave.opdef, [input], (int(repeats), dim))


def _einsum(*args):
    *operands, equation = args
    return _einsum_impl(equation, list(operands))


def _einsum_impl(equation: str, ops: list):
    from .linalg import matmul
    from .shape import reshape

    R = _R()
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        raise ValueError(f"einsum(): the equation has {len(terms)} operand(s) but {len(ops)} were given")
    # "..." stands for the dims no letter names, aligned from the right across operands
    n_ell = 0
    labels = []
    for i, (t, x) in enumerate(zip(terms, ops)):
        named = len(t.replace("...", ""))
        if "..." in t:
            k = x.ndim - named
            if k < 0 or t.count("...") > 1:
                raise ValueError(f"einsum(): operand {i} has {x.ndim} dims, fewer than its subscripts {t!r} name")
            n_ell = max(n_ell, k)
            a, _, b = t.partition("...")
            labels.append(list(a) + [f"...{k - j}" for j in range(k)] + list(b))
        else:
            if named != x.ndim:
                raise ValueError(f"einsum(): the number of subscripts in the equation ({named}) does not match the "
                                 f"number of dimensions ({x.ndim}) for operand {i} and no ellipsis was given")
            labels.append(list(t))
        for c in t.replace("...", ""):
            if not c.isalpha():
                raise ValueError(f"einsum(): invalid subscript given at index {eq.index(c)} in the equation string, "
                                 "subscripts must be in [a-zA-Z]")
        seen = labels[-1]
        for c in seen:
            if seen.count(c) > 1:
                raise NotImplementedError(f"einsum(): subscript {c!r} repeats within operand {i} (a diagonal); "
                                          "repeated subscripts in one operand are not supported")
    ell = [f"...{n_ell - j}" for j in range(n_ell)]
    if arrow:
        if out.count("...") > 1:
            raise ValueError("einsum(): the output subscripts contain more than one ellipsis")
        a, has_ell, b = out.partition("...")  # without "...", the ellipsis dims are summed
        out_labels = list(a) + (ell if has_ell else []) + list(b)
        for c in a + b:
            if not c.isalpha() or out_labels.count(c) > 1:
                raise ValueError(f"einsum(): output subscript {c!r} is invalid or appears more than once")
            if not any(c in ls for ls in labels):
                raise ValueError(f"einsum(): output subscript {c} does not appear in the equation for any input "
                                 "operand")
    else:  # implicit output: the ellipsis dims, then the letters used once, alphabetically
        counts = {}
        for ls in labels:
            for c in ls:
                counts[c] = counts.get(c, 0) + 1
        out_labels = ell + sorted(c for c, n in counts.items() if n == 1 and not c.startswith("..."))
    # sizes: equal, or 1 (broadcast)
    size = {}
    for i, (ls, x) in enumerate(zip(labels, ops)):
        for c, n in zip(ls, x.shape):
            m = size.get(c)
            if m is None or m == 1:
                size[c] = n
            elif n not in (1, m):
                raise RuntimeError(f"einsum(): operands do not broadcast: subscript {c!r} has size {m} and {n} "
                                   f"(operand {i})")

    def sum_out(x, ls, keep):
        """Sums the dims of labels not in keep."""
        dims = [d for d, c in enumerate(ls) if c not in keep]
        if dims:
            x = R.sum(x, tuple(dims))
            ls = [c for c in ls if c in keep]
        return x, ls

    def contract(a, la, b, lb, keep):
        batch = [c for c in la if c in lb and c in keep]
        summed = [c for c in la if c in lb and c not in keep]
        left = [c for c in la if c not in lb]
        right = [c for c in lb if c not in la]

        def arrange(x, ls, order):
            x = x.permute(*[ls.index(c) for c in order]) if order != ls else x
            full = tuple(size[c] for c in order)
            return x.expand(*full) if tuple(x.shape) != full else x

        a = arrange(a, la, batch + left + summed)
        b = arrange(b, lb, batch + summed + right)
        nb, nl, ns, nr = (math.prod(size[c] for c in g) for g in (batch, left, summed, right))
        y = matmul(reshape(a, (nb, nl, ns)), reshape(b, (nb, ns, nr)))
        return reshape(y, tuple(size[c] for c in batch + left + right)), batch + left + right

    cur, cur_l = None, None
    for i, (x, ls) in enumerate(zip(ops, labels)):
        later = set(out_labels).union(*[set(l2) for l2 in labels[i + 1:]])
        if cur is None:
            cur, cur_l = sum_out(x, ls, later)
            continue
        x, ls = sum_out(x, ls, later | set(cur_l))
        cur, cur_l = sum_out(cur, cur_l, later | set(ls))
        cur, cur_l = contract(cur, cur_l, x, ls, later)
    cur, cur_l = sum_out(cur, cur_l, set(out_labels))
    full = tuple(size[c] for c in out_labels)
    if cur_l != out_labels:
        cur = cur.permute(*[cur_l.index(c) for c in out_labels])
    return cur.expand(*full) if tuple(cur.shape) != full else cur


def _einsum_samples(dt):
    return [
        Sample(("ij,jk->ik", arg((3, 4), dt), arg((4, 5), dt)), note="matmul"),
        Sample(("bhqd,bhkd->bhqk", arg((2, 2, 3, 4), dt), arg((2, 2, 5, 4), dt)), note="attention scores"),
        Sample(("i,i->", arg((4,), dt), arg((4,), dt)), note="dot"),
        Sample(("i,j", arg((3,), dt), arg((2,), dt)), note="implicit outer"),
        Sample(("ijk->kj", arg((2, 3, 4), dt)), note="sum and permute"),
        Sample(("...ij,...jk->...ik", arg((2, 1, 3, 4), dt), arg((5, 4, 2), dt)), note="ellipsis broadcast"),
        Sample(("bn,anm,bm->ba", arg((2, 3), dt), arg((4, 3, 5), dt), arg((2, 5), dt)), note="bilinear"),
        Sample(("ij,kj->", arg((2, 3), dt), arg((4, 3), dt)), note="full contraction"),
    ]


@defop(name="einsum", inputs=("operands*",), attrs=("equation",), kernel=None, composite=_einsum, promote=None,
       torch_ref="torch.einsum", onnx_reason=_ONNX, samples=_einsum_samples)
def einsum(equation, *operands):
    """Einstein summation (torch.einsum): products and sums over the subscripts of the
    equation, as permutes, reshapes, batched matmuls and sums. Subscripts may broadcast
    (size 1) and use "..."; a subscript repeated within one operand is not supported."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return dispatch(einsum.opdef, list(operands), (str(equation),))


def _index_add(x, index, source, dim, alpha):
    from .gather import scatter_add

    if index.ndim > 1 or index.numel() != (source.shape[dim] if source.ndim else 1):
        raise IndexError(f"index_add_(): Number of indices ({index.numel()}) should be equal to source.size(dim) "
                         f"({source.shape[dim] if source.ndim else 1})")
    if alpha != 1:
        source = source * alpha
    view = [1] * max(source.ndim, 1)
    view[dim] = -1
    idx = index.reshape(*view).expand(*source.shape) if source.ndim else index.reshape(())
    return scatter_add(x, dim, idx, source)


@defop(name="index_add", inputs=("input", "index", "source"), attrs=("dim", "alpha"), kernel=None,
       composite=_index_add, promote=None, methods=("index_add",), torch_ref="torch.index_add", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((5, 3), dt), 0, np.array([0, 4, 0, 2]), arg((4, 3), dt))),
                           Sample((arg((2, 5), dt), 1, np.array([1, 1, 3]), arg((2, 3), dt)), {"alpha": 2.0},
                                  note="dim 1, alpha")])
def index_add(input, dim, index, source, *, alpha=1):
    """A copy of input with source's slices added at `index` along dim (duplicates add up)."""
    from ._common import wrap_dim

    d = wrap_dim(dim, input.ndim, "index_add")
    return dispatch(index_add.opdef, [input, index, source], (d, alpha))


def _index_fill(x, index, value, dim):
    from ..creation import zeros
    from .gather import index_put

    n = x.shape[dim] if x.ndim else 1
    hit = index_put(zeros(n, dtype=D.bool_), (index.reshape(-1),), True)
    view = [1] * max(x.ndim, 1)
    view[dim] = n
    return _E().where(hit.reshape(*view) if x.ndim else hit.reshape(()), value, x)


@defop(name="index_fill", inputs=("input", "index"), attrs=("value", "dim"), kernel=None, composite=_index_fill,
       promote=None, methods=("index_fill",), torch_ref="torch.index_fill", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((4, 3), dt), 0, np.array([0, 2, 2]), -1.5)),
                           Sample((arg((2, 5), dt), 1, np.array([4]), 3.0), note="dim 1")])
def index_fill(input, dim, index, value):
    """A copy of input with the slices at `index` along dim set to value."""
    from ._common import wrap_dim

    if hasattr(value, "item"):  # a 0-d tensor or numpy scalar
        value = value.item()
    return dispatch(index_fill.opdef, [input, index], (value, wrap_dim(dim, input.ndim, "index_fill")))


def _diagonal(x, offset, dim1, dim2):
    from .shape import reshape, slice_op

    d1, d2 = dim1 % x.ndim, dim2 % x.ndim
    rest = [d for d in range(x.ndim) if d not in (d1, d2)]
    m = x.permute(*rest, d1, d2)  # (..., r, c): the diagonal runs at stride c + 1 of the flattened matrix
    r, c = m.shape[-2], m.shape[-1]
    lead = tuple(m.shape[:-2])
    start = offset if offset >= 0 else -offset * c
    n = max(0, min(r, c - offset) if offset >= 0 else min(r + offset, c))
    flat = reshape(m, lead + (r * c,))
    if n == 0:
        return slice_op(flat, -1, 0, 0, 1)
    return slice_op(flat, -1, start, start + (n - 1) * (c + 1) + 1, c + 1)


@defop(name="diagonal", inputs=("input",), attrs=("offset", "dim1", "dim2"), kernel=None, composite=_diagonal,
       promote=None, methods=("diagonal",), torch_ref="torch.diagonal", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((4, 4), dt),)), Sample((arg((3, 5), dt), 1), note="offset"),
                           Sample((arg((5, 3), dt), -2), note="negative offset"),
                           Sample((arg((2, 3, 4), dt), 0, 0, 2), note="batched dims 0, 2"),
                           Sample((arg((2, 3), dt), 5), note="empty")])
def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal of the (dim1, dim2) matrices (offset > 0: above the main one), as the
    last dim (a copy, where torch returns a view)."""
    from ._common import wrap_dim

    d1, d2 = wrap_dim(dim1, input.ndim, "diagonal"), wrap_dim(dim2, input.ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return dispatch(diagonal.opdef, [input], (int(offset), d1, d2))


def _diag(x, offset):
    if x.ndim == 2:
        return _diagonal(x, offset, 0, 1)
    from ..creation import arange, zeros
    from .gather import index_put

    n = x.shape[0] + abs(offset)
    i = arange(x.shape[0], dtype=D.int64)
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    return index_put(zeros(n, n, dtype=x.dtype), (rows, cols), x)


@defop(name="diag", inputs=("input",), attrs=("diagonal",), kernel=None, composite=_diag, promote=None,
       methods=("diag",), torch_ref="torch.diag", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((4,), dt),)), Sample((arg((3,), dt), -1), note="vector, offset"),
                           Sample((arg((3, 4), dt), 1), note="matrix")])
def diag(input, diagonal=0):
    """A vector -> the square matrix with it on a diagonal; a matrix -> that diagonal."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")
    return dispatch(diag.opdef, [input], (int(diagonal),))


def _cdist(x1, x2, p):
    E, R = _E(), _R()
    d = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., P, R, M)
    if p == 2.0:
        return E.sqrt(R.sum(d * d, -1))
    if p == 1.0:
        return R.sum(E.abs(d), -1)
    if p == math.inf:
        return R.amax(E.abs(d), -1)
    if p == 0.0:
        return R.sum((d != 0).to(x1.dtype), -1)
    return R.sum(E.abs(d) ** p, -1) ** (1.0 / p)


@defop(name="cdist", inputs=("x1", "x2"), attrs=("p",), kernel=None, composite=_cdist,
       torch_ref="torch.cdist", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((4, 3), dt), arg((5, 3), dt))),
                           Sample((arg((2, 4, 3), dt), arg((2, 2, 3), dt), 1.0), note="p=1, batched"),
                           Sample((arg((4, 3), dt), arg((5, 3), dt), 3.0), note="p=3")])
def cdist(x1, x2, p=2.0, compute_mode=None):
    """Pairwise p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M),
    from the differences (torch's direct method; no matrix-product shortcut)."""
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: X1 and X2 must have the same number of columns and at least 2 dims, got "
                           f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    return dispatch(cdist.opdef, [x1, x2], (float(p),))


def _bucketize(x, boundaries, out_int32, right):
    E, R = _E(), _R()
    b = boundaries.reshape(*([1] * x.ndim), -1)
    below = (b <= x.unsqueeze(-1)) if right else (b < x.unsqueeze(-1))
    return R.sum(below, -1).to(D.int32 if out_int32 else D.int64)


@defop(name="bucketize", inputs=("input", "boundaries"), attrs=("out_int32", "right"), kernel=None,
       composite=_bucketize, promote=None, differentiable=False, torch_ref="torch.bucketize", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((np.array([[0.5, 1.0, 3.2], [-1.0, 2.0, 9.0]], dt.np),
                                   np.array([0.0, 1.0, 2.0, 3.0], dt.np))),
                           Sample((np.array([0.5, 1.0, 2.0], dt.np), np.array([1.0, 2.0], dt.np)),
                                  {"right": True, "out_int32": True}, note="right")])
def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The index of the bucket of each value among sorted 1-D boundaries (torch.bucketize:
    right=False counts boundaries < value, right=True those <= value)."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return dispatch(bucketize.opdef, [input, boundaries], (bool(out_int32), bool(right)))


# ---- nn.functional composites -----------------------------------------------------------------


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sums, means or maxes of bags of embedding rows (torch.nn.functional.embedding_bag):
    a 2-D input is one bag per row; a 1-D input is cut into bags at `offsets`. Entries equal
    to padding_idx are left out; an empty bag gives zeros."""
    from ..creation import arange, full, zeros
    from .embedding import embedding

    E, R = _E(), _R()
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError("embedding_bag: per_sample_weights is only supported for mode='sum' (as torch)")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: max_norm, scale_grad_by_freq and sparse are not supported")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: if input is 2D, then offsets has to be None")
        b, n = input.shape
        flat = input.reshape(-1)
        offsets = arange(0, b * n, max(n, 1), dtype=D.int64) if n else zeros(b, dtype=D.int64)
        psw = per_sample_weights.reshape(-1) if per_sample_weights is not None else None
    elif input.ndim == 1:
        if offsets is None or offsets.ndim != 1:
            raise ValueError("embedding_bag: offsets has to be a 1D Tensor when input is 1D")
        flat, psw = input, per_sample_weights
        if include_last_offset:
            offsets = offsets[:-1]
    else:
        raise ValueError(f"embedding_bag: input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    nbags, total, dim = offsets.shape[0], flat.shape[0], weight.shape[1]
    rows = embedding(flat, weight)  # (total, dim)
    if psw is not None:
        rows = rows * psw.unsqueeze(-1)
    keep = flat != padding_idx if padding_idx is not None else None
    # each entry's bag: the number of offsets at or before its position, minus one
    bag = bucketize(arange(total, dtype=D.int64), offsets.to(D.int64), right=True) - 1
    if mode == "max":
        out = []
        bounds = offsets.tolist() + [total]
        for i in range(nbags):
            seg = rows[bounds[i]:bounds[i + 1]]
            if keep is not None:
                seg = seg[keep[bounds[i]:bounds[i + 1]]]
            out.append(R.amax(seg, 0) if seg.shape[0] else zeros(dim, dtype=weight.dtype))
        from .movement import stack

        return stack(out, 0) if out else zeros(0, dim, dtype=weight.dtype)
    if keep is not None:
        rows = rows * keep.unsqueeze(-1).to(rows.dtype)
    out = index_add(zeros(nbags, dim, dtype=rows.dtype), 0, bag, rows)
    if mode == "mean":
        ones = keep.to(rows.dtype) if keep is not None else full((total,), 1.0, dtype=rows.dtype)
        counts = index_add(zeros(nbags, dtype=rows.dtype), 0, bag, ones)
        out = out / E.clamp(counts, 1.0, None).unsqueeze(-1)
    return out


def _pixel_shuffle(x, r):
    from .shape import reshape

    *lead, c, h, w = x.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    y = reshape(x, (-1, c // (r * r), r, r, h, w)).permute(0, 1, 4, 2, 5, 3)
    return reshape(y, (*lead, c // (r * r), h * r, w * r))


@defop(name="pixel_shuffle", inputs=("input",), attrs=("upscale_factor",), kernel=None, composite=_pixel_shuffle,
       promote=None, torch_ref="torch.nn.functional.pixel_shuffle", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((2, 8, 3, 2), dt), 2)), Sample((arg((9, 2, 2), dt), 3), note="unbatched")])
def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    return dispatch(pixel_shuffle.opdef, [input], (int(upscale_factor),))


def _pixel_unshuffle(x, r):
    from .shape import reshape

    *lead, c, h, w = x.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height ({h}) and width ({w}) to be divisible by "
                           f"downscale_factor ({r})")
    y = reshape(x, (-1, c, h // r, r, w // r, r)).permute(0, 1, 3, 5, 2, 4)
    return reshape(y, (*lead, c * r * r, h // r, w // r))


@defop(name="pixel_unshuffle", inputs=("input",), attrs=("downscale_factor",), kernel=None,
       composite=_pixel_unshuffle, promote=None, torch_ref="torch.nn.functional.pixel_unshuffle",
       onnx_reason=_ONNX, samples=lambda dt: [Sample((arg((2, 2, 6, 4), dt), 2))])
def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of pixel_shuffle."""
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    return dispatch(pixel_unshuffle.opdef, [input], (int(downscale_factor),))


def _cosine_similarity(x1, x2, dim, eps):
    from ._common import broadcast_shapes

    E, R = _E(), _R()
    shape = broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    n1 = E.clamp(R.norm(x1, 2, dim, True), eps, None)
    n2 = E.clamp(R.norm(x2, 2, dim, True), eps, None)
    return R.sum((x1 / n1) * (x2 / n2), dim)


@defop(name="cosine_similarity", inputs=("x1", "x2"), attrs=("dim", "eps"), kernel=None,
       composite=_cosine_similarity, torch_ref="torch.nn.functional.cosine_similarity", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((3, 5), dt), arg((3, 5), dt))),
                           Sample((arg((2, 3, 4), dt), arg((3, 1), dt)), {"dim": -2}, note="broadcast")])
def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 * x2) / (max(|x1|, eps) * max(|x2|, eps)) along dim (torch's formula)."""
    return dispatch(cosine_similarity.opdef, [x1, x2], (int(dim), float(eps)))


def _pair(v, name, op):
    v = (v, v) if isinstance(v, int) else tuple(v)
    if len(v) != 2:
        raise RuntimeError(f"{op}: {name} must be an int or a pair, got {v}")
    return v


def _patch_grid(op, h, w, k, d, p, s):
    """(oh, ow) of a sliding window over an h x w map, checked."""
    if min(*k, *d, *s) <= 0 or min(p) < 0:
        raise RuntimeError(f"{op}: kernel_size, dilation and stride must be positive and padding non-negative, "
                           f"got {k}, {d}, {s}, {p}")
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"{op}: the {k[0]}x{k[1]} window (dilation {d}, padding {p}) does not fit the "
                           f"{h}x{w} input")
    return oh, ow


def _unfold(x, k, d, p, s):
    from .conv import pad as _pad
    from .movement import stack
    from .shape import reshape, slice_op

    n, c, h, w = x.shape
    oh, ow = _patch_grid("unfold", h, w, k, d, p, s)
    xp = _pad(x, (p[1], p[1], p[0], p[0])) if any(p) else x
    patches = []
    for i in range(k[0]):
        rows = slice_op(xp, 2, i * d[0], i * d[0] + s[0] * (oh - 1) + 1, s[0])
        for j in range(k[1]):
            patches.append(slice_op(rows, 3, j * d[1], j * d[1] + s[1] * (ow - 1) + 1, s[1]))
    return reshape(stack(patches, 2), (n, c * k[0] * k[1], oh * ow))  # channel-major, then kernel position


def _unfold_samples(dt):
    return [Sample((arg((2, 3, 5, 4), dt), 2)),
            Sample((arg((1, 2, 6, 7), dt), (2, 3)), {"dilation": (2, 1), "padding": 1, "stride": (2, 1)}, note="all"),
            Sample((arg((2, 4, 4), dt), 3), {"padding": 1}, note="unbatched")]


@defop(name="unfold", inputs=("input",), attrs=("kernel_size", "dilation", "padding", "stride"), kernel=None,
       composite=_unfold, promote=None, torch_ref="torch.nn.functional.unfold", onnx_reason=_ONNX,
       samples=_unfold_samples)
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: the sliding kh x kw blocks of (N, C, H, W) as columns, (N, C kh kw, L)."""
    op = "unfold"
    if input.ndim not in (3, 4):
        raise RuntimeError(f"{op}: expected a 3-D (unbatched) or 4-D input, got {input.ndim}-D")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    attrs = (_pair(kernel_size, "kernel_size", op), _pair(dilation, "dilation", op), _pair(padding, "padding", op),
             _pair(stride, "stride", op))
    _patch_grid(op, x.shape[2], x.shape[3], *attrs)
    out = dispatch(unfold.opdef, [x], attrs)
    return out if input.ndim == 4 else out.squeeze(0)


def _fold(x, size, k, d, p, s):
    from ..creation import zeros
    from .shape import reshape, slice_op, slice_scatter

    n, ckk, _ = x.shape
    c = ckk // (k[0] * k[1])
    oh, ow = _patch_grid("fold", size[0], size[1], k, d, p, s)
    blocks = reshape(x, (n, c, k[0], k[1], oh, ow))
    hp, wp = size[0] + 2 * p[0], size[1] + 2 * p[1]
    out = zeros(n, c, hp, wp, dtype=x.dtype)
    for i in range(k[0]):
        r0, r1 = i * d[0], i * d[0] + s[0] * (oh - 1) + 1
        for j in range(k[1]):
            c0, c1 = j * d[1], j * d[1] + s[1] * (ow - 1) + 1
            rows = slice_op(out, 2, r0, r1, s[0])
            cell = slice_op(rows, 3, c0, c1, s[1]) + blocks[:, :, i, j]
            out = slice_scatter(out, slice_scatter(rows, cell, 3, c0, c1, s[1]), 2, r0, r1, s[0])
    if any(p):
        out = slice_op(slice_op(out, 2, p[0], p[0] + size[0], 1), 3, p[1], p[1] + size[1], 1)
    return out


@defop(name="fold", inputs=("input",), attrs=("output_size", "kernel_size", "dilation", "padding", "stride"),
       kernel=None, composite=_fold, promote=None, torch_ref="torch.nn.functional.fold", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((2, 12, 12), dt), (5, 4), 2)),
                           Sample((arg((1, 12, 12), dt), (6, 7), (2, 3)),
                                  {"dilation": (2, 1), "padding": 1, "stride": (2, 2)}, note="all"),
                           Sample((arg((8, 16), dt), (3, 3), 2), {"padding": 1}, note="unbatched")])
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im, unfold's adjoint: sums the columns of (N, C kh kw, L) back into (N, C, H, W)."""
    op = "fold"
    if input.ndim not in (2, 3):
        raise RuntimeError(f"{op}: expected a 2-D (unbatched) or 3-D input, got {input.ndim}-D")
    x = input if input.ndim == 3 else input.unsqueeze(0)
    size = _pair(output_size, "output_size", op)
    k, d, p, s = (_pair(kernel_size, "kernel_size", op), _pair(dilation, "dilation", op),
                  _pair(padding, "padding", op), _pair(stride, "stride", op))
    oh, ow = _patch_grid(op, size[0], size[1], k, d, p, s)
    if x.shape[1] % (k[0] * k[1]) or x.shape[2] != oh * ow:
        raise RuntimeError(f"{op}: expected an input of shape (N, C * {k[0] * k[1]}, {oh * ow}) for output size "
                           f"{size}, got {tuple(input.shape)}")
    out = dispatch(fold.opdef, [x], (size, k, d, p, s))
    return out if input.ndim == 3 else out.squeeze(0)


_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _kl_div(x, t, reduction, log_target):
    E, R = _E(), _R()
    if log_target:
        loss = E.exp(t) * (t - x)
    else:  # target * (log(target) - input), with 0 * log(0) = 0 (torch's xlogy)
        loss = E.where(t == 0, 0.0, t * E.log(E.where(t == 0, 1.0, t))) - t * x
    if reduction == "none":
        return loss
    if reduction == "sum":
        return R.sum(loss)
    if reduction == "batchmean":
        return R.sum(loss) / (x.shape[0] if x.ndim else 1)
    return R.mean(loss)


@defop(name="kl_div", inputs=("input", "target"), attrs=("reduction", "log_target"), kernel=None,
       composite=_kl_div, torch_ref="torch.nn.functional.kl_div", onnx_reason=_ONNX,
       samples=lambda dt: [
           Sample((np.log(arg((3, 4), dt, 0.1, 1.0)), arg((3, 4), dt, 0.1, 1.0)), {"reduction": "batchmean"}),
           Sample((np.log(arg((3, 4), dt, 0.1, 1.0)), arg((3, 4), dt, 0.1, 1.0)), {"reduction": "none"}, note="none"),
           Sample((arg((3, 4), dt), arg((3, 4), dt)), {"reduction": "sum", "log_target": True}, note="log target"),
       ])
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence of target from input (input holds log-probabilities)."""
    if size_average is not None or reduce is not None:
        reduction = "none" if reduce is False else ("sum" if size_average is False else "mean")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return dispatch(kl_div.opdef, [input, target], (reduction, bool(log_target)))


def _huber(x, t, reduction, delta):
    from .loss import smooth_l1_loss

    return smooth_l1_loss(x, t, reduction=reduction, beta=delta) * delta


@defop(name="huber_loss", inputs=("input", "target"), attrs=("reduction", "delta"), kernel=None, composite=_huber,
       torch_ref="torch.nn.functional.huber_loss", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((3, 4), dt), arg((3, 4), dt)), {"delta": 0.7}),
                           Sample((arg((3, 4), dt), arg((3, 4), dt)), {"reduction": "none", "delta": 1.5}, note="none")])
def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, else delta * (|d| - delta / 2)."""
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta, got {delta}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return dispatch(huber_loss.opdef, [input, target], (reduction, float(delta)))


# ---- plain functions ---------------------------------------------------------------------------


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """Whether isclose holds everywhere."""
    return bool(_R().all(isclose(input, other, rtol, atol, equal_nan)).item())


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors (as expanded views); indexing 'ij' (matrix) or 'xy'
    (Cartesian: the first two dims swapped)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    if any(t.ndim > 1 for t in tensors):
        raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list")
    sizes = [t.numel() for t in tensors]
    pos = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        pos[0], pos[1] = 1, 0
    shape = [0] * len(tensors)
    for i, p in enumerate(pos):
        shape[p] = sizes[i]
    out = []
    for t, p in zip(tensors, pos):
        view = [1] * len(tensors)
        view[p] = -1
        out.append(t.reshape(*view).expand(*shape))
    return tuple(out)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over dims."""
    R = _R()
    return (R.std(input, dim, unbiased, keepdim, correction=correction),
            R.mean(input, dim, keepdim))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over dims."""
    R = _R()
    return (R.var(input, dim, unbiased, keepdim, correction=correction),
            R.mean(input, dim, keepdim))


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """num_samples category indices per row of input (1-D or 2-D non-negative weights),
    drawn with framework's generator: with replacement by inverting the cumulative weights,
    without by the largest Gumbel-perturbed log-weights (which is sampling without
    replacement in proportion to the weights)."""
    from ..creation import rand
    from .sort import topk

    E, R = _E(), _R()
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {input.ndim}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {input.dtype.name}")
    n = input.shape[-1]
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples, got {num_samples}")
    if not replacement and num_samples > n:
        raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    p = input if input.ndim == 2 else input.unsqueeze(0)
    if bool(R.any(E.logical_or(p < 0, p != p)).item()) or bool(R.any(p == math.inf).item()):
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    total = R.sum(p, -1, True)
    if bool(R.any(total <= 0).item()):
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    rows = p.shape[0]
    with _no_grad():
        if replacement:
            cdf = R.cumsum(p / total, -1)
            u = rand(rows, num_samples, generator=generator, dtype=p.dtype)
            idx = R.sum(cdf.unsqueeze(1) <= u.unsqueeze(2), -1)  # rows x samples: how many cdf values <= u
            # a category of weight 0 has cdf equal to its predecessor's and is never chosen;
            # u past the last cdf value (rounding) takes the last category of positive weight
            last = R.sum((p > 0).to(D.int64).cumsum(-1) < R.sum((p > 0).to(D.int64), -1, True), -1, True)
            idx = E.minimum(idx, last)
        else:
            u = rand(rows, n, generator=generator, dtype=p.dtype)
            gumbel = -E.log(-E.log(E.clamp(u, 1e-20, 1.0 - 1e-7)))
            keys = E.where(p > 0, E.log(E.where(p > 0, p, 1.0)) + gumbel, -math.inf)
            idx = topk(keys, num_samples, -1)[1]
            if num_samples > 1 and bool(R.any(R.sum(p > 0, -1) < num_samples).item()):
                raise RuntimeError("multinomial: invalid multinomial distribution (with replacement=False, "
                                   "not enough non-negative category to sample)")
    idx = idx.to(D.int64)
    return idx if input.ndim == 2 else idx.squeeze(0)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values of input, sorted (torch.unique over the flattened input), with the
    index of each input element's value (return_inverse) and each value's count."""
    from ..creation import tensor, zeros
    from .gather import index_put, nonzero
    from .movement import cat
    from .shape import reshape
    from .sort import sort

    if dim is not None:
        raise NotImplementedError("unique(dim=...) is not supported; unique over the flattened input is")
    flat = reshape(input.detach(), (-1,))
    n = flat.shape[0]
    vals, perm = sort(flat)
    if n == 0:
        out = [vals]
        if return_inverse:
            out.append(reshape(perm, tuple(input.shape)))
        if return_counts:
            out.append(perm)
        return out[0] if len(out) == 1 else tuple(out)
    new = cat([tensor([True]), vals[1:] != vals[:-1]])  # where a new value starts
    out = [vals[new]]
    if return_inverse:
        rank = _R().cumsum(new.to(D.int64), 0) - 1  # each sorted element's value index
        out.append(reshape(index_put(zeros(n, dtype=D.int64), (perm,), rank), tuple(input.shape)))
    if return_counts:
        starts = reshape(nonzero(new), (-1,))
        ends = cat([starts[1:], tensor([n])])
        out.append(ends - starts)
    return out[0] if len(out) == 1 else tuple(out)


def _no_grad():
    from ..autograd import no_grad

    return no_grad()


def _pool1d(pool2d, x, kernel_size, stride, padding, dilation=None, **kw):
    def one(v, name):
        v = v if isinstance(v, int) else tuple(v)
        if isinstance(v, tuple):
            if len(v) != 1:
                raise RuntimeError(f"{pool2d.__name__[:-2]}1d: {name} must be an int or a 1-tuple, got {v}")
            v = v[0]
        return v
    k = one(kernel_size, "kernel_size")
    s = k if stride is None or stride == () else one(stride, "stride")
    args = dict(kernel_size=(1, k), stride=(1, s), padding=(0, one(padding, "padding")), **kw)
    if dilation is not None:
        args["dilation"] = (1, one(dilation, "dilation"))
    if x.ndim not in (2, 3):
        raise RuntimeError(f"{pool2d.__name__[:-2]}1d: expected 2D or 3D input, got {x.ndim}D")
    out = pool2d(x.unsqueeze(-2), **args)
    if isinstance(out, tuple):
        return tuple(o.squeeze(-2) for o in out)
    return out.squeeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling over (N, C, L) or (C, L): max_pool2d over a height-1 image."""
    from .pool import max_pool2d

    return _pool1d(max_pool2d, input, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode,
                   return_indices=return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling over (N, C, L) or (C, L): avg_pool2d over a height-1 image."""
    from .pool import avg_pool2d

    return _pool1d(avg_pool2d, input, kernel_size, stride, padding, ceil_mode=ceil_mode,
                   count_include_pad=count_include_pad)


__all__ = ["isnan", "isinf", "isfinite", "nan_to_num", "isclose", "allclose", "lerp", "addcmul", "addcdiv",
           "log2", "log10", "logit", "clamp_min", "clamp_max", "outer", "ger", "trace", "movedim", "moveaxis",
           "repeat_interleave", "einsum", "meshgrid", "std_mean", "var_mean", "multinomial", "index_add",
           "diagonal", "diag", "cdist", "bucketize", "unique", "index_fill"]
