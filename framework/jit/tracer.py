"""The tracer: runs an eager model once with recording tensors and builds a Graph.

Every op that goes through framework.ops.dispatch becomes a call node (the dispatch hook);
tensors not produced inside the trace become constants (parameters and buffers under their
qualified names) or, with keep_params_as_inputs, extra graph inputs. Dims listed as dynamic
(dim 0 of every input by default) are SymInts: `x.shape[0]` returns one, so shape arithmetic
in user code is recorded symbolically. Whatever cannot stay symbolic is baked in with a
TracerWarning naming the user's line, and a guard checks it at call time.

This module must not run graphs (interpreter.py does) nor change eager semantics: the
eager model runs exactly as it would without tracing.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from typing import Optional

import numpy as np

from .. import autograd as AG
from ..ops.registry import DISPATCH_HOOKS, TRACE
from ..tensor import Size, Tensor
from . import symbolic as S
from .ir import Graph, TensorSpec, infer_specs
from .symbolic import SymInt

_FRAMEWORK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class TracerWarning(UserWarning):
    """A traced value was turned into a Python value (baked into the graph), or a
    training-mode behaviour was traced."""


def user_frame():
    """(filename, lineno) of the innermost frame outside the framework package."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not os.path.abspath(fn).startswith(_FRAMEWORK_DIR):
            return fn, f.f_lineno
        f = f.f_back
    return "<unknown>", 0


def user_source() -> str:
    fn, line = user_frame()
    return f"{fn}:{line}"


def _warn(msg: str) -> None:
    fn, line = user_frame()
    warnings.warn_explicit(f"{os.path.basename(fn)}:{line}: {msg}", TracerWarning, fn, line)


class Guard:
    """A condition on the input shapes the trace relied on, checked at call time."""

    def __init__(self, lhs, op: str, rhs, expected: bool, reason: str):
        self.lhs, self.op, self.rhs, self.expected, self.reason = lhs, op, rhs, expected, reason

    def check(self, input_shapes) -> Optional[str]:
        """None if it holds for these input shapes, else a message naming the dims."""
        a = S.evaluate(self.lhs, input_shapes)
        b = S.evaluate(self.rhs, input_shapes)
        got = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]
        if got == self.expected:
            return None
        cond = f"{self.lhs} {self.op} {self.rhs}" if self.expected else f"not {self.lhs} {self.op} {self.rhs}"
        return (f"the traced graph requires {cond} ({_describe(self.lhs, self.rhs)}), but here "
                f"{self.lhs} = {a}" + (f", {self.rhs} = {b}" if isinstance(self.rhs, SymInt) else "")
                + f": {self.reason}")

    def __repr__(self):
        return f"Guard({self.lhs} {self.op} {self.rhs} is {self.expected}: {self.reason})"


def _describe(*xs) -> str:
    leaves = set()
    for x in xs:
        if isinstance(x, SymInt):
            leaves |= x.leaves()
    return ", ".join(f"{S.dim_name(i, a)} = input {i} dim {a}" for i, a in sorted(leaves))


class Tracer:
    """Records dispatched ops into self.graph. Installed by `run_trace`."""

    def __init__(self, input_names, inputs, dynamic, param_names, keep_params_as_inputs,
                 record_values=False):
        self.graph = Graph()
        self.values: dict = {}  # id(tensor) -> (tensor, Value)
        self.input_shapes = [tuple(int(d) for d in t._data.shape) for t in inputs]
        self.guards: list = []
        self.concrete = 0  # >0 while eager dispatch infers shapes (see eager_infer)
        self.param_names = param_names  # id(tensor) -> (qualified name, tensor)
        self.keep_params = keep_params_as_inputs
        self.param_inputs: list = []  # (name, tensor) for params that became graph inputs
        self.traced: list = []  # tensors whose _trace we set (cleared at the end)
        self.record_values = record_values
        self.recorded: dict = {}  # value name -> numpy copy (record_values only)
        self._warned: set = set()
        self.input_ids: dict = {}  # id(recording input tensor) -> input name
        self._bind_inputs(input_names, inputs, dynamic)

    # ---- inputs ------------------------------------------------------------------
    def _bind_inputs(self, names, inputs, dynamic) -> None:
        symbols: dict = {}  # traced value -> SymInt leaf (dims of equal size share a symbol)
        for i, (name, t) in enumerate(zip(names, inputs)):
            shape = []
            for axis, d in enumerate(self.input_shapes[i]):
                if (i, axis) not in dynamic or d < 2:
                    shape.append(d)
                    continue
                sym = symbols.get(d)
                if sym is None:
                    sym = symbols[d] = SymInt.input_dim(i, axis)
                shape.append(sym)
            v = self.graph.add_input(name, TensorSpec(tuple(shape), t.dtype))
            self._bind(t, v)
            self.input_ids[id(t)] = name

    def _bind(self, t: Tensor, v) -> None:
        self.values[id(t)] = (t, v)
        if id(t) not in self.param_names and t._trace is not self:
            t._trace = self
            self.traced.append(t)
        if self.record_values:
            self.recorded[v.name] = np.array(t._data, copy=True)

    def value_of(self, t):
        """The graph value of tensor t; unknown tensors become constants (or param inputs)."""
        e = self.values.get(id(t))
        if e is not None and e[0] is t:
            return e[1]
        if not isinstance(t, Tensor):
            raise TypeError(f"cannot trace a {type(t).__name__} op input")
        pname = self.param_names.get(id(t))
        name = pname[0] if pname else None
        if name is not None and self.keep_params:
            v = self.graph.add_input(name.replace(".", "_"), TensorSpec(t._data.shape, t.dtype))
            self.param_inputs.append((name, t))
        else:
            v = self.graph.add_const(np.array(t._data, copy=True), name)
            v.node.source = None if name else user_source()
        self._bind(t, v)
        return v

    # ---- hooks called by dispatch and Tensor ---------------------------------------
    def shape_of(self, t: Tensor) -> Size:
        e = self.values.get(id(t))
        if self.concrete or e is None or e[0] is not t:
            return Size(t._data.shape)
        return Size(e[1].spec.shape)

    def eager_infer(self, op, inputs, attrs):
        """(concrete attrs, specs) for the eager run of op during tracing."""
        if S.is_symbolic(attrs):
            attrs = S.evaluate(attrs, self.input_shapes)
        self.concrete += 1
        try:
            specs = op.infer(*inputs, *attrs)
        finally:
            self.concrete -= 1
        return attrs, specs

    def scalar_inputs(self, inputs):
        """Op operands that are SymInts (x / x.shape[0]) become their traced ints, guarded."""
        if not any(isinstance(x, SymInt) for x in inputs):
            return inputs
        return [x._concrete("used as an op operand") if isinstance(x, SymInt) else x
                for x in inputs]

    def note_untraced_write(self, dst: Tensor) -> None:
        """A copy into dst that bypasses dispatch (dispatch._copy_into): not in the graph."""
        for t in (dst, dst._base):
            e = self.values.get(id(t)) if t is not None else None
            if e is not None and e[0] is t or (t is not None and t._trace is self):
                _warn("an in-place copy into a traced tensor bypassed the recorded ops: the "
                      "graph does not contain it and will compute different values")
                return

    def note_concrete(self, t: Tensor, what: str) -> None:
        """Tensor calls this when a traced value is read into Python (item(), bool(), ...)."""
        e = self.values.get(id(t))
        if e is None or e[0] is not t or self.concrete:
            return
        v = e[1]
        _warn(f"{what} on traced value %{v.name} ({v.spec}) turns it into a Python value: the "
              "result is baked into the graph as a constant and will not change with the inputs "
              "(data-dependent control flow is not captured)")

    def concretize(self, sym: SymInt, why: str) -> int:
        """SymInt -> int while tracing: bakes the traced value in and guards it."""
        value = sym.evaluate(self.input_shapes)
        src = user_source()
        self.guards.append(Guard(sym, "==", value, True, f"{why} at {src} baked it in"))
        key = (src, str(sym))
        if key not in self._warned:
            self._warned.add(key)
            _warn(f"symbolic dim {sym} ({_describe(sym)}) was {why} and baked in as {value}; "
                  f"the traced graph only accepts inputs where {sym} == {value}")
        return value

    def compare(self, a, op: str, b) -> bool:
        """Decides a comparison of SymInts from the traced shapes and guards it."""
        av, bv = S.evaluate(a, self.input_shapes), S.evaluate(b, self.input_shapes)
        got = {"<": av < bv, "<=": av <= bv, ">": av > bv, ">=": av >= bv, "==": av == bv}[op]
        self.guards.append(Guard(a, op, b, got, f"a shape comparison at {user_source()}"))
        return got

    def hook(self, op, inputs, attrs, outs) -> None:
        """Dispatch hook: records op(inputs, attrs) -> outs as a call node."""
        if TRACE.tracer is not self:
            return
        src = user_source()
        in_vals = [None if x is None else self.value_of(x) for x in inputs]
        self._check_training(op, attrs)
        if any(o is None for o in outs):  # dispatch_into without an optional output
            _, eager_specs = self.eager_infer(op, inputs, attrs)
            concrete = [(tuple(int(d) for d in sp[0]), sp[1]) for sp in eager_specs]
        else:
            concrete = [(tuple(int(d) for d in o._data.shape), o.dtype) for o in outs]
        specs, attrs, specialized = self._symbolic_specs(op, in_vals, attrs, concrete, src)
        node = self.graph.call(op.name, in_vals, attrs, specs=specs, source=src)
        if specialized:
            node.meta["specialized"] = True
        for o, v in zip(outs, node.outputs):
            if o is not None:
                self._bind(o, v)
        written = [self.input_ids[id(o)] for o in outs if o is not None and id(o) in self.input_ids]
        if written:
            self._warn_once(("input", op.name), f"in-place {op.name} writes into graph input "
                            f"%{written[0]}: the graph computes the new value functionally and "
                            "the traced module does not write it back into its inputs")
        updated = [self.param_names[id(o)][0] for o in outs if o is not None and id(o) in self.param_names]
        if updated:
            name = updated[0]
            self._warn_once(("param", op.name), f"in-place {op.name} on parameter/buffer {name!r}: "
                            "later ops in the graph see the new value, but the traced module "
                            "never writes it back (its constants stay frozen)")

    def _symbolic_specs(self, op, in_vals, attrs, concrete, src):
        specs = None
        n_guards = len(self.guards)
        try:
            specs = infer_specs(op.name, [None if v is None else v.spec for v in in_vals], attrs)
            ok = len(specs) == len(concrete) and all(
                s.evaluate(self.input_shapes) == c[0] and s.dtype is c[1]
                for s, c in zip(specs, concrete))
        except Exception:  # noqa: BLE001 - infer may refuse symbolic dims; specialize instead
            ok = False
        if ok:  # specs that relied on guarded shape decisions cannot be re-inferred by lint
            return specs, attrs, len(self.guards) > n_guards
        leaves = set()
        for v in in_vals:
            if v is not None:
                for d in v.spec.shape:
                    if isinstance(d, SymInt):
                        leaves |= d.leaves()
        for x in _flat(attrs):
            if isinstance(x, SymInt):
                leaves |= x.leaves()
        if leaves:
            for i, axis in sorted(leaves):
                sym = SymInt.input_dim(i, axis)
                value = sym.evaluate(self.input_shapes)
                self.guards.append(Guard(sym, "==", value, True,
                                         f"{op.name} at {src} could not keep it symbolic"))
            _warn(f"{op.name} could not keep dims {_describe(*[SymInt.input_dim(*lf) for lf in leaves])} "
                  "symbolic: the graph is specialized to the traced sizes and checks them at call time")
        return ([TensorSpec(c[0], c[1]) for c in concrete], S.evaluate(attrs, self.input_shapes),
                True)

    def _check_training(self, op, attrs) -> None:
        if op.name == "dropout" or "dropout" in op.tags:
            self._warn_once(op.name, "dropout traced in training mode: the graph draws a fixed "
                            "random mask (seed baked in); call model.eval() before tracing")
        elif "training" in op.attrs and attrs[op.attrs.index("training")]:
            self._warn_once(op.name, f"{op.name} traced in training mode: batch statistics are "
                            "used and running-statistics updates are not captured; call "
                            "model.eval() before tracing")
        elif "seed" in op.attrs:
            p = attrs[op.attrs.index("dropout_p")] if "dropout_p" in op.attrs else None
            if p is None or p > 0:
                self._warn_once(op.name, f"random op {op.name} traced: its seed is baked into "
                                "the graph")

    def _warn_once(self, key, msg) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _warn(msg)


def _flat(x):
    if isinstance(x, (tuple, list)):
        for v in x:
            yield from _flat(v)
    else:
        yield x


# ---- outputs -------------------------------------------------------------------------------
def flatten_outputs(out, leaves: list):
    """A template of out's structure with tensors replaced by their index in `leaves`."""
    if isinstance(out, Tensor):
        leaves.append(out)
        return len(leaves) - 1
    if isinstance(out, (tuple, list)):
        return (type(out), [flatten_outputs(o, leaves) for o in out])
    if isinstance(out, dict):
        return (dict, {k: flatten_outputs(v, leaves) for k, v in out.items()})
    raise TypeError(f"traced functions must return tensors (or tuples/lists/dicts of them), "
                    f"got {type(out).__name__}")


def unflatten_outputs(tree, values: list):
    if isinstance(tree, int):
        return values[tree]
    kind, items = tree
    if kind is dict:
        return {k: unflatten_outputs(v, values) for k, v in items.items()}
    return kind(unflatten_outputs(v, values) for v in items)


# ---- entry point ---------------------------------------------------------------------------
def param_names(model) -> dict:
    """id(tensor) -> (qualified name, tensor) for a module's parameters and buffers."""
    out = {}
    for meth in ("named_parameters", "named_buffers"):
        fn = getattr(model, meth, None)
        if fn is None:
            continue
        try:
            items = list(fn())
        except TypeError:
            continue
        for name, t in items:
            if isinstance(t, Tensor):
                out.setdefault(id(t), (name, t))
    return out


def input_names(model, n: int) -> list:
    fn = getattr(model, "forward", model)
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(n):
        name = params[i] if i < len(params) and not (i == len(params) - 1 and n > len(params)) else None
        names.append(name or f"input{i}")
    return names


def normalize_dynamic(dynamic_dims, inputs) -> set:
    """The set of (input index, axis) that are symbolic."""
    if dynamic_dims is None:
        return {(i, 0) for i, t in enumerate(inputs) if t.ndim > 0}
    out = set()
    items = dynamic_dims.items() if isinstance(dynamic_dims, dict) else enumerate(dynamic_dims)
    for i, axes in items:
        if axes is None:
            continue
        for a in ((axes,) if isinstance(axes, int) else axes):
            nd = inputs[i].ndim
            if not -nd <= a < nd:
                raise IndexError(f"dynamic_dims: input {i} has {nd} dims, got axis {a}")
            out.add((i, a % nd))
    return out


def run_trace(model, inputs, dynamic, keep_params_as_inputs=False, record_values=False):
    """Runs model(*inputs) once under a Tracer; returns (tracer, output tree, output tensors)."""
    if TRACE.tracer is not None:
        raise RuntimeError("framework.jit.trace cannot be nested")
    names = input_names(model, len(inputs))
    rec = []
    for t in inputs:
        r = Tensor._wrap(t._data)
        rec.append(r)
    tracer = Tracer(names, rec, dynamic, param_names(model), keep_params_as_inputs, record_values)
    prev = (S.CONCRETIZE_HOOK, S.COMPARE_HOOK)
    DISPATCH_HOOKS.append(tracer.hook)
    TRACE.tracer = tracer
    S.CONCRETIZE_HOOK, S.COMPARE_HOOK = tracer.concretize, tracer.compare
    try:
        with AG.no_grad():
            out = model(*rec)
        leaves: list = []
        tree = flatten_outputs(out, leaves)
        out_vals = [tracer.value_of(t) for t in leaves]
    finally:
        TRACE.tracer = None
        S.CONCRETIZE_HOOK, S.COMPARE_HOOK = prev
        DISPATCH_HOOKS.remove(tracer.hook)
        for t in tracer.traced:
            t._trace = None
    tracer.graph.set_output(out_vals)
    # True/False for modules; None for plain functions (their dropout calls say the mode).
    training = getattr(model, "training", None)
    tracer.graph.meta["training"] = None if training is None else bool(training)
    return tracer, tree, leaves
