"""Reductions (sum, mean, prod, var, std, amax, amin, max/min with indices, argmax, argmin,
logsumexp, cumsum, cumprod, all, any, norm). Kernels: csrc/kernels/reduce.cpp. Attribute #0 is the
sorted list of reduced dims; keepdim only changes the output's shape."""

from __future__ import annotations

import builtins as _b

import numpy as np

from .. import dtypes as D
from ._common import arg, wrap_dim
from .dispatch import dispatch
from .registry import Sample, defop

FLOAT = (D.float32, D.float64)
NUMERIC = (D.float32, D.float64, D.int32, D.int64)


def _norm_dims(x, dim, op):
    """The reduced dims, sorted and wrapped (None or () means all)."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(x.ndim))
    if isinstance(dim, int):
        dim = (dim,)
    dims = sorted({wrap_dim(d, x.ndim, op) for d in dim})
    if len(dims) != len(tuple(dim)):
        raise RuntimeError(f"{op}: dim {list(dim)} appears multiple times in the list of dims")
    return tuple(dims) if x.ndim else ()


def _reduced_shape(x, dims, keepdim):
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    return tuple(s for i, s in enumerate(x.shape) if i not in dims)


def _reduce_infer(out_dtype=None):
    def infer(x, dims, keepdim, *rest):
        dt = out_dtype(x.dtype) if out_dtype else x.dtype
        return [(_reduced_shape(x, dims, keepdim), dt)]

    return infer


def _expand_back(g, x, dims, keepdim):
    """Broadcasts a reduced gradient back to x's shape (x: a tensor or a shape tuple)."""
    shape = tuple(x) if isinstance(x, tuple) else tuple(x.shape)
    if not keepdim and dims:
        for d in dims:
            g = g.unsqueeze(d)
    return g.expand(*shape)


def _reduce_samples(dt):
    return [
        Sample((arg((3, 4, 5), dt),)),
        Sample((arg((3, 4, 5), dt), 1)),
        Sample((arg((3, 4, 5), dt), (0, 2), True)),
        Sample((arg((3, 4), dt), -1, True)),
        Sample((arg((6, 4), dt)[::2], 0), note="strided"),
        Sample((arg((), dt),), note="0-d"),
    ]


def _int_to_long(dt):
    return D.int64 if not dt.is_floating_point else dt


def _sum_grad(c, g):
    return (_expand_back(g, c.shapes[0], c.attrs[0], c.attrs[1]),)


@defop(name="sum", inputs=("x",), attrs=("dims", "keepdim"), infer=_reduce_infer(_int_to_long),
       grad=_sum_grad, promote=None, dtypes=NUMERIC, methods=("sum",), torch_ref="torch.sum",
       tags=("reduction",), samples=_reduce_samples)
def sum(input, dim=None, keepdim=False, dtype=None):
    """Sum over dims (all if None)."""
    if input.dtype is D.bool_:
        from .elementwise import to

        input = to(input, D.int64)
    if dtype is not None:
        from .elementwise import to

        input = to(input, dtype)
    return dispatch(sum.opdef, [input], (_norm_dims(input, dim, "sum"), bool(keepdim)))


def _mean_grad(c, g):
    shape = c.shapes[0]
    n = 1
    for d in c.attrs[0]:
        n *= shape[d]
    return (_expand_back(g / _b.max(n, 1), shape, c.attrs[0], c.attrs[1]),)


@defop(name="mean", inputs=("x",), attrs=("dims", "keepdim"), infer=_reduce_infer(), grad=_mean_grad,
       promote=None, methods=("mean",), torch_ref="torch.mean", tags=("reduction",),
       samples=_reduce_samples)
def mean(input, dim=None, keepdim=False, dtype=None):
    """Mean over dims (all if None); float inputs only, like torch."""
    if dtype is not None:
        from .elementwise import to

        input = to(input, dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got {input.dtype.name}")
    return dispatch(mean.opdef, [input], (_norm_dims(input, dim, "mean"), bool(keepdim)))


def _prod_grad(c, g):
    """d prod / d x_i = prod of the others: prod/x_i without zeros, the product of the rest
    where x_i is the only zero, and 0 where there are two or more zeros."""
    from .elementwise import where

    x = c.inputs[0]
    dims, keepdim = c.attrs
    nz = x != 0
    safe = where(nz, x, 1.0)
    prod_nz = prod_dims(safe, dims, True).expand(*x.shape)
    n_zero = sum(_bool_to_float(nz.logical_not(), x.dtype), list(dims), True).expand(*x.shape)
    grad_nonzero_x = where(n_zero == 0, prod_nz / safe, 0.0)
    grad_zero_x = where(n_zero == 1, prod_nz, 0.0)
    return (_expand_back(g, x, dims, keepdim) * where(nz, grad_nonzero_x, grad_zero_x),)


def _bool_to_float(b, dt):
    from .elementwise import to

    return to(b, dt)


def prod_dims(x, dims, keepdim):
    return dispatch(prod.opdef, [x], (tuple(dims), keepdim))


@defop(name="prod", inputs=("x",), attrs=("dims", "keepdim"), infer=_reduce_infer(_int_to_long),
       grad=_prod_grad, promote=None, dtypes=NUMERIC, methods=("prod",), torch_ref="torch.prod",
       tags=("reduction",),
       samples=lambda dt: [Sample((arg((3, 4), dt),)), Sample((arg((3, 4), dt), 1)),
                           Sample((arg((2, 3), dt), 0, True))])
def prod(input, dim=None, keepdim=False, dtype=None):
    """Product over a dim (all if None)."""
    if input.dtype is D.bool_:
        from .elementwise import to

        input = to(input, D.int64)
    return dispatch(prod.opdef, [input], (_norm_dims(input, dim, "prod"), bool(keepdim)))


def _amax_grad(c, g):
    x, out = c.inputs[0], c.outputs[0]
    dims, keepdim = c.attrs
    ob = _expand_back(out, x, dims, keepdim)
    mask = _bool_to_float(x == ob, g.dtype)
    count = sum(mask, list(dims), True)
    return (_expand_back(g, x, dims, keepdim) * mask / count,)


def _amax_like(name):
    def fn(input, dim=(), keepdim=False):
        dims = _norm_dims(input, dim, name)
        for d in dims:
            if input.shape[d] == 0:
                raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        if input.numel() == 0 and not dims:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        return dispatch(fn.opdef, [input], (dims, bool(keepdim)))

    fn.__name__ = name
    fn.__doc__ = f"{'Max' if name == 'amax' else 'Min'} over dims (gradient split evenly between ties)."
    return defop(name=name, inputs=("x",), attrs=("dims", "keepdim"), infer=_reduce_infer(),
                 grad=_amax_grad, promote=None, dtypes=NUMERIC, methods=(name,),
                 torch_ref=f"torch.{name}", tags=("reduction",),
                 samples=lambda dt: [s for s in _reduce_samples(dt)])(fn)


amax = _amax_like("amax")
amin = _amax_like("amin")


def _var_grad(c, g, is_std):
    x, out = c.inputs[0], c.outputs[0]
    dims, correction, keepdim = c.attrs
    n = 1
    for d in dims:
        n *= x.shape[d]
    m = mean(x, list(dims), True)
    gb = _expand_back(g, x, dims, keepdim)
    if is_std:
        gb = gb / (_expand_back(out, x, dims, keepdim) * 2)
    return (gb * (x - m) * (2.0 / (n - correction) if n - correction > 0 else float("nan")),)


def _var_like(name):
    def fn(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # var(x, unbiased) legacy form
            unbiased, dim = dim, None
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        if not input.dtype.is_floating_point:
            raise RuntimeError(f"{name}(): input dtype should be floating point, got {input.dtype.name}")
        return dispatch(fn.opdef, [input], (_norm_dims(input, dim, name), float(correction), bool(keepdim)))

    fn.__name__ = name
    fn.__doc__ = f"{'Standard deviation' if name == 'std' else 'Variance'} over dims with Bessel correction."
    return defop(name=name, inputs=("x",), attrs=("dims", "correction", "keepdim"),
                 infer=lambda x, dims, corr, keepdim: [(_reduced_shape(x, dims, keepdim), x.dtype)],
                 grad=lambda c, g: _var_grad(c, g, name == "std"), promote=None, methods=(name,),
                 torch_ref=f"torch.{name}", tags=("reduction",),
                 samples=lambda dt: [Sample((arg((3, 4, 5), dt),)), Sample((arg((3, 4, 5), dt), 1)),
                                     Sample((arg((3, 4), dt), (0, 1), True, True)),
                                     Sample((arg((4, 5), dt), -1), {"correction": 0})])(fn)


var = _var_like("var")
std = _var_like("std")


def _lse_grad(c, g):
    x, out = c.inputs[0], c.outputs[0]
    dims, keepdim = c.attrs
    from .elementwise import exp

    return (_expand_back(g, x, dims, keepdim) * exp(x - _expand_back(out, x, dims, keepdim)),)


@defop(name="logsumexp", inputs=("x",), attrs=("dims", "keepdim"), infer=_reduce_infer(),
       grad=_lse_grad, promote=None, float_compute=False, methods=("logsumexp",),
       torch_ref="torch.logsumexp", tags=("reduction",),
       samples=lambda dt: [Sample((arg((3, 4, 5), dt), 1)), Sample((arg((3, 4), dt), (0, 1), True))])
def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) over dims, computed stably."""
    return dispatch(logsumexp.opdef, [input], (_norm_dims(input, dim, "logsumexp"), bool(keepdim)))


def _norm_grad(c, g):
    x, out = c.inputs[0], c.outputs[0]
    dims, p, keepdim = c.attrs
    from .elementwise import abs as _abs, sign, where

    gb = _expand_back(g, x, dims, keepdim)
    ob = _expand_back(out, x, dims, keepdim)
    if p == 2:
        return (gb * where(ob == 0, 0.0, x / ob),)
    if p == 1:
        return (gb * sign(x),)
    if p == float("inf") or p == float("-inf"):
        mask = _bool_to_float(_abs(x) == ob, x.dtype)
        return (gb * sign(x) * mask / sum(mask, list(dims), True),)
    return (gb * sign(x) * _abs(x) ** (p - 1) / where(ob == 0, 1.0, ob ** (p - 1)),)


@defop(name="norm", inputs=("x",), attrs=("dims", "p", "keepdim"),
       infer=lambda x, dims, p, keepdim: [(_reduced_shape(x, dims, keepdim), x.dtype)],
       grad=_norm_grad, promote=None, methods=("norm",), torch_ref="torch.norm", tags=("reduction",),
       samples=lambda dt: [Sample((arg((3, 4), dt),)), Sample((arg((3, 4), dt), 1, 1)),
                           Sample((arg((3, 4), dt), float("inf"), 0)), Sample((arg((3, 4, 2), dt), 3, (1, 2), True))])
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over dims (p='fro' is the 2-norm)."""
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise RuntimeError(f"norm: unsupported p={p!r}")
    return dispatch(norm.opdef, [input], (_norm_dims(input, dim, "norm"), float(p), bool(keepdim)))


def _all_any(name):
    def fn(input, dim=None, keepdim=False):
        from .elementwise import to

        if input.dtype is not D.bool_:
            input = to(input, D.bool_)
        return dispatch(fn.opdef, [input], (_norm_dims(input, dim, name), bool(keepdim)))

    fn.__name__ = name
    fn.__doc__ = f"True if {'all' if name == 'all' else 'any'} values over dims are true."
    return defop(name=name, inputs=("x",), attrs=("dims", "keepdim"),
                 infer=_reduce_infer(lambda dt: D.bool_), promote=None, differentiable=False,
                 dtypes=(D.bool_, D.float32), kernel_dtypes=(D.bool_,), methods=(name,), torch_ref=f"torch.{name}",
                 tags=("reduction",), samples=lambda dt: [Sample((arg((3, 4), dt),)), Sample((arg((3, 4), dt), 1))])(fn)


all = _all_any("all")
any = _all_any("any")


# ---- value + index reductions over one dim -------------------------------------------

def _maxmin_dim_grad(c, gv, gi):
    x = c.inputs[0]
    idx = c.outputs[1]
    dim, keepdim = c.attrs
    from .gather import scatter
    from ..creation import zeros

    if not keepdim and x.ndim:
        gv = gv.unsqueeze(dim)
        idx = idx.unsqueeze(dim)
    if x.ndim == 0:
        return (gv,)
    return (scatter(zeros(tuple(x.shape), dtype=gv.dtype), dim, idx, gv),)


def _maxmin_infer(x, dim, keepdim):
    shape = _reduced_shape(x, (dim,) if x.ndim else (), keepdim)
    return [(shape, x.dtype), (shape, D.int64)]


class _MinMaxResult(tuple):
    """(values, indices) named like torch.return_types.max."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _maxmin_dim(name):
    def op_fn(input, dim, keepdim=False):
        d = wrap_dim(dim, input.ndim, name)
        if input.ndim and input.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        return _MinMaxResult(dispatch(op_fn.opdef, [input], (d, bool(keepdim))))

    op_fn.__name__ = name + "_dim"
    return defop(name=name, inputs=("x",), attrs=("dim", "keepdim"), infer=_maxmin_infer,
                 grad=_maxmin_dim_grad, promote=None, dtypes=NUMERIC, num_outputs=2,
                 torch_ref=f"torch.{name}", tags=("reduction",),
                 samples=lambda dt: [Sample((arg((3, 4, 5), dt), 1)), Sample((arg((3, 4), dt), 0, True)),
                                     Sample((arg((5,), dt), 0))])(op_fn)


_max_dim = _maxmin_dim("max")
_min_dim = _maxmin_dim("min")


def max(input, dim=None, keepdim=False):
    """max(x) over all values, max(x, dim) -> (values, indices), max(x, y) elementwise."""
    if dim is None:
        return amax(input)
    if hasattr(dim, "_data"):
        from .elementwise import maximum

        return maximum(input, dim)
    return _max_dim(input, dim, keepdim)


def min(input, dim=None, keepdim=False):
    """min(x) over all values, min(x, dim) -> (values, indices), min(x, y) elementwise."""
    if dim is None:
        return amin(input)
    if hasattr(dim, "_data"):
        from .elementwise import minimum

        return minimum(input, dim)
    return _min_dim(input, dim, keepdim)


def _argmaxmin(name):
    def fn(input, dim=None, keepdim=False):
        if dim is None:
            flat = input.reshape(-1)
            out = dispatch(fn.opdef, [flat], (0, False))
            return out.reshape((1,) * input.ndim) if keepdim else out
        d = wrap_dim(dim, input.ndim, name)
        return dispatch(fn.opdef, [input], (d, bool(keepdim)))

    fn.__name__ = name
    fn.__doc__ = f"Index of the {'largest' if name == 'argmax' else 'smallest'} value along dim (first on ties)."
    return defop(name=name, inputs=("x",), attrs=("dim", "keepdim"),
                 infer=lambda x, dim, keepdim: [_maxmin_infer(x, dim, keepdim)[1]], promote=None,
                 differentiable=False, dtypes=NUMERIC, methods=(name,), torch_ref=f"torch.{name}",
                 tags=("reduction",),
                 samples=lambda dt: [Sample((arg((3, 4, 5), dt), 1)), Sample((arg((3, 4), dt),)),
                                     Sample((arg((3, 4), dt), 0, True))])(fn)


argmax = _argmaxmin("argmax")
argmin = _argmaxmin("argmin")


def _cumsum_grad(c, g):
    dim = c.attrs[0]
    from .movement import flip

    return (flip(cumsum(flip(g, [dim]), dim), [dim]),)


@defop(name="cumsum", inputs=("x",), attrs=("dim",),
       infer=lambda x, dim: [(tuple(x.shape), x.dtype if x.dtype.is_floating_point else D.int64)],
       grad=_cumsum_grad, promote=None, dtypes=NUMERIC, methods=("cumsum",), torch_ref="torch.cumsum",
       samples=lambda dt: [Sample((arg((3, 4), dt), 1)), Sample((arg((3, 4), dt), 0)),
                           Sample((arg((5,), dt), 0))])
def cumsum(input, dim, dtype=None):
    """Cumulative sum along dim."""
    if input.dtype is D.bool_:
        from .elementwise import to

        input = to(input, D.int64)
    return dispatch(cumsum.opdef, [input], (wrap_dim(dim, input.ndim, "cumsum"),))

def _cumprod_grad(c, g):
    return (cumprod_backward(c.inputs[0], g, c.attrs[0]),)


@defop(name="cumprod", inputs=("x",), attrs=("dim",),
       infer=lambda x, dim: [(tuple(x.shape), x.dtype if x.dtype.is_floating_point else D.int64)],
       grad=_cumprod_grad, promote=None, dtypes=NUMERIC, methods=("cumprod",), torch_ref="torch.cumprod",
       onnx_reason="ONNX has no cumulative product (only CumSum)",
       samples=lambda dt: [Sample((arg((3, 4), dt), 1)), Sample((arg((3, 4), dt), 0)), Sample((arg((5,), dt), 0)),
                           Sample((np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.5, -1.0, 0.0, 2.0, 3.0]], dt.np), 1),
                                  note="zeros")])
def cumprod(input, dim, dtype=None):
    """Cumulative product along dim (integers: int64, wrapping like torch)."""
    from .elementwise import to

    if dtype is not None:
        input = to(input, dtype)
    elif input.dtype is D.bool_:
        input = to(input, D.int64)
    return dispatch(cumprod.opdef, [input], (wrap_dim(dim, input.ndim, "cumprod"),))


@defop(name="cumprod_backward", inputs=("x", "grad_output"), attrs=("dim",),
       infer=lambda x, g, dim: [(tuple(x.shape), x.dtype)], promote=None, differentiable=False,
       onnx_reason="a gradient op: training graphs are not exported",
       samples=lambda dt: [Sample((np.array([[2.0, 0.0, 3.0], [0.5, -1.0, 4.0]], dt.np), arg((2, 3), dt), 1))])
def cumprod_backward(x, grad_output, dim):
    """cumprod's input gradient, exact where x has zeros (see reduce.cpp)."""
    return dispatch(cumprod_backward.opdef, [x, grad_output], (wrap_dim(dim, x.ndim, "cumprod_backward"),))


__all__ = ["sum", "mean", "prod", "amax", "amin", "var", "std", "logsumexp", "norm", "all", "any",
           "max", "min", "argmax", "argmin", "cumsum", "cumprod"]
