"""Softmax family: softmax and log_softmax along one dim (torch.nn.functional names), with
their backward computations as registered ops (softmax_backward, log_softmax_backward) so a
traced training step captures them. Kernels: csrc/kernels/softmax.cpp. No compute here."""

from __future__ import annotations

import warnings

import numpy as np

from ._common import arg, same_infer, wrap_dim
from .dispatch import dispatch
from .registry import Sample, defop


def _implicit_dim(ndim: int, name: str) -> int:
    """torch's legacy choice of dim when none is given (with its warning)."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _prepare(input, dim, dtype, name):
    if dtype is not None:
        from .elementwise import to

        input = to(input, dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{name}: expected a floating point input, got {input.dtype.name}")
    if dim is None:
        dim = _implicit_dim(input.ndim, name)
    return input.contiguous(), wrap_dim(dim, input.ndim, name)


def _softmax_samples(dt, log=False):
    masked = arg((3, 5), dt)
    masked[0, 1] = -np.inf
    masked[2, :2] = -np.inf
    return [
        Sample((arg((3, 5), dt), -1)),
        Sample((arg((2, 3, 4), dt), 1), note="middle dim"),
        Sample((arg((2, 3, 4), dt), 0), note="first dim"),
        Sample((arg((4,), dt), 0), note="1-d"),
        Sample((arg((), dt), 0), note="0-d"),
        Sample((arg((3, 4), dt, -30, 30), 1), note="large values"),
        # log_softmax is -inf there: a finite-difference loss would be nan
        Sample((masked, 1), note="-inf entries", grad=not log),
        Sample((arg((3, 8), dt)[:, ::2], 1), note="strided"),
        Sample((arg((2, 0, 3), dt), 1), note="empty"),
    ]


# ---- backward ops ------------------------------------------------------------------------


def _softmax_backward_grad(c, gg):
    """Double backward of gx = y * (g - sum(g*y)): d/dg = softmax_backward(gg, y),
    d/dy = gg * (g - sum(g*y)) - g * sum(gg*y)."""
    g, y = c.inputs[0], c.inputs[1]
    dim = c.attrs[0]
    gy = gg_y = None
    if c.needs_input_grad[0]:
        gy = softmax_backward(gg, y, dim)
    if c.needs_input_grad[1]:
        gg_y = gg * (g - (g * y).sum(dim, True)) - g * (gg * y).sum(dim, True)
    return gy, gg_y


@defop(
    name="softmax_backward",
    inputs=("grad_output", "output"),
    attrs=("dim",),
    infer=same_infer,
    grad=_softmax_backward_grad,
    tags=("backward",),
    samples=lambda dt: [Sample((arg((3, 5), dt), arg((3, 5), dt, 0.0, 1.0), 1))],
)
def softmax_backward(grad_output, output, dim):
    """Gradient of softmax: output * (grad_output - sum(grad_output * output, dim))."""
    return dispatch(
        softmax_backward.opdef,
        [grad_output.contiguous(), output.contiguous()],
        (wrap_dim(dim, output.ndim, "softmax_backward"),),
    )


def _log_softmax_backward_grad(c, gg):
    """Double backward of gx = g - exp(y) * sum(g): d/dg = gg - sum(gg*exp(y)) broadcast,
    d/dy = -gg * exp(y) * sum(g)."""
    from .elementwise import exp

    g, y = c.inputs[0], c.inputs[1]
    dim = c.attrs[0]
    p = exp(y)
    gy = gg_y = None
    if c.needs_input_grad[0]:
        gy = gg - (gg * p).sum(dim, True)
    if c.needs_input_grad[1]:
        gg_y = -(gg * p * g.sum(dim, True))
    return gy, gg_y


@defop(
    name="log_softmax_backward",
    inputs=("grad_output", "output"),
    attrs=("dim",),
    infer=same_infer,
    grad=_log_softmax_backward_grad,
    tags=("backward",),
    samples=lambda dt: [Sample((arg((3, 5), dt), arg((3, 5), dt, -3.0, -0.1), 1))],
)
def log_softmax_backward(grad_output, output, dim):
    """Gradient of log_softmax: grad_output - exp(output) * sum(grad_output, dim)."""
    return dispatch(
        log_softmax_backward.opdef,
        [grad_output.contiguous(), output.contiguous()],
        (wrap_dim(dim, output.ndim, "log_softmax_backward"),),
    )


# ---- forward ops -------------------------------------------------------------------------


@defop(
    name="softmax",
    inputs=("x",),
    attrs=("dim",),
    infer=same_infer,
    grad=lambda c, g: (softmax_backward(g, c.outputs[0], c.attrs[0]),),
    methods=("softmax",),
    torch_ref="torch.nn.functional.softmax",
    samples=_softmax_samples,
)
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along dim, computed stably."""
    x, d = _prepare(input, dim, dtype, "softmax")
    return dispatch(softmax.opdef, [x], (d,))


@defop(
    name="log_softmax",
    inputs=("x",),
    attrs=("dim",),
    infer=same_infer,
    grad=lambda c, g: (log_softmax_backward(g, c.outputs[0], c.attrs[0]),),
    methods=("log_softmax",),
    torch_ref="torch.nn.functional.log_softmax",
    samples=lambda dt: _softmax_samples(dt, log=True),
)
def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - logsumexp(x) along dim, computed stably."""
    x, d = _prepare(input, dim, dtype, "log_softmax")
    return dispatch(log_softmax.opdef, [x], (d,))


__all__ = ["log_softmax", "softmax"]
