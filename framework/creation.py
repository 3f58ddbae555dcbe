"""Tensor creation: tensor, from_numpy, zeros/ones/full/empty, arange, linspace, eye, random.

Filling and random numbers run in C++ kernels (registered ops "full", "arange", "linspace",
"uniform", "normal"), so a traced model that creates tensors records them as nodes.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _C
from . import dtypes as D
from .ops import dispatch as _dispatch
from .ops.registry import Sample, defop
from .tensor import Tensor


def _shape_arg(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    elif len(size) == 1 and hasattr(size[0], "__len__") and not isinstance(size[0], Tensor):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s.item())
        if not isinstance(s, (int, np.integer)) and not hasattr(s, "__index__"):
            raise TypeError(f"size must be a sequence of ints, got {type(s).__name__}")
        s = int(s) if isinstance(s, (int, np.integer)) else s
        if isinstance(s, int) and s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(s)
    return tuple(out)


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype_of_data(data) -> D.dtype:
    if isinstance(data, bool):
        return D.bool_
    if isinstance(data, numbers.Integral):
        return D.int64
    if isinstance(data, numbers.Real):
        return D.get_default_dtype()
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return D.get_default_dtype() if arr.dtype == np.float64 and not isinstance(data, np.ndarray) \
            else D.from_numpy_dtype(arr.dtype)
    if arr.dtype.kind == "b":
        return D.bool_
    if arr.dtype.kind in "iu":
        return D.int64 if not isinstance(data, np.ndarray) else D.from_numpy_dtype(arr.dtype)
    raise TypeError(f"can't convert data of type {type(data).__name__} (numpy dtype {arr.dtype}) to a tensor")


def tensor(data, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A new tensor copying `data` (nested lists, numbers, numpy arrays or tensors)."""
    if isinstance(data, Tensor):
        arr = data.detach()._data
        dt = dtype or data.dtype
        out = Tensor._wrap(np.array(arr, dtype=dt.np, copy=True))
        return _finish(out, requires_grad)
    if isinstance(data, (list, tuple)):
        data = [x.detach()._data if isinstance(x, Tensor) else x for x in data] if any(
            isinstance(x, Tensor) for x in data) else data
    dt = dtype or _infer_dtype_of_data(data)
    try:
        arr = np.array(data, dtype=dt.np, copy=True)
    except (ValueError, TypeError) as e:
        raise TypeError(f"tensor(): could not convert data: {e}") from None
    if arr.dtype == object:
        raise TypeError("tensor(): data must be numbers or nested sequences of numbers")
    return _finish(Tensor._wrap(arr), requires_grad)


as_tensor = tensor


_DIRECT_NP = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int64, np.bool_))


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with a numpy array (no copy)."""
    if (arr.__class__ is np.ndarray and arr.dtype in _DIRECT_NP and arr.flags.c_contiguous
            and arr.size and arr.ndim <= 8):  # the common case, checked cheaply
        return Tensor._wrap(arr)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    D.from_numpy_dtype(arr.dtype)
    if arr.dtype.kind in "iu" and arr.dtype not in (np.int32, np.int64):
        raise TypeError(f"can't convert np.ndarray of type {arr.dtype}; supported: float32, float64, int32, int64, bool")
    if arr.ndim > 8:
        raise ValueError("tensors have at most 8 dims")
    if any(s < 0 or s % arr.itemsize for s in arr.strides):
        arr = np.ascontiguousarray(arr)
    return Tensor._wrap(arr)


def _fill_infer(shape, value, dtype_code):
    return [(tuple(shape), D.BY_CODE[dtype_code])]


@defop(name="full", inputs=(), attrs=("shape", "value", "dtype"), infer=_fill_infer,
       kernel="fill", promote=None, differentiable=False, torch_ref="torch.full",
       dtypes=(D.float32, D.int64, D.bool_), samples=lambda dt: [Sample(((2, 3), 1.5 if dt.is_floating_point else 2))],
       onnx_reason="exported as ConstantOfShape by the ONNX exporter")
def full(size, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A tensor of the given shape filled with fill_value."""
    size = _shape_arg((size,) if isinstance(size, int) else (size,))
    if dtype is None:
        dtype = D.scalar_dtype(fill_value) if not isinstance(fill_value, Tensor) else fill_value.dtype
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    t = _dispatch.dispatch(full.opdef, [], (size, float(fill_value) if not isinstance(fill_value, bool) else int(fill_value), dtype.code))
    return _finish(t, requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    """An uninitialized tensor (memory from the caching allocator)."""
    dt = dtype or D.get_default_dtype()
    return _finish(Tensor._wrap(_C.empty(list(_shape_arg(size)), dt.code)), requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A tensor of zeros."""
    return full(_shape_arg(size), 0.0, dtype=dtype or D.get_default_dtype(), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A tensor of ones."""
    return full(_shape_arg(size), 1.0, dtype=dtype or D.get_default_dtype(), requires_grad=requires_grad)


def _like(x: Tensor, dtype):
    return tuple(x.shape), dtype or x.dtype


def zeros_like(x, dtype=None, requires_grad=False, **_) -> Tensor:
    shape, dt = _like(x, dtype)
    return zeros(shape, dtype=dt, requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad=False, **_) -> Tensor:
    shape, dt = _like(x, dtype)
    return ones(shape, dtype=dt, requires_grad=requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad=False, **_) -> Tensor:
    shape, dt = _like(x, dtype)
    return full(shape, fill_value, dtype=dt, requires_grad=requires_grad)


def empty_like(x, dtype=None, requires_grad=False, **_) -> Tensor:
    shape, dt = _like(x, dtype)
    return empty(shape, dtype=dt, requires_grad=requires_grad)


def _arange_infer(n, start, step, dtype_code):
    return [((n,), D.BY_CODE[dtype_code])]


@defop(name="arange", inputs=(), attrs=("n", "start", "step", "dtype"), infer=_arange_infer,
       promote=None, differentiable=False, torch_ref="torch.arange", onnx_reason="exported as Range",
       dtypes=(D.float32, D.int64), samples=lambda dt: [Sample((0, 5)), Sample((1.0, 4.0, 0.5)), Sample((7,))])
def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Values from start to end (exclusive) in steps of step."""
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        dtype = D.int64 if all(isinstance(v, int) for v in vals) else D.get_default_dtype()
    n = int(np.ceil((end - start) / step))
    n = max(n, 0)
    t = _dispatch.dispatch(arange.opdef, [], (n, float(start), float(step), dtype.code))
    return _finish(t, requires_grad)


def _linspace_infer(start, end, steps, dtype_code):
    return [((steps,), D.BY_CODE[dtype_code])]


@defop(name="linspace", inputs=(), attrs=("start", "end", "steps", "dtype"), infer=_linspace_infer,
       promote=None, differentiable=False, torch_ref="torch.linspace",
       onnx_reason="constant-folded before export", samples=lambda dt: [Sample((0.0, 1.0, 5)), Sample((-2, 3, 7))])
def linspace(start, end, steps, dtype=None, requires_grad=False, device=None) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive."""
    if steps < 0:
        raise RuntimeError("linspace: number of steps must be non-negative")
    dt = dtype or D.get_default_dtype()
    return _finish(_dispatch.dispatch(linspace.opdef, [], (float(start), float(end), int(steps), dt.code)),
                   requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """The identity matrix (n x m)."""
    m = n if m is None else m
    r = arange(n).unsqueeze(1)
    c = arange(m).unsqueeze(0)
    return _finish((r == c).to(dtype or D.get_default_dtype()), requires_grad)


# ---- random numbers -----------------------------------------------------------------
class Generator:
    """A seeded source of random streams (torch.Generator). Each draw gets a fresh
    counter-derived seed for the C++ counter-based RNG."""

    def __init__(self, device="cpu"):
        self._seed = 67280421310721
        self._counter = 0

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        self._counter = 0
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        import random as _r

        self.manual_seed(_r.getrandbits(63))
        return self._seed

    def next_seed(self) -> int:
        self._counter += 1
        z = (self._seed * 0x9E3779B97F4A7C15 + self._counter * 0xBF58476D1CE4E5B9) & ((1 << 63) - 1)
        return z

    def get_state(self):
        return tensor([self._seed & ((1 << 62) - 1), self._counter], dtype=D.int64)

    def set_state(self, state):
        self._seed, self._counter = (int(v) for v in state.tolist())


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seeds the default generator (and numpy's global RNG used by data shuffling)."""
    default_generator.manual_seed(seed)
    return default_generator


def initial_seed() -> int:
    return default_generator.initial_seed()


def _rand_infer(shape, seed, a, b, dtype_code):
    return [(tuple(shape), D.BY_CODE[dtype_code])]


@defop(name="uniform", inputs=(), attrs=("shape", "seed", "low", "high", "dtype"), infer=_rand_infer,
       promote=None, differentiable=False, onnx_reason="random ops are not exported",
       torch_ref=None, samples=lambda dt: [Sample(((3, 4), 7, 0.0, 1.0, dt.code))])
def _uniform_op(shape, seed, low, high, dtype_code):
    return _dispatch.dispatch(_uniform_op.opdef, [], (shape, seed, low, high, dtype_code))


@defop(name="normal", inputs=(), attrs=("shape", "seed", "mean", "std", "dtype"), infer=_rand_infer,
       promote=None, differentiable=False, onnx_reason="random ops are not exported",
       torch_ref=None, samples=lambda dt: [Sample(((3, 4), 7, 0.0, 1.0, dt.code))])
def _normal_op(shape, seed, mean, std, dtype_code):
    return _dispatch.dispatch(_normal_op.opdef, [], (shape, seed, mean, std, dtype_code))


def _kernel_attrs_rand(shape, seed, a, b, dt):
    # kernel attrs: seed, a, b (shape and dtype are carried by the output)
    return (shape, seed, a, b, dt.code)


def rand(*size, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Uniform samples in [0, 1)."""
    g = generator or default_generator
    dt = dtype or D.get_default_dtype()
    return _finish(_uniform_op(_shape_arg(size), g.next_seed(), 0.0, 1.0, dt.code), requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Standard normal samples."""
    g = generator or default_generator
    dt = dtype or D.get_default_dtype()
    return _finish(_normal_op(_shape_arg(size), g.next_seed(), 0.0, 1.0, dt.code), requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None) -> Tensor:
    """Integers uniform in [low, high)."""
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    g = generator or default_generator
    dt = dtype or D.int64
    return _uniform_op(_shape_arg((size,)), g.next_seed(), float(low), float(high), dt.code)


def rand_like(x, dtype=None, **_) -> Tensor:
    return rand(tuple(x.shape), dtype=dtype or x.dtype)


def randn_like(x, dtype=None, **_) -> Tensor:
    return randn(tuple(x.shape), dtype=dtype or x.dtype)


def randint_like(x, low, high=None, dtype=None, **_) -> Tensor:
    return randint(low, high, tuple(x.shape), dtype=dtype or x.dtype)


def randperm(n: int, generator=None, dtype=None, **_) -> Tensor:
    """A random permutation of 0..n-1."""
    return rand(n, generator=generator, dtype=D.float64).argsort().to(dtype or D.int64)
