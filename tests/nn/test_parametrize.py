"""nn.utils.parametrize, parametrizations.weight_norm / spectral_norm and the hook-based
weight_norm against torch: state dict keys, forward values after loading torch's state,
gradients of the originals, assignment through right_inverse, removal."""

from __future__ import annotations

import numpy as np
import torch

import framework as fw


def f2t_state(m):
    return {k: torch.from_numpy(v.detach().numpy().copy()) for k, v in m.state_dict().items()}


def t2f_state(m):
    return {k: fw.from_numpy(v.detach().numpy().copy()) for k, v in m.state_dict().items()}


def close(a, b, rtol=1e-6):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=1e-7)


def pair(make, apply_f, apply_t):
    torch.manual_seed(0)
    t = apply_t(make(torch))
    f = apply_f(make(fw))
    assert sorted(f.state_dict()) == sorted(t.state_dict())
    f.load_state_dict(t2f_state(t))
    return f, t


def test_weight_norm_parametrization_and_hook_form_match_torch():
    x = torch.randn(3, 5)
    for fa, ta in [(lambda m: fw.nn.utils.parametrizations.weight_norm(m), torch.nn.utils.parametrizations.weight_norm),
                   (lambda m: fw.nn.utils.weight_norm(m, dim=None), lambda m: torch.nn.utils.weight_norm(m, dim=None)),
                   (lambda m: fw.nn.utils.weight_norm(m), torch.nn.utils.weight_norm)]:
        f, t = pair(lambda lib: lib.nn.Linear(5, 4), fa, ta)
        close(f(fw.from_numpy(x.numpy())), t(x))
        f(fw.from_numpy(x.numpy())).sum().backward()
        t(x).sum().backward()
        fg = {n: p.grad for n, p in f.named_parameters()}
        for n, p in t.named_parameters():
            close(fg[n], p.grad, 1e-5)


def test_spectral_norm_matches_torch_in_train_and_eval():
    f, t = pair(lambda lib: lib.nn.Linear(6, 4), fw.nn.utils.parametrizations.spectral_norm,
                torch.nn.utils.parametrizations.spectral_norm)
    x = torch.randn(2, 6)
    for _ in range(3):  # each training forward is one power-iteration step on the buffers
        close(f(fw.from_numpy(x.numpy())), t(x), 1e-5)
    close(f.parametrizations.weight[0]._u, t.parametrizations.weight[0]._u, 1e-5)
    f.eval(), t.eval()
    close(f(fw.from_numpy(x.numpy())), t(x), 1e-5)
    sv = np.linalg.svd(f.weight.detach().numpy(), compute_uv=False)
    assert abs(sv[0] - 1.0) < 0.05


def test_custom_parametrization_assignment_and_removal():
    class Symmetric(fw.nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(0, 1)

        def right_inverse(self, a):
            return a.triu()

    m = fw.nn.Linear(3, 3)
    fw.nn.utils.parametrize.register_parametrization(m, "weight", Symmetric())
    assert type(m).__name__ == "ParametrizedLinear" and fw.nn.utils.parametrize.is_parametrized(m, "weight")
    w = m.weight.detach().numpy()
    np.testing.assert_allclose(w, w.T)
    target = fw.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]])
    m.weight = target  # through right_inverse into the original
    assert m.weight.tolist() == target.tolist()
    m(fw.ones(1, 3)).sum().backward()
    assert m.parametrizations.weight.original.grad is not None
    fw.nn.utils.parametrize.remove_parametrizations(m, "weight")
    assert type(m) is fw.nn.Linear and m.weight.tolist() == target.tolist()
    assert sorted(m.state_dict()) == ["bias", "weight"]
    fw.nn.utils.weight_norm(m)
    fw.nn.utils.remove_weight_norm(m)
    np.testing.assert_allclose(m.weight.detach().numpy(), target.numpy(), rtol=1e-6)
