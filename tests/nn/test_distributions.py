"""framework.distributions against torch.distributions: log_prob, entropy, cdf, mean,
variance and kl_divergence values, rsample gradients, and sample statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from framework import distributions as fd
from torch import distributions as td


def f(x):
    return fw.tensor(np.asarray(x, dtype=np.float64))


def t(x):
    return torch.tensor(np.asarray(x, dtype=np.float64))


def close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


LOC, SCALE = [[0.5, -1.0, 2.0]], [[1.0], [0.3]]
P = [[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]]


@pytest.mark.parametrize("make", [
    lambda m, c: m.Normal(c(LOC), c(SCALE)),
    lambda m, c: m.Uniform(c([0.0, -2.0]), c([1.0, 3.0])),
    lambda m, c: m.Bernoulli(probs=c([0.1, 0.5, 0.9])),
    lambda m, c: m.Bernoulli(logits=c([-2.0, 0.0, 3.0])),
    lambda m, c: m.Categorical(probs=c(P)),
    lambda m, c: m.Categorical(logits=c(P)),
], ids=["normal", "uniform", "bernoulli_p", "bernoulli_logits", "categorical_p", "categorical_logits"])
def test_values_match_torch(make):
    a, b = make(fd, f), make(td, t)
    assert a.batch_shape == tuple(b.batch_shape)
    if isinstance(a, fd.Normal):
        v = [[0.1, 0.2, -3.0]]
    elif isinstance(a, fd.Uniform):
        v = [0.5, 2.5]
    elif isinstance(a, fd.Bernoulli):
        v = [1.0, 0.0, 1.0]
    else:
        v = [[2], [0]]
    fv, tv = (fw.tensor(v), torch.tensor(v)) if isinstance(a, fd.Categorical) else (f(v), t(v))
    close(a.log_prob(fv), b.log_prob(tv))
    close(a.entropy(), b.entropy())
    if not isinstance(a, fd.Categorical):
        close(a.mean, b.mean)
        close(a.variance, b.variance)
    if isinstance(a, fd.Normal):
        close(a.cdf(f(v)), b.cdf(t(v)))
    close(fd.kl_divergence(a, make(fd, lambda x: f(np.asarray(x)) * 0.9 + 0.05)),
          td.kl_divergence(b, make(td, lambda x: t(np.asarray(x)) * 0.9 + 0.05)))


def test_rsample_gradients_and_sample_statistics():
    loc, scale = f([1.0, -2.0]).requires_grad_(), f([0.5, 2.0]).requires_grad_()
    fw.manual_seed(0)
    x = fd.Normal(loc, scale).rsample((20000,))
    assert x.shape == fw.Size([20000, 2])
    np.testing.assert_allclose(x.mean(0).detach().numpy(), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(x.std(0).detach().numpy(), [0.5, 2.0], rtol=0.03)
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [20000.0, 20000.0])
    assert not fd.Normal(loc, scale).sample((3,)).requires_grad
    c = fd.Categorical(probs=f(P)).sample((5000,))
    assert c.shape == fw.Size([5000, 2]) and c.dtype is fw.int64
    for row in range(2):
        np.testing.assert_allclose(np.bincount(c.numpy()[:, row], minlength=3) / 5000, P[row], atol=0.03)
    b = fd.Bernoulli(probs=f([0.2, 0.8])).sample((5000,))
    np.testing.assert_allclose(b.numpy().mean(0), [0.2, 0.8], atol=0.03)
    u = fd.Uniform(f([0.0]), f([2.0])).sample((5000,))
    assert 0.0 <= u.numpy().min() and u.numpy().max() < 2.0
    with pytest.raises(ValueError, match="not both"):
        fd.Bernoulli(probs=f([0.5]), logits=f([0.0]))
    with pytest.raises(NotImplementedError, match="Normal, Uniform"):
        fd.kl_divergence(fd.Normal(0.0, 1.0), fd.Uniform(0.0, 1.0))
