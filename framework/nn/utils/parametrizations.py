"""torch.nn.utils.parametrizations: weight_norm and spectral_norm as parametrizations
(parametrize.py), with torch's state-dict layout."""

from __future__ import annotations

from ... import autograd as AG
from ...ops import elementwise as E
from ...ops import reduce as R
from ..modules.module import Module
from . import parametrize

__all__ = ["weight_norm", "spectral_norm"]


def _norm_except_dim(v, dim):
    """The 2-norm of v over every dim but `dim` (kept as size-1 dims); dim None: all."""
    if dim is None or dim == -1 and v.ndim == 0:
        return R.norm(v, 2.0)
    d = dim % v.ndim
    return R.norm(v, 2.0, [i for i in range(v.ndim) if i != d], True)


class _WeightNorm(Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / _norm_except_dim(weight_v, None if self.dim == -1 else self.dim))

    def right_inverse(self, weight):
        return _norm_except_dim(weight, None if self.dim == -1 else self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim=0) -> Module:
    """module.<name> = g * v / |v| (the norm over every dim but `dim`), stored as
    parametrizations.<name>.original0 (g) and original1 (v)."""
    return parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got n_power_iterations="
                             f"{n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + weight.ndim
        self.eps = eps
        self.n_power_iterations = n_power_iterations
        if weight.ndim > 1:
            from ...creation import randn

            w = self._reshape_weight_to_matrix(weight)
            h, wd = w.shape
            self.register_buffer("_u", self._normalize(randn(h, dtype=weight.dtype)))
            self.register_buffer("_v", self._normalize(randn(wd, dtype=weight.dtype)))
            self._power_method(w, 15)

    def _normalize(self, x):
        return x / E.clamp(R.norm(x, 2.0), self.eps, None)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, w, n):
        with AG.no_grad():
            for _ in range(n):
                self._u.copy_(self._normalize(w @ self._v))
                self._v.copy_(self._normalize(w.t() @ self._u))

    def forward(self, weight):
        if weight.ndim == 1:
            return weight / E.clamp(R.norm(weight, 2.0), self.eps, None)
        w = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(w.detach(), self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = R.sum(u * (w @ v))
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim=None) -> Module:
    """module.<name> divided by its largest singular value, estimated by power iteration
    (one step per training forward; the vectors are buffers _u and _v)."""
    weight = getattr(module, name)
    if dim is None:
        from ..modules.conv import ConvTranspose2d

        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    return parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
