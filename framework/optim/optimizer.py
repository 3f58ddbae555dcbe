"""Optimizer base class: param groups, per-parameter state, zero_grad, and torch-compatible
state_dict / load_state_dict (state keyed by parameter index). Subclasses implement step()
with one fused kernel call per parameter (framework.ops.optim), never per-element Python."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .. import autograd as AG
from .. import dtypes as D
from ..creation import tensor
from ..tensor import Tensor


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _to_tensor(v) -> Tensor:
    from ..nn.modules.module import as_framework_tensor

    return as_framework_tensor(v, "optimizer state")


class Optimizer:
    """Base class of all optimizers (torch.optim.Optimizer)."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors "
                f"or dicts, but got {type(params).__name__}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for g in param_groups:
            self.add_param_group(g)

    def __repr__(self) -> str:
        s = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(group):
                if k != "params":
                    s += f"\n    {k}: {group[k]}"
        return s + "\n)"

    def add_param_group(self, param_group: dict) -> None:
        """Adds a group of parameters with its own hyperparameters (defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            param_group.setdefault(name, default)
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Resets the gradients of every optimized parameter (to None by default)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = p.grad.detach()
                    p.grad.zero_()

    def step(self, closure: Callable | None = None):
        raise NotImplementedError

    def _closure_loss(self, closure):
        if closure is None:
            return None
        with AG.enable_grad():
            return closure()

    # ---- state dict ----------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: {name: value}}, 'param_groups': [{..., 'params': [indices]}]}."""
        index = {}
        groups = []
        start = 0
        for g in self.param_groups:
            ids = list(range(start, start + len(g["params"])))
            for i, p in zip(ids, g["params"]):
                index.setdefault(id(p), i)
            start += len(g["params"])
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in g["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads state saved by state_dict() (framework's or torch's; torch tensors are converted)."""
        state_dict = dict(state_dict)
        groups = self.param_groups
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, sg in zip(groups, saved_groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    "of optimizer's group"
                )
        id_map = {}
        for g, sg in zip(groups, saved_groups):
            for old, p in zip(sg["params"], g["params"]):
                id_map[old] = p
        new_state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            k = int(k)
            if k not in id_map:
                continue
            p = id_map[k]
            new_state[p] = {name: self._cast_state(p, name, val) for name, val in v.items()}
        self.state = new_state
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            sg = dict(sg)
            sg["params"] = g["params"]
            if isinstance(sg.get("betas"), list):
                sg["betas"] = tuple(sg["betas"])
            new_groups.append(sg)
        self.param_groups = new_groups

    @staticmethod
    def _cast_state(param: Tensor, name: str, value: Any):
        if value is None or isinstance(value, (int, float, bool, str)):
            return value
        t = _to_tensor(value)
        if name == "step":
            return tensor(float(t.item()), dtype=D.float32)
        if t.dtype.is_floating_point and t.dtype is not param.dtype:
            t = t.to(param.dtype)
        return t.clone() if t._data.base is not None or not t._data.flags.writeable else t

    @staticmethod
    def _params_with_grad(group) -> Iterable[Tensor]:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.dtype is not p.dtype:
                raise RuntimeError(
                    f"gradient dtype {p.grad.dtype.name} differs from parameter dtype {p.dtype.name}"
                )
            yield p


def _step_tensor() -> Tensor:
    return tensor(0.0, dtype=D.float32)


def _bump(step: Tensor) -> float:
    """step += 1 (a 0-d float32 tensor like torch's state['step']); returns the new value."""
    with AG.no_grad():
        step.add_(1.0)
    return float(step.item())
