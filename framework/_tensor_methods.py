"""Tensor methods and operators that are sugar over registered ops (no compute here).
Methods that map 1:1 to an op are bound from OpDef.methods instead."""

from __future__ import annotations

from . import dtypes as D
from .ops import elementwise as E
from .ops import gather as G
from .ops import indexing as I
from .ops import linalg as L
from .ops import movement as M
from .ops import reduce as R
from .ops import shape as S
from .ops import sort as SO
from .tensor import Tensor


def _method(name):
    def deco(fn):
        setattr(Tensor, name, fn)
        return fn

    return deco


def _swap(fn):
    return lambda self, other: fn(other, self)


# arithmetic operators (the op functions themselves where the signatures match: one Python
# call less per operator)
Tensor.__add__ = E.add
Tensor.__radd__ = _swap(E.add)
Tensor.__sub__ = E.sub
Tensor.__rsub__ = _swap(E.sub)
Tensor.__mul__ = E.mul
Tensor.__rmul__ = _swap(E.mul)
Tensor.__truediv__ = E.div
Tensor.__rtruediv__ = _swap(E.div)
Tensor.__pow__ = E.pow
Tensor.__rpow__ = _swap(E.pow)
Tensor.__matmul__ = L.matmul
Tensor.__rmatmul__ = _swap(L.matmul)
Tensor.__neg__ = E.neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = E.abs
Tensor.__floordiv__ = lambda self, o: E.div(self, o, rounding_mode="floor") if (
    self.dtype.is_floating_point or isinstance(o, float) or (isinstance(o, Tensor) and o.dtype.is_floating_point)
) else E.div(self, o, rounding_mode="floor").to(self.dtype)
Tensor.__mod__ = lambda self, o: self - (self // o) * o
Tensor.__iadd__ = lambda self, o: self.add_(o)
Tensor.__isub__ = lambda self, o: self.sub_(o)
Tensor.__imul__ = lambda self, o: self.mul_(o)
Tensor.__itruediv__ = lambda self, o: self.div_(o)

# comparisons and logic
Tensor.__eq__ = E.eq
Tensor.__ne__ = E.ne
Tensor.__lt__ = E.lt
Tensor.__le__ = E.le
Tensor.__gt__ = E.gt
Tensor.__ge__ = E.ge


def _bool_binary(fn, name):
    def op(self, other):
        if self.dtype is not D.bool_:
            raise TypeError(f"{name} is only supported for bool tensors here, got {self.dtype.name}")
        return fn(self, other)

    return op


Tensor.__and__ = _bool_binary(E.logical_and, "&")
Tensor.__or__ = _bool_binary(E.logical_or, "|")
Tensor.__rand__ = Tensor.__and__
Tensor.__ror__ = Tensor.__or__
Tensor.__xor__ = _bool_binary(E.ne, "^")
Tensor.__invert__ = lambda self: E.logical_not(self) if self.dtype is D.bool_ else (-self - 1)

# indexing
Tensor.__getitem__ = I.getitem
Tensor.__setitem__ = I.setitem

# views and shape methods
Tensor.reshape = S.reshape
Tensor.view = S.view
Tensor.flatten = S.flatten
Tensor.unflatten = S.unflatten
Tensor.squeeze = S.squeeze
Tensor.unsqueeze = S.unsqueeze
Tensor.permute = S.permute
Tensor.transpose = S.transpose
Tensor.swapaxes = S.transpose
Tensor.t = S.t
Tensor.expand = S.expand
Tensor.expand_as = S.expand_as
Tensor.contiguous = S.contiguous
Tensor.narrow = S.narrow
Tensor.select = S.select
Tensor.view_as = lambda self, other: S.view(self, tuple(other.shape))
Tensor.reshape_as = lambda self, other: S.reshape(self, tuple(other.shape))

# data movement composed from registered ops (ops with an OpDef bind their own methods)
Tensor.split = M.split
Tensor.chunk = M.chunk
Tensor.tensor_split = M.tensor_split
Tensor.unbind = M.unbind
Tensor.tile = M.tile
Tensor.fliplr = M.fliplr
Tensor.flipud = M.flipud
Tensor.argsort = SO.argsort
Tensor.msort = SO.msort
Tensor.masked_select = G.masked_select
Tensor.take_along_dim = G.take_along_dim
Tensor.argwhere = G.argwhere

# reductions whose methods need the public wrappers
Tensor.max = R.max
Tensor.min = R.min
Tensor.mm = L.mm
Tensor.bmm = L.bmm
Tensor.relu = E.relu
Tensor.sigmoid = E.sigmoid
Tensor.tanh = E.tanh


@_method("zero_")
def zero_(self):
    """Fills self with zeros in place."""
    return self.fill_(0)


@_method("fill_")
def fill_(self, value):
    """Fills self with value in place."""
    from . import autograd as AG
    from .creation import full
    from .ops.dispatch import _copy_into

    if hasattr(value, "item"):
        value = value.item()
    if AG.is_grad_enabled() and self.requires_grad and self.is_leaf:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    with AG.no_grad():
        _copy_into(self, full((), value, dtype=self.dtype))
    return self


@_method("copy_")
def copy_(self, src, non_blocking=False):
    """Copies src (broadcast, cast) into self in place."""
    from . import autograd as AG
    from .creation import tensor
    from .ops.dispatch import _copy_into

    if not isinstance(src, Tensor):
        src = tensor(src)
    if AG.is_grad_enabled() and (self.requires_grad or src.requires_grad):
        if self.is_leaf and self.requires_grad:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        raise NotImplementedError("copy_ with autograd history is not supported yet")
    from .ops._common import broadcast_shapes

    if broadcast_shapes(tuple(self.shape), tuple(src.shape)) != tuple(self.shape):
        raise RuntimeError(f"copy_: source of shape {list(src.shape)} does not broadcast to {list(self.shape)}")
    _copy_into(self, src)
    return self


@_method("new_zeros")
def new_zeros(self, *size, dtype=None, **_):
    from .creation import zeros

    return zeros(*size, dtype=dtype or self.dtype)


@_method("new_ones")
def new_ones(self, *size, dtype=None, **_):
    from .creation import ones

    return ones(*size, dtype=dtype or self.dtype)


@_method("new_full")
def new_full(self, size, fill_value, dtype=None, **_):
    from .creation import full

    return full(size, fill_value, dtype=dtype or self.dtype)


@_method("new_empty")
def new_empty(self, *size, dtype=None, **_):
    from .creation import empty

    return empty(*size, dtype=dtype or self.dtype)


@_method("new_tensor")
def new_tensor(self, data, dtype=None, **_):
    from .creation import tensor

    return tensor(data, dtype=dtype or self.dtype)


Tensor.type_as = lambda self, other: self.to(other.dtype)
Tensor.square = lambda self: self * self


@_method("uniform_")
def uniform_(self, from_=0.0, to=1.0, generator=None):
    """Fills self with U(from_, to) samples in place (the registered "uniform" op)."""
    from . import autograd as AG
    from .creation import _uniform_op, default_generator
    from .ops.dispatch import _copy_into

    g = generator or default_generator
    with AG.no_grad():
        _copy_into(self, _uniform_op(tuple(self.shape), g.next_seed(), float(from_), float(to), self.dtype.code))
    return self


@_method("normal_")
def normal_(self, mean=0.0, std=1.0, generator=None):
    """Fills self with N(mean, std^2) samples in place (the registered "normal" op)."""
    from . import autograd as AG
    from .creation import _normal_op, default_generator
    from .ops.dispatch import _copy_into

    g = generator or default_generator
    with AG.no_grad():
        _copy_into(self, _normal_op(tuple(self.shape), g.next_seed(), float(mean), float(std), self.dtype.code))
    return self


@_method("__deepcopy__")
def _deepcopy(self, memo):
    """copy.deepcopy of a leaf: a fresh tensor with copied data, requires_grad and grad."""
    import copy

    if not self.is_leaf:
        raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support "
                           "the deepcopy protocol at the moment.")
    if id(self) in memo:
        return memo[id(self)]
    out = Tensor._wrap(self._data.copy())
    out.requires_grad = self.requires_grad
    if self.grad is not None:
        out.grad = copy.deepcopy(self.grad, memo)
    memo[id(self)] = out
    return out
