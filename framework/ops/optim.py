"""Fused optimizer updates: one registered op per optimizer, run once per parameter.

Each op reads (param, grad, state buffers) and writes the new param and state *in place*
through dispatch_into(): the outputs are the parameter and its state tensors themselves.
They are not differentiable (an optimizer step is not part of the autograd graph), and
their math follows torch's single-tensor optimizers (see csrc/kernels/optim.cpp), so
trajectories match torch. framework.optim builds the optimizer classes on these ops.
"""

from __future__ import annotations

from ._common import arg
from .dispatch import dispatch_into
from .registry import Sample, defop

__all__: list = []  # internal ops: reached through framework.optim, not re-exported


def _state_infer(n_out):
    def infer(param, *rest):
        return [(tuple(param.shape), param.dtype)] * n_out

    return infer


def _check(op, param, *others):
    for t in others:
        if t is None:
            continue
        if t.dtype is not param.dtype or tuple(t.shape) != tuple(param.shape):
            raise RuntimeError(
                f"{op}: expected {param.dtype.name}{list(param.shape)} like the parameter, got "
                f"{t.dtype.name}{list(t.shape)}"
            )
    if not param.dtype.is_floating_point:
        raise TypeError(f"{op}: parameters must be floating point, got {param.dtype.name}")


def _contig(t):
    return t if t is None or t._data.flags.c_contiguous else t.contiguous()


def _samples_with_states(n_states):
    def samples(dt):
        shape = (3, 4)
        states = [arg(shape, dt, 0.1, 1.0) for _ in range(n_states)]
        return [Sample((arg(shape, dt), arg(shape, dt), *states), grad=False)]

    return samples


def _sgd_samples(dt):
    p, g, b = arg((3, 4), dt), arg((3, 4), dt), arg((3, 4), dt)
    return [Sample((p, g, b, 0.1, 0.9, 0.0, 1e-4, False, False, False), grad=False)]


@defop(
    name="sgd_update",
    inputs=("param", "grad", "momentum_buffer?"),
    attrs=("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "first_step"),
    infer=_state_infer(2),
    num_outputs=2,
    promote=None,
    differentiable=False,
    samples=_sgd_samples,
    tags=("optim", "inplace"),
)
def sgd_update(
    param,
    grad,
    momentum_buffer,
    lr,
    momentum=0.0,
    dampening=0.0,
    weight_decay=0.0,
    nesterov=False,
    maximize=False,
    first_step=False,
):
    """One SGD step for one parameter, in place (torch.optim.SGD's per-parameter math)."""
    _check("sgd_update", param, grad, momentum_buffer)
    if momentum and momentum_buffer is None:
        raise RuntimeError("sgd_update: momentum != 0 needs a momentum_buffer")
    attrs = (
        float(lr),
        float(momentum),
        float(dampening),
        float(weight_decay),
        int(nesterov),
        int(maximize),
        int(first_step),
    )
    dispatch_into(
        sgd_update.opdef,
        [param, _contig(grad), momentum_buffer],
        [param, momentum_buffer if momentum else None],
        attrs,
    )
    return param


def _adam_samples(dt):
    s = (
        [arg((3, 4), dt) for _ in range(2)]
        + [arg((3, 4), dt, 0.0, 0.5)]
        + [arg((3, 4), dt, 0.0, 1.0) for _ in range(2)]
    )
    return [
        Sample((*s[:4], None, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False, False, False), grad=False),
        Sample((*s, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 3, True, False, True), grad=False),
    ]


@defop(
    name="adam_update",
    inputs=("param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq?"),
    attrs=(
        "lr",
        "beta1",
        "beta2",
        "eps",
        "weight_decay",
        "step",
        "amsgrad",
        "maximize",
        "decoupled_weight_decay",
    ),
    infer=_state_infer(4),
    num_outputs=4,
    promote=None,
    differentiable=False,
    samples=_adam_samples,
    tags=("optim", "inplace"),
)
def adam_update(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    step,
    amsgrad=False,
    maximize=False,
    decoupled_weight_decay=False,
):
    """One Adam (or AdamW, decoupled_weight_decay=True) step for one parameter, in place."""
    _check("adam_update", param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
    if amsgrad and max_exp_avg_sq is None:
        raise RuntimeError("adam_update: amsgrad needs max_exp_avg_sq")
    attrs = (
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        float(step),
        int(amsgrad),
        int(maximize),
        int(decoupled_weight_decay),
    )
    dispatch_into(
        adam_update.opdef,
        [param, _contig(grad), exp_avg, exp_avg_sq, max_exp_avg_sq],
        [param, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None],
        attrs,
    )
    return param


def _rmsprop_samples(dt):
    s = [arg((3, 4), dt) for _ in range(2)] + [
        arg((3, 4), dt, 0.5, 1.0),
        arg((3, 4), dt, -0.1, 0.1),
        arg((3, 4), dt),
    ]
    return [
        Sample((*s[:3], None, None, 1e-2, 0.99, 1e-8, 0.0, 0.0, False, False), grad=False),
        Sample((*s, 1e-2, 0.9, 1e-8, 1e-3, 0.9, True, False), grad=False),
    ]


@defop(
    name="rmsprop_update",
    inputs=("param", "grad", "square_avg", "grad_avg?", "momentum_buffer?"),
    attrs=("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"),
    infer=_state_infer(4),
    num_outputs=4,
    promote=None,
    differentiable=False,
    samples=_rmsprop_samples,
    tags=("optim", "inplace"),
)
def rmsprop_update(
    param,
    grad,
    square_avg,
    grad_avg,
    momentum_buffer,
    lr,
    alpha,
    eps,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    """One RMSprop step for one parameter, in place."""
    _check("rmsprop_update", param, grad, square_avg, grad_avg, momentum_buffer)
    if centered and grad_avg is None:
        raise RuntimeError("rmsprop_update: centered needs grad_avg")
    if momentum > 0 and momentum_buffer is None:
        raise RuntimeError("rmsprop_update: momentum needs momentum_buffer")
    attrs = (
        float(lr),
        float(alpha),
        float(eps),
        float(weight_decay),
        float(momentum),
        int(centered),
        int(maximize),
    )
    dispatch_into(
        rmsprop_update.opdef,
        [param, _contig(grad), square_avg, grad_avg, momentum_buffer],
        [
            param,
            square_avg,
            grad_avg if centered else None,
            momentum_buffer if momentum > 0 else None,
        ],
        attrs,
    )
    return param


def _adagrad_samples(dt):
    return [
        Sample(
            (
                arg((3, 4), dt),
                arg((3, 4), dt),
                arg((3, 4), dt, 0.0, 1.0),
                1e-2,
                0.0,
                0.0,
                1e-10,
                1,
                False,
            ),
            grad=False,
        )
    ]


@defop(
    name="adagrad_update",
    inputs=("param", "grad", "state_sum"),
    attrs=("lr", "lr_decay", "weight_decay", "eps", "step", "maximize"),
    infer=_state_infer(2),
    num_outputs=2,
    promote=None,
    differentiable=False,
    samples=_adagrad_samples,
    tags=("optim", "inplace"),
)
def adagrad_update(param, grad, state_sum, lr, lr_decay, weight_decay, eps, step, maximize=False):
    """One Adagrad step for one parameter, in place."""
    _check("adagrad_update", param, grad, state_sum)
    attrs = (
        float(lr),
        float(lr_decay),
        float(weight_decay),
        float(eps),
        float(step),
        int(maximize),
    )
    dispatch_into(
        adagrad_update.opdef, [param, _contig(grad), state_sum], [param, state_sum], attrs
    )
    return param
