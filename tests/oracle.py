"""Comparison helpers: framework vs torch, shape first, then dtype, then values, with
tolerances from one per-dtype table."""

from __future__ import annotations

import numpy as np
import torch

import framework as fw

TOL = {
    fw.float32: dict(rtol=1e-4, atol=1e-5),
    fw.float64: dict(rtol=1e-7, atol=1e-9),
    fw.int32: dict(rtol=0, atol=0),
    fw.int64: dict(rtol=0, atol=0),
    fw.bool: dict(rtol=0, atol=0),
}
GRAD_TOL = {fw.float32: dict(rtol=1e-3, atol=1e-4), fw.float64: dict(rtol=1e-6, atol=1e-8)}

TORCH_DTYPE = {fw.float32: torch.float32, fw.float64: torch.float64, fw.int32: torch.int32,
               fw.int64: torch.int64, fw.bool: torch.bool}
FW_DTYPE = {v: k for k, v in TORCH_DTYPE.items()}


def resolve(dotted: str):
    obj = torch
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def to_torch(v, requires_grad=False):
    if isinstance(v, np.ndarray):
        t = torch.from_numpy(np.array(v, copy=True)) if v.flags.c_contiguous else torch.from_numpy(
            np.ascontiguousarray(v)).as_strided(v.shape, [s // v.itemsize for s in v.strides]) if False else torch.from_numpy(np.array(v))
        return t.requires_grad_(requires_grad and t.is_floating_point())
    if isinstance(v, fw.dtype):
        return TORCH_DTYPE[v]
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], np.ndarray):
        return type(v)(to_torch(x, requires_grad) for x in v)
    return v


def to_fw(v, requires_grad=False):
    if isinstance(v, np.ndarray):
        # keep the sample's strides: fw views over a copy of the base
        t = fw.from_numpy(v.copy() if v.flags.c_contiguous else _strided_copy(v))
        return t.requires_grad_(requires_grad and t.is_floating_point())
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], np.ndarray):
        return type(v)(to_fw(x, requires_grad) for x in v)
    return v


def _strided_copy(v):
    """A non-contiguous array equal to v (so strided kernel paths are exercised)."""
    big = np.empty(v.shape[:-1] + (v.shape[-1] * 2,), dtype=v.dtype) if v.ndim else np.empty((), v.dtype)
    view = big[..., ::2] if v.ndim else big
    view[...] = v
    return view


def as_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, fw.Tensor):
        return x.detach()._data
    return np.asarray(x)


def assert_close(got, expected, dtype=None, what="", tol=None):
    """Compares a framework tensor with a torch tensor: shape, then dtype, then values."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected), f"{what}: output count"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, dtype, f"{what}[{i}]", tol)
        return
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, fw.Tensor), f"{what}: expected a Tensor, got {type(got).__name__}"
        assert tuple(got.shape) == tuple(expected.shape), \
            f"{what}: shape {tuple(got.shape)} != torch {tuple(expected.shape)}"
        assert got.dtype is FW_DTYPE[expected.dtype], f"{what}: dtype {got.dtype} != torch {expected.dtype}"
        t = tol or TOL[got.dtype]
        np.testing.assert_allclose(as_numpy(got), as_numpy(expected), equal_nan=True, err_msg=what, **t)
    else:
        assert got == expected or np.allclose(got, expected), f"{what}: {got} != {expected}"
