"""RMSprop and Adagrad (torch.optim.RMSprop / Adagrad), one fused kernel per parameter."""

from __future__ import annotations

from .. import autograd as AG
from ..creation import full_like, zeros_like
from ..ops.optim import adagrad_update, rmsprop_update
from .optimizer import Optimizer, _bump, _step_tensor


class RMSprop(Optimizer):
    """RMSprop with optional centering and momentum."""

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach=None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Performs one optimization step."""
        loss = self._closure_loss(closure)
        with AG.no_grad():
            for group in self.param_groups:
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _step_tensor()
                        state["square_avg"] = zeros_like(p)
                        if group["momentum"] > 0:
                            state["momentum_buffer"] = zeros_like(p)
                        if group["centered"]:
                            state["grad_avg"] = zeros_like(p)
                    _bump(state["step"])
                    rmsprop_update(
                        p,
                        p.grad,
                        state["square_avg"],
                        state.get("grad_avg"),
                        state.get("momentum_buffer"),
                        group["lr"],
                        group["alpha"],
                        group["eps"],
                        group["weight_decay"],
                        group["momentum"],
                        group["centered"],
                        group["maximize"],
                    )
        return loss


class Adagrad(Optimizer):
    """Adagrad with lr decay."""

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach=None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _step_tensor()
                state["sum"] = full_like(p, group["initial_accumulator_value"])

    def step(self, closure=None):
        """Performs one optimization step."""
        loss = self._closure_loss(closure)
        with AG.no_grad():
            for group in self.param_groups:
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    step = _bump(state["step"])
                    adagrad_update(
                        p,
                        p.grad,
                        state["sum"],
                        group["lr"],
                        group["lr_decay"],
                        group["weight_decay"],
                        group["eps"],
                        step,
                        group["maximize"],
                    )
        return loss
