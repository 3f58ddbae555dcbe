"""Small composites shared by the recurrent and attention layers (registered ops only)."""

from __future__ import annotations

from ... import autograd as AG
from ...creation import zeros
from ...ops import shape as S
from .. import functional as F


def stack(tensors, dim: int = 0):
    """torch.stack: the registered op when present, else select_scatter into zeros."""
    fn = F._op("stack")
    if fn is not None:
        return fn(list(tensors), dim)
    t0 = tensors[0]
    d = dim % (t0.ndim + 1)
    shape = tuple(t0.shape[:d]) + (len(tensors),) + tuple(t0.shape[d:])
    out = zeros(shape, dtype=t0.dtype)
    from ...ops.registry import TRACE

    # (not while tracing: the slot copies bypass dispatch, so a graph would not see them)
    if TRACE.tracer is None and not (AG.is_grad_enabled() and any(t.requires_grad for t in tensors)):
        # no autograd history needed: copy each piece into its slot (linear time)
        from ...ops.dispatch import _copy_into

        for i, t in enumerate(tensors):
            if tuple(t.shape) != tuple(t0.shape):
                raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                                   f"{list(t0.shape)} at entry 0 and {list(t.shape)} at entry {i}")
            _copy_into(S.select(out, d, i), t)
        return out
    for i, t in enumerate(tensors):
        out = S.select_scatter(out, t, d, i)
    return out


def chunk(x, n: int, dim: int = -1):
    """n equal pieces of x along dim (views)."""
    size = x.shape[dim] // n
    return [S.narrow(x, dim, i * size, size) for i in range(n)]
