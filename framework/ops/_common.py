"""Helpers shared by op families: inference rules, broadcasting, gradient reduction and
sample builders for the registry-driven tests. No compute here."""

from __future__ import annotations

import numpy as np

from .. import dtypes as D
from .registry import Sample


def broadcast_shapes(*shapes) -> tuple:
    """torch.broadcast_shapes over tuples (works on symbolic dims too)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        off = ndim - len(s)
        for i, d in enumerate(s):
            cur = out[off + i]
            if cur == 1:
                out[off + i] = d
            elif d != 1 and d != cur:
                raise RuntimeError(
                    f"The size of tensor a ({cur}) must match the size of tensor b ({d}) at "
                    f"non-singleton dimension {off + i}; shapes {[list(x) for x in shapes]}"
                )
    return tuple(out)


def same_infer(x, *attrs):
    return [(tuple(x.shape), x.dtype)]


def binary_infer(a, b, *attrs):
    sa, sb = tuple(a.shape), tuple(b.shape)
    if sa == sb:
        return [(sa, a.dtype)]
    try:
        return [(broadcast_shapes(tuple(a.shape), tuple(b.shape)), a.dtype)]
    except RuntimeError as e:
        raise RuntimeError(f"{e}") from None


def compare_infer(a, b, *attrs):
    return [(broadcast_shapes(tuple(a.shape), tuple(b.shape)), D.bool_)]


def wrap_dim(dim: int, ndim: int, op: str = "") -> int:
    n = max(ndim, 1)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return int(dim) % n


def sum_to(g, shape):
    """Reduces a broadcast gradient back to `shape` (sums leading and size-1 dims)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    dims = list(range(lead))
    for i, s in enumerate(shape):
        if s == 1 and g.shape[lead + i] != 1:
            dims.append(lead + i)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    if lead:
        g = g.reshape(shape)
    elif tuple(g.shape) != shape:
        g = g.reshape(shape)
    return g


# ---- sample builders (numpy arrays; the tests convert them for each framework) -----------
_rng = np.random.default_rng(0)


def arg(shape, dtype=D.float32, low=-2.0, high=2.0, rng=None):
    rng = rng or _rng
    if dtype is D.bool_:
        return np.asarray(rng.random(shape) > 0.5)
    if not dtype.is_floating_point:
        return rng.integers(int(low) if low > -100 else -5, int(high) + 1 if high < 100 else 6,
                            size=shape).astype(dtype.np).reshape(shape)
    return np.asarray(rng.uniform(low, high, size=shape).astype(dtype.np))


def unary_samples(low=-2.0, high=2.0):
    def samples(dtype):
        return [
            Sample((arg((3, 4), dtype, low, high),)),
            Sample((arg((), dtype, low, high),), note="0-d"),
            Sample((arg((2, 0, 3), dtype, low, high),), note="empty"),
            Sample((arg((2, 3, 5), dtype, low, high)[:, ::2],), note="strided"),
        ]

    return samples


def binary_samples(low=-2.0, high=2.0, low_b=None, high_b=None):
    low_b = low if low_b is None else low_b
    high_b = high if high_b is None else high_b

    def samples(dtype):
        return [
            Sample((arg((3, 4), dtype, low, high), arg((3, 4), dtype, low_b, high_b))),
            Sample((arg((2, 3, 4), dtype, low, high), arg((3, 1), dtype, low_b, high_b)), note="broadcast"),
            Sample((arg((4,), dtype, low, high), arg((), dtype, low_b, high_b)), note="0-d"),
            Sample((arg((3, 4), dtype, low, high).T, arg((4, 3), dtype, low_b, high_b)), note="transposed"),
        ]

    return samples
