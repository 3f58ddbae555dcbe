"""Registry-driven op tests: every OpDef's samples run forward against torch, and gradients
against torch.autograd and float64 finite differences. A new op is covered with no new code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from framework.ops.registry import REGISTRY
from tests.oracle import GRAD_TOL, assert_close, resolve, to_fw, to_torch

CASES = []
for _op in sorted(REGISTRY.values(), key=lambda o: o.name):
    if _op.samples is None or _op.torch_ref is None:
        continue
    for _dt in _op.dtypes:
        for _i, _s in enumerate(_op.samples(_dt)):
            CASES.append(pytest.param(_op, _dt, _s, id=f"{_op.name}-{_dt.name}-{_i}{'-' + _s.note if _s.note else ''}"))


def _call_torch(op, sample, requires_grad=False):
    args = [to_torch(a, requires_grad) for a in sample.args]
    kwargs = {k: to_torch(v) for k, v in sample.kwargs.items()}
    ref = resolve(op.torch_ref)
    return ref(*args, **kwargs), args


def _call_fw(op, sample, requires_grad=False):
    args = [to_fw(a, requires_grad) for a in sample.args]
    return op.fn(*args, **sample.kwargs), args


@pytest.mark.parametrize("op,dtype,sample", CASES)
def test_forward_matches_torch(op, dtype, sample):
    expected, _ = _call_torch(op, sample)
    got, _ = _call_fw(op, sample)
    assert_close(got, expected, what=f"{op.name} {sample.note}")


def _float_tensors(args):
    """Floating-point tensor arguments, including those inside list arguments (cat)."""
    out = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(_float_tensors(a))
        elif isinstance(a, (fw.Tensor, torch.Tensor)) and a.is_floating_point():
            out.append(a)
    return out


def _grad_cases():
    # a composite differentiates through the ops it is built from
    return [c for c in CASES if (c.values[0].grad is not None or c.values[0].composite is not None)
            and c.values[0].differentiable and c.values[1].is_floating_point and c.values[2].grad]


@pytest.mark.parametrize("op,dtype,sample", _grad_cases())
def test_grad_matches_torch(op, dtype, sample):
    expected, targs = _call_torch(op, sample, requires_grad=True)
    got, fargs = _call_fw(op, sample, requires_grad=True)
    exp_outs = expected if isinstance(expected, (tuple, list)) else (expected,)
    got_outs = got if isinstance(got, (tuple, list)) else (got,)
    rng = np.random.default_rng(1)
    t_loss, f_loss = 0, 0
    for e, g in zip(exp_outs, got_outs):
        if not e.is_floating_point() or not e.requires_grad:
            continue
        w = rng.uniform(0.5, 1.5, size=tuple(e.shape)).astype(np.float64 if dtype is fw.float64 else np.float32)
        t_loss = t_loss + (e * torch.from_numpy(w)).sum()
        f_loss = f_loss + (g * fw.from_numpy(w)).sum()
    if not isinstance(t_loss, torch.Tensor):
        pytest.skip("no differentiable output")
    t_in = _float_tensors(targs)
    f_in = _float_tensors(fargs)
    t_grads = torch.autograd.grad(t_loss, t_in, allow_unused=True)
    f_loss.backward()
    for i, (tg, fa) in enumerate(zip(t_grads, f_in)):
        if tg is None:
            continue
        assert fa.grad is not None, f"{op.name}: no gradient for input {i}"
        assert_close(fa.grad, tg, what=f"{op.name} grad of input {i}", tol=GRAD_TOL[dtype])


def _fd_cases():
    return [c for c in _grad_cases() if c.values[1] is fw.float64]


@pytest.mark.parametrize("op,dtype,sample", _fd_cases())
def test_grad_matches_finite_differences(op, dtype, sample):
    """Second opinion: central differences of the forward in float64."""
    got, fargs = _call_fw(op, sample, requires_grad=True)
    outs = got if isinstance(got, (tuple, list)) else (got,)
    outs = [o for o in outs if o.requires_grad]
    if not outs or all(o.numel() == 0 for o in outs):
        pytest.skip("no differentiable output")
    rng = np.random.default_rng(2)
    ws = [rng.uniform(0.5, 1.5, size=tuple(o.shape)) for o in outs]
    loss = sum((o * fw.from_numpy(w)).sum() for o, w in zip(outs, ws))
    loss.backward()
    eps = 1e-6
    for a in _float_tensors(fargs):
        data = a.detach()._data
        if data.size == 0:
            continue
        num = np.zeros(data.shape)
        it = np.nditer(data, flags=["multi_index"])
        count = 0
        for _ in it:
            if count >= 12:  # a few coordinates are enough for a second opinion
                break
            idx = it.multi_index
            orig = data[idx]

            def f():
                with fw.no_grad():
                    r, _ = op.fn(*[a2 if a2 is not a else a.detach() for a2 in fargs], **sample.kwargs), None
                rr = r if isinstance(r, (tuple, list)) else (r,)
                rr = [x for x in rr if x.dtype.is_floating_point][:len(ws)]
                return float(sum((x.detach()._data * w).sum() for x, w in zip(rr, ws)))

            data[idx] = orig + eps
            fp = f()
            data[idx] = orig - eps
            fm = f()
            data[idx] = orig
            num[idx] = (fp - fm) / (2 * eps)
            np.testing.assert_allclose(a.grad._data[idx], num[idx], rtol=1e-4, atol=1e-6,
                                       err_msg=f"{op.name}: d/d{idx}")
            count += 1
