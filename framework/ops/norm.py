"""Normalization ops with torch.nn.functional names: layer_norm, batch_norm, group_norm.

Each forward op also outputs the statistics its backward needs (mean and rstd), and each
has its own registered backward op (layer_norm_backward, ...) so a traced training step
captures backward as single nodes. Kernels: csrc/kernels/norm.cpp. No compute here.
"""

from __future__ import annotations

from ._common import arg
from .dispatch import dispatch
from .registry import Sample, defop


def _contig(t):
    return None if t is None else t.contiguous()


def _check_param(t, numel, what, op):
    if t is not None and t.numel() != numel:
        raise RuntimeError(
            f"{op}: {what} should contain {numel} elements not {t.numel()} "
            f"(got shape {list(t.shape)})"
        )


def _three_infer(stats_shape):
    def infer(x, *rest):
        return [(tuple(x.shape), x.dtype)] + [(stats_shape(x, *rest), x.dtype)] * 2

    return infer


def _backward_infer(param_shape):
    def infer(gy, x, mean, rstd, w, *attrs):
        p = param_shape(x, *attrs)
        return [(tuple(x.shape), x.dtype), (p, x.dtype), (p, x.dtype)]

    return infer


def _backward_samples(dt, x_shape, stats_shape, param_shape, attrs):
    return [
        Sample(
            (
                arg(x_shape, dt),
                arg(x_shape, dt),
                arg(stats_shape, dt),
                arg(stats_shape, dt, 0.5, 1.5),
                arg(param_shape, dt),
                *attrs,
            ),
            grad=False,
        )
    ]


# ---- layer_norm --------------------------------------------------------------------------


@defop(
    name="layer_norm_backward",
    inputs=("grad_output", "x", "mean", "rstd", "weight?"),
    attrs=("normalized_ndim", "weight_grads"),
    infer=_backward_infer(lambda x, nd, wg: tuple(x.shape[x.ndim - nd :])),
    differentiable=False,
    num_outputs=3,
    tags=("backward",),
    samples=lambda dt: _backward_samples(dt, (3, 4), (3,), (4,), (1, True)),
)
def layer_norm_backward(grad_output, input, mean, rstd, weight, normalized_ndim, weight_grads=True):
    """(grad_input, grad_weight, grad_bias) of layer_norm from its saved mean and rstd."""
    return dispatch(
        layer_norm_backward.opdef,
        [grad_output.contiguous(), input.contiguous(), mean, rstd, _contig(weight)],
        (int(normalized_ndim), bool(weight_grads)),
    )


def _layer_norm_grad(c, gy, _gmean, _grstd):
    x, w, b = c.inputs[0], c.inputs[1], c.inputs[2]
    nd = c.attrs[0]
    need = c.needs_input_grad
    gx, gw, gb = layer_norm_backward(gy, x, c.outputs[1], c.outputs[2], w, nd, need[1] or need[2])
    return (
        gx if need[0] else None,
        gw if w is not None and need[1] else None,
        gb if b is not None and need[2] else None,
    )


def _layer_norm_samples(dt):
    return [
        Sample((arg((3, 5), dt), (5,), arg((5,), dt), arg((5,), dt))),
        Sample(
            (arg((2, 3, 4), dt), (3, 4), arg((3, 4), dt), arg((3, 4), dt)), note="2-d normalized"
        ),
        Sample((arg((2, 3, 4), dt), [4]), note="no affine"),
        Sample((arg((4, 6), dt), (6,), arg((6,), dt)), {"eps": 1e-3}, note="weight only"),
        Sample((arg((3, 8), dt)[:, ::2], (4,), None, arg((4,), dt)), note="strided, bias only"),
        Sample((arg((0, 4), dt), (4,), arg((4,), dt), arg((4,), dt)), note="empty"),
    ]


@defop(
    name="layer_norm",
    inputs=("x", "weight?", "bias?"),
    attrs=("normalized_ndim", "eps"),
    infer=_three_infer(lambda x, w, b, nd, eps: tuple(x.shape[: x.ndim - nd])),
    grad=_layer_norm_grad,
    num_outputs=3,
    torch_ref="torch.nn.functional.layer_norm",
    samples=_layer_norm_samples,
)
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalizes over the trailing dims `normalized_shape`, then scales and shifts."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    shape = tuple([int(s) for s in normalized_shape])
    nd = len(shape)
    ishape = input.shape
    if nd == 0 or nd > len(ishape) or ishape[len(ishape) - nd :] != shape:
        raise RuntimeError(
            f"layer_norm: Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in shape)}], but got input of size{list(ishape)}"
        )
    for t, what in ((weight, "weight"), (bias, "bias")):
        if t is not None and t.shape != shape:
            raise RuntimeError(
                f"layer_norm: Expected {what} to be of same shape as normalized_shape, but got "
                f"{what} of shape {list(t.shape)} and normalized_shape = {list(shape)}"
            )
    return dispatch(
        layer_norm.opdef, [input.contiguous(), _contig(weight), _contig(bias)], (nd, float(eps))
    )[0]


# ---- batch_norm --------------------------------------------------------------------------


@defop(
    name="batch_norm_backward",
    inputs=("grad_output", "x", "mean", "rstd", "weight?"),
    attrs=("training",),
    infer=_backward_infer(lambda x, training: (x.shape[1],)),
    differentiable=False,
    num_outputs=3,
    tags=("backward",),
    samples=lambda dt: _backward_samples(dt, (4, 3, 2), (3,), (3,), (True,)),
)
def batch_norm_backward(grad_output, input, mean, rstd, weight, training):
    """(grad_input, grad_weight, grad_bias) of batch_norm from its saved mean and rstd."""
    return dispatch(
        batch_norm_backward.opdef,
        [grad_output.contiguous(), input.contiguous(), mean, rstd, _contig(weight)],
        (bool(training),),
    )


def _batch_norm_grad(c, gy, _gmean, _grstd):
    x, w, b = c.inputs[0], c.inputs[1], c.inputs[2]
    need = c.needs_input_grad
    gx, gw, gb = batch_norm_backward(gy, x, c.outputs[1], c.outputs[2], w, c.attrs[0])
    return (
        gx if need[0] else None,
        gw if w is not None and need[1] else None,
        gb if b is not None and need[2] else None,
        None,
        None,
    )


def _batch_norm_samples(dt):
    def stats(c):
        return arg((c,), dt, -0.5, 0.5), arg((c,), dt, 0.5, 2.0)

    return [
        Sample(
            (arg((4, 3), dt), None, None, arg((3,), dt), arg((3,), dt), True),
            note="training, no stats",
        ),
        Sample(
            (arg((4, 3, 5), dt), None, None, None, None, True, 0.1, 1e-3), note="3-d, no affine"
        ),
        Sample(
            (arg((2, 3, 2, 2), dt), *stats(3), arg((3,), dt), arg((3,), dt), True, 0.3),
            grad=False,
            note="training updates running stats",
        ),
        Sample(
            (arg((2, 3, 4), dt), *stats(3), arg((3,), dt), arg((3,), dt), False),
            grad=False,
            note="eval",
        ),
        Sample((arg((3, 2), dt), *stats(2)), grad=False, note="eval, no affine"),
    ]


@defop(
    name="batch_norm",
    inputs=("x", "weight?", "bias?", "running_mean?", "running_var?"),
    attrs=("training", "momentum", "eps"),
    infer=_three_infer(lambda x, *rest: (x.shape[1],)),
    grad=_batch_norm_grad,
    num_outputs=3,
    torch_ref="torch.nn.functional.batch_norm",
    tags=("updates_running_stats",),
    samples=_batch_norm_samples,
)
def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):
    """Normalizes each channel (dim 1) with batch statistics (training, updating the running
    stats in place with the unbiased variance) or with the running statistics (eval)."""
    if input.ndim < 2:
        raise ValueError(
            f"batch_norm: expected 2D or more input (N, C, ...), got {input.ndim}D input of "
            f"shape {list(input.shape)}"
        )
    c = input.shape[1]
    for t, what in (
        (running_mean, "running_mean"),
        (running_var, "running_var"),
        (weight, "weight"),
        (bias, "bias"),
    ):
        _check_param(t, c, what, "batch_norm")
    if training:
        size = input.numel() // max(c, 1)
        if size <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{list(input.shape)}"
            )
    elif running_mean is None or running_var is None:
        raise RuntimeError(
            "batch_norm: running_mean and running_var must be defined in evaluation mode"
        )
    for t, what in ((running_mean, "running_mean"), (running_var, "running_var")):
        if (
            t is not None
            and training
            and (
                t.dtype is not input.dtype
                or not t._data.flags.c_contiguous
                or not t._data.flags.writeable
            )
        ):
            raise RuntimeError(
                f"batch_norm: {what} must be a contiguous, writable {input.dtype.name} "
                f"tensor to be updated in place, got {t.dtype.name}"
            )
    if momentum is None:
        raise TypeError(
            "batch_norm: momentum=None (cumulative average) is computed by nn.BatchNorm; "
            "pass the averaging factor as a float"
        )
    stats = [running_mean, running_var]
    if not training:
        from .elementwise import to

        stats = [to(t, input.dtype).contiguous() for t in stats]
    out = dispatch(
        batch_norm.opdef,
        [input.contiguous(), _contig(weight), _contig(bias), *stats],
        (bool(training), float(momentum), float(eps)),
    )
    if training:
        for t in stats:
            if t is not None:
                t._version.value += 1
    return out[0]


# ---- group_norm --------------------------------------------------------------------------


@defop(
    name="group_norm_backward",
    inputs=("grad_output", "x", "mean", "rstd", "weight?"),
    attrs=("num_groups",),
    infer=_backward_infer(lambda x, g: (x.shape[1],)),
    differentiable=False,
    num_outputs=3,
    tags=("backward",),
    samples=lambda dt: _backward_samples(dt, (2, 4, 3), (2, 2), (4,), (2,)),
)
def group_norm_backward(grad_output, input, mean, rstd, weight, num_groups):
    """(grad_input, grad_weight, grad_bias) of group_norm from its saved mean and rstd."""
    return dispatch(
        group_norm_backward.opdef,
        [grad_output.contiguous(), input.contiguous(), mean, rstd, _contig(weight)],
        (int(num_groups),),
    )


def _group_norm_grad(c, gy, _gmean, _grstd):
    x, w, b = c.inputs[0], c.inputs[1], c.inputs[2]
    need = c.needs_input_grad
    gx, gw, gb = group_norm_backward(gy, x, c.outputs[1], c.outputs[2], w, c.attrs[0])
    return (
        gx if need[0] else None,
        gw if w is not None and need[1] else None,
        gb if b is not None and need[2] else None,
    )


@defop(
    name="group_norm",
    inputs=("x", "weight?", "bias?"),
    attrs=("num_groups", "eps"),
    infer=_three_infer(lambda x, w, b, g, eps: (x.shape[0], g)),
    grad=_group_norm_grad,
    num_outputs=3,
    torch_ref="torch.nn.functional.group_norm",
    samples=lambda dt: [
        Sample((arg((2, 6, 5), dt), 3, arg((6,), dt), arg((6,), dt))),
        Sample((arg((2, 4, 3, 2), dt), 2), note="4-d, no affine"),
        Sample((arg((3, 4), dt), 4, arg((4,), dt), None, 1e-3), note="2-d, one channel a group"),
        Sample((arg((1, 4, 6), dt), 1, arg((4,), dt)), note="one group, weight only"),
    ],
)
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalizes over groups of channels (dim 1) and the spatial dims, per sample."""
    if input.ndim < 2:
        raise RuntimeError(
            f"group_norm: expected an input with 2 or more dims (N, C, ...), got shape "
            f"{list(input.shape)}"
        )
    c = input.shape[1]
    if num_groups <= 0 or c % num_groups != 0:
        raise RuntimeError(
            f"group_norm: Expected number of channels in input to be divisible by num_groups, "
            f"but got input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    _check_param(weight, c, "weight", "group_norm")
    _check_param(bias, c, "bias", "group_norm")
    return dispatch(
        group_norm.opdef,
        [input.contiguous(), _contig(weight), _contig(bias)],
        (int(num_groups), float(eps)),
    )[0]


__all__ = ["batch_norm", "group_norm", "layer_norm"]
