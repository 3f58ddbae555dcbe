"""Layer parity helper: the same layer in torch and framework, framework weights copied from
the torch layer through load_state_dict (so the state_dict keys must match), then forward
outputs, input gradients and parameter gradients compared with torch as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from tests.oracle import as_numpy

F32 = dict(rtol=2e-4, atol=2e-5)
F64 = dict(rtol=1e-7, atol=1e-9)


def needs_op(name: str):
    """Skips a test until the op `name` is registered (its op family lands on main later)."""
    return pytest.mark.skipif(
        fw.nn.functional._op(name) is None, reason=f"op {name!r} not registered yet"
    )


def _to_pair(x, requires_grad):
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(x.copy())
        f = fw.from_numpy(x.copy())
        if requires_grad and x.dtype.kind == "f":
            t.requires_grad_(True)
            f.requires_grad_(True)
        return t, f
    return x, x


def _flat(out):
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flat(o))
        return res
    return [out] if out is not None else []


def check_parity(
    fw_mod,
    t_mod,
    *inputs,
    train: bool = True,
    grad: bool = True,
    dtype=np.float32,
    tol=None,
    kwargs=None,
    what="",
):
    """Asserts fw_mod(*inputs) == t_mod(*inputs) in value and gradient (inputs: numpy arrays)."""
    kwargs = kwargs or {}
    tol = tol or (F32 if dtype == np.float32 else F64)
    if dtype == np.float64:
        t_mod.double()
        fw_mod.double()
    missing = fw_mod.load_state_dict(t_mod.state_dict())
    assert not missing.missing_keys and not missing.unexpected_keys
    t_mod.train(train)
    fw_mod.train(train)
    pairs = [
        _to_pair(x.astype(dtype) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x, grad)
        for x in inputs
    ]
    t_out = t_mod(*[p[0] for p in pairs], **kwargs)
    f_out = fw_mod(*[p[1] for p in pairs], **kwargs)
    t_flat, f_flat = _flat(t_out), _flat(f_out)
    assert len(t_flat) == len(f_flat), f"{what}: {len(f_flat)} outputs, torch has {len(t_flat)}"
    for i, (a, b) in enumerate(zip(f_flat, t_flat)):
        assert tuple(a.shape) == tuple(b.shape), (
            f"{what} output {i}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        )
        np.testing.assert_allclose(as_numpy(a), as_numpy(b), err_msg=f"{what} output {i}", **tol)
    for name, tb in t_mod.named_buffers():
        fb = dict(fw_mod.named_buffers())[name]
        np.testing.assert_allclose(
            as_numpy(fb), as_numpy(tb), err_msg=f"{what} buffer {name}", **tol
        )
    if not grad:
        return
    rng = np.random.default_rng(7)
    t_loss, f_loss = 0, 0
    for a, b in zip(f_flat, t_flat):
        if not b.is_floating_point() or not b.requires_grad:
            continue
        w = rng.standard_normal(tuple(b.shape)).astype(dtype)
        t_loss = t_loss + (b * torch.from_numpy(w)).sum()
        f_loss = f_loss + (a * fw.from_numpy(w)).sum()
    t_loss.backward()
    f_loss.backward()
    gtol = dict(rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    for i, (tp, fp) in enumerate(pairs):
        if isinstance(tp, torch.Tensor) and tp.requires_grad:
            assert (fp.grad is None) == (tp.grad is None), f"{what}: input {i} grad presence"
            if tp.grad is not None:
                np.testing.assert_allclose(
                    as_numpy(fp.grad), as_numpy(tp.grad), err_msg=f"{what} d/d input {i}", **gtol
                )
    f_params = dict(fw_mod.named_parameters())
    for name, tp in t_mod.named_parameters():
        fp = f_params[name]
        if tp.grad is None:
            assert fp.grad is None or np.allclose(as_numpy(fp.grad), 0), (
                f"{what}: {name} has a grad, torch has none"
            )
            continue
        assert fp.grad is not None, f"{what}: no grad for parameter {name}"
        np.testing.assert_allclose(
            as_numpy(fp.grad), as_numpy(tp.grad), err_msg=f"{what} d/d {name}", **gtol
        )


def rand(*shape, low=-1.0, high=1.0, seed=0):
    return np.random.default_rng(seed + sum(shape)).uniform(low, high, shape).astype(np.float32)
