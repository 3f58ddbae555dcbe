"""The op registry: one OpDef per op, and eager dispatch over the C++ kernel table.

Everything about an op lives in its OpDef: signature (tensor inputs, then positional
attributes in kernel order), shape/dtype inference, gradient (written with registered ops),
C++ kernel key, ONNX mapping, torch reference and test samples. Eager dispatch, the tracer,
the graph passes, the runtime planner, ONNX and the tests all read it. This module must not
compute anything itself: compute runs in the C++ kernel named by OpDef.kernel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .. import _C
from .. import dtypes as D

REGISTRY: dict[str, "OpDef"] = {}

# Hooks the tracer installs: called as hook(op, inputs, attrs, outputs) after each dispatch.
DISPATCH_HOOKS: list[Callable] = []


class _TraceState(threading.local):
    # The active framework.jit tracer, or None. While set, dispatch runs ops on concrete
    # attrs and shapes (tracer.eager_infer) and passes the symbolic attrs to the hooks.
    tracer = None


TRACE = _TraceState()


@dataclass
class Sample:
    """One test input for an op: call op.fn(*args, **kwargs) and torch_ref the same way."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad: bool = True  # check gradients for this sample
    note: str = ""


@dataclass(eq=False)
class OpDef:
    """Everything about one op. See docs/adding_an_op.md."""

    name: str
    # names of tensor inputs; a name ending in "?" is optional (may be None); a last name
    # ending in "*" takes any number of tensors (cat's tensors, index's index tensors)
    inputs: tuple
    attrs: tuple = ()  # attribute names, in the order the kernel reads them
    infer: Optional[Callable] = None  # (*inputs, *attrs) -> [(shape, dtype), ...]
    grad: Optional[Callable] = None  # (ctx, *grad_outputs) -> grads per input (None allowed)
    kernel: Optional[str] = "<name>"  # C++ kernel key; None for composites
    view: Optional[Callable] = None  # eager: (array, *attrs) -> numpy view sharing storage
    composite: Optional[Callable] = None  # eager implementation from other ops (kernel None)
    promote: Any = "all"  # input indices whose dtypes promote together ("all" or tuple or None)
    float_compute: bool = False  # integer/bool inputs are promoted to the default float dtype
    dispatch_input: int = 0  # which (promoted) input's dtype selects the kernel
    dtypes: tuple = (D.float32, D.float64)  # dtypes the tests exercise
    kernel_dtypes: Optional[tuple] = None  # dtypes the kernel is dispatched on (default: dtypes)
    differentiable: bool = True  # False: outputs never require grad (argmax, comparisons)
    onnx: Optional[Callable] = None  # export mapping, filled by framework.onnx
    onnx_reason: Optional[str] = None  # why there is no ONNX mapping, if none
    torch_ref: Optional[str] = None  # dotted name of the torch function it must agree with
    samples: Optional[Callable] = None  # (dtype) -> [Sample, ...]
    fn: Optional[Callable] = None  # the public Python function (torch signature)
    methods: tuple = ()  # Tensor method names bound to fn
    inplace: tuple = ()  # in-place Tensor method names (first input is overwritten)
    num_outputs: int = 1
    # {output index: attribute index} for outputs computed only while that bool attribute is
    # true (else the output is empty): the skip_unused_outputs pass turns an attribute off
    # when its output has no users (max_pool2d's indices in inference).
    output_switches: dict = field(default_factory=dict)
    tags: tuple = ()  # free-form: "elementwise", "reduction", "view", "fused", ...
    _handles: dict = field(default_factory=dict, repr=False)
    _bw_name: Optional[str] = field(default=None, repr=False)
    # eager dispatch's cached fast-path facts (dispatch._fast_info); None: not computed yet
    _fast: Any = field(default=None, init=False, repr=False, compare=False)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name[0] != "_":  # a public field changed: recompute the fast-path facts
            object.__setattr__(self, "_fast", None)

    def __post_init__(self):
        if self.kernel == "<name>":
            self.kernel = self.name

    @property
    def backward_name(self) -> str:
        """The grad_fn name torch would show, e.g. AddBackward0."""
        name = self._bw_name
        if name is None:
            name = self._bw_name = "".join(p.capitalize() for p in self.name.split("_")) + "Backward0"
        return name

    def handle(self, dt: D.dtype) -> int:
        h = self._handles.get(dt.code)
        if h is None:
            h = _C.kernel_handle(self.kernel, dt.code)
            if h is None:
                raise TypeError(f"{self.name}: no kernel for dtype {dt.name}")
            self._handles[dt.code] = h
        return h


def register(op: OpDef) -> OpDef:
    """Adds an op to the registry (names are unique)."""
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name!r} registered twice")
    REGISTRY[op.name] = op
    return op


def defop(**kwargs) -> Callable:
    """Decorator: registers OpDef(**kwargs) with the decorated function as its public fn."""

    def wrap(fn):
        op = register(OpDef(fn=fn, **kwargs))
        fn.opdef = op
        return fn

    return wrap


def get(name: str) -> OpDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None
