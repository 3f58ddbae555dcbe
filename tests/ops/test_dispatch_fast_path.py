"""Eager dispatch's fast path (framework/ops/dispatch.py) against torch and against the
general path: mixed dtypes, Python numbers, in-place ops, views, autograd, hooks, tracing."""

from __future__ import annotations

import numpy as np
import torch

import framework as fw
import framework.nn.functional as F
from framework.ops import dispatch as DP
from framework.ops.registry import DISPATCH_HOOKS, REGISTRY

_rng = np.random.default_rng(0)


def _pair(shape, dtype=np.float32):
    a = _rng.uniform(-2, 2, size=shape).astype(dtype)
    return fw.tensor(a), torch.tensor(a)


def _same(x, t):
    assert x.dtype.name == str(t.dtype).replace("torch.", ""), (x.dtype, t.dtype)
    assert tuple(x.shape) == tuple(t.shape)
    np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-5, atol=1e-6)


def test_fast_path_matches_torch_for_mixed_dtypes_and_numbers():
    a, ta = _pair((3, 4))
    b, tb = _pair((3, 4), np.float64)
    i = fw.tensor(np.arange(12, dtype=np.int64).reshape(3, 4))
    ti = torch.arange(12).reshape(3, 4)
    with fw.no_grad():
        _same(a + b, ta + tb)  # promotion: general path
        _same(a * 2.0, ta * 2.0)  # Python number: general path
        _same(fw.sqrt(i), torch.sqrt(ti))  # float_compute on an int tensor
        _same(fw.relu(i), torch.relu(ti))  # int kernel, no promotion
        _same(i + i, ti + ti)
        _same(a + a[0], ta + ta[0])  # broadcast: infer runs
        _same(F.linear(a, a, None), torch.nn.functional.linear(ta, ta))
        _same(a.sum(), ta.sum())
        _same(a.view(12), ta.view(12))


def test_fast_path_equals_general_path():
    a, _ = _pair((2, 3))
    w, _ = _pair((4, 3))
    cases = [("relu", [a], ()), ("add", [a, a], (1,)), ("linear", [a, w, None], ()),
             ("sum", [a], ((0, 1), False))]
    for name, inputs, attrs in cases:
        op = REGISTRY[name]
        fast = DP.dispatch(op, inputs, attrs)
        general = DP._dispatch_general(op, inputs, attrs)
        assert fast.dtype is general.dtype and tuple(fast.shape) == tuple(general.shape)
        np.testing.assert_array_equal(fast.numpy(), general.numpy())


def test_fast_path_records_autograd_and_views_share_storage():
    a, ta = _pair((2, 3))
    a.requires_grad_(True)
    ta.requires_grad_(True)
    v = a.view(6)
    assert v._base is a and v._version is a._version
    y = (fw.relu(v) * v + v).sum()
    ty = (torch.relu(ta.view(6)) * ta.view(6) + ta.view(6)).sum()
    assert y.grad_fn is not None and y.grad_fn.name == "SumBackward0"
    y.backward()
    ty.backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-6)


def test_inplace_and_hooks_see_every_call():
    a, ta = _pair((2, 3))
    b, tb = _pair((2, 3))
    seen = []

    def hook(op, inputs, attrs, outs):
        seen.append(op.name)

    DISPATCH_HOOKS.append(hook)
    try:
        c = fw.relu(a)
        d = c + b
        v0 = a._version.value
        a.add_(b)
        e = a.view(6)
    finally:
        DISPATCH_HOOKS.remove(hook)
    assert seen == ["relu", "add", "add", "reshape"], seen
    assert a._version.value == v0 + 1
    _same(d, torch.relu(ta) + tb)
    ta.add_(tb)
    _same(a, ta)
    _same(e, ta.view(6))


def test_opdef_field_change_drops_the_cached_fast_path_facts():
    op = REGISTRY["relu"]
    a, _ = _pair((2, 2))
    fw.relu(a)
    assert op._fast not in (None, False)
    calls = []
    old = op.infer

    def infer(*args):
        calls.append(1)
        return old(*args)

    op.infer = infer
    try:
        assert op._fast is None
        fw.relu(a)
        assert calls == [1]
    finally:
        op.infer = old


def test_traced_ops_match_eager():
    class M(fw.nn.Module):
        def forward(self, x):
            return fw.relu(x).view(-1) * 2.0 + x.sum()

    x, tx = _pair((2, 3))
    traced = fw.jit.trace(M(), (x,))
    _same(traced(x), torch.relu(tx).view(-1) * 2.0 + tx.sum())


def test_python_numbers_promote_like_the_general_path():
    a, ta = _pair((2, 3))
    d, td = _pair((2, 3), np.float64)
    z, tz = _pair((), np.float64)
    i = fw.tensor(np.arange(6, dtype=np.int32).reshape(2, 3))
    ti = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    b = fw.tensor(np.array([True, False]))
    tb = torch.tensor([True, False])
    with fw.no_grad():
        for x, tx in ((a, ta), (d, td), (z, tz), (i, ti)):
            _same(x * 2.5, tx * 2.5)
            _same(x + 3, tx + 3)
            _same(2 - x, 2 - tx)
            _same(x / 4, tx / 4)
            _same(fw.add(x, 1.5, alpha=2), torch.add(tx, 1.5, alpha=2))
        _same(b + 1, tb + 1)
        _same(b * 1.5, tb * 1.5)
        _same(a + True, ta + True)
    a.requires_grad_(True)
    ta.requires_grad_(True)
    (a * 3.0 + 1).sum().backward()
    (ta * 3.0 + 1).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
