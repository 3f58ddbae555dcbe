"""Index-driven data movement: gather, scatter (src/value, reduce), scatter_add,
index_select, take_along_dim, nonzero, masked_select, and advanced indexing: the "index"
op (N broadcast index tensors) and "index_put" (assignment or accumulation), with
advanced_getitem / advanced_setitem for x[idx] and x[idx] = v. Kernels:
csrc/kernels/gather.cpp, which checks every index (out of range -> IndexError, never a crash).

Index tensors are int64 (int32 accepted where torch accepts it). Gradients are written with
registered ops: gather <-> scatter_add, index <-> index_put(accumulate=True).
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as D
from ._common import arg, broadcast_shapes, wrap_dim
from .dispatch import dispatch
from .registry import Sample, defop

GATHER_DT = (D.float32, D.float64, D.int64)
_INDEX_DT = (D.int64, D.int32)


def _is_tensor(x):
    return hasattr(x, "_data")


def _zeros(shape, dt):
    from ..creation import zeros

    return zeros(tuple(shape), dtype=dt)


def _check_long(index, op):
    if not _is_tensor(index):
        raise TypeError(f"{op}(): index must be a Tensor, got {type(index).__name__}")
    if index.dtype is not D.int64:
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got {index.dtype.name}")


# ---- samples ---------------------------------------------------------------------------------
_rng = np.random.default_rng(5)


def _rand_index(shape, high):
    return _rng.integers(0, max(high, 1), size=shape).astype(np.int64) if high else np.zeros(shape, np.int64)


def _unique_index(shape, dim, size):
    """An index of `shape` whose entries are distinct along dim (so scatter is deterministic)."""
    full = list(shape)
    full[dim] = size
    perm = np.argsort(_rng.random(full), axis=dim)
    return np.ascontiguousarray(np.take(perm, range(shape[dim]), axis=dim)).astype(np.int64)


# ---- gather ----------------------------------------------------------------------------------

def _gather_grad(c, g):
    dim = c.attrs[0]
    return (scatter_add(_zeros(c.shapes[0], g.dtype), dim, c.inputs[1], g), None)


def _gather_samples(dt):
    return [
        Sample((arg((3, 4), dt), 1, _rand_index((3, 6), 4))),
        Sample((arg((4, 3), dt), -2, _rand_index((2, 3), 4)), note="neg-dim"),
        Sample((arg((3, 4, 2), dt), 0, _rand_index((2, 2, 1), 3)), note="smaller-index"),
        Sample((arg((3, 8), dt)[:, ::2], 1, _rand_index((3, 4), 4)), note="strided"),
        Sample((arg((3, 4), dt), 1, _rand_index((3, 0), 4)), note="empty"),
        Sample((arg((), dt), 0, np.zeros((), np.int64)), note="0-d"),
    ]


@defop(name="gather", inputs=("x", "index"), attrs=("dim",),
       infer=lambda x, index, dim: [(tuple(index.shape), x.dtype)], grad=_gather_grad, promote=None,
       dtypes=GATHER_DT, kernel_dtypes=GATHER_DT + (D.int32, D.bool_), methods=("gather",),
       torch_ref="torch.gather", samples=_gather_samples)
def gather(input, dim, index, *, sparse_grad=False):
    """out[i][j] = input[index[i][j]][j] (dim 0), and so on: values picked along dim."""
    _check_long(index, "gather")
    return dispatch(gather.opdef, [input, index], (wrap_dim(dim, input.ndim, "gather"),))


def take_along_dim(input, indices, dim=None):
    """Values of input at `indices` along dim (input and indices broadcast on the other dims);
    over the flattened input when dim is None."""
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    if input.ndim != indices.ndim:
        raise RuntimeError("torch.take_along_dim(): input and indices should have the same number of "
                           f"dimensions, but got {input.ndim} dimensions for input, and {indices.ndim} "
                           "dimensions for indices")
    d = wrap_dim(dim, input.ndim, "take_along_dim")
    xs, js = list(input.shape), list(indices.shape)
    xs[d] = js[d] = 1
    b = list(broadcast_shapes(tuple(xs), tuple(js)))
    xb, ib = list(b), list(b)
    xb[d], ib[d] = input.shape[d], indices.shape[d]
    return gather(input.expand(*xb), d, indices.expand(*ib))


# ---- scatter / scatter_add ---------------------------------------------------------------------

def _scatter_grad(c, g):
    dim, _value, reduce = c.attrs
    if reduce == "multiply":
        raise NotImplementedError("the gradient of scatter(reduce='multiply') is not implemented")
    index = c.inputs[1]
    gx = gsrc = None
    if c.needs_input_grad[0]:
        gx = g if reduce == "add" else scatter(g, dim, index, 0.0)
    if len(c.needs_input_grad) > 2 and c.needs_input_grad[2]:
        gsrc = _pad_to(gather(g, dim, index), c.shapes[2])
    return (gx, None, gsrc)


def _pad_to(g, shape):
    """g zero-padded at the end of each dim to `shape` (src may be larger than index)."""
    from .shape import slice_scatter

    for d in range(len(shape)):
        if g.shape[d] != shape[d]:
            z = _zeros(tuple(shape[:d + 1]) + tuple(g.shape[d + 1:]), g.dtype)
            g = slice_scatter(z, g, d, 0, g.shape[d])
    return g


# grad=False: torch has no gradient for reduce= or for a src larger than index.
def _scatter_samples(dt):
    v = -1.5 if dt.is_floating_point else 7
    return [
        Sample((arg((4, 5), dt), 0, _unique_index((3, 5), 0, 4), arg((3, 5), dt))),
        Sample((arg((3, 5), dt), -1, _unique_index((3, 2), 1, 5), arg((4, 3), dt)), grad=False,
               note="neg-dim-bigger-src"),
        Sample((arg((3, 4), dt), 1, _unique_index((2, 3), 1, 4), v), note="value"),
        Sample((arg((3, 4), dt), 1, _rand_index((3, 6), 4), arg((3, 6), dt)), {"reduce": "add"}, grad=False,
               note="add"),
        Sample((arg((3, 4), dt), 0, _rand_index((0, 4), 3), arg((0, 4), dt)), note="empty"),
    ]


@defop(name="scatter", inputs=("x", "index", "src?"), attrs=("dim", "value", "reduce"),
       infer=lambda x, index, src, *a: [(tuple(x.shape), x.dtype)], grad=_scatter_grad, promote=None,
       dtypes=GATHER_DT, kernel_dtypes=GATHER_DT + (D.int32, D.bool_), methods=("scatter",),
       inplace=("scatter_",), torch_ref="torch.scatter", samples=_scatter_samples)
def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """A copy of input with input[index[i][j]][j] = src[i][j] (dim 0), and so on; `src` may
    be a number; reduce='add' / 'multiply' combine instead of assigning."""
    _check_long(index, "scatter")
    if src is None and value is None:
        raise TypeError("scatter(): expected a src tensor or a value")
    if src is not None and not _is_tensor(src):
        src, value = None, src
    if hasattr(value, "item"):
        value = value.item()
    if reduce not in (None, "add", "multiply"):
        raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce!r}")
    if src is not None and src.dtype is not input.dtype:
        raise RuntimeError(f"scatter(): Expected self.dtype to be equal to src.dtype "
                           f"({input.dtype.name} vs {src.dtype.name})")
    d = wrap_dim(dim, input.ndim, "scatter")
    return dispatch(scatter.opdef, [input, index, src], (d, value, reduce or "none"))


def _scatter_add_grad(c, g):
    dim = c.attrs[0]
    gsrc = _pad_to(gather(g, dim, c.inputs[1]), c.shapes[2]) if c.needs_input_grad[2] else None
    return (g if c.needs_input_grad[0] else None, None, gsrc)


@defop(name="scatter_add", inputs=("x", "index", "src"), attrs=("dim",),
       infer=lambda x, index, src, dim: [(tuple(x.shape), x.dtype)], grad=_scatter_add_grad, promote=None,
       dtypes=GATHER_DT, kernel_dtypes=GATHER_DT + (D.int32, D.bool_), methods=("scatter_add",),
       inplace=("scatter_add_",), torch_ref="torch.scatter_add",
       samples=lambda dt: [Sample((arg((3, 4), dt), 1, _rand_index((3, 6), 4), arg((3, 6), dt))),
                           Sample((arg((4, 3), dt), -2, _rand_index((5, 3), 4), arg((5, 3), dt)), note="neg-dim"),
                           Sample((arg((4, 3), dt), 0, _rand_index((5, 2), 4), arg((5, 3), dt)), grad=False,
                                  note="bigger-src"),
                           Sample((arg((2, 3), dt), 0, _rand_index((0, 3), 2), arg((0, 3), dt)), note="empty")])
def scatter_add(input, dim, index, src):
    """A copy of input with src added at index along dim (duplicates accumulate)."""
    _check_long(index, "scatter_add")
    if src.dtype is not input.dtype:
        raise RuntimeError(f"scatter_add(): Expected self.dtype to be equal to src.dtype "
                           f"({input.dtype.name} vs {src.dtype.name})")
    return dispatch(scatter_add.opdef, [input, index, src], (wrap_dim(dim, input.ndim, "scatter_add"),))


# ---- index_select ------------------------------------------------------------------------------

def _index_select_infer(x, index, dim):
    shape = list(x.shape)
    if shape:
        shape[dim] = index.shape[0]
    return [(tuple(shape), x.dtype)]


def _index_select_grad(c, g):
    dim = c.attrs[0]
    shape = c.shapes[0]
    if len(shape) == 0:
        return (g.reshape(()), None)
    return (_index_put(_zeros(shape, g.dtype), [c.inputs[1]], (dim,), g, True), None)


@defop(name="index_select", inputs=("x", "index"), attrs=("dim",), infer=_index_select_infer,
       grad=_index_select_grad, promote=None, dtypes=GATHER_DT, kernel_dtypes=GATHER_DT + (D.int32, D.bool_),
       methods=("index_select",), torch_ref="torch.index_select",
       samples=lambda dt: [Sample((arg((4, 3), dt), 0, np.array([3, 0, 3, 1]))),
                           Sample((arg((2, 5, 3), dt), -2, np.array([4, 4, 0]))),
                           Sample((arg((3, 8), dt)[:, ::2], 1, np.array([1, 2], np.int32)), note="strided-int32"),
                           Sample((arg((3, 4), dt), 1, np.zeros(0, np.int64)), note="empty"),
                           Sample((arg((3, 4), dt), 0, np.array(2)), note="0-d-index")])
def index_select(input, dim, index):
    """The entries of input at the positions `index` (1-d) along dim."""
    if not _is_tensor(index) or index.dtype not in _INDEX_DT:
        raise IndexError(f"index_select(): Expected dtype int32/int64 for index, got "
                         f"{index.dtype.name if _is_tensor(index) else type(index).__name__}")
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = wrap_dim(dim, input.ndim, "index_select")
    return dispatch(index_select.opdef, [input, index.reshape(-1)], (d,))


# ---- nonzero / masked_select --------------------------------------------------------------------

@defop(name="nonzero", inputs=("x",), attrs=("count",),
       infer=lambda x, n: [((n, x.ndim), D.int64)], promote=None, differentiable=False,
       dtypes=(D.float32, D.int64, D.bool_), kernel_dtypes=GATHER_DT + (D.int32, D.bool_),
       methods=("nonzero",), torch_ref="torch.nonzero",
       samples=lambda dt: [Sample((arg((3, 4), dt),)), Sample((arg((2, 3, 2), dt),), {"as_tuple": True}),
                           Sample((arg((2, 0), dt),), note="empty"),
                           Sample((arg((4, 6), dt)[:, ::2],), note="strided")])
def nonzero(input, *, as_tuple=False):
    """Coordinates of the nonzero elements, (n, ndim) int64 in row-major order (or one 1-d
    tensor per dim with as_tuple=True)."""
    # NOTE: the output shape depends on the data: the count is read with .item() (a traced
    # graph bakes it in, with a TracerWarning, and its kernel refuses inputs whose count differs).
    from .elementwise import to
    from .reduce import sum as _sum

    if as_tuple and input.ndim == 0:
        return (nonzero(input.reshape(1))[:, 0],)
    count = int(_sum(to(input, D.bool_)).item())
    out = dispatch(nonzero.opdef, [input], (count,))
    if as_tuple:
        return tuple(out[:, i] for i in range(input.ndim))
    return out


def argwhere(input):
    """nonzero(input) (the (n, ndim) form)."""
    return nonzero(input)


def masked_select(input, mask):
    """The 1-d tensor of input's values where mask (broadcast) is true."""
    if not _is_tensor(mask) or mask.dtype is not D.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    shape = broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    x = input.expand(*shape) if tuple(input.shape) != shape else input
    m = mask.expand(*shape) if tuple(mask.shape) != shape else mask
    if not shape:
        x, m = x.reshape(1), m.reshape(1)
    return _index(x, list(nonzero(m, as_tuple=True)), tuple(range(len(shape) or 1)))


# ---- advanced indexing: the index / index_put ops --------------------------------------------

def _indexed_shape(x, idx_shapes, dims):
    """The shape of x indexed at `dims` by index tensors of `idx_shapes` (torch's rule: the
    broadcast index shape replaces adjacent indexed dims in place, else goes first)."""
    try:
        b = broadcast_shapes(*idx_shapes)
    except RuntimeError:
        raise IndexError("shape mismatch: indexing tensors could not be broadcast together with shapes "
                         + ", ".join(str(list(s)) for s in idx_shapes)) from None
    rest = tuple(s for i, s in enumerate(x.shape) if i not in dims)
    if dims[-1] - dims[0] + 1 == len(dims):
        return rest[:dims[0]] + tuple(b) + rest[dims[0]:]
    return tuple(b) + rest


def _index_infer(x, *rest):
    *idx, dims = rest
    return [(_indexed_shape(x, [tuple(i.shape) for i in idx], dims), x.dtype)]


def _index_grad(c, g):
    n = len(c.attrs[0])
    idx = [c.inputs[1 + k] for k in range(n)]
    return (_index_put(_zeros(c.shapes[0], g.dtype), idx, c.attrs[0], g, True),) + (None,) * n


def _index(x, idx, dims):
    return dispatch(index.opdef, [x, *idx], (tuple(dims),))


def _aten_indices(indices, op):
    """(tensors, dims) from an aten-style list of index tensors or None (None: dim untouched);
    bool masks become the int64 coordinates of their true elements."""
    tensors, dims, d = [], [], 0
    for i in indices:
        if i is None:
            d += 1
            continue
        if not _is_tensor(i):
            from ..creation import tensor

            i = tensor(i)
        if i.dtype is D.bool_:
            if i.ndim == 0:
                raise IndexError(f"{op}(): 0-d bool index tensors are not supported here; use x[mask]")
            for t in nonzero(i, as_tuple=True):
                tensors.append(t)
                dims.append(d)
                d += 1
            continue
        if i.dtype not in _INDEX_DT:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        tensors.append(i)
        dims.append(d)
        d += 1
    if not tensors:
        raise IndexError(f"{op}(): expected at least one index tensor")
    return tensors, tuple(dims)


def _index_samples(dt):
    return [
        Sample((arg((5, 4), dt), [np.array([0, 4, -1, 2])])),
        Sample((arg((3, 4, 5), dt), [np.array([[0], [2]]), None, np.array([1, -2, 4])]), note="apart-broadcast"),
        Sample((arg((3, 4, 5), dt), [np.array([2, 0]), np.array([[1], [3]])]), note="adjacent-broadcast"),
        Sample((arg((4, 6), dt)[:, ::2], [np.array([1, 1, 3])]), note="strided-dup"),
        Sample((arg((3, 4), dt), [np.zeros(0, np.int64)]), note="empty"),
        Sample((arg((3, 4), dt), [np.array(1), np.array([0, 3])]), note="0-d-index"),
    ]


@defop(name="index", inputs=("x", "indices*"), attrs=("dims",), infer=_index_infer, grad=_index_grad,
       promote=None, dtypes=GATHER_DT, kernel_dtypes=GATHER_DT + (D.int32, D.bool_),
       torch_ref="torch.ops.aten.index.Tensor", samples=_index_samples)
def index(input, indices):
    """input[indices] in aten form: `indices` lists an index tensor or None per leading dim."""
    tensors, dims = _aten_indices(indices, "index")
    if dims[-1] >= input.ndim:
        raise IndexError(f"too many indices for tensor of dimension {input.ndim}")
    return _index(input, tensors, dims)


def _index_put(x, idx, dims, values, accumulate):
    shape = _indexed_shape(x, [tuple(i.shape) for i in idx], dims)
    if not _is_tensor(values):
        from ..creation import tensor

        values = tensor(values, dtype=x.dtype)
    if values.dtype is not x.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{x.dtype.name} for the destination and {values.dtype.name} for the source.")
    while values.ndim > len(shape) and values.shape[0] == 1:
        values = values.squeeze(0)
    vs = tuple(values.shape)
    try:
        ok = broadcast_shapes(vs, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(vs)} cannot be broadcast to "
                           f"indexing result of shape {list(shape)}")
    if vs != shape:
        values = values.expand(*shape)
    return dispatch(index_put.opdef, [x, values, *idx], (tuple(dims), bool(accumulate)))


def _index_put_grad(c, g):
    dims, acc = c.attrs
    idx = [c.inputs[2 + k] for k in range(len(dims))]
    gx = gv = None
    if c.needs_input_grad[0]:
        gx = g if acc else _index_put(g, idx, dims, _zeros((), g.dtype), False)
    if c.needs_input_grad[1]:
        gv = _index(g, idx, dims)
    return (gx, gv) + (None,) * len(dims)


def _index_put_samples(dt):
    return [
        Sample((arg((5, 3), dt), (np.array([4, 0, -2]),), arg((3, 3), dt))),
        Sample((arg((3, 4), dt), (np.array([0, 2, 0]), np.array([1, 3, 1])), arg((3,), dt), True), note="accumulate"),
        Sample((arg((4, 3), dt), (np.array([[1], [3]]), np.array([0, 2])), arg((2,), dt)), note="broadcast"),
        Sample((arg((3, 4), dt), (np.zeros(0, np.int64),), arg((0, 4), dt)), note="empty"),
    ]


@defop(name="index_put", inputs=("x", "values", "indices*"), attrs=("dims", "accumulate"),
       infer=lambda x, *rest: [(tuple(x.shape), x.dtype)], grad=_index_put_grad, promote=None,
       dtypes=GATHER_DT, kernel_dtypes=GATHER_DT + (D.int32, D.bool_), methods=("index_put",),
       inplace=("index_put_",), torch_ref="torch.index_put", samples=_index_put_samples)
def index_put(input, indices, values, accumulate=False):
    """A copy of input with input[indices] = values (or += with accumulate=True); `indices`
    is a tuple of index tensors (or None) per leading dim."""
    tensors, dims = _aten_indices(indices, "index_put")
    if dims[-1] >= input.ndim:
        raise IndexError(f"too many indices for tensor of dimension {input.ndim}")
    return _index_put(input, tensors, dims, values, accumulate)


# ---- x[idx] and x[idx] = v ----------------------------------------------------------------------

def _as_index_tensor(i):
    from ..creation import tensor

    if _is_tensor(i):
        return i
    if isinstance(i, np.ndarray):
        return tensor(i)
    if isinstance(i, (list, tuple)):
        if len(i) == 0:
            return tensor([], dtype=D.int64)
        return tensor(i)
    raise IndexError(f"unsupported index type {type(i).__name__}")


def _decompose(x, index):
    """Applies the basic parts of an (ellipsis-expanded) index to x as views, torch-style:
    ints select, slices slice, None inserts a dim, and tensors (bool masks as coordinates)
    are collected with the dim of the view they index. Returns (view, tensors, dims)."""
    from . import shape as S
    from ..creation import arange

    out, dim = x, 0
    tensors, dims = [], []
    for i in index:
        if i is None:
            out = S.unsqueeze(out, dim)
            dim += 1
        elif isinstance(i, slice):
            step = 1 if i.step is None else i.step
            if step <= 0:
                raise ValueError("step must be greater than zero")
            out = S.slice_op(out, dim, i.start, i.stop, step)
            dim += 1
        elif isinstance(i, (bool, np.bool_)) or (_is_tensor(i) and i.dtype is D.bool_ and i.ndim == 0):
            out = S.unsqueeze(out, dim)
            tensors.append(arange(1 if bool(i) else 0, dtype=D.int64))
            dims.append(dim)
            dim += 1
        elif isinstance(i, (int, np.integer)) or (_is_tensor(i) and i.ndim == 0 and i.dtype in _INDEX_DT):
            # NOTE: like torch, a 0-d integer tensor indexes like a Python int (a select).
            i = int(i.item()) if _is_tensor(i) else int(i)
            size = out.shape[dim]
            if not -size <= i < size:
                raise IndexError(f"index {int(i)} is out of bounds for dimension {dim} with size {size}")
            out = S.select(out, dim, int(i))
        else:
            t = _as_index_tensor(i)
            if t.dtype is D.bool_:
                for k in range(t.ndim):
                    if dim + k >= out.ndim or t.shape[k] != out.shape[dim + k]:
                        raise IndexError(
                            f"The shape of the mask {list(t.shape)} at index {k} does not match the shape of "
                            f"the indexed tensor {list(out.shape)} at index {dim + k}")
                for k, coord in enumerate(nonzero(t, as_tuple=True)):
                    tensors.append(coord)
                    dims.append(dim + k)
                dim += t.ndim
            elif t.dtype in _INDEX_DT:
                if dim >= out.ndim:
                    raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
                tensors.append(t)
                dims.append(dim)
                dim += 1
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return out, tensors, tuple(dims)


def advanced_getitem(x, index):
    """x[index] where index (ellipsis expanded) holds integer or bool tensors or lists."""
    view, tensors, dims = _decompose(x, index)
    if not tensors:
        return view
    return _index(view, tensors, dims)


def advanced_setitem(x, index, value):
    """x[index] = value in place (index holds integer or bool tensors); bumps x's version."""
    from .. import autograd as AG

    with AG.no_grad():
        view, tensors, dims = _decompose(x, index)
        if not view._data.flags.writeable:
            raise RuntimeError("cannot write into a read-only (expanded) tensor")
        if tensors:
            view.index_put_(tuple(_aten_list(tensors, dims)), value)
        else:  # only 0-d integer tensors: a basic index after all
            _copy_value(view, value)
    return x


def _copy_value(view, value):
    from ..creation import tensor
    from .dispatch import _copy_into

    if not _is_tensor(value):
        value = tensor(value, dtype=view.dtype)
    if broadcast_shapes(tuple(view.shape), tuple(value.shape)) != tuple(view.shape):
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be "
                           f"broadcast to indexing result of shape {list(view.shape)}")
    _copy_into(view, value)


def _aten_list(tensors, dims):
    out = [None] * (dims[-1] + 1)
    for t, d in zip(tensors, dims):
        out[d] = t
    return out


__all__ = ["gather", "take_along_dim", "scatter", "scatter_add", "index_select", "nonzero", "argwhere",
           "masked_select", "index_put"]
