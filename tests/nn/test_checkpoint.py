"""utils.checkpoint: a checkpointed block gives the gradients the plain block gives (inputs,
parameters, with dropout replaying its masks), also when no input requires grad."""

from __future__ import annotations

import numpy as np
import pytest

import framework as fw
from framework.utils.checkpoint import checkpoint, checkpoint_sequential


def block():
    fw.manual_seed(0)
    return fw.nn.Sequential(fw.nn.Linear(6, 8), fw.nn.GELU(), fw.nn.Dropout(0.3), fw.nn.Linear(8, 6), fw.nn.Tanh())


def grads(model, x, use_ckpt, seed=5):
    model.zero_grad()
    fw.manual_seed(seed)
    h = x * 2
    y = checkpoint(model, h, use_reentrant=False) if use_ckpt else model(h)
    loss = (y * y).sum() + y.mean()
    loss.backward()
    return [p.grad.numpy().copy() for p in model.parameters()], (x.grad.numpy().copy() if x.requires_grad else None)


@pytest.mark.parametrize("input_grad", [True, False])
def test_checkpoint_gradients_equal_the_plain_block(input_grad):
    model = block().train()
    x = fw.randn(4, 6).requires_grad_(input_grad)
    pg, xg = grads(model, x, False)
    if input_grad:
        x.grad = None
    cg, cxg = grads(model, x, True)
    for a, b in zip(pg, cg):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    if input_grad:
        np.testing.assert_allclose(xg, cxg, rtol=1e-6, atol=1e-7)


def test_checkpoint_tuple_outputs_kwargs_closures_and_sequential():
    w = fw.randn(3, 3).requires_grad_()
    scale = fw.tensor(2.0, requires_grad=True)

    def f(a, b, *, shift):
        return a @ w * scale + shift, (b * scale).sum(), 7

    a, b = fw.randn(2, 3).requires_grad_(), fw.randn(3).requires_grad_()
    out = checkpoint(f, a, b, shift=1.0)
    assert out[2] == 7 and out[0].requires_grad
    (out[0].sum() + out[1]).backward()
    got = [t.grad.numpy().copy() for t in (a, b, w, scale)]
    for t in (a, b, w, scale):
        t.grad = None
    ref = f(a, b, shift=1.0)
    (ref[0].sum() + ref[1]).backward()
    for g, t in zip(got, (a, b, w, scale)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-6)
    # autograd.grad through a checkpoint
    ga, = fw.autograd.grad(checkpoint(f, a, b, shift=0.0)[0].sum(), [a])
    np.testing.assert_allclose(ga.numpy(), got[0], rtol=1e-6)

    seq = fw.nn.Sequential(*[fw.nn.Linear(5, 5) for _ in range(5)])
    x = fw.randn(2, 5).requires_grad_()
    checkpoint_sequential(seq, 2, x).sum().backward()
    got = [p.grad.numpy().copy() for p in seq.parameters()] + [x.grad.numpy().copy()]
    seq.zero_grad()
    x.grad = None
    seq(x).sum().backward()
    for g, want in zip(got, [p.grad.numpy() for p in seq.parameters()] + [x.grad.numpy()]):
        np.testing.assert_allclose(g, want, rtol=1e-6)


def test_checkpoint_under_no_grad_just_runs():
    with fw.no_grad():
        y = checkpoint(lambda t: t * 2, fw.ones(2, requires_grad=True))
    assert not y.requires_grad and y.tolist() == [2.0, 2.0]
