"""nn.Parameter: a Tensor that a Module registers as a learnable parameter (torch.nn.Parameter).
It shares storage with the tensor it is made from and requires grad by default."""

from __future__ import annotations

from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a module parameter; Module.__setattr__ registers it."""

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            from ..creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor, got {type(data).__name__}")
        self._init(data._data, version=data._version)
        if requires_grad and not data.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(Tensor._wrap(self._data.copy()), self.requires_grad)
        if self.grad is not None:
            out.grad = Tensor._wrap(self.grad._data.copy())
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, proto):
        raise TypeError("framework tensors are not pickled; use framework.save")


class Buffer(Tensor):
    """Marks a tensor to register as a buffer when assigned to a Module attribute."""

    def __init__(self, data: Tensor, persistent: bool = True):
        self._init(data._data, version=data._version)
        self.persistent = persistent
