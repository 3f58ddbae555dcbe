"""scaled_dot_product_attention (torch.nn.functional name and semantics) as one fused op,
with its backward as a registered op. Kernels: csrc/kernels/attention.cpp.

The forward op outputs (out, P) where P = softmax(scale * Q K^T + mask) before dropout;
backward uses P and regenerates the dropout mask from the same seed. No compute here."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as D
from ._common import arg, broadcast_shapes, sum_to
from .dispatch import dispatch
from .registry import Sample, defop

_OP = "scaled_dot_product_attention"


def _sdpa_infer(q, k, v, mask, is_causal, scale, dropout_p, seed):
    batch = tuple(q.shape[:-2])
    return [
        (batch + (q.shape[-2], v.shape[-1]), q.dtype),
        (batch + (q.shape[-2], k.shape[-2]), q.dtype),
    ]


def _sdpa_backward_infer(go, q, k, v, p, scale, dropout_p, seed):
    return [
        (tuple(q.shape), q.dtype),
        (tuple(k.shape), k.dtype),
        (tuple(v.shape), v.dtype),
        (tuple(p.shape), p.dtype),
    ]


@defop(
    name=_OP + "_backward",
    inputs=("grad_output", "query", "key", "value", "attn_weights"),
    attrs=("scale", "dropout_p", "seed"),
    infer=_sdpa_backward_infer,
    differentiable=False,
    num_outputs=4,
    tags=("backward",),
    samples=lambda dt: [
        Sample(
            (
                arg((2, 3, 4), dt),
                arg((2, 3, 4), dt),
                arg((2, 5, 4), dt),
                arg((2, 5, 4), dt),
                arg((2, 3, 5), dt, 0.0, 0.4),
                0.5,
                0.0,
                0,
            ),
            grad=False,
        )
    ],
)
def scaled_dot_product_attention_backward(
    grad_output, query, key, value, attn_weights, scale, dropout_p=0.0, seed=0
):
    """(grad_query, grad_key, grad_value, grad_scores) of attention from its saved weights."""
    return dispatch(
        scaled_dot_product_attention_backward.opdef,
        [grad_output.contiguous(), query, key, value, attn_weights.contiguous()],
        (float(scale), float(dropout_p), int(seed)),
    )


def _sdpa_grad(c, gout, _gp):
    q, k, v, mask = c.inputs[0], c.inputs[1], c.inputs[2], c.inputs[3]
    _causal, scale, dropout_p, seed = c.attrs
    gq, gk, gv, gs = scaled_dot_product_attention_backward(
        gout, q, k, v, c.outputs[1], scale, dropout_p, seed
    )
    need = c.needs_input_grad
    gmask = None
    if mask is not None and need[3] and mask.dtype.is_floating_point:
        gmask = sum_to(gs, tuple(mask.shape))
    return (gq if need[0] else None, gk if need[1] else None, gv if need[2] else None, gmask)


def _sdpa_samples(dt):
    b = np.random.default_rng(3)
    bool_mask = b.random((3, 5)) > 0.4
    bool_mask[:, 0] = True
    float_mask = arg((2, 1, 3, 5), dt)
    float_mask[0, 0, 1, :2] = -np.inf
    full_masked = np.ones((3, 5), dtype=bool)
    full_masked[1] = False
    return [
        Sample((arg((2, 3, 4), dt), arg((2, 5, 4), dt), arg((2, 5, 6), dt))),
        Sample(
            (arg((2, 2, 3, 4), dt), arg((2, 2, 5, 4), dt), arg((2, 2, 5, 4), dt), bool_mask),
            note="bool mask",
        ),
        Sample(
            (arg((2, 2, 3, 4), dt), arg((2, 2, 5, 4), dt), arg((2, 2, 5, 4), dt), float_mask),
            note="float mask with -inf, broadcast heads",
        ),
        Sample(
            (arg((1, 2, 4, 4), dt), arg((1, 2, 4, 4), dt), arg((1, 2, 4, 3), dt)),
            {"is_causal": True},
            note="causal",
        ),
        Sample(
            (arg((2, 3, 4), dt), arg((2, 5, 4), dt), arg((2, 5, 4), dt)),
            {"scale": 0.3},
            note="scale",
        ),
        Sample(
            (arg((2, 3, 4), dt), arg((2, 5, 4), dt), arg((2, 5, 4), dt), full_masked),
            note="fully masked row",
        ),
        Sample((arg((3, 4), dt), arg((5, 4), dt), arg((5, 2), dt)), note="2-d"),
    ]


@defop(
    name=_OP,
    inputs=("query", "key", "value", "attn_mask?"),
    attrs=("is_causal", "scale", "dropout_p", "seed"),
    infer=_sdpa_infer,
    grad=_sdpa_grad,
    promote=(0, 1, 2),
    num_outputs=2,
    torch_ref="torch.nn.functional.scaled_dot_product_attention",
    tags=("fused",),
    samples=_sdpa_samples,
)
def scaled_dot_product_attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
):
    """softmax(query @ key^T * scale + mask) @ value, with optional causal mask and dropout."""
    if enable_gqa:
        raise NotImplementedError(f"{_OP}: enable_gqa=True is not supported")
    qs, ks, vs = query.shape, key.shape, value.shape
    if len(qs) < 2 or not (len(qs) == len(ks) == len(vs)):
        raise RuntimeError(
            f"{_OP}: query, key and value must have the same number (>= 2) of dims; got "
            f"query {list(qs)}, key {list(ks)}, value {list(vs)}"
        )
    if qs[:-2] != ks[:-2] or ks[:-2] != vs[:-2] or qs[-1] != ks[-1] or ks[-2] != vs[-2]:
        raise RuntimeError(
            f"{_OP}: incompatible shapes query {list(qs)}, key {list(ks)}, value {list(vs)}")
    if is_causal and attn_mask is not None:
        raise RuntimeError(f"{_OP}: Explicit attn_mask should not be set when is_causal=True")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(
            f"{_OP}: dropout probability has to be between 0 and 1, but got {dropout_p}"
        )
    if attn_mask is not None:
        full = tuple(qs[:-2]) + (qs[-2], ks[-2])
        try:
            ok = broadcast_shapes(tuple(attn_mask.shape), full) == full
        except RuntimeError:
            ok = False
        if not ok:
            raise RuntimeError(
                f"{_OP}: attn_mask of shape {list(attn_mask.shape)} does not broadcast to {list(full)}"
            )
        if attn_mask.dtype is not D.bool_ and attn_mask.dtype is not query.dtype:
            from .elementwise import to

            attn_mask = to(attn_mask, query.dtype)
    if scale is None:
        scale = 1.0 / math.sqrt(qs[-1]) if qs[-1] else 1.0
    seed = 0
    if dropout_p > 0:
        from ..creation import default_generator

        seed = default_generator.next_seed()
    out, _ = dispatch(
        scaled_dot_product_attention.opdef,
        [query, key, value, attn_mask],  # read through their strides (no copies here)
        (bool(is_causal), float(scale), float(dropout_p), int(seed)),
    )
    return out


__all__ = ["scaled_dot_product_attention"]
