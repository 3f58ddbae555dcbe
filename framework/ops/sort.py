"""Sorting along a dim: sort (values, int64 indices), argsort, topk and msort.
Kernels: csrc/kernels/sort.cpp (a stable sort; NaN orders above every number, like torch).

Gradients route the incoming gradient back to the selected positions with scatter.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as D
from ._common import arg, wrap_dim
from .dispatch import dispatch
from .registry import Sample, defop

SORT_DT = (D.float32, D.float64, D.int64)


class ValuesIndices(tuple):
    """(values, indices), named like torch.return_types.sort / topk."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _select_back(c, gv, dim):
    """d(values)/d(x): the gradient scattered to the positions the indices name."""
    from ..creation import zeros
    from .gather import scatter

    shape = c.shapes[0]
    idx = c.outputs[1]
    if len(shape) == 0:
        return (gv.reshape(()),)
    return (scatter(zeros(shape, dtype=gv.dtype), dim, idx, gv),)


def _distinct(shape, dt, rng=None):
    """Values without ties (so every framework returns the same order)."""
    rng = rng or np.random.default_rng(3)
    n = int(np.prod(shape))
    vals = rng.permutation(n) - n // 2
    if dt.is_floating_point:
        vals = vals * 0.37 + rng.uniform(-0.1, 0.1, n)
    return vals.astype(dt.np).reshape(shape)


def _sort_infer(x, dim, descending, stable):
    return [(tuple(x.shape), x.dtype), (tuple(x.shape), D.int64)]


def _sort_samples(dt):
    return [
        Sample((_distinct((3, 5), dt),)),
        Sample((_distinct((4, 3), dt), 0, True), note="descending"),
        Sample((arg((3, 6), dt),), {"stable": True, "dim": -1}, note="stable-ties"),
        Sample((arg((2, 6), dt),), {"stable": True, "descending": True}, note="stable-desc"),
        Sample((_distinct((4, 6), dt)[:, ::2], 1), note="strided"),
        Sample((arg((3, 0), dt), 1), note="empty"),
        Sample((_distinct((), dt),), note="0-d"),
    ]


@defop(name="sort", inputs=("x",), attrs=("dim", "descending", "stable"), infer=_sort_infer,
       grad=lambda c, gv, gi: _select_back(c, gv, c.attrs[0]), promote=None, dtypes=SORT_DT,
       kernel_dtypes=SORT_DT + (D.bool_,), num_outputs=2, methods=("sort",), torch_ref="torch.sort",
       samples=_sort_samples)
def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along dim; ties keep their order (always stable)."""
    d = wrap_dim(dim, input.ndim, "sort")
    return ValuesIndices(dispatch(sort.opdef, [input], (d, bool(descending), bool(stable))))


def argsort(input, dim=-1, descending=False, stable=False):
    """The indices that sort input along dim."""
    return sort(input, dim, descending, stable)[1]


def msort(input):
    """input sorted along dim 0."""
    return sort(input, 0)[0]


def _topk_infer(x, k, dim, largest, sorted):
    shape = list(x.shape)
    if shape:
        shape[dim] = k
    return [(tuple(shape), x.dtype), (tuple(shape), D.int64)]


def _topk_samples(dt):
    return [
        Sample((_distinct((3, 6), dt), 2)),
        Sample((_distinct((5, 3), dt), 3, 0, False), note="smallest"),
        Sample((_distinct((2, 3, 4), dt), 1, -2), note="neg-dim"),
        Sample((_distinct((4, 8), dt)[:, ::2], 4), note="strided-all"),
        Sample((_distinct((3, 4), dt), 0), note="k0"),
        Sample((arg((0, 4), dt), 2), note="empty"),
    ]


@defop(name="topk", inputs=("x",), attrs=("k", "dim", "largest", "sorted"), infer=_topk_infer,
       grad=lambda c, gv, gi: _select_back(c, gv, c.attrs[1]), promote=None, dtypes=SORT_DT,
       kernel_dtypes=SORT_DT + (D.bool_,), num_outputs=2, methods=("topk",), torch_ref="torch.topk",
       samples=_topk_samples)
def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (or smallest) along dim, in sorted order."""
    d = wrap_dim(dim, input.ndim, "topk")
    size = input.shape[d] if input.ndim else 1
    k = int(k)
    if not 0 <= k <= size:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, size {size} at dim {d})")
    return ValuesIndices(dispatch(topk.opdef, [input], (k, d, bool(largest), bool(sorted))))


__all__ = ["sort", "argsort", "msort", "topk"]
