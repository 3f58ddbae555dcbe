"""dropout (torch.nn.functional name and semantics) with a counter-based mask: the kernel
draws keep bits from a seed taken from framework.creation.default_generator, and outputs
the mask so backward reuses it. Kernel: csrc/kernels/dropout.cpp. No compute here."""

from __future__ import annotations

from .. import dtypes as D
from ._common import arg
from .dispatch import dispatch
from .registry import Sample, defop


def _dropout_grad(c, g, _gmask):
    from .elementwise import where

    p = c.attrs[0]
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0
    return (where(c.outputs[1], g * scale, 0.0),)


@defop(
    name="dropout",
    inputs=("x",),
    attrs=("p", "seed"),
    infer=lambda x, p, seed: [(tuple(x.shape), x.dtype), (tuple(x.shape), D.bool_)],
    grad=_dropout_grad,
    num_outputs=2,
    torch_ref="torch.nn.functional.dropout",
    onnx_reason="random op: removed from eval graphs by the dropout-removal pass",
    samples=lambda dt: [
        Sample((arg((3, 4), dt), 0.0), note="p=0 is the identity"),
        Sample((arg((3, 4), dt), 0.5, False), note="eval is the identity"),
        Sample((arg((2, 3), dt),), {"p": 0.7, "training": False}, note="eval kwargs"),
    ],
)
def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability p and scales the rest by 1/(1-p) (training only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"dropout: expected a floating point input, got {input.dtype.name}")
    from ..creation import default_generator

    out, _mask = dispatch(
        dropout.opdef, [input.contiguous()], (float(p), int(default_generator.next_seed()))
    )
    if inplace and not input.requires_grad:
        from .dispatch import _copy_into

        _copy_into(input, out)
        return input
    return out


__all__ = ["dropout"]
