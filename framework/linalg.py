"""framework.linalg: torch.linalg's solvers and factorizations over LAPACK (solve, inv,
det, slogdet, cholesky, qr, eigh: framework/ops/lapack.py), norms (vector_norm, matrix_norm, norm)
and products (matmul, vecdot), the latter written from the registered norm / sum / amax /
amin / matmul ops, so everything differentiates and traces like any op. Not implemented:
svd, eig (non-symmetric), lstsq, and the norms that need singular values ('nuc', 2, -2)."""

from __future__ import annotations

import math

from .ops import elementwise as _E
from .ops import reduce as _R
from .ops.lapack import det, slogdet  # noqa: F401
from .ops.lapack import linalg_cholesky as cholesky  # noqa: F401
from .ops.lapack import linalg_inv as inv  # noqa: F401
from .ops.lapack import eigvalsh  # noqa: F401
from .ops.lapack import linalg_eigh as eigh  # noqa: F401
from .ops.lapack import linalg_qr as qr  # noqa: F401
from .ops.lapack import linalg_solve as solve  # noqa: F401
from .ops.linalg import matmul  # noqa: F401

__all__ = ["vector_norm", "matrix_norm", "norm", "matmul", "vecdot", "solve", "inv", "det", "slogdet", "cholesky", "qr",
           "eigh", "eigvalsh"]


def _dims(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ord-norm of x as a vector over dim (all dims when None): ord a real number or
    +-inf; 0 counts the nonzero elements."""
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point tensor as input. Got {x.dtype.name}")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    dims = _dims(dim, x.ndim)
    if ord == 0:
        return _R.sum((x != 0).to(x.dtype), dims, keepdim)
    if ord == -math.inf:
        return _R.amin(_E.abs(x), dims, keepdim)
    return _R.norm(x, float(ord), dims, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The ord-norm of the matrices over the two dims `dim`: 'fro', or +-1 (max / min
    column abs sum) and +-inf (max / min row abs sum)."""
    if dtype is not None:
        A = A.to(dtype)
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions, got {A.ndim}")
    d0, d1 = (d % A.ndim for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return _R.norm(A, 2.0, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        raise NotImplementedError(f"linalg.matrix_norm: ord={ord!r} needs singular values, which framework "
                                  "does not compute")
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    summed, over = (d0, d1) if abs(ord) == 1 else (d1, d0)  # column sums for 1, row sums for inf
    s = _R.sum(_E.abs(A), (summed,), True)
    out = (_R.amax if ord > 0 else _R.amin)(s, (over,), True)
    if not keepdim:
        for d in sorted((d0, d1), reverse=True):
            out = out.squeeze(d)
    return out


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: a matrix norm when dim is a pair, or when ord is given without dim
    for a 2-D input; otherwise a vector norm (the 2-norm of all elements by default)."""
    if isinstance(dim, int):
        dim = (dim,)
    if dim is None and ord is not None and A.ndim not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                           f"Got {A.ndim}D.")
    if dim is not None and len(dim) == 2 or (dim is None and ord is not None and A.ndim == 2):
        return matrix_norm(A, "fro" if ord is None else ord, (-2, -1) if dim is None else dim, keepdim,
                           dtype=dtype)
    if isinstance(ord, str):
        n = A.ndim if dim is None else len(dim)
        raise RuntimeError(f"linalg.norm: ord={ord!r} is a matrix norm, but the norm is over {n} dim(s)")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def vecdot(x, y, *, dim=-1):
    """The dot product of x and y along dim (broadcasting the others)."""
    return _R.sum(x * y, (dim,))
