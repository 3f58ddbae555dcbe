"""framework.distributions: the torch.distributions most models use (Normal, Uniform,
Bernoulli, Categorical) and kl_divergence between them, written from registered ops, so
log_prob, entropy and rsample differentiate like any expression. Samples come from
framework's generators (their streams differ from torch's; their distributions do not)."""

from __future__ import annotations

import math

from . import creation as C
from .autograd import no_grad
from .ops import composites as X
from .ops import elementwise as E
from .ops import reduce as R
from .ops import softmax as S
from .tensor import Tensor

__all__ = ["Distribution", "Normal", "Uniform", "Bernoulli", "Categorical", "kl_divergence"]


def _t(v, like=None):
    """v as a float tensor (numbers take like's dtype)."""
    if isinstance(v, Tensor):
        return v if v.dtype.is_floating_point else v.float()
    return C.tensor(float(v), dtype=like.dtype if isinstance(like, Tensor) else None)


def _broadcast(a, b):
    """a and b expanded to their broadcast shape."""
    from .ops._common import broadcast_shapes

    shape = broadcast_shapes(tuple(a.shape), tuple(b.shape))
    return a.expand(*shape), b.expand(*shape)


def _shape(sample_shape, batch_shape):
    return tuple(sample_shape) + tuple(batch_shape)


class Distribution:
    """Base class: batch_shape, sample / rsample, log_prob, entropy, mean, variance."""

    has_rsample = False

    def __init__(self, batch_shape=(), validate_args=None):
        self.batch_shape = tuple(batch_shape)
        self._validate = bool(validate_args)

    @property
    def event_shape(self):
        return ()

    def sample(self, sample_shape=()):
        """A draw (no gradient)."""
        with no_grad():
            return self.rsample(sample_shape) if self.has_rsample else self._sample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler (rsample)")

    @property
    def stddev(self):
        return E.sqrt(self.variance)

    def __repr__(self):
        return f"{type(self).__name__}(batch_shape={self.batch_shape})"


class Normal(Distribution):
    """N(loc, scale^2), elementwise over broadcast loc and scale."""

    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = _broadcast(_t(loc, scale), _t(scale, loc))
        shape = tuple(self.loc.shape)
        if validate_args and bool(R.any(self.scale <= 0).item()):
            raise ValueError("Normal: scale must be positive")
        super().__init__(shape, validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale * self.scale

    def rsample(self, sample_shape=()):
        """loc + scale * eps, eps ~ N(0, 1): differentiable in loc and scale."""
        eps = C.randn(*_shape(sample_shape, self.batch_shape), dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def log_prob(self, value):
        v = _t(value, self.loc)
        return -((v - self.loc) ** 2) / (2 * self.variance) - E.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + E.log(self.scale)

    def cdf(self, value):
        return 0.5 * (1 + E.erf((_t(value, self.loc) - self.loc) / (self.scale * math.sqrt(2))))


class Uniform(Distribution):
    """Uniform on [low, high)."""

    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = _broadcast(_t(low, high), _t(high, low))
        shape = tuple(self.low.shape)
        if validate_args and bool(R.any(self.high <= self.low).item()):
            raise ValueError("Uniform: low must be less than high")
        super().__init__(shape, validate_args)

    @property
    def mean(self):
        return (self.low + self.high) / 2

    @property
    def variance(self):
        return (self.high - self.low) ** 2 / 12

    def rsample(self, sample_shape=()):
        u = C.rand(*_shape(sample_shape, self.batch_shape), dtype=self.low.dtype)
        return self.low + (self.high - self.low) * u

    def log_prob(self, value):
        v = _t(value, self.low)
        inside = E.logical_and(v >= self.low, v < self.high)
        return E.where(inside, -E.log(self.high - self.low), -math.inf)

    def entropy(self):
        return E.log(self.high - self.low)


class Bernoulli(Distribution):
    """1 with probability probs (or sigmoid(logits)), else 0."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            self.probs = _t(probs)
            self.logits = X.logit(E.clamp(self.probs, 1e-7, 1 - 1e-7))  # as torch's probs_to_logits
        else:
            self.logits = _t(logits)
            self.probs = E.sigmoid(self.logits)
        super().__init__(tuple(self.probs.shape), validate_args)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def _sample(self, sample_shape):
        u = C.rand(*_shape(sample_shape, self.batch_shape), dtype=self.probs.dtype)
        return (u < self.probs).to(self.probs.dtype)

    def log_prob(self, value):
        from .ops.loss import binary_cross_entropy_with_logits

        v = _t(value, self.logits)
        logits, v = _broadcast(self.logits, v)
        return -binary_cross_entropy_with_logits(logits, v, reduction="none")

    def entropy(self):
        from .ops.loss import binary_cross_entropy_with_logits

        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")


class Categorical(Distribution):
    """One of K categories (the last dim of probs or logits), with those weights."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            p = _t(probs)
            self.probs = p / R.sum(p, -1, True)
            self.logits = E.log(E.clamp(self.probs, 1.1754943508222875e-38, None))
        else:
            lg = _t(logits)
            self.logits = lg - R.logsumexp(lg, -1, True)
            self.probs = S.softmax(self.logits, -1)
        if self.probs.ndim < 1:
            raise ValueError("Categorical: probs / logits must have at least one dimension")
        super().__init__(tuple(self.probs.shape[:-1]), validate_args)

    @property
    def num_categories(self):
        return self.probs.shape[-1]

    @property
    def mean(self):
        return C.full(self.batch_shape, math.nan, dtype=self.probs.dtype)

    @property
    def variance(self):
        return C.full(self.batch_shape, math.nan, dtype=self.probs.dtype)

    def _sample(self, sample_shape):
        n = 1
        for s in sample_shape:
            n *= s
        flat = self.probs.reshape(-1, self.num_categories)
        draws = X.multinomial(flat, n, replacement=True)  # (batch, n)
        return draws.t().reshape(*_shape(sample_shape, self.batch_shape))

    def log_prob(self, value):
        from .ops.gather import gather

        from .ops._common import broadcast_shapes

        v = value.long() if isinstance(value, Tensor) else C.tensor(value)
        shape = broadcast_shapes(tuple(v.shape), self.batch_shape)
        logits = self.logits.expand(*shape, self.num_categories)
        return gather(logits, -1, v.expand(*shape).unsqueeze(-1)).squeeze(-1)

    def entropy(self):
        p_log_p = E.where(self.probs == 0, 0.0, self.probs * self.logits)
        return -R.sum(p_log_p, -1)


def kl_divergence(p: Distribution, q: Distribution):
    """KL(p || q) for pairs of the same family (Normal, Uniform, Bernoulli, Categorical)."""
    if isinstance(p, Normal) and isinstance(q, Normal):
        var_ratio = (p.scale / q.scale) ** 2
        t1 = ((p.loc - q.loc) / q.scale) ** 2
        return 0.5 * (var_ratio + t1 - 1 - E.log(var_ratio))
    if isinstance(p, Categorical) and isinstance(q, Categorical):
        t = p.probs * (p.logits - q.logits)
        return R.sum(E.where(p.probs == 0, 0.0, t), -1)
    if isinstance(p, Bernoulli) and isinstance(q, Bernoulli):
        t1 = p.probs * (E.softplus(-q.logits) - E.softplus(-p.logits))
        t2 = (1 - p.probs) * (E.softplus(q.logits) - E.softplus(p.logits))
        return t1 + t2
    if isinstance(p, Uniform) and isinstance(q, Uniform):
        inside = E.logical_and(q.low <= p.low, p.high <= q.high)
        return E.where(inside, E.log((q.high - q.low) / (p.high - p.low)), math.inf)
    raise NotImplementedError(f"kl_divergence({type(p).__name__}, {type(q).__name__}) is not implemented")
