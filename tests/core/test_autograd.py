"""Autograd engine behaviour vs torch: accumulation, modes, hooks, retain/create graph,
version counters, Function, and deep graphs."""

import numpy as np
import pytest
import torch

import framework as fw


def test_deep_chain_backward_does_not_recurse():
    x = fw.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_grad_accumulates_across_backward_calls():
    x = fw.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    (tx * 3).sum().backward()
    (tx * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_shared_subexpression_gets_summed_gradient():
    x = fw.tensor([2.0], requires_grad=True)
    y = x * x
    z = y + y * x
    z.backward()
    assert x.grad.item() == pytest.approx(2 * 2 + 3 * 4)


def test_no_grad_and_enable_grad():
    x = fw.ones(2, requires_grad=True)
    with fw.no_grad():
        y = x * 2
        with fw.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    with fw.inference_mode():
        assert not (x + 1).requires_grad

    @fw.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad


def test_backward_twice_needs_retain_graph():
    x = fw.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    z = (x * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


def test_create_graph_gives_second_derivatives():
    x = fw.tensor([1.5, -0.5], requires_grad=True)
    y = (x ** 3).sum()
    (g,) = fw.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * np.array([1.5, -0.5]) ** 2, rtol=1e-6)
    (h,) = fw.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * np.array([1.5, -0.5]), rtol=1e-6)


def test_autograd_grad_does_not_touch_dot_grad_and_allow_unused():
    x = fw.tensor([1.0], requires_grad=True)
    w = fw.tensor([2.0], requires_grad=True)
    (g,) = fw.autograd.grad((x * 3).sum(), x)
    assert x.grad is None and g.tolist() == [3.0]
    with pytest.raises(RuntimeError, match="not have been used"):
        fw.autograd.grad((x * 3).sum(), [x, w])
    gx, gw = fw.autograd.grad((x * 3).sum(), [x, w], allow_unused=True)
    assert gw is None


def test_inplace_edit_of_saved_tensor_is_caught():
    a = fw.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    c = b.exp()  # exp saves its output
    c.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


def test_inplace_on_unsaved_tensor_is_fine_and_matches_torch():
    def run(lib, x):
        y = x * 2
        y.add_(1)
        y = y * y
        y.sum().backward()
        return x.grad

    fx = fw.tensor([1.0, -2.0], requires_grad=True)
    tx = torch.tensor([1.0, -2.0], requires_grad=True)
    np.testing.assert_allclose(run(fw, fx).numpy(), run(torch, tx).numpy())


def test_inplace_on_leaf_requiring_grad_is_refused():
    x = fw.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x.add_(1)
    with fw.no_grad():
        x.add_(1)
    assert x.tolist() == [2.0, 2.0]


def test_tensor_hooks_and_retain_grad():
    x = fw.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: seen.append(g.tolist()))
    x.register_hook(lambda g: g * 10)
    (y * y).sum().backward()
    assert seen == [[4.0, 8.0]]
    np.testing.assert_allclose(y.grad.numpy(), [4.0, 8.0])
    np.testing.assert_allclose(x.grad.numpy(), [80.0, 160.0])


def test_custom_function():
    class Cube(fw.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

    x = fw.tensor([2.0, -1.0], requires_grad=True)
    y = Cube.apply(x)
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [12.0, 3.0])


def test_non_scalar_backward_needs_gradient():
    x = fw.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(fw.tensor([1.0, 2.0, 3.0]))
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_detach_shares_storage_and_stops_gradient():
    x = fw.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad
    with fw.no_grad():
        d.mul_(3)
    assert x.tolist() == [3.0, 6.0]


def test_grad_fn_names_like_torch():
    x = fw.ones(2, requires_grad=True)
    assert (x + 1).grad_fn.name == "AddBackward0"
    assert repr(x * 2).endswith("grad_fn=<MulBackward0>)")
