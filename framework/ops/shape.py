"""Views and shape ops: reshape/view, flatten, unflatten, squeeze, unsqueeze, permute,
transpose, expand, slice, select, contiguous, and basic indexing built from them.

In eager mode a view op returns a numpy view sharing storage (and the version counter)
with its input; in graph mode the runtime runs the op's kernel (csrc/kernels/shape.cpp),
which materializes the view. Gradients are written with registered ops.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as D
from ._common import arg, wrap_dim
from .dispatch import dispatch
from .registry import Sample, defop

ALL_DT = (D.float32, D.float64, D.int64, D.bool_)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def infer_reshape_shape(shape, numel, op="view"):
    """Resolves one -1 in `shape` against numel; raises with both shapes on mismatch."""
    n = 1
    for s in shape:  # the common case first: plain non-negative ints
        if type(s) is not int or s < 0:
            break
        n *= s
    else:
        if n == numel:
            return tuple(shape)
    shape = tuple(int(s) if isinstance(s, (int, np.integer)) else s for s in shape)
    neg = [i for i, s in enumerate(shape) if isinstance(s, int) and s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred")
    for s in shape:
        if isinstance(s, int) and s < -1:
            raise RuntimeError(f"{op}: invalid shape dimension {s}")
    if neg:
        known = _numel([s for s in shape if not (isinstance(s, int) and s == -1)])
        if known == 0 or numel % known != 0:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if (isinstance(s, int) and s == -1) else s for s in shape)
    if _numel(shape) != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    if len(shape) == 1 and hasattr(shape[0], "__iter__") and not hasattr(shape[0], "_data"):
        return tuple(shape[0])
    return tuple(shape)


def _reshape_grad(c, g):
    return (g.reshape(c.shapes[0]),)


def _reshape_view(a, shape):
    return a.reshape(shape)


@defop(name="reshape", inputs=("x",), attrs=("shape",),
       infer=lambda x, shape: [(tuple(shape), x.dtype)], grad=_reshape_grad, view=_reshape_view,
       promote=None, dtypes=ALL_DT, torch_ref="torch.reshape", tags=("view",),
       samples=lambda dt: [Sample((arg((3, 4), dt), (4, 3))), Sample((arg((2, 3, 4), dt), (-1,))),
                           Sample((arg((2, 3, 4), dt).transpose(1, 0, 2), (6, 4)), note="non-contiguous"),
                           Sample((arg((0, 3), dt), (3, 0)), note="empty")])
def reshape(input, *shape):
    """A tensor with the same data in a new shape (a view when possible)."""
    shape = infer_reshape_shape(_shape_args(shape), input.numel(), "reshape")
    if tuple(shape) == tuple(input.shape):
        return input
    return dispatch(reshape.opdef, [input], (shape,))


def view(input, *shape):
    """Like reshape, but refuses (like torch) when the strides don't allow a view."""
    if len(shape) == 1 and isinstance(shape[0], D.dtype):
        raise NotImplementedError("view(dtype) is not supported")
    shape = infer_reshape_shape(_shape_args(shape), input.numel(), "view")
    if not input._data.flags.c_contiguous and input.numel() > 1:
        try:
            test = input._data.view()
            test.shape = shape  # raises if a copy would be needed
        except AttributeError:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            ) from None
    return reshape(input, shape)


def flatten(input, start_dim=0, end_dim=-1):
    """Merges dims start_dim..end_dim into one."""
    if input.ndim == 0:
        return reshape(input, (1,))
    s = wrap_dim(start_dim, input.ndim, "flatten")
    e = wrap_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = tuple(input.shape)
    return reshape(input, shape[:s] + (_numel(shape[s:e + 1]),) + shape[e + 1:])


def unflatten(input, dim, sizes):
    """Splits dim into `sizes` (one entry may be -1)."""
    d = wrap_dim(dim, input.ndim, "unflatten")
    shape = tuple(input.shape)
    sizes = infer_reshape_shape(tuple(sizes), shape[d], "unflatten")
    return reshape(input, shape[:d] + tuple(sizes) + shape[d + 1:])


def squeeze(input, dim=None):
    """Removes size-1 dims (all, or the given ones)."""
    shape = tuple(input.shape)
    if dim is None:
        dims = {i for i, s in enumerate(shape) if s == 1}
    else:
        dims = {wrap_dim(d, input.ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
        dims = {d for d in dims if input.ndim and shape[d] == 1}
    return reshape(input, tuple(s for i, s in enumerate(shape) if i not in dims))


def unsqueeze(input, dim):
    """Inserts a size-1 dim at position dim."""
    d = wrap_dim(dim, input.ndim + 1, "unsqueeze")
    shape = tuple(input.shape)
    return reshape(input, shape[:d] + (1,) + shape[d:])


def _permuted(shape, dims):
    return tuple([shape[d] for d in dims])


def _permute_grad(c, g):
    dims = c.attrs[0]
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (permute(g, inv),)


@defop(name="permute", inputs=("x",), attrs=("dims",),
       infer=lambda x, dims: [(_permuted(x.shape, dims), x.dtype)], grad=_permute_grad,
       view=lambda a, dims: a.transpose(dims), promote=None, dtypes=ALL_DT, methods=(),
       torch_ref="torch.permute", tags=("view",),
       samples=lambda dt: [Sample((arg((2, 3, 4), dt), (2, 0, 1))), Sample((arg((3, 4), dt), (1, 0)))])
def permute(input, *dims):
    """Reorders dims (a view)."""
    dims = _shape_args(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not "
                           f"match the length of the desired ordering of dimensions i.e. input.dim() = "
                           f"{input.ndim} is not equal to len(dims) = {len(dims)}")
    ndim = input.ndim
    if not all(type(d) is int and 0 <= d < ndim for d in dims):
        dims = tuple(wrap_dim(d, ndim, "permute") for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    if dims == tuple(range(input.ndim)):
        return input
    return dispatch(permute.opdef, [input], (dims,))


def transpose(input, dim0, dim1):
    """Swaps two dims (a view)."""
    n = input.ndim
    if n == 0:
        return input
    d0, d1 = wrap_dim(dim0, n, "transpose"), wrap_dim(dim1, n, "transpose")
    dims = list(range(n))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(input, dims)


swapaxes = transpose


def t(input):
    """Transposes a tensor of at most 2 dims."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def _expand_infer(x, shape):
    return [(tuple(shape), x.dtype)]


def _expand_grad(c, g):
    from ._common import sum_to

    return (sum_to(g, c.shapes[0]),)


@defop(name="expand", inputs=("x",), attrs=("shape",), infer=_expand_infer, grad=_expand_grad,
       view=lambda a, shape: np.broadcast_to(a, shape), kernel="copy", promote=None, dtypes=ALL_DT,
       torch_ref="torch.Tensor.expand", tags=("view",),
       samples=lambda dt: [Sample((arg((3, 1), dt), (3, 4))), Sample((arg((4,), dt), (2, 3, 4)))])
def expand(input, *sizes):
    """Broadcasts size-1 dims to `sizes` without copying (-1 keeps a dim)."""
    sizes = _shape_args(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({input.ndim})")
    off = len(sizes) - input.ndim
    shape = []
    for i, s in enumerate(sizes):
        if i >= off:
            cur = input.shape[i - off]
            if s == -1:
                s = cur
            elif cur != 1 and cur != s:
                raise RuntimeError(
                    f"The expanded size of the tensor ({s}) must match the existing size ({cur}) at "
                    f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(input.shape)}")
        elif s == -1:
            raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
        shape.append(s)
    shape = tuple(shape)
    if shape == tuple(input.shape):
        return input
    return dispatch(expand.opdef, [input], (shape,))


def expand_as(input, other):
    return expand(input, tuple(other.shape))


def contiguous(input, memory_format=None):
    """input itself if contiguous, else a contiguous copy."""
    if input._data.flags.c_contiguous:
        return input
    from .elementwise import clone

    return clone(input)


# ---- slicing ----------------------------------------------------------------------------

def _slice_infer(x, dim, start, end, step):
    shape = list(x.shape)
    shape[dim] = max(0, (end - start + step - 1) // step)
    return [(tuple(shape), x.dtype)]


def _slice_grad(c, g):
    from ..creation import zeros

    dim, start, end, step = c.attrs
    out = zeros(c.shapes[0], dtype=g.dtype)
    return (slice_scatter(out, g, dim, start, end, step),)


def _slice_view(a, dim, start, end, step):
    idx = [slice(None)] * a.ndim
    idx[dim] = slice(start, end, step)
    return a[tuple(idx)]


@defop(name="slice", inputs=("x",), attrs=("dim", "start", "end", "step"), infer=_slice_infer,
       grad=_slice_grad, view=_slice_view, promote=None, dtypes=ALL_DT, torch_ref=None,
       onnx_reason=None, tags=("view",),
       samples=lambda dt: [Sample((arg((5, 4), dt), 0, 1, 4, 1)), Sample((arg((5, 6), dt), 1, 0, 6, 2))])
def slice_op(input, dim, start, end, step=1):
    """input narrowed along dim to start:end:step (clamped like Python slicing)."""
    d = wrap_dim(dim, input.ndim, "slice")
    size = input.shape[d]
    if step <= 0:
        raise ValueError("slice step must be positive")
    start, end, _ = slice(start, end, step).indices(size)
    end = max(end, start)
    if start == 0 and end == size and step == 1:
        return input
    return dispatch(slice_op.opdef, [input], (d, start, end, step))


def narrow(input, dim, start, length):
    """input[..., start:start+length, ...] along dim (a view)."""
    d = wrap_dim(dim, input.ndim, "narrow")
    if start < 0:
        start += input.shape[d]
    if start < 0 or start + length > input.shape[d] or length < 0:
        raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({input.shape[d]}).")
    return slice_op(input, d, start, start + length, 1)


def _select_infer(x, dim, index):
    return [(tuple(s for i, s in enumerate(x.shape) if i != dim), x.dtype)]


def _select_grad(c, g):
    from ..creation import zeros

    dim, index = c.attrs
    return (select_scatter(zeros(c.shapes[0], dtype=g.dtype), g, dim, index),)


def _select_view(a, dim, index):
    idx = [slice(None)] * a.ndim
    idx[dim] = index
    # NOTE: the trailing Ellipsis keeps a 0-d result an array view (not a numpy scalar).
    return a[tuple(idx) + (Ellipsis,)]


@defop(name="select", inputs=("x",), attrs=("dim", "index"), infer=_select_infer, grad=_select_grad,
       view=_select_view, promote=None, dtypes=ALL_DT, torch_ref="torch.select", tags=("view",),
       samples=lambda dt: [Sample((arg((5, 4), dt), 0, 2)), Sample((arg((3, 4, 2), dt), 1, -1))])
def select(input, dim, index):
    """input indexed at `index` along dim, which is removed (a view)."""
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = wrap_dim(dim, input.ndim, "select")
    size = input.shape[d]
    if not -size <= index < size:
        raise IndexError(f"index {index} is out of bounds for dimension {d} with size {size}")
    return dispatch(select.opdef, [input], (d, index % size))


def _scatter_view_grad(kind):
    def grad(c, g):
        from .elementwise import clone

        attrs = c.attrs
        gin = clone(g)
        gsrc = None
        if kind == "slice":
            dim, start, end, step = attrs
            if c.needs_input_grad[0]:
                gin = slice_scatter(g, zeros_like_(slice_op(g, dim, start, end, step)), dim, start, end, step)
            gsrc = slice_op(g, dim, start, end, step) if c.needs_input_grad[1] else None
        else:
            dim, index = attrs
            if c.needs_input_grad[0]:
                gin = select_scatter(g, zeros_like_(select(g, dim, index)), dim, index)
            gsrc = select(g, dim, index) if c.needs_input_grad[1] else None
        return (gin if c.needs_input_grad[0] else None, gsrc)

    return grad


def zeros_like_(t):
    from ..creation import zeros

    return zeros(tuple(t.shape), dtype=t.dtype)


@defop(name="slice_scatter", inputs=("x", "src"), attrs=("dim", "start", "end", "step"),
       infer=lambda x, src, *a: [(tuple(x.shape), x.dtype)], grad=_scatter_view_grad("slice"),
       promote=None, dtypes=ALL_DT, torch_ref="torch.slice_scatter",
       samples=lambda dt: [Sample((arg((5, 4), dt), arg((2, 4), dt), 0, 1, 3, 1)),
                           Sample((arg((5, 6), dt), arg((5, 3), dt), 1, 0, 6, 2))])
def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of input with input[dim, start:end:step] replaced by src."""
    d = wrap_dim(dim, input.ndim, "slice_scatter")
    start, end, _ = slice(start, end, step).indices(input.shape[d])
    end = max(end, start)
    return dispatch(slice_scatter.opdef, [input, src], (d, start, end, step))


@defop(name="select_scatter", inputs=("x", "src"), attrs=("dim", "index"),
       infer=lambda x, src, *a: [(tuple(x.shape), x.dtype)], grad=_scatter_view_grad("select"),
       promote=None, dtypes=ALL_DT, torch_ref="torch.select_scatter",
       samples=lambda dt: [Sample((arg((5, 4), dt), arg((4,), dt), 0, 2))])
def select_scatter(input, src, dim, index):
    """A copy of input with input.select(dim, index) replaced by src."""
    d = wrap_dim(dim, input.ndim, "select_scatter")
    return dispatch(select_scatter.opdef, [input, src], (d, index % input.shape[d]))

__all__ = ["reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose",
           "swapaxes", "t", "narrow", "select", "slice_scatter", "select_scatter"]
