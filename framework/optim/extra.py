"""Adamax, NAdam, RAdam and Adadelta with torch's update rules (its single-tensor forms),
written with registered elementwise ops and copy_ rather than fused kernels: correct and
traceable, slower per step than the fused SGD / Adam / RMSprop / Adagrad updates."""

from __future__ import annotations

import math

from .. import autograd as AG
from ..creation import zeros_like
from ..ops import elementwise as E
from ..ops.composites import lerp
from .optimizer import Optimizer, _bump, _step_tensor


def _check(lr, eps, betas=None, weight_decay=0.0):
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if betas is not None:
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class _Elementwise(Optimizer):
    """Runs _update(p, grad, state, group, step) for each parameter with a gradient."""

    _state_names = ()

    def step(self, closure=None):
        """Performs one optimization step."""
        loss = self._closure_loss(closure)
        with AG.no_grad():
            for group in self.param_groups:
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _step_tensor()
                        for name in self._state_names:
                            state[name] = zeros_like(p)
                        self._init_state(state)
                    step = _bump(state["step"])
                    grad = -p.grad if group.get("maximize") else p.grad
                    if group["weight_decay"] and not group.get("decoupled_weight_decay"):
                        grad = grad + p * group["weight_decay"]
                    elif group["weight_decay"]:
                        p.copy_(p * (1 - group["lr"] * group["weight_decay"]))
                    self._update(p, grad, state, group, step)
        return loss

    def _init_state(self, state):
        pass


class Adamax(_Elementwise):
    """Adam with the infinity norm: u = max(beta2 u, |g| + eps)."""

    _state_names = ("exp_avg", "exp_inf")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 foreach=None, *, maximize: bool = False, differentiable: bool = False, capturable: bool = False):
        _check(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _update(self, p, grad, state, group, step):
        beta1, beta2 = group["betas"]
        state["exp_avg"].copy_(lerp(state["exp_avg"], grad, 1 - beta1))
        state["exp_inf"].copy_(E.maximum(state["exp_inf"] * beta2, E.abs(grad) + group["eps"]))
        clr = group["lr"] / (1 - beta1**step)
        p.copy_(p - clr * state["exp_avg"] / state["exp_inf"])


class NAdam(_Elementwise):
    """Adam with Nesterov momentum and torch's momentum decay schedule (mu_t)."""

    _state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        _check(lr, eps, betas, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      foreach=foreach, maximize=maximize, capturable=capturable,
                                      differentiable=differentiable))

    def _init_state(self, state):
        from ..creation import tensor

        state["mu_product"] = tensor(1.0)

    def _update(self, p, grad, state, group, step):
        beta1, beta2 = group["betas"]
        md = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * md)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * md)))
        mu_product = float(state["mu_product"].item()) * mu
        state["mu_product"].fill_(mu_product)
        state["exp_avg"].copy_(lerp(state["exp_avg"], grad, 1 - beta1))
        state["exp_avg_sq"].copy_(state["exp_avg_sq"] * beta2 + grad * grad * (1 - beta2))
        denom = E.sqrt(state["exp_avg_sq"] / (1 - beta2**step)) + group["eps"]
        lr = group["lr"]
        p.copy_(p - (lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom)
        p.copy_(p - (lr * mu_next / (1.0 - mu_product * mu_next)) * state["exp_avg"] / denom)


class RAdam(_Elementwise):
    """Adam with the variance rectification term (plain momentum SGD while it is undefined)."""

    _state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False):
        _check(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                                      maximize=maximize, capturable=capturable, differentiable=differentiable))

    def _update(self, p, grad, state, group, step):
        beta1, beta2 = group["betas"]
        state["exp_avg"].copy_(lerp(state["exp_avg"], grad, 1 - beta1))
        state["exp_avg_sq"].copy_(state["exp_avg_sq"] * beta2 + grad * grad * (1 - beta2))
        bc1, bc2 = 1 - beta1**step, 1 - beta2**step
        corrected = state["exp_avg"] / bc1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bc2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = math.sqrt(bc2) / (E.sqrt(state["exp_avg_sq"]) + group["eps"])
            p.copy_(p - corrected * group["lr"] * adaptive * rect)
        else:
            p.copy_(p - corrected * group["lr"])


class Adadelta(_Elementwise):
    """Steps of sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g, scaled by lr."""

    _state_names = ("square_avg", "acc_delta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach=None, *, capturable: bool = False, maximize: bool = False, differentiable: bool = False):
        _check(lr, eps, None, weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      capturable=capturable, maximize=maximize, differentiable=differentiable))

    def _update(self, p, grad, state, group, step):
        rho, eps = group["rho"], group["eps"]
        state["square_avg"].copy_(state["square_avg"] * rho + grad * grad * (1 - rho))
        std = E.sqrt(state["square_avg"] + eps)
        delta = E.sqrt(state["acc_delta"] + eps) / std * grad
        state["acc_delta"].copy_(state["acc_delta"] * rho + delta * delta * (1 - rho))
        p.copy_(p - delta * group["lr"])
