"""Adam and AdamW (with amsgrad and maximize), matching torch.optim.Adam / AdamW."""

from __future__ import annotations

from .. import autograd as AG
from ..creation import zeros_like
from ..ops.optim import adam_update
from .optimizer import Optimizer, _bump, _step_tensor


class Adam(Optimizer):
    """Adam; weight_decay is L2 added to the gradient (decoupled in AdamW)."""

    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach=None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused=None,
        decoupled_weight_decay: bool = False,
    ):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay or self._decoupled,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Performs one optimization step."""
        loss = self._closure_loss(closure)
        with AG.no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                amsgrad = group["amsgrad"]
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _step_tensor()
                        state["exp_avg"] = zeros_like(p)
                        state["exp_avg_sq"] = zeros_like(p)
                        if amsgrad:
                            state["max_exp_avg_sq"] = zeros_like(p)
                    step = _bump(state["step"])
                    adam_update(
                        p,
                        p.grad,
                        state["exp_avg"],
                        state["exp_avg_sq"],
                        state.get("max_exp_avg_sq") if amsgrad else None,
                        group["lr"],
                        beta1,
                        beta2,
                        group["eps"],
                        group["weight_decay"],
                        step,
                        amsgrad,
                        group["maximize"],
                        group.get("decoupled_weight_decay", self._decoupled),
                    )
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default weight_decay=1e-2)."""

    _decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach=None,
        capturable: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
