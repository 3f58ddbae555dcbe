"""Eager dispatch: type promotion, inference, output allocation, the kernel call, autograd
recording and tracer hooks, for one op at a time. The graph runtime does the same kernel
calls from C++ with planned buffers instead.
"""

from __future__ import annotations

import threading

import numpy as np

from .. import _C
from .. import autograd as AG
from .. import dtypes as D
from ._common import broadcast_shapes
from .registry import DISPATCH_HOOKS, TRACE, OpDef

_Number = (int, float, bool)


class _InplaceState(threading.local):
    target = None  # (OpDef, Tensor): the next dispatch of that op writes into that tensor


INPLACE = _InplaceState()


_TENSOR = []
_Version = None  # tensor._Version, bound with _TENSOR (tensor.py imports this package)


def _tensor_cls():
    if not _TENSOR:
        global _Version
        from ..tensor import Tensor, _Version

        _TENSOR.append(Tensor)
    return _TENSOR[0]


def common_dtype(op: OpDef, inputs) -> D.dtype | None:
    """The dtype promoted inputs are cast to (None when the op does not promote)."""
    if op.promote is None:
        return None
    if op.promote == "all" and len(inputs) == 2:
        a, b = inputs
        # fast path: two tensors of one dtype (the common case)
        if type(a) is type(b) and hasattr(a, "_data") and a._data.dtype == b._data.dtype:
            dt = a.dtype
            if op.float_compute and not dt.is_floating_point:
                return D.get_default_dtype()
            return dt
    idx = range(len(inputs)) if op.promote == "all" else op.promote
    dims, zero, scalars = [], [], []
    for i in idx:
        x = inputs[i]
        if x is None:
            continue
        if isinstance(x, _Number):
            scalars.append(x)
        elif x._data.ndim == 0:
            zero.append(x.dtype)
        else:
            dims.append(x.dtype)
    dt = D.result_type(dims, zero, scalars)
    if op.float_compute and not dt.is_floating_point:
        dt = D.get_default_dtype()
    return dt


def cast(x, dt: D.dtype):
    """x converted to dtype dt (a new tensor via the copy kernel; x itself if already dt)."""
    Tensor = _tensor_cls()
    if isinstance(x, _Number):
        return Tensor._wrap(np.asarray(x, dtype=dt.np))
    if x.dtype is dt:
        return x
    return _C_cast(x, dt)


def _C_cast(x, dt):
    from . import elementwise  # noqa: F401  (the "to" op lives there)
    from .registry import REGISTRY

    return dispatch(REGISTRY["to"], [x], (dt.code,))


def _promoted(op: OpDef, inputs):
    """inputs with the promoted ones cast to their common dtype (the list itself when no
    cast is needed, the common case: tensors of one dtype)."""
    if op.promote == "all":
        npdt = None
        for x in inputs:
            if x is None:
                continue
            d = getattr(x, "_data", None)
            if d is None or (npdt is not None and d.dtype != npdt):
                break  # a Python number or a second dtype: the general path
            npdt = d.dtype
        else:
            if npdt is None or not op.float_compute or npdt.kind == "f":
                return inputs
    dt = common_dtype(op, inputs)
    idx = range(len(inputs)) if op.promote == "all" else op.promote
    inputs = list(inputs)
    for i in idx:
        x = inputs[i]
        if x is not None and (isinstance(x, _Number) or x.dtype is not dt):
            inputs[i] = cast(x, dt)
    return inputs


def dispatch(op: OpDef, inputs: list, attrs: tuple):
    """Runs op on inputs (Tensors, Python numbers where promotion allows, or None for
    optional inputs) with attributes in kernel order. Returns a Tensor or a tuple."""
    # Fast path, the common eager case: no hooks (so no tracer either: jit.trace installs
    # a hook), no in-place target, a kernel op whose non-None inputs are tensors of one
    # dtype that needs no promotion (or float tensors with Python ints/floats), or a view
    # op. Everything else takes _dispatch_general, which the fast path must match result
    # for result.
    if DISPATCH_HOOKS or INPLACE.target is not None:
        return _dispatch_general(op, inputs, attrs)
    fast = op._fast
    if fast is None:
        fast = _fast_info(op)
    if fast is False:
        return _dispatch_general(op, inputs, attrs)
    if fast[4]:  # a view op: validate with infer, then a numpy view sharing storage
        op.infer(*inputs, *attrs)
        base = inputs[0]
        t = _new(_TENSOR[0])  # Tensor._make_view inlined (the hot path)
        t._data = op.view(base._data, *attrs)
        root = base._base
        t._base = base if root is None else root
        t._version = base._version
        if fast[2] and AG._state.grad:
            _record_if_needed(op, inputs, [t], attrs)
        return t if fast[3] else (t,)
    npdt = None
    numbers = False
    for x in inputs:
        if x is not None:
            try:
                d = x._data.dtype
            except AttributeError:
                tx = type(x)
                if (tx is float or tx is int) and fast[5]:
                    numbers = True
                    continue
                return _dispatch_general(op, inputs, attrs)
            if npdt is None:
                npdt = d
            elif d is not npdt and d != npdt:
                return _dispatch_general(op, inputs, attrs)
    if numbers:
        # Python ints/floats with float tensors of one dtype promote to that dtype
        # (D.result_type: a scalar's category never exceeds float); others: general path
        if npdt is None or npdt.kind != "f":
            return _dispatch_general(op, inputs, attrs)
        wrap = _TENSOR[0]._wrap
        inputs = [wrap(np.asarray(x, dtype=npdt)) if type(x) is float or type(x) is int else x
                  for x in inputs]
    entry = fast[0].get(npdt)
    if entry is None:
        entry = _fast_entry(op, fast, npdt)
        if entry is False:
            return _dispatch_general(op, inputs, attrs)
    handle, dt = entry
    infer_kind = fast[1]
    if infer_kind == 1:  # same_infer
        specs = [(inputs[0]._data.shape, dt)]
    elif infer_kind == 2:  # binary_infer on the arrays' shapes (it raises on a mismatch)
        sa, sb = inputs[0]._data.shape, inputs[1]._data.shape
        if sa == sb:
            specs = [(sa, dt)]
        else:
            try:
                specs = [(broadcast_shapes(sa, sb), dt)]
            except RuntimeError:
                specs = op.infer(*inputs, *attrs)
    else:
        specs = op.infer(*inputs, *attrs)
    arrays = _C.call(handle, tuple([x._data if x is not None else None for x in inputs]), specs, attrs)
    if fast[3]:  # one output: _wrap_outputs and _fast_finish inlined (the hot path)
        t = _new(_TENSOR[0])
        t._data = arrays[0]
        t._version = _Version()
        if fast[2] and AG._state.grad:
            _record_if_needed(op, inputs, [t], attrs)
        return t
    return _fast_finish(op, fast, inputs, _wrap_outputs(arrays), attrs)


_new = object.__new__


def _wrap_outputs(arrays) -> list:
    """Fresh Tensors over the kernel's output arrays (each with its own version counter)."""
    Tensor = _TENSOR[0]
    outs = []
    for a in arrays:
        t = object.__new__(Tensor)
        t._data = a
        t._version = _Version()
        outs.append(t)
    return outs


def _record_if_needed(op: OpDef, inputs, outs: list, attrs) -> None:
    """Records op's autograd node when an input requires grad (the caller checked that op
    has a grad and grad mode is on)."""
    for x in inputs:
        if x is not None and x.requires_grad:
            AG.record(op.backward_name, op.grad, inputs, outs, attrs)
            break


def _fast_finish(op: OpDef, fast, inputs, outs: list, attrs):
    """The fast path's tail: records the autograd node as the general path does and returns
    the output or the tuple of outputs."""
    if fast[2] and AG._state.grad:
        _record_if_needed(op, inputs, outs, attrs)
    return outs[0] if fast[3] else tuple(outs)


def _fast_info(op: OpDef):
    """op's fast-path facts ({numpy dtype: (kernel handle, dtype)}, infer kind, records
    grads, single output, is a view op, Python numbers promote), or False when op always takes the general path; cached on op
    (OpDef.__setattr__ drops the cache when a field changes)."""
    from ._common import binary_infer, same_infer

    _tensor_cls()
    grads = op.grad is not None and op.differentiable
    if op.composite is not None or op.infer is None:
        info = False
    elif op.view is not None:
        info = (None, 0, grads, op.num_outputs == 1, True, False) if op.promote is None else False
    elif op.kernel is None or op.promote not in ("all", None):
        info = False
    else:
        kind = 1 if op.infer is same_infer else 2 if op.infer is binary_infer else 0
        info = ({}, kind, grads, op.num_outputs == 1, False, op.promote == "all")
    object.__setattr__(op, "_fast", info)
    return info


def _fast_entry(op: OpDef, fast, npdt):
    """The (handle, dtype) the fast path uses for inputs of numpy dtype npdt, or False when
    that dtype needs the general path (promotion to float, no kernel: it raises there)."""
    dt = D._BY_NP.get(npdt)
    if dt is None or (op.promote is not None and op.float_compute and not dt.is_floating_point):
        return False
    if _C.kernel_handle(op.kernel, dt.code) is None:
        return False
    entry = (op.handle(dt), dt)
    fast[0][npdt] = entry
    return entry


def _dispatch_general(op: OpDef, inputs: list, attrs: tuple):
    """dispatch() for every case: in-place targets, tracing, hooks, promotion, composites,
    views."""
    target = INPLACE.target
    if target is not None and target[0] is op:
        INPLACE.target = None
        return run_inplace(op, target[1], list(inputs[1:]), attrs)
    tracer = TRACE.tracer
    if tracer is not None:  # symbolic dims used as operands become (guarded) numbers
        inputs = tracer.scalar_inputs(inputs)
    if op.promote is not None:
        inputs = _promoted(op, inputs)
    if op.composite is not None:
        return op.composite(*inputs, *attrs)
    hook_attrs = attrs
    if tracer is None:
        specs = op.infer(*inputs, *attrs)
    else:  # attrs may hold symbolic dims: run on the concrete ones, record the symbolic ones
        attrs, specs = tracer.eager_infer(op, inputs, attrs)
    Tensor = _TENSOR[0] if _TENSOR else _tensor_cls()
    if op.view is not None:
        base = inputs[0]
        arr = op.view(base._data, *attrs)
        outs = [Tensor._make_view(arr, base)]
    else:
        if op.kernel is None:
            raise NotImplementedError(f"{op.name} has neither a kernel nor a composite")
        kdt = inputs[op.dispatch_input].dtype if inputs else specs[0][1]
        arrays = _C.call(op.handle(kdt), tuple([x._data if x is not None else None for x in inputs]),
                         [(shape, sdt.code) for shape, sdt in specs], attrs)
        outs = _wrap_outputs(arrays)
    if op.grad is not None and op.differentiable and AG._state.grad:
        _record_if_needed(op, inputs, outs, attrs)
    if DISPATCH_HOOKS:
        for hook in DISPATCH_HOOKS:
            hook(op, inputs, hook_attrs, outs)
    return outs[0] if op.num_outputs == 1 else tuple(outs)


def run_inplace(op: OpDef, self, others: list, attrs: tuple):
    """self <- op(self, *others), writing into self's storage. With autograd history the
    result is computed out of place and self takes over its grad_fn (torch's rebase)."""
    if AG.is_grad_enabled() and (self.requires_grad or any(
            o is not None and not isinstance(o, _Number) and o.requires_grad for o in others)):
        if self.grad_fn is None and self.requires_grad:
            raise RuntimeError(
                f"a leaf Variable that requires grad is being used in an in-place operation ({op.name}_)."
            )
        if self._base is not None and (self._base.requires_grad or self.requires_grad):
            raise NotImplementedError(
                f"in-place {op.name}_ on a view of a tensor that requires grad is not supported yet"
            )
        result = dispatch(op, [self, *others], attrs)
        _copy_into(self, result)
        self.grad_fn = result.grad_fn
        self._output_nr = result._output_nr
        self.requires_grad = result.requires_grad
        return self
    with AG.no_grad():
        dt = common_dtype(op, [self, *others])
        if dt is not None and D._category(dt) > D._category(self.dtype):
            raise RuntimeError(
                f"result type {dt.name} can't be cast to the desired output type "
                f"{self.dtype.name} ({op.name}_)"
            )
        result_dt = self.dtype
        # NOTE: only promoted inputs take self's dtype; index tensors (scatter_, index_put_)
        # and masks keep theirs.
        promoted = range(1 + len(others)) if op.promote == "all" else (op.promote or ())
        inputs = [self] + [cast(o, result_dt) if o is not None and i + 1 in promoted else o
                           for i, o in enumerate(others)]
        hook_attrs = attrs
        if TRACE.tracer is None:
            specs = op.infer(*inputs, *attrs)
        else:
            attrs, specs = TRACE.tracer.eager_infer(op, inputs, attrs)
        if tuple(specs[0][0]) != tuple(self.shape):
            raise RuntimeError(
                f"{op.name}_: output with shape {list(self.shape)} doesn't match the broadcast "
                f"shape {list(specs[0][0])}"
            )
        _C.run(op.handle(result_dt), tuple(x._data if x is not None else None for x in inputs),
               (self._data,), attrs)
        self._version.value += 1
    if DISPATCH_HOOKS:
        for hook in DISPATCH_HOOKS:
            hook(op, inputs, hook_attrs, [self])
    return self


def _copy_into(dst, src):
    """dst[...] = src (broadcast, cast) through the copy kernel; bumps dst's version."""
    from .registry import REGISTRY

    op = REGISTRY["to"]
    if TRACE.tracer is not None:
        TRACE.tracer.note_untraced_write(dst)
    if not dst._data.flags.writeable:
        raise RuntimeError("cannot write into a read-only tensor")
    _C.run(op.handle(src.dtype), (src._data,), (dst._data,), (dst.dtype.code,))
    dst._version.value += 1


def dispatch_into(op: OpDef, inputs: list, outputs: list, attrs: tuple) -> None:
    """Runs op's kernel writing into the given `outputs` (Tensors, or None for an optional
    output) instead of allocating new ones; outputs may alias inputs (fused in-place
    updates such as optimizer steps). No type promotion and no autograd recording: the
    caller passes operands of the kernel's dtype. Bumps each output's version counter, so
    autograd notices if a saved tensor was overwritten. Used by framework.optim."""
    specs = op.infer(*inputs, *attrs)
    kdt = inputs[op.dispatch_input].dtype
    for i, (out, (shape, dt)) in enumerate(zip(outputs, specs)):
        if out is None:
            continue
        if tuple(out.shape) != tuple(shape) or out.dtype is not dt:
            raise RuntimeError(
                f"{op.name}: output #{i} is {out.dtype.name}{list(out.shape)}, expected "
                f"{dt.name}{list(shape)}")
        if not out._data.flags.writeable:
            raise RuntimeError(f"{op.name}: output #{i} is read-only")
    _C.run(op.handle(kdt), tuple(x._data if x is not None else None for x in inputs),
           tuple(o._data if o is not None else None for o in outputs), attrs)
    for out in outputs:
        if out is not None:
            out._version.value += 1
    if DISPATCH_HOOKS:
        for hook in DISPATCH_HOOKS:
            hook(op, inputs, attrs, list(outputs))
