"""Solvers and factorizations over LAPACK (csrc/kernels/lapack.cpp): linalg_solve,
linalg_inv, linalg_slogdet, linalg_cholesky, linalg_qr, linalg_eigh, with gradients written from
registered ops. framework.linalg exposes them with torch.linalg's names (solve, inv,
slogdet, det, cholesky, qr), and the top level with torch's (inverse, det, slogdet, logdet,
qr)."""

from __future__ import annotations

import numpy as np

from ._common import arg, broadcast_shapes
from .dispatch import dispatch
from .registry import Sample, defop

_ONNX = "no ONNX operator (solvers are not exported)"


def _mT(x):
    return x.transpose(-2, -1)


def _square(op, a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{tuple(a.shape[-2:]) if a.ndim >= 2 else tuple(a.shape)} matrices")
    if not a.dtype.is_floating_point:
        raise RuntimeError(f"{op}: Expected a floating point tensor as input. Got {a.dtype.name}")


def _well_conditioned(shape, dt):
    """Random matrices plus n times the identity: far from singular."""
    n = shape[-1]
    return (arg(shape, dt) + n * np.eye(n)).astype(dt.np)


def _spd(shape, dt):
    m = arg(shape, dt)
    return (m @ np.swapaxes(m, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dt.np)


# ---- solve ---------------------------------------------------------------------------------


def _solve_grad(c, g):
    a, x = c.inputs[0], c.outputs[0]
    gb = linalg_solve(_mT(a), g)
    return (-(gb @ _mT(x)), gb)


@defop(name="linalg_solve", inputs=("A", "B"), grad=_solve_grad,
       infer=lambda a, b: [(tuple(b.shape), b.dtype)], torch_ref="torch.linalg.solve", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((_well_conditioned((4, 4), dt), arg((4, 2), dt))),
                           Sample((_well_conditioned((2, 3, 3), dt), arg((2, 3, 5), dt)), note="batched"),
                           Sample((_well_conditioned((3, 3), dt), arg((3,), dt)), note="vector B"),
                           Sample((_well_conditioned((2, 1, 3, 3), dt), arg((4, 3, 1), dt)), note="broadcast")])
def linalg_solve(A, B, *, left=True):
    """X with A X = B (A: (..., n, n); B: (..., n, k) or (..., n)), batch dims broadcast."""
    op = "linalg.solve"
    if not left:
        return _mT(linalg_solve(_mT(A), _mT(B)))
    _square(op, A)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    b = B.unsqueeze(-1) if vector else B
    if b.shape[-2] != A.shape[-1]:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation AX = B "
                           f"({tuple(A.shape)} and {tuple(B.shape)})")
    batch = broadcast_shapes(tuple(A.shape[:-2]), tuple(b.shape[:-2]))
    a = A.expand(*batch, *A.shape[-2:])
    b = b.expand(*batch, *b.shape[-2:])
    x = dispatch(linalg_solve.opdef, [a, b], ())
    return x.squeeze(-1) if vector else x


# ---- inverse -------------------------------------------------------------------------------


def _inv_grad(c, g):
    y = _mT(c.outputs[0])
    return (-(y @ g @ y),)


@defop(name="linalg_inv", inputs=("A",), grad=_inv_grad, infer=lambda a: [(tuple(a.shape), a.dtype)],
       methods=("inverse",), torch_ref="torch.linalg.inv", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((_well_conditioned((4, 4), dt),)),
                           Sample((_well_conditioned((2, 3, 3), dt),), note="batched")])
def linalg_inv(A):
    """A^-1 for square (batches of) matrices; a singular one raises."""
    _square("linalg.inv", A)
    return dispatch(linalg_inv.opdef, [A], ())


inverse = linalg_inv


# ---- determinants ----------------------------------------------------------------------------


def _slogdet_grad(c, gsign, glog):
    if glog is None:
        return (None,)
    return (glog.unsqueeze(-1).unsqueeze(-1) * _mT(linalg_inv(c.inputs[0])),)


def _batch_infer(a):
    return [(tuple(a.shape[:-2]), a.dtype), (tuple(a.shape[:-2]), a.dtype)]


@defop(name="linalg_slogdet", inputs=("A",), grad=_slogdet_grad, infer=_batch_infer, num_outputs=2,
       methods=("slogdet",), torch_ref="torch.linalg.slogdet", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((_well_conditioned((4, 4), dt),)),
                           Sample((_well_conditioned((2, 3, 3), dt) * np.array([1, -1], dt.np)[:, None, None],),
                                  note="batched, negative det"),
                           Sample((np.array([[1.0, 2.0], [2.0, 4.0]], dt.np),), grad=False, note="singular")])
def linalg_slogdet(A):
    """(sign, log|det A|): sign 0 and -inf for a singular matrix. The gradient needs A^-1,
    so it raises at a singular matrix (torch's goes through an SVD there)."""
    _square("linalg.slogdet", A)
    return dispatch(linalg_slogdet.opdef, [A], ())


slogdet = linalg_slogdet


def det(A):
    """det A, as sign * exp(log|det A|) (0 for a singular matrix)."""
    from .elementwise import exp

    sign, logabs = linalg_slogdet(A)
    return sign * exp(logabs)


def logdet(A):
    """log det A: NaN where det A < 0, -inf where it is 0 (torch.logdet)."""
    from .elementwise import where

    sign, logabs = linalg_slogdet(A)
    return where(sign < 0, float("nan"), logabs)  # a singular A has logabs -inf already


# ---- Cholesky --------------------------------------------------------------------------------


def _cholesky_grad(c, g):
    # gA = L^-T Phi(L^T gL) L^-1, symmetrized; Phi keeps the lower triangle, halving the diagonal
    from ..creation import eye
    from .movement import tril

    L = c.outputs[0]
    n = L.shape[-1]
    li = linalg_inv(L)
    p = _mT(L) @ g
    phi = tril(p, -1) + 0.5 * p * eye(n, dtype=L.dtype)
    ga = _mT(li) @ phi @ li
    return (0.5 * (ga + _mT(ga)),)


@defop(name="linalg_cholesky", inputs=("A",), grad=_cholesky_grad, infer=lambda a: [(tuple(a.shape), a.dtype)],
       torch_ref="torch.linalg.cholesky", onnx_reason=_ONNX,
       # grad=False: the gradient is the symmetrized one (torch's), which finite differences
       # of the lower triangle alone do not give; tests/ops/test_lapack.py checks it vs torch
       samples=lambda dt: [Sample((_spd((4, 4), dt),), grad=False), Sample((_spd((2, 3, 3), dt),), grad=False,
                                                                            note="batched")])
def linalg_cholesky(A, *, upper=False):
    """Lower L with L L^T = A for symmetric positive-definite A (its lower triangle is read);
    upper=True gives L^T."""
    _square("linalg.cholesky", A)
    L = dispatch(linalg_cholesky.opdef, [A], ())
    return _mT(L) if upper else L


# ---- QR ----------------------------------------------------------------------------------------


def _qr_grad(c, gq, gr):
    # m >= n (arXiv:2009.10071): M = R gR^T - gQ^T Q; gA = (gQ + Q copyltu(M)) R^-T, where
    # copyltu(M) mirrors M's strict lower triangle onto its upper one
    from .movement import tril

    a = c.inputs[0]
    m, n = a.shape[-2], a.shape[-1]
    if m < n:
        raise NotImplementedError("linalg.qr: the gradient of a wide matrix (more columns than rows) is not "
                                  "implemented")
    if c.attrs[0] and m != n:
        raise NotImplementedError("linalg.qr: the gradient of mode='complete' is implemented for square "
                                  "matrices only (as torch)")
    q, r = c.outputs
    gq = gq if gq is not None else q * 0
    gr = gr if gr is not None else r * 0
    from ..creation import eye

    mm = r @ _mT(gr) - _mT(gq) @ q
    low = tril(mm, -1)
    b = gq + q @ (low + _mT(low) + mm * eye(n, dtype=mm.dtype))
    return (_mT(linalg_solve(r, _mT(b))),)  # b R^-T


def _qr_infer(a, complete):
    m, n = a.shape[-2], a.shape[-1]
    q = m if complete else min(m, n)
    return [(tuple(a.shape[:-2]) + (m, q), a.dtype), (tuple(a.shape[:-2]) + (q, n), a.dtype)]


@defop(name="linalg_qr", inputs=("A",), attrs=("complete",), grad=_qr_grad, infer=_qr_infer, num_outputs=2,
       torch_ref="torch.linalg.qr", onnx_reason=_ONNX,
       samples=lambda dt: [Sample((arg((5, 3), dt),)), Sample((arg((2, 4, 4), dt),), note="batched square"),
                           Sample((arg((3, 5), dt),), grad=False, note="wide")])
def linalg_qr(A, mode="reduced"):
    """Q, R with A = Q R, Q's columns orthonormal and R upper triangular (LAPACK's Householder
    QR, torch's signs). mode 'reduced' (Q m x min(m, n)), 'complete' (Q m x m) or 'r' (R only,
    Q empty)."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
                           "'r', or 'complete'")
    if A.ndim < 2 or not A.dtype.is_floating_point:
        raise RuntimeError(f"linalg.qr: expected a floating point tensor with at least 2 dims, got "
                           f"{A.dtype.name} with {A.ndim}")
    q, r = dispatch(linalg_qr.opdef, [A], (mode == "complete",))
    if mode == "r":
        from ..creation import empty

        return empty(0, dtype=A.dtype), r
    return q, r


qr = linalg_qr


# ---- symmetric eigendecomposition -------------------------------------------------------------


def _eigh_grad(c, gl, gv):
    # gA = V (diag(gL) + F o (V^T gV)) V^T, F_ij = 1 / (l_j - l_i) off the diagonal (distinct
    # eigenvalues; a repeated one gives inf, as torch's)
    from ..creation import eye

    lam, v = c.outputs
    n = lam.shape[-1]
    inner = 0
    if gv is not None:
        e = lam.unsqueeze(-2) - lam.unsqueeze(-1)
        off = 1 - eye(n, dtype=lam.dtype)
        vgv = _mT(v) @ gv
        inner = vgv * off / (e + eye(n, dtype=lam.dtype))
    if gl is not None:
        inner = inner + gl.unsqueeze(-1) * eye(n, dtype=lam.dtype)
    return (v @ inner @ _mT(v),)


def _eigh_infer(a):
    return [(tuple(a.shape[:-1]), a.dtype), (tuple(a.shape), a.dtype)]


def _sym(dt, shape):
    m = arg(shape, dt)
    return (m + np.swapaxes(m, -1, -2)).astype(dt.np)


@defop(name="linalg_eigh", inputs=("A",), grad=_eigh_grad, infer=_eigh_infer, num_outputs=2,
       onnx_reason=_ONNX,
       # no torch_ref: eigenvectors are defined up to sign, and torch's LAPACK picks other
       # signs; tests/ops/test_lapack.py compares values, |vectors| and a sign-free gradient
       samples=lambda dt: [Sample((_sym(dt, (4, 4)),), grad=False), Sample((_sym(dt, (2, 3, 3)),), grad=False,
                                                                         note="batched")])
def linalg_eigh(A, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric A, read from its lower
    (UPLO='L') or upper ('U') triangle."""
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    _square("linalg.eigh", A)
    return dispatch(linalg_eigh.opdef, [A if UPLO == "L" else _mT(A)], ())  # the kernel reads the lower one


def eigvalsh(A, UPLO="L"):
    """The eigenvalues of symmetric A, ascending."""
    return linalg_eigh(A, UPLO)[0]

__all__ = ["inverse", "det", "slogdet", "logdet", "qr"]
