"""nn.utils: gradient clipping, parameter <-> vector helpers, weight norm (the hook-based
weight_norm here; parametrizations.weight_norm / spectral_norm over parametrize)
(torch.nn.utils)."""

from __future__ import annotations

import math

from ... import autograd as AG
from ...ops import reduce as R
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters", "weight_norm",
           "remove_weight_norm", "parametrize", "parametrizations"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    """Scales all gradients in place so their joint norm is at most max_norm; returns the norm."""
    from ...creation import tensor
    from ..modules._util import stack

    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    norm_type = float(norm_type)
    with AG.no_grad():
        norms = [R.norm(g.detach(), norm_type) for g in grads]
        if math.isinf(norm_type):
            total = R.amax(stack(norms))
        else:
            total = R.norm(stack(norms), norm_type)
        if error_if_nonfinite and not math.isfinite(total.item()):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
            )
        coef = float(max_norm) / (total.item() + 1e-6)
        if coef < 1.0:
            for g in grads:
                g.mul_(coef)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamps every gradient element into [-clip_value, clip_value] in place."""
    with AG.no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened into one vector."""
    from ..functional import _op

    flat = [p.reshape(-1) for p in parameters]
    cat = _op("cat")
    if cat is None:
        raise NotImplementedError("parameters_to_vector needs the cat op")
    return cat(flat, 0)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copies slices of vec into the parameters (in order)."""
    off = 0
    with AG.no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[off : off + n].reshape(tuple(p.shape)))
            off += n


def weight_norm(module, name: str = "weight", dim=0):
    """torch.nn.utils.weight_norm (the hook-based form): module.<name> becomes parameters
    <name>_g (the norm over every dim but `dim`) and <name>_v (the direction), and is
    recomputed as g * v / |v| before each forward."""
    from ..parameter import Parameter
    from .parametrizations import _norm_except_dim

    weight = module._parameters.pop(name)
    module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight.detach(), dim).detach()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))

    def compute(m):
        g, v = getattr(m, name + "_g"), getattr(m, name + "_v")
        return v * (g / _norm_except_dim(v, dim))

    setattr(module, name, compute(module))
    handle = module.register_forward_pre_hook(lambda m, _inputs: setattr(m, name, compute(m)))
    module.__dict__.setdefault("_weight_norm_hooks", {})[name] = (handle, compute)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Undoes weight_norm: module.<name> is one parameter again, with its current value."""
    from ..parameter import Parameter

    hooks = module.__dict__.get("_weight_norm_hooks", {})
    if name not in hooks:
        raise ValueError(f"weight_norm of '{name}' not found in {module}")
    handle, compute = hooks.pop(name)
    handle.remove()
    with AG.no_grad():
        weight = compute(module).detach()
    del module._parameters[name + "_g"], module._parameters[name + "_v"]
    module.__dict__.pop(name, None)
    module.register_parameter(name, Parameter(weight))
    return module


from . import parametrizations, parametrize  # noqa: E402,F401
