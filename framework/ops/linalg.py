"""Linear algebra: matmul (batch broadcasting, 1-D cases by unsqueeze), bmm, mm, linear,
addmm, baddbmm. Kernels: csrc/kernels/linalg.cpp (OpenBLAS GEMM)."""

from __future__ import annotations

from .. import dtypes as D
from ._common import arg, broadcast_shapes, sum_to
from .dispatch import dispatch
from .registry import Sample, defop


def _matmul_infer(a, b):
    if a.ndim < 2 or b.ndim < 2:
        raise RuntimeError("matmul kernel needs 2+ dims (1-D operands are unsqueezed first)")
    if a.shape[-1] != b.shape[-2]:
        raise RuntimeError(
            f"matmul: mat1 and mat2 shapes cannot be multiplied ({a.shape[-2]}x{a.shape[-1]} and "
            f"{b.shape[-2]}x{b.shape[-1]}); shapes {list(a.shape)} and {list(b.shape)}")
    batch = broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    return [(batch + (a.shape[-2], b.shape[-1]), a.dtype)]


def _matmul_grad(c, g):
    a, b = c.inputs[0], c.inputs[1]
    ga = gb = None
    if c.needs_input_grad[0]:
        ga = sum_to(matmul(g, b.transpose(-2, -1)), a.shape)
    if c.needs_input_grad[1]:
        gb = sum_to(matmul(a.transpose(-2, -1), g), b.shape)
    return ga, gb


def _mm_samples(dt):
    return [
        Sample((arg((3, 4), dt), arg((4, 5), dt))),
        Sample((arg((2, 3, 4), dt), arg((4, 5), dt)), note="batch x matrix"),
        Sample((arg((2, 1, 3, 4), dt), arg((3, 4, 2), dt)), note="broadcast batch"),
        Sample((arg((4,), dt), arg((4, 5), dt)), note="vector @ matrix"),
        Sample((arg((3, 4), dt), arg((4,), dt)), note="matrix @ vector"),
        Sample((arg((4,), dt), arg((4,), dt)), note="dot"),
        Sample((arg((4, 3), dt).T, arg((5, 4), dt).T), note="transposed operands"),
        Sample((arg((0, 4), dt), arg((4, 2), dt)), note="empty"),
    ]


@defop(name="matmul", inputs=("a", "b"), infer=_matmul_infer, grad=_matmul_grad,
       methods=("matmul",), torch_ref="torch.matmul", samples=_mm_samples, tags=("linalg",))
def matmul(input, other):
    """Matrix product with numpy/torch semantics (1-D operands, batch broadcasting)."""
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{input.ndim}D and {other.ndim}D")
    squeeze_a = input.ndim == 1
    squeeze_b = other.ndim == 1
    a = input.unsqueeze(0) if squeeze_a else input
    b = other.unsqueeze(-1) if squeeze_b else other
    out = dispatch(matmul.opdef, [a, b], ())
    if squeeze_a and squeeze_b:
        return out.reshape(tuple(out.shape[:-2]))
    if squeeze_b:
        return out.squeeze(-1)
    if squeeze_a:
        return out.squeeze(-2)
    return out


def mm(input, mat2):
    """2-D matrix product."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched (3-D) matrix product."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ ({input.shape[0]} and {mat2.shape[0]})")
    return matmul(input, mat2)


def _linear_infer(x, w, b):
    xs, ws = x.shape, w.shape
    if len(ws) != 2:
        raise RuntimeError(f"linear: weight must be 2-D, got shape {list(ws)}")
    if not xs or xs[-1] != ws[1]:
        raise RuntimeError(
            f"linear: mat1 and mat2 shapes cannot be multiplied (input {list(xs)}, "
            f"weight {list(ws)}: in_features {ws[1]} != {xs[-1] if xs else 'scalar'})")
    if b is not None:
        bs = b.shape
        if bs != (ws[0],) and bs != ():
            raise RuntimeError(f"linear: bias shape {list(bs)} does not match out_features {ws[0]}")
    return [(tuple(xs[:-1]) + (ws[0],), x.dtype)]


def _linear_grad(c, g):
    x, w, b = c.inputs[0], c.inputs[1], c.inputs[2]
    gx = gw = gb = None
    if c.needs_input_grad[0]:
        gx = matmul(g, w)
    g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
    if c.needs_input_grad[1]:
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        gw = matmul(g2.transpose(0, 1), x2)
    if b is not None and c.needs_input_grad[2]:
        gb = g2.sum(0)
        if b.ndim != 1:
            gb = gb.reshape(b.shape)
    return gx, gw, gb


@defop(name="linear", inputs=("x", "weight", "bias?"), infer=_linear_infer, grad=_linear_grad,
       torch_ref="torch.nn.functional.linear", tags=("linalg",),
       samples=lambda dt: [Sample((arg((4, 3), dt), arg((5, 3), dt), arg((5,), dt))),
                           Sample((arg((2, 4, 3), dt), arg((5, 3), dt))),
                           Sample((arg((3,), dt), arg((2, 3), dt), arg((2,), dt)), note="1-D input"),
                           Sample((arg((3, 6), dt)[:, ::2], arg((5, 3), dt), arg((5,), dt)), note="strided")])
def linear(input, weight, bias=None):
    """input @ weight.T + bias."""
    return dispatch(linear.opdef, [input, weight, bias], ())


def _addmm_infer(inp, m1, m2, beta, alpha):
    out = _matmul_infer(m1, m2)[0]
    broadcast_shapes(tuple(inp.shape), out[0])
    return [out]


def _addmm_grad(c, g):
    inp, a, b = c.inputs[0], c.inputs[1], c.inputs[2]
    beta, alpha = c.attrs
    gi = sum_to(g * beta, inp.shape) if c.needs_input_grad[0] else None
    ga = matmul(g, b.transpose(-2, -1)) * alpha if c.needs_input_grad[1] else None
    gb = matmul(a.transpose(-2, -1), g) * alpha if c.needs_input_grad[2] else None
    return gi, ga, gb


@defop(name="addmm", inputs=("input", "mat1", "mat2"), attrs=("beta", "alpha"), infer=_addmm_infer,
       grad=_addmm_grad, methods=("addmm",), torch_ref="torch.addmm", tags=("linalg",),
       samples=lambda dt: [Sample((arg((5,), dt), arg((3, 4), dt), arg((4, 5), dt))),
                           Sample((arg((3, 5), dt), arg((3, 4), dt), arg((4, 5), dt)), {"beta": 0.5, "alpha": 2.0})])
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2)."""
    if mat1.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError("addmm: mat1 and mat2 must be 2-D")
    return dispatch(addmm.opdef, [input, mat1, mat2], (float(beta), float(alpha)))


@defop(name="baddbmm", inputs=("input", "batch1", "batch2"), attrs=("beta", "alpha"),
       infer=_addmm_infer, grad=_addmm_grad, methods=("baddbmm",), torch_ref="torch.baddbmm",
       tags=("linalg",),
       samples=lambda dt: [Sample((arg((2, 3, 5), dt), arg((2, 3, 4), dt), arg((2, 4, 5), dt))),
                           Sample((arg((5,), dt), arg((2, 3, 4), dt), arg((2, 4, 5), dt)), {"beta": 0.5, "alpha": 2.0})])
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (batch1 @ batch2) over a batch of matrices."""
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise RuntimeError("baddbmm: batch1 and batch2 must be 3-D")
    return dispatch(baddbmm.opdef, [input, batch1, batch2], (float(beta), float(alpha)))


_ = D

__all__ = ["matmul", "mm", "bmm", "linear", "addmm", "baddbmm"]
