"""Losses with torch.nn.functional names and semantics: nll_loss, mse_loss, l1_loss,
smooth_l1_loss, binary_cross_entropy, binary_cross_entropy_with_logits (kernel ops, each
with a registered backward op) and cross_entropy (a composite of log_softmax and nll_loss,
so the tracer records those primitives). reduction is 'mean' | 'sum' | 'none' everywhere;
the kernels take torch's reduction code (0 none, 1 mean, 2 sum). Kernels:
csrc/kernels/loss.cpp. No compute here."""

from __future__ import annotations

import warnings

import numpy as np

from .. import dtypes as D
from ._common import arg, broadcast_shapes
from .dispatch import dispatch
from .registry import Sample, defop

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _reduction(reduction, size_average=None, reduce=None) -> int:
    """torch's reduction code, honoring the legacy size_average/reduce flags."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return _REDUCTIONS[reduction]


def _broadcast_to(t, shape):
    if t is None:
        return None
    if tuple(t.shape) != tuple(shape):
        t = t.expand(*shape)
    return t.contiguous()


# ---- nll_loss ----------------------------------------------------------------------------


def _nll_infer(x, t, w, reduction, ignore_index):
    return [(tuple(t.shape) if reduction == 0 else (), x.dtype), ((), x.dtype)]


@defop(
    name="nll_loss_backward",
    inputs=("grad_output", "input", "target", "weight?", "total_weight"),
    attrs=("reduction", "ignore_index"),
    infer=lambda g, x, *rest: [(tuple(x.shape), x.dtype)],
    promote=None,
    differentiable=False,
    tags=("backward",),
    samples=lambda dt: [
        Sample(
            (
                arg((), dt),
                arg((3, 4), dt),
                np.array([0, 3, 1]),
                None,
                np.array(3.0, dt.np),
                1,
                -100,
            ),
            grad=False,
        )
    ],
)
def nll_loss_backward(
    grad_output, input, target, weight, total_weight, reduction, ignore_index=-100
):
    """Gradient of nll_loss w.r.t. its input (zeros except -weight[target] * grad)."""
    return dispatch(
        nll_loss_backward.opdef,
        [grad_output.contiguous(), input.contiguous(), target.contiguous(), weight, total_weight],
        (int(reduction), int(ignore_index)),
    )


def _nll_grad(c, g, _gtotal):
    x, t, w = c.inputs[0], c.inputs[1], c.inputs[2]
    return (nll_loss_backward(g, x, t, w, c.outputs[1], *c.attrs), None, None)


def _check_class_target(input, target, op):
    if target.dtype is D.int32:
        from .elementwise import to

        target = to(target, D.int64)
    if target.dtype is not D.int64:
        raise RuntimeError(
            f"{op}: expected target of dtype int64 (class indices), got {target.dtype.name}"
        )
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dim (classes), got a 0-d tensor")
    if input.ndim == 1:
        ok = target.ndim == 0
    elif input.ndim == 2:
        if target.ndim != 1 or target.shape[0] != input.shape[0]:
            raise ValueError(
                f"{op}: Expected input batch_size ({input.shape[0]}) to match target batch_size "
                f"({target.shape[0] if target.ndim else 'scalar'}); input {list(input.shape)}, "
                f"target {list(target.shape)}"
            )
        ok = True
    else:
        ok = tuple(target.shape) == (input.shape[0],) + tuple(input.shape[2:])
    if not ok:
        expected = [input.shape[0]] + list(input.shape[2:]) if input.ndim > 1 else []
        raise RuntimeError(
            f"{op}: Expected target size {expected}, got {list(target.shape)} "
            f"(input {list(input.shape)})"
        )
    return target


def _check_class_weight(input, weight, op):
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != c):
        raise RuntimeError(
            f"{op}: weight tensor should be defined either for all {c} classes or no classes but "
            f"got weight tensor of shape: {list(weight.shape)}"
        )


def _nll_samples(dt):
    t = np.array([1, 0, 4, 2], dtype=np.int64)
    # ignore_index -1 keeps the targets' range valid for graph checks that draw new ints in
    # [min, max]; the default -100 is covered in test_nn_ops
    t_ign = np.array([1, -1, 4, 2], dtype=np.int64)
    return [
        Sample((arg((4, 5), dt), t)),
        Sample(
            (arg((4, 5), dt), t_ign),
            {"reduction": "sum", "ignore_index": -1},
            note="ignore_index present, sum",
        ),
        # torch: nll_loss is not differentiable w.r.t. weight (see test_nn_ops for input grads)
        Sample(
            (arg((4, 5), dt), t_ign, arg((5,), dt, 0.5, 2.0)),
            {"ignore_index": -1},
            grad=False,
            note="weight, ignore_index",
        ),
        Sample((arg((4, 5), dt), t), {"ignore_index": 2, "reduction": "none"}, note="none"),
        Sample((arg((2, 3, 4), dt), np.array([[0, 2, 1, 1], [2, 2, 0, 1]])), note="spatial"),
        Sample((arg((5,), dt), np.array(3)), note="unbatched"),
    ]


@defop(
    name="nll_loss",
    inputs=("input", "target", "weight?"),
    attrs=("reduction", "ignore_index"),
    infer=_nll_infer,
    grad=_nll_grad,
    promote=(0, 2),
    num_outputs=2,
    torch_ref="torch.nn.functional.nll_loss",
    samples=_nll_samples,
)
def nll_loss(
    input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"
):
    """Negative log likelihood of class-index targets given log-probabilities (dim 1)."""
    return _nll_with_total(
        input, target, weight, _reduction(reduction, size_average, reduce), ignore_index
    )[0]


def _nll_with_total(input, target, weight, red, ignore_index):
    target = _check_class_target(input, target, "nll_loss")
    _check_class_weight(input, weight, "nll_loss")
    return dispatch(
        nll_loss.opdef,
        [input.contiguous(), target.contiguous(), None if weight is None else weight.contiguous()],
        (red, int(ignore_index)),
    )


# ---- cross_entropy (composite) -----------------------------------------------------------


def _class_weight_view(weight, input, class_dim):
    return weight.reshape((weight.shape[0],) + (1,) * (input.ndim - class_dim - 1))


def _cross_entropy_composite(input, target, weight, red, ignore_index, label_smoothing):
    from .softmax import log_softmax

    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = log_softmax(input, class_dim)
    if target.dtype.is_floating_point:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(
                f"cross_entropy: probability targets must have the input's shape; got input "
                f"{list(input.shape)}, target {list(target.shape)}"
            )
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp * target
        if weight is not None:
            prod = prod * _class_weight_view(weight, input, class_dim)
        loss = -prod.sum(class_dim)
        if red == 1:  # the mean over the non-class elements (nan when empty, like torch)
            return loss.mean()
        return loss.sum() if red == 2 else loss
    nll, total = _nll_with_total(logp, target, weight, red, ignore_index)
    if label_smoothing == 0:
        return nll
    lp = logp * _class_weight_view(weight, input, class_dim) if weight is not None else logp
    smooth = (-lp.sum(class_dim)).masked_fill(target == ignore_index, 0.0)
    if red == 1:
        smooth = smooth.sum() / total
    elif red == 2:
        smooth = smooth.sum()
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _ce_samples(dt):
    t = np.array([1, 0, 4, 2], dtype=np.int64)
    t_ign = np.array([1, -1, 4, 2], dtype=np.int64)  # with ignore_index=-1 (see _nll_samples)
    ig = {"ignore_index": -1}
    probs = np.random.default_rng(5).dirichlet(np.ones(5), size=4).astype(dt.np)
    return [
        Sample((arg((4, 5), dt), t)),
        Sample((arg((4, 5), dt), t_ign), ig, note="ignore_index present"),
        Sample(
            (arg((4, 5), dt), t_ign, arg((5,), dt, 0.5, 2.0)),
            {"label_smoothing": 0.2, **ig},
            grad=False,
            note="weight, ignore_index, label_smoothing",
        ),
        Sample(
            (arg((4, 5), dt), t_ign),
            {"label_smoothing": 0.1, "reduction": "sum", **ig},
            note="smoothing, sum",
        ),
        Sample(
            (arg((4, 5), dt), t_ign),
            {"label_smoothing": 0.3, "reduction": "none", **ig},
            note="smoothing, none",
        ),
        Sample(
            (arg((2, 3, 4), dt), np.array([[0, 2, 1, 1], [2, 2, 0, 1]])),
            {"reduction": "none"},
            note="spatial",
        ),
        Sample((arg((4, 5), dt), probs), note="probability targets"),
        Sample(
            (arg((4, 5), dt), probs, arg((5,), dt, 0.5, 2.0)),
            {"label_smoothing": 0.1, "reduction": "sum"},
            grad=False,
            note="probability targets, weight, smoothing",
        ),
        Sample((arg((5,), dt), np.array(3)), note="unbatched"),
    ]


@defop(
    name="cross_entropy",
    inputs=("input", "target", "weight?"),
    attrs=("reduction", "ignore_index", "label_smoothing"),
    kernel=None,
    composite=_cross_entropy_composite,
    promote=None,
    torch_ref="torch.nn.functional.cross_entropy",
    samples=_ce_samples,
)
def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
):
    """log_softmax over dim 1 then nll_loss (class indices) or -sum(p * log_softmax) (probabilities)."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}"
        )
    return dispatch(
        cross_entropy.opdef,
        [input, target, weight],
        (_reduction(reduction, size_average, reduce), int(ignore_index), float(label_smoothing)),
    )


# ---- pointwise losses --------------------------------------------------------------------


def _pointwise_infer(x, t, w, pw, reduction, beta):
    return [(tuple(x.shape) if reduction == 0 else (), x.dtype)]


def _pointwise_backward_infer(g, x, t, w, pw, reduction, beta):
    return [(tuple(x.shape), x.dtype), (tuple(x.shape), x.dtype)]


def _pointwise_loss(name, samples, doc, tags=()):
    """Registers <name> and <name>_backward; returns (forward fn taking broadcast operands)."""

    def backward(grad_output, input, target, weight, pos_weight, reduction, beta):
        return dispatch(
            backward.opdef,
            [grad_output.contiguous(), input, target, weight, pos_weight],
            (int(reduction), float(beta)),
        )

    backward.__name__ = name + "_backward"
    backward.__doc__ = f"(grad_input, grad_target) of {name}."
    defop(
        name=name + "_backward",
        inputs=("grad_output", "input", "target", "weight?", "pos_weight?"),
        attrs=("reduction", "beta"),
        infer=_pointwise_backward_infer,
        differentiable=False,
        num_outputs=2,
        tags=("backward",),
        samples=lambda dt: [
            Sample(
                (
                    arg((), dt),
                    arg((3, 4), dt, 0.1, 0.9),
                    arg((3, 4), dt, 0.1, 0.9),
                    None,
                    None,
                    1,
                    1.0,
                ),
                grad=False,
            )
        ],
    )(backward)

    def grad(c, g):
        x, t, w, pw = c.inputs
        gx, gt = backward(g, x, t, w, pw, *c.attrs)
        need = c.needs_input_grad
        return (gx if need[0] else None, gt if need[1] else None, None, None)

    def op(input, target, weight, pos_weight, reduction, beta):
        return dispatch(
            op.opdef, [input, target, weight, pos_weight], (int(reduction), float(beta))
        )

    op.__name__ = name
    op.__doc__ = doc
    return defop(
        name=name,
        inputs=("input", "target", "weight?", "pos_weight?"),
        attrs=("reduction", "beta"),
        infer=_pointwise_infer,
        grad=grad,
        float_compute=True,
        samples=samples,
        tags=tags,
        torch_ref=f"torch.nn.functional.{name}",
    )(op)


def _broadcast_pair(input, target, op):
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"{op}: Using a target size ({list(target.shape)}) that is different to the input size "
            f"({list(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=3,
        )
        try:
            shape = broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except RuntimeError as e:
            raise RuntimeError(
                f"{op}: input {list(input.shape)} and target {list(target.shape)}: {e}"
            ) from None
        return _broadcast_to(input, shape), _broadcast_to(target, shape)
    return input.contiguous(), target.contiguous()


def _weighted(fn, name):
    """mse_loss / l1_loss with torch's optional weight: sum(w * l) / sum(w) for 'mean'."""

    def public(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
        red = _reduction(reduction, size_average, reduce)
        x, t = _broadcast_pair(input, target, name)
        if weight is None:
            return fn(x, t, None, None, red, 0.0)
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError("Weights and input must have the same size.")
        loss = fn(x, t, None, None, 0, 0.0) * weight
        if red == 0:
            return loss
        return loss.sum() / weight.sum() if red == 1 else loss.sum()

    public.__name__ = name
    public.__doc__ = fn.__doc__
    fn.opdef.fn = public
    return public


def _reg_samples(low=-2.0, high=2.0):
    def samples(dt):
        return [
            Sample((arg((3, 4), dt), arg((3, 4), dt))),
            Sample((arg((3, 4), dt), arg((3, 4), dt)), {"reduction": "sum"}, note="sum"),
            Sample((arg((3, 4), dt), arg((3, 4), dt)), {"reduction": "none"}, note="none"),
            Sample(
                (arg((2, 3), dt), arg((2, 3), dt), None, None, "mean"),
                note="positional legacy args",
            ),
            Sample((arg((2, 5), dt), arg((5,), dt)), note="broadcast target"),
        ]

    return samples


def _weighted_samples(dt):
    return _reg_samples()(dt) + [
        Sample(
            (arg((3, 4), dt), arg((3, 4), dt), None, None, "mean", arg((3, 4), dt, 0.5, 2.0)),
            note="weight",
        ),
        Sample(
            (arg((3, 4), dt), arg((3, 4), dt), None, None, "none", arg((3, 4), dt, 0.5, 2.0)),
            note="weight, none",
        ),
    ]


_mse = _pointwise_loss("mse_loss", _weighted_samples, "Mean squared error (x - target)^2, reduced.")
_l1 = _pointwise_loss("l1_loss", _weighted_samples, "Mean absolute error |x - target|, reduced.")
mse_loss = _weighted(_mse, "mse_loss")
l1_loss = _weighted(_l1, "l1_loss")

_smooth_l1 = _pointwise_loss(
    "smooth_l1_loss",
    lambda dt: (
        _reg_samples()(dt)
        + [
            Sample((arg((3, 4), dt), arg((3, 4), dt)), {"beta": 0.5}, note="beta"),
            Sample((arg((3, 4), dt), arg((3, 4), dt)), {"beta": 0.0}, note="beta=0 is l1"),
        ]
    ),
    "Huber-style loss: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2.",
)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Huber-style loss: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2."""
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    x, t = _broadcast_pair(input, target, "smooth_l1_loss")
    return _smooth_l1(x, t, None, None, _reduction(reduction, size_average, reduce), float(beta))


_smooth_l1.opdef.fn = smooth_l1_loss


def _bce_samples(dt):
    x = arg((3, 4), dt, 0.05, 0.95)
    t = arg((3, 4), dt, 0.0, 1.0)
    edge = x.copy()
    edge[0, :2] = (0.0, 1.0)  # log clamped at -100
    return [
        Sample((x, t)),
        Sample((x, t), {"reduction": "sum"}, note="sum"),
        Sample((x, t), {"reduction": "none"}, note="none"),
        Sample(
            (x, t, arg((4,), dt, 0.5, 2.0)), grad=False, note="weight (torch: not differentiable)"
        ),
        Sample((edge, t), grad=False, note="input 0 and 1"),
    ]


# "restricted_domain": inputs outside [0, 1] raise (like torch), so tests that draw fresh
# random inputs for an op must not use them for this one
_bce = _pointwise_loss(
    "binary_cross_entropy",
    _bce_samples,
    "-w (t log x + (1 - t) log(1 - x)), with log clamped at -100 like torch.",
    tags=("restricted_domain",),
)


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
):
    """-w (t log x + (1 - t) log(1 - x)) for probabilities x, reduced."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({list(target.shape)}) that is different to the input size "
            f"({list(input.shape)}) is deprecated. Please ensure they have the same size."
        )
    shape = tuple(input.shape)
    return _bce(
        input.contiguous(),
        target.contiguous(),
        _broadcast_to(weight, shape),
        None,
        _reduction(reduction, size_average, reduce),
        0.0,
    )


_bce.opdef.fn = binary_cross_entropy


def _bce_logits_samples(dt):
    x = arg((3, 4), dt, -4, 4)
    t = arg((3, 4), dt, 0.0, 1.0)
    return [
        Sample((x, t)),
        Sample((x, t), {"reduction": "none"}, note="none"),
        Sample((arg((3, 4), dt, -40, 40), t), {"reduction": "sum"}, note="large logits"),
        Sample(
            (x, t, None, None, None, "mean", arg((4,), dt, 0.5, 3.0)), grad=False, note="pos_weight"
        ),
        Sample(
            (x, t, arg((3, 1), dt, 0.5, 2.0), None, None, "sum", arg((4,), dt, 0.5, 3.0)),
            grad=False,
            note="weight and pos_weight",
        ),
    ]


_bce_logits = _pointwise_loss(
    "binary_cross_entropy_with_logits",
    _bce_logits_samples,
    "Sigmoid + binary cross entropy in one numerically stable step.",
)


def binary_cross_entropy_with_logits(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None
):
    """Sigmoid + binary cross entropy in one stable step, with per-class pos_weight."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({list(target.shape)}) must be the same as input size ({list(input.shape)})"
        )
    shape = tuple(input.shape)
    try:
        w = _broadcast_to(weight, shape)
        pw = _broadcast_to(pos_weight, shape)
    except RuntimeError as e:
        raise RuntimeError(
            f"binary_cross_entropy_with_logits: weight/pos_weight do not broadcast to input "
            f"{list(shape)}: {e}"
        ) from None
    return _bce_logits(
        input.contiguous(),
        target.contiguous(),
        w,
        pw,
        _reduction(reduction, size_average, reduce),
        0.0,
    )


_bce_logits.opdef.fn = binary_cross_entropy_with_logits

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]
