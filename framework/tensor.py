"""Tensor: storage (a numpy array, possibly a view), shape, dtype and autograd metadata,
plus torch's operator sugar. Every computation goes through a registered op (see ops/);
this file only wraps, views and forwards. Methods named in OpDef.methods are attached by
ops/__init__.py, so adding an op never edits this file.
"""

from __future__ import annotations

import numpy as np

from . import _C
from . import autograd as AG
from . import dtypes as D


class _Version:
    """In-place edit counter shared by a tensor and all views of its storage."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Size(tuple):
    """A tensor's shape (torch.Size): a tuple of ints."""

    def __repr__(self):
        return f"framework.Size([{', '.join(str(s) for s in self)}])"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


class Tensor:
    """An n-dimensional array with autograd, like torch.Tensor."""

    __slots__ = ("_data", "_version", "__weakref__", "__dict__")
    # Defaults live on the class so wrapping a kernel output sets only two slots (dispatch
    # creates one Tensor per op; this is on the hot path).
    requires_grad = False
    grad = None
    grad_fn = None
    _output_nr = 0
    _base = None
    _grad_accumulator = None
    _retains_grad = False
    _trace = None

    # ---- construction ------------------------------------------------------------
    def __init__(self, *args, **kwargs):
        from .creation import tensor as _tensor, empty

        if len(args) == 1 and not isinstance(args[0], int):
            src = _tensor(args[0], dtype=kwargs.get("dtype"))
        else:
            src = empty(*args, dtype=kwargs.get("dtype"))
        self._init(src._data)

    def _init(self, arr, base=None, version=None):
        self._data = arr
        self._version = version if version is not None else _Version()
        if base is not None:
            self._base = base

    @classmethod
    def _wrap(cls, arr) -> "Tensor":
        t = object.__new__(cls)
        t._data = arr
        t._version = _Version()
        return t

    @classmethod
    def _make_view(cls, arr, base: "Tensor") -> "Tensor":
        t = object.__new__(cls)
        root = base._base if base._base is not None else base
        t._init(arr, base=root, version=base._version)
        return t

    @classmethod
    def _wrap_full(cls, shape, value, dt) -> "Tensor":
        from .creation import full

        return full(tuple(shape), value, dtype=dt)

    @classmethod
    def _wrap_zeros(cls, shape, dt) -> "Tensor":
        return cls._wrap_full(shape, 0.0, dt)

    # ---- metadata ----------------------------------------------------------------
    @property
    def shape(self) -> Size:
        if self._trace is not None:  # tracing: dims may be symbolic (framework.jit.SymInt)
            return self._trace.shape_of(self)
        return Size(self._data.shape)

    def size(self, dim=None):
        """The shape, or the size of one dim."""
        shape = self.shape if self._trace is not None else self._data.shape
        if dim is None:
            return Size(shape)
        return shape[_wrap_dim(dim, self._data.ndim, "size")]

    @property
    def dtype(self) -> D.dtype:
        return D._BY_NP[self._data.dtype]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        if self._trace is not None:
            return Size(self.shape).numel()
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def device(self):
        from .device import device

        return device("cpu")

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, other: "Tensor"):
        self._data = other._data
        self._version = other._version

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> "Tensor":
        return self.transpose(-2, -1)

    def stride(self, dim=None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self.ndim, "stride")]

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0]

    # ---- conversion --------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a numpy array sharing memory (requires no grad history)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self._trace is not None:
            self._trace.note_concrete(self, "numpy()")
        return self._data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        if self._trace is not None:
            self._trace.note_concrete(self, "item()")
        return self._data.reshape(()).item()

    def tolist(self):
        """Nested Python lists of the values."""
        if self._trace is not None:
            self._trace.note_concrete(self, "tolist()")
        return self._data.tolist()

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} values is ambiguous")
        if self._trace is not None:
            self._trace.note_concrete(self, "bool()")
        return bool(self._data.reshape(()))

    def __int__(self):
        return int(self.item())

    def __float__(self):
        return float(self.item())

    def __index__(self):
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        if self._trace is not None:  # a symbolic dim is baked in (warned and guarded)
            return int(self.shape[0])
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        if self._trace is not None:
            self._trace.note_concrete(self, "iteration")
        return (self[i] for i in range(self._data.shape[0]))

    def __array__(self, dtype=None, copy=None):
        a = self.detach()._data
        return a.astype(dtype) if dtype is not None else a

    def __hash__(self):
        return id(self)

    def __repr__(self) -> str:
        from .printing import tensor_repr

        return tensor_repr(self)

    # ---- autograd ----------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulates d(self)/d(leaf) into every leaf's .grad."""
        AG.backward([self], None if gradient is None else [gradient], retain_graph, create_graph,
                    inputs)

    def detach(self) -> "Tensor":
        """A tensor sharing storage with no history."""
        t = Tensor._make_view(self._data, self)
        return t

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables.")
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        if self.is_leaf or self._retains_grad:
            return
        self._retains_grad = True
        ref = self

        def hook(g):
            ref.grad = g.detach().clone() if ref.grad is None else ref.grad + g.detach()

        self.grad_fn.register_hook(self._output_nr, hook)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Calls hook(grad) when the gradient for this tensor is computed; a non-None return
        value replaces the gradient."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            self.grad_fn.register_hook(self._output_nr, hook)
        else:
            edge = AG._edge_of(self)
            edge[0].register_hook(0, hook)

        class _Handle:
            def remove(self_inner):
                node = self.grad_fn if self.grad_fn is not None else self._grad_accumulator
                hooks = node.pre_hooks.get(self._output_nr if self.grad_fn is not None else 0, [])
                if hook in hooks:
                    hooks.remove(hook)

        return _Handle()

    # ---- dtype conversion ----------------------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        """Converts dtype (devices other than 'cpu' are refused)."""
        from .ops.elementwise import to

        dt = kwargs.get("dtype")
        for a in args:
            if isinstance(a, D.dtype):
                dt = a
            elif isinstance(a, Tensor):
                dt = a.dtype
            elif isinstance(a, str) or type(a).__name__ == "device":
                from .device import device

                device(a)  # raises for anything but the CPU
        if kwargs.get("device") is not None:
            from .device import device

            device(kwargs["device"])
        if dt is None or dt is self.dtype:
            return self
        return to(self, dt)

    def type(self, dtype=None):
        if dtype is None:
            return f"framework.{self.dtype.name}"
        return self.to(dtype)

    def float(self):
        return self.to(D.float32)

    def double(self):
        return self.to(D.float64)

    def long(self):
        return self.to(D.int64)

    def int(self):
        return self.to(D.int32)

    def bool(self):
        return self.to(D.bool_)

    def cpu(self):
        return self

    def cuda(self, *a, **k):
        raise RuntimeError("CUDA is not available: framework runs on the CPU")


def _wrap_dim(dim: int, ndim: int, op: str = "") -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return dim % n


__all__ = ["Tensor", "Size"]
