"""Data movement without index tensors: cat (and stack), split, chunk, unbind, flip, roll,
repeat (and tile), tril and triu. Kernels: csrc/kernels/movement.cpp.

split/chunk/unbind are views composed from the registered slice/select ops; stack and tile
compose from cat and repeat. Gradients are written with registered ops. Nothing here
computes on data in Python.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as D
from ._common import arg, wrap_dim
from .dispatch import dispatch
from .registry import Sample, defop
from .shape import _shape_args, select, slice_op

ALL_DT = (D.float32, D.float64, D.int64, D.bool_)


def _is_tensor(x):
    return hasattr(x, "_data")


# ---- cat / stack -------------------------------------------------------------------------

def _cat_infer(*args):
    *xs, dim = args
    shape = list(xs[0].shape)
    shape[dim] = sum(x.shape[dim] for x in xs)
    return [(tuple(shape), xs[0].dtype)]


def _cat_grad(c, g):
    dim = c.attrs[0]
    grads, start = [], 0
    for shape, needs in zip(c.shapes, c.needs_input_grad):
        n = shape[dim]
        grads.append(slice_op(g, dim, start, start + n) if needs else None)
        start += n
    return tuple(grads)


def _cat_samples(dt):
    return [
        Sample(([arg((2, 3), dt), arg((4, 3), dt)],)),
        Sample(([arg((2, 3), dt), arg((2, 1), dt), arg((2, 0), dt)], -1), note="neg-dim-empty"),
        Sample(([arg((3, 4), dt).T, arg((1, 3), dt)], 0), note="strided"),
        Sample(([arg((2, 1, 3), dt)], 1), note="single"),
    ]


@defop(name="cat", inputs=("tensors*",), attrs=("dim",), infer=_cat_infer, grad=_cat_grad,
       dtypes=ALL_DT, torch_ref="torch.cat", samples=_cat_samples)
def cat(tensors, dim=0, *, out=None):
    """Concatenates tensors along an existing dim (dtypes promote like torch)."""
    if out is not None:
        raise NotImplementedError("cat(out=...) is not supported")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    # NOTE: torch (legacy) skips 1-d empty tensors when the others have more dims.
    keep = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    ref = keep[0]
    for i, t in enumerate(keep):
        if t.ndim == 0:
            raise RuntimeError(f"torch.cat(): zero-dimensional tensor (at position {i}) cannot be concatenated")
    d = wrap_dim(dim, ref.ndim, "cat")
    for i, t in enumerate(keep):
        if t.ndim != ref.ndim:
            raise RuntimeError(f"torch.cat(): Tensors must have same number of dimensions: got {ref.ndim} and {t.ndim}")
        for k in range(ref.ndim):
            if k != d and t.shape[k] != ref.shape[k]:
                raise RuntimeError(
                    f"torch.cat(): Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{ref.shape[k]} but got size {t.shape[k]} for tensor number {i} in the list.")
    if len(keep) > _MAX_CAT:  # a kernel call takes at most 16 operands: concatenate in groups
        keep = [dispatch(cat.opdef, keep[i:i + _MAX_CAT], (d,)) for i in range(0, len(keep), _MAX_CAT)]
        return cat(keep, d)
    return dispatch(cat.opdef, keep, (d,))


_MAX_CAT = 16


concat = concatenate = cat


def stack(tensors, dim=0, *, out=None):
    """Joins equally shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tuple(tensors[0].shape)
    for i, t in enumerate(tensors):
        if tuple(t.shape) != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                               f"and {list(t.shape)} at entry {i}")
    d = wrap_dim(dim, len(shape) + 1, "stack")
    return cat([t.unsqueeze(d) for t in tensors], d, out=out)


def hstack(tensors):
    """Concatenates along dim 1 (dim 0 for 1-d tensors)."""
    tensors = [t if t.ndim else t.reshape(1) for t in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Concatenates along dim 0 after making 1-d tensors rows."""
    return cat([t.reshape(1, -1) if t.ndim < 2 else t for t in tensors], 0)


# ---- split / chunk / unbind (views) --------------------------------------------------------

def split(tensor, split_size_or_sections, dim=0):
    """Splits into pieces of a given size (the last may be smaller) or of the given sizes."""
    d = wrap_dim(dim, tensor.ndim, "split")
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step < 0 or (step == 0 and size != 0):
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        if size == 0:
            return (slice_op(tensor, d, 0, 0),)
        return tuple(slice_op(tensor, d, s, min(s + step, size)) for s in range(0, size, step))
    sizes = [int(s) for s in split_size_or_sections]
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's "
                           f"size at dimension {d}), but got split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(slice_op(tensor, d, start, start + s))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    """Splits into `chunks` pieces of equal size (the last may be smaller; may be fewer)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = wrap_dim(dim, input.ndim, "chunk")
    size = input.shape[d]
    if size == 0:
        return tuple(slice_op(input, d, 0, 0) for _ in range(chunks))
    return split(input, (size + chunks - 1) // chunks, d)


def tensor_split(input, indices_or_sections, dim=0):
    """numpy.array_split semantics: n nearly equal pieces, or pieces between indices."""
    d = wrap_dim(dim, input.ndim, "tensor_split")
    size = input.shape[d]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {n}")
        q, r = divmod(size, n)
        sizes = [q + 1] * r + [q] * (n - r)
        return split(input, sizes, d)
    bounds = [0] + [min(max(int(i), 0), size) for i in indices_or_sections] + [size]
    return tuple(slice_op(input, d, a, max(a, b)) for a, b in zip(bounds[:-1], bounds[1:]))


def unbind(input, dim=0):
    """The slices along dim, with dim removed."""
    d = wrap_dim(dim, input.ndim, "unbind")
    return tuple(select(input, d, i) for i in range(input.shape[d]))


# ---- flip / roll -------------------------------------------------------------------------

def _dims_list(dims, ndim, op):
    if isinstance(dims, (int, np.integer)):
        dims = (dims,)
    out = tuple(wrap_dim(d, ndim, op) for d in dims)
    for d in out:
        if out.count(d) > 1:
            raise RuntimeError(f"{op}(): dim {d} appears multiple times in the list of dims")
    return out


@defop(name="flip", inputs=("x",), attrs=("dims",), infer=lambda x, dims: [(tuple(x.shape), x.dtype)],
       grad=lambda c, g: (flip(g, c.attrs[0]),), promote=None, dtypes=ALL_DT, methods=("flip",),
       torch_ref="torch.flip",
       samples=lambda dt: [Sample((arg((3, 4), dt), [0])), Sample((arg((2, 3, 4), dt), (-1, 0)), note="neg-dim"),
                           Sample((arg((2, 6), dt)[:, ::2], [1]), note="strided"),
                           Sample((arg((2, 0), dt), [0, 1]), note="empty"), Sample((arg((3,), dt), []))])
def flip(input, dims):
    """Reverses the order of elements along dims (a copy)."""
    return dispatch(flip.opdef, [input], (_dims_list(dims, input.ndim, "flip"),))


def fliplr(input):
    """Flips dim 1 (left/right)."""
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, [1])


def flipud(input):
    """Flips dim 0 (up/down)."""
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, [0])


def _roll_grad(c, g):
    shifts, dims = c.attrs
    return (roll(g, [-s for s in shifts], list(dims)),)


@defop(name="roll", inputs=("x",), attrs=("shifts", "dims"), infer=lambda x, *a: [(tuple(x.shape), x.dtype)],
       grad=_roll_grad, promote=None, dtypes=ALL_DT, methods=("roll",), torch_ref="torch.roll",
       samples=lambda dt: [Sample((arg((3, 4), dt), 1, 1)), Sample((arg((3, 4), dt), (2, -5), (0, -1)), note="neg"),
                           Sample((arg((2, 3), dt), 4)), Sample((arg((4, 3), dt).T, (1, 2), (1, 1)), note="repeated-dim"),
                           Sample((arg((0, 3), dt), 2, 1), note="empty")])
def roll(input, shifts, dims=None):
    """Rolls elements along dims (flattened when dims is None); shifts wrap around."""
    if isinstance(shifts, (int, np.integer)):
        shifts = (int(shifts),)
    shifts = tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll(): shifts and dimensions must align. shifts: {len(shifts)}, dims: 0")
        if input.ndim == 0:
            return roll(input.reshape(1), shifts, 0).reshape(())
        return roll(input.reshape(-1), shifts, 0).reshape(tuple(input.shape))
    if isinstance(dims, (int, np.integer)):
        dims = (dims,)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll(): shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}")
    total = {}
    for s, d in zip(shifts, dims):
        d = wrap_dim(d, input.ndim, "roll")
        total[d] = total.get(d, 0) + s
    dims = tuple(sorted(total))
    return dispatch(roll.opdef, [input], (tuple(total[d] for d in dims), dims))


# ---- repeat / tile -----------------------------------------------------------------------

def _repeat_grad(c, g):
    reps = c.attrs[0]
    shape = c.shapes[0]
    for d, r in enumerate(reps):
        if r == 1:
            continue
        gs = tuple(g.shape)
        g = g.reshape(gs[:d] + (r, shape[d]) + gs[d + 1:]).sum(d)
    return (g,)


@defop(name="repeat", inputs=("x",), attrs=("repeats",),
       infer=lambda x, reps: [(tuple(s * r for s, r in zip(x.shape, reps)), x.dtype)], grad=_repeat_grad,
       promote=None, dtypes=ALL_DT, methods=("repeat",), torch_ref="torch.Tensor.repeat",
       samples=lambda dt: [Sample((arg((2, 3), dt), 2, 1)), Sample((arg((3,), dt), (2, 1, 2)), note="new-dims"),
                           Sample((arg((2, 6), dt)[:, ::2], 1, 3), note="strided"),
                           Sample((arg((2, 3), dt), 0, 2), note="zero"), Sample((arg((), dt), 3), note="0-d")])
def repeat(input, *sizes):
    """Tiles the tensor sizes[d] times along each dim (leading new dims allowed)."""
    reps = tuple(int(r) for r in _shape_args(sizes))
    if len(reps) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                           "dimensions of tensor")
    if any(r < 0 for r in reps):
        raise RuntimeError(f"Trying to create tensor with negative dimension: repeats {list(reps)}")
    x = input.reshape((1,) * (len(reps) - input.ndim) + tuple(input.shape))
    return dispatch(repeat.opdef, [x], (reps,))


def tile(input, dims):
    """repeat() with dims padded with leading 1s to the tensor's rank."""
    dims = tuple(_shape_args((dims,) if isinstance(dims, int) else tuple(dims)))
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


# ---- tril / triu -------------------------------------------------------------------------

def _tri_samples(dt):
    return [Sample((arg((4, 5), dt),)), Sample((arg((2, 3, 4), dt), 1)), Sample((arg((5, 3), dt), -2)),
            Sample((arg((4, 6), dt)[:, ::2], 0), note="strided"), Sample((arg((0, 3), dt),), note="empty")]


def _tri(name, grad):
    def fn(input, diagonal=0):
        if input.ndim < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
        return dispatch(fn.opdef, [input], (int(diagonal),))

    fn.__name__ = name
    fn.__doc__ = (f"The {'lower' if name == 'tril' else 'upper'} triangle of the last two dims "
                  f"(others set to 0), relative to `diagonal`.")
    return defop(name=name, inputs=("x",), attrs=("diagonal",), infer=lambda x, k: [(tuple(x.shape), x.dtype)],
                 grad=grad, promote=None, dtypes=ALL_DT, methods=(name,), inplace=(name + "_",),
                 torch_ref=f"torch.{name}", samples=_tri_samples)(fn)


tril = _tri("tril", lambda c, g: (tril(g, c.attrs[0]),))
triu = _tri("triu", lambda c, g: (triu(g, c.attrs[0]),))

__all__ = ["cat", "concat", "concatenate", "stack", "hstack", "vstack", "split", "chunk", "tensor_split",
           "unbind", "flip", "fliplr", "flipud", "roll", "tile", "tril", "triu"]
