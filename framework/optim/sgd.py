"""SGD with momentum, dampening, Nesterov, weight decay and maximize (torch.optim.SGD)."""

from __future__ import annotations

from .. import autograd as AG
from ..ops.optim import sgd_update
from .optimizer import Optimizer, required


class SGD(Optimizer):
    """Stochastic gradient descent; one fused sgd_update kernel per parameter."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach=None,
        differentiable: bool = False,
        fused=None,
    ):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Performs one optimization step."""
        loss = self._closure_loss(closure)
        with AG.no_grad():
            for group in self.param_groups:
                momentum = group["momentum"]
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    first = buf is None
                    if momentum != 0 and first:
                        buf = p.grad.detach().clone()
                        state["momentum_buffer"] = buf
                    sgd_update(
                        p,
                        p.grad,
                        buf if momentum != 0 else None,
                        group["lr"],
                        momentum,
                        group["dampening"],
                        group["weight_decay"],
                        group["nesterov"],
                        group["maximize"],
                        first,
                    )
                    if momentum == 0:
                        state["momentum_buffer"] = None
        return loss
