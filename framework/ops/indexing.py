"""Tensor indexing: x[...] reads and x[...] = v writes.

Basic indexing (ints, slices, None, Ellipsis) is composed from the registered view ops
(select, slice, reshape), so it shares storage in eager mode and traces into graph ops.
Advanced indexing (integer or bool tensors) goes through the "index" op when it is
registered (see ops/gather.py)."""

from __future__ import annotations

import numpy as np

from .. import dtypes as D


def _is_tensor(x):
    return hasattr(x, "_data")


def _normalize(index):
    if not isinstance(index, tuple):
        index = (index,)
    return index


def _expand_ellipsis(index, ndim):
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis and not (
        _is_tensor(i) and i.dtype is D.bool_) and not isinstance(i, (bool, np.bool_)))
    n_real += sum(i.ndim for i in index if _is_tensor(i) and i.dtype is D.bool_)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    out = []
    for i in index:
        if i is Ellipsis:
            out.extend([slice(None)] * (ndim - n_real))
        else:
            out.append(i)
    return out


def getitem(x, index):
    """x[index] with torch/numpy semantics."""
    from . import shape as S

    index = _expand_ellipsis(_normalize(index), x.ndim)
    advanced = [(pos, i) for pos, i in enumerate(index)
                if _is_tensor(i) or isinstance(i, (list, np.ndarray)) or isinstance(i, (bool, np.bool_))]
    if advanced:
        from .gather import advanced_getitem

        return advanced_getitem(x, index)
    out = x
    dim = 0
    for i in index:
        if i is None:
            out = S.unsqueeze(out, dim)
            dim += 1
        elif isinstance(i, slice):
            step = 1 if i.step is None else i.step
            if step <= 0:
                raise ValueError("step must be greater than zero")
            out = S.slice_op(out, dim, i.start, i.stop, step)
            dim += 1
        elif isinstance(i, (int, np.integer)):
            size = out.shape[dim]
            if not -size <= i < size:
                raise IndexError(f"index {int(i)} is out of bounds for dimension {dim} with size {size}")
            out = S.select(out, dim, int(i))
        else:
            raise IndexError(f"unsupported index type {type(i).__name__}: only integers, slices (`:`), "
                             "ellipsis (`...`), None and integer or boolean tensors are valid indices")
    return out


def setitem(x, index, value):
    """x[index] = value, in place (bumps x's version)."""
    from .. import autograd as AG
    from .dispatch import _copy_into
    from ..creation import tensor

    if AG.is_grad_enabled() and (x.requires_grad or (_is_tensor(value) and value.requires_grad)):
        raise NotImplementedError(
            "in-place indexed assignment on tensors that require grad is not supported yet; "
            "use torch-style functional ops (where, index_put, scatter) or wrap in no_grad()")
    idx = _expand_ellipsis(_normalize(index), x.ndim)
    if any(_is_tensor(i) or isinstance(i, (list, np.ndarray, bool, np.bool_)) for i in idx):
        from .gather import advanced_setitem

        return advanced_setitem(x, idx, value)
    with AG.no_grad():
        target = getitem(x, tuple(idx))
        if not _is_tensor(value):
            value = tensor(value, dtype=x.dtype)
        if target._data.base is None and target is not x and not np.shares_memory(target._data, x._data):
            raise RuntimeError("internal error: basic index did not produce a view")
        from ._common import broadcast_shapes

        if broadcast_shapes(tuple(target.shape), tuple(value.shape)) != tuple(target.shape):
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be "
                               f"broadcast to indexing result of shape {list(target.shape)}")
        _copy_into(target, value)
        if target._version is not x._version:
            x._version.value += 1
