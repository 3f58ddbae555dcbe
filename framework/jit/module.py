"""fw.jit.trace and the traced module it returns.

`trace(model, example_inputs)` records the model into a Graph (tracer.py), checks the trace
on a perturbed input, and returns a TracedModule: calling it checks the inputs against the
graph's input specs and the trace's guards, then runs the graph through the C++ runtime
(framework.jit.runtime) when available, else through the reference interpreter.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np

from .. import config
from ..profiler import _ACTIVE as _PROFILING  # the active profiles (a list changed in place)
from ..tensor import Tensor
from .interpreter import Interpreter
from .ir import Graph
from .symbolic import SymInt
from .tracer import (TracerWarning, normalize_dynamic, run_trace, unflatten_outputs)


_MAX_CHECKED = 64  # input signatures remembered per traced module (then forgotten)


_wrap = Tensor._wrap


class TracingCheckError(RuntimeError):
    """check_trace found that the graph and the eager model disagree."""


def _as_tensor(x, what: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor._wrap(x)
    raise TypeError(f"{what} must be a Tensor or a numpy array, got {type(x).__name__}")


def _runtime_compile():
    try:
        from . import runtime
    except ImportError:
        return None
    return getattr(runtime, "compile", None)


class TracedModule:
    """A traced model: call it like the original; `.graph` is the IR it runs."""

    def __init__(self, graph: Graph, *, guards=(), out_tree=0, param_inputs=(), name="traced"):
        self.graph = graph
        self.guards = list(guards)
        self._out_tree = out_tree
        self._param_inputs = list(param_inputs)  # (name, tensor) appended to the inputs
        self._name = name
        self._runner = None
        self.executor = None  # "runtime" or "interpreter", once the first call chose
        self._compiled = None  # the CompiledGraph when the runtime runs it
        self._checked: dict = {}  # input (shape, dtype) signatures that passed check_inputs
        # One input, one output on the runtime: (shape, dtype, the runtime's numpy call, output
        # index) of the last input signature that passed check_inputs, checked first per call.
        self._fast = None

    @property
    def code(self) -> str:
        """The graph's text form."""
        return str(self.graph)

    @property
    def num_user_inputs(self) -> int:
        return len(self.graph.inputs) - len(self._param_inputs)

    def check_inputs(self, inputs: Sequence[Tensor]) -> None:
        """Raises ValueError/TypeError naming the input and dim if inputs don't fit the graph."""
        gin = self.graph.inputs
        n = self.num_user_inputs
        if len(inputs) != n:
            raise TypeError(f"{self._name} takes {n} inputs, got {len(inputs)}")
        full = list(inputs) + [t for _, t in self._param_inputs]
        shapes = [tuple(t._data.shape) for t in full]
        for i, (t, v) in enumerate(zip(full, gin)):
            spec = v.spec
            if t.dtype is not spec.dtype:
                raise TypeError(f"input {i} (%{v.name}) must be {spec.dtype.name}, got {t.dtype.name}")
            if t.ndim != spec.ndim:
                raise ValueError(f"input {i} (%{v.name}) must have {spec.ndim} dims "
                                 f"({spec}), got shape {list(shapes[i])}")
            for axis, d in enumerate(spec.shape):
                want = d.evaluate(shapes) if isinstance(d, SymInt) else d
                if shapes[i][axis] != want:
                    how = (f"static in the traced graph" if not isinstance(d, SymInt)
                           else f"{d} in the traced graph, = {want} here")
                    raise ValueError(f"input {i} (%{v.name}) dim {axis} must be {want} ({how}; "
                                     f"spec {spec}), got shape {list(shapes[i])}")
        for g in self.guards:
            msg = g.check(shapes)
            if msg is not None:
                raise ValueError(f"{self._name}: {msg}")

    def run_graph(self, inputs: Sequence) -> list:
        """Runs the graph on all its inputs (user inputs then parameter inputs)."""
        if self._runner is None:
            self._runner, self.executor = self._make_runner()
        return self._runner(list(inputs))

    def compile(self, *example_inputs) -> "TracedModule":
        """Loads the graph into its executor now (else the first call does), and with example
        inputs also makes the runtime's memory plan for their shapes; returns self."""
        if self._runner is None:
            self._runner, self.executor = self._make_runner()
        if example_inputs and self._compiled is not None:
            ins = [_as_tensor(x, f"input {i}") for i, x in enumerate(example_inputs)]
            self.check_inputs(ins)
            full = ins + [t for _, t in self._param_inputs]
            self._compiled.output_shapes([t._data.shape for t in full])
        return self

    def _make_runner(self):
        mode = config.jit_executor
        if mode not in ("auto", "interpreter", "runtime"):
            raise ValueError(f"FW_JIT_EXECUTOR must be auto, interpreter or runtime, got {mode!r}")
        if mode != "interpreter":
            compile_ = _runtime_compile()
            if compile_ is None and mode == "runtime":
                raise RuntimeError("FW_JIT_EXECUTOR=runtime but framework.jit.runtime is not available")
            if compile_ is not None:
                try:
                    compiled = compile_(self.graph)
                    self._compiled = compiled
                    return compiled.run, "runtime"
                except Exception as e:  # noqa: BLE001
                    if mode == "runtime":
                        raise
                    warnings.warn(f"the C++ runtime could not compile this graph ({e}); "
                                  "running it with the interpreter", RuntimeWarning, stacklevel=3)
        interp = Interpreter(self.graph)
        return interp.run, "interpreter"

    def __call__(self, *inputs):
        fast = self._fast
        if fast is not None and len(inputs) == 1 and not _PROFILING:  # the leanest path
            a = getattr(inputs[0], "_data", None)
            if a is not None and a.shape == fast[0] and a.dtype is fast[1]:
                return _wrap(fast[2]([a])[fast[3]])
        compiled = self._compiled
        if compiled is not None and not self._param_inputs:
            # The per-call fast path: Tensors whose shapes and dtypes passed check_inputs
            # before go straight to the runtime (NOTE: the guards depend on shapes only).
            try:
                if len(inputs) == 1:  # the common case, without the comprehensions
                    a = inputs[0]._data
                    arrays = [a]
                    sig = ((a.shape, a.dtype),)
                else:
                    arrays = [x._data for x in inputs]
                    sig = tuple([(a.shape, a.dtype) for a in arrays])
            except AttributeError:
                sig = None
            if sig is not None and sig in self._checked:
                outs = compiled.run_arrays(arrays)
                tree = self._out_tree
                if tree.__class__ is int:  # one output tensor
                    return Tensor._wrap(outs[tree])
                wrap = Tensor._wrap
                return unflatten_outputs(tree, [wrap(a) for a in outs])
        ins = [_as_tensor(x, f"input {i}") for i, x in enumerate(inputs)]
        self.check_inputs(ins)
        if not self._param_inputs:
            if len(self._checked) >= _MAX_CHECKED:
                self._checked.clear()
            self._checked[tuple((t._data.shape, t._data.dtype) for t in ins)] = True
        outs = self.run_graph(ins + [t for _, t in self._param_inputs])
        if (self._compiled is not None and not self._param_inputs and len(ins) == 1
                and self._out_tree.__class__ is int):
            a = ins[0]._data
            self._fast = (a.shape, a.dtype, self._compiled.array_runner(), self._out_tree)
        return unflatten_outputs(self._out_tree, list(outs))

    forward = __call__

    def optimize(self, passes=None, limit: Optional[int] = None) -> "TracedModule":
        """A new TracedModule running the graph after the optimization passes."""
        from .passes import optimize

        g = optimize(self.graph, passes=passes, limit=limit)
        return TracedModule(g, guards=self.guards, out_tree=self._out_tree,
                            param_inputs=self._param_inputs, name=self._name)

    def save(self, path) -> None:
        """Writes the model file (graph + weights) through the C++ runtime's format."""
        try:
            from . import runtime
        except ImportError:
            runtime = None
        if runtime is None or not hasattr(runtime, "save"):
            raise NotImplementedError("saving needs framework.jit.runtime (the model-file "
                                      "format), which is not available in this build")
        if self._param_inputs:
            raise NotImplementedError("save() needs parameters frozen into the graph; trace "
                                      "with keep_params_as_inputs=False")
        runtime.save(self.graph, path)

    def __repr__(self):
        return f"TracedModule({self._name})\n{self.graph}"


class LoadedModule:
    """A model file loaded into the C++ runtime: call it with tensors or numpy arrays."""

    def __init__(self, compiled):
        self.compiled = compiled

    def __call__(self, *inputs):
        outs = self.compiled.run(list(inputs))
        return outs[0] if len(outs) == 1 else tuple(outs)


def load(path) -> LoadedModule:
    """Loads a model file written by TracedModule.save (runs in the C++ runtime)."""
    try:
        from . import runtime
    except ImportError:
        runtime = None
    if runtime is None or not hasattr(runtime, "load"):
        raise NotImplementedError("loading needs framework.jit.runtime (the model-file format), "
                                  "which is not available in this build")
    return LoadedModule(runtime.load(path))


def trace(model, example_inputs, *, check_trace: bool = True, check_inputs=None,
          dynamic_dims=None, keep_params_as_inputs: bool = False,
          check_tolerance: float = 1e-4) -> TracedModule:
    """Records model(*example_inputs) into a graph and returns a TracedModule.

    dynamic_dims: {input index: axes} (or a list, one entry per input) of symbolic dims;
    default: dim 0 of every input. check_trace re-runs the model on perturbed inputs (or
    on check_inputs, a list of input tuples) and raises TracingCheckError naming the first
    node where the graph and the eager model differ.
    """
    inputs = _as_inputs(example_inputs)
    dynamic = normalize_dynamic(dynamic_dims, inputs)
    tracer, tree, _ = run_trace(model, inputs, dynamic, keep_params_as_inputs)
    graph = tracer.graph
    graph.lint()
    name = type(model).__name__ if not callable(model) or hasattr(model, "forward") else \
        getattr(model, "__name__", "traced")
    traced = TracedModule(graph, guards=tracer.guards, out_tree=tree,
                          param_inputs=tracer.param_inputs, name=name)
    if check_trace:
        sets = [_as_inputs(c) for c in check_inputs] if check_inputs is not None else \
            [_perturb(inputs, graph, tracer.guards)]
        for k, ins in enumerate(sets):
            try:
                _check_one(traced, model, ins, dynamic, keep_params_as_inputs, check_tolerance)
            except TracingCheckError:
                raise
            except Exception:  # noqa: BLE001
                if check_inputs is not None:
                    raise
                # The model refused the other sizes (an implicit constraint between input
                # dims): check with new values at the traced sizes instead.
                same = _perturb(inputs, graph, tracer.guards, keep_shapes=True)
                try:
                    _check_one(traced, model, same, dynamic, keep_params_as_inputs, check_tolerance)
                except TracingCheckError:
                    raise
                except Exception as e:  # noqa: BLE001
                    warnings.warn(f"check_trace skipped: the model raised on perturbed inputs "
                                  f"({type(e).__name__}: {e}); pass check_inputs to check the "
                                  "trace", TracerWarning, stacklevel=2)
    return traced


def _as_inputs(example_inputs) -> list:
    if isinstance(example_inputs, (Tensor, np.ndarray)):
        example_inputs = (example_inputs,)
    return [_as_tensor(x, f"example input {i}") for i, x in enumerate(example_inputs)]


def _perturb(inputs, graph: Graph, guards, keep_shapes: bool = False) -> list:
    """New inputs: other values, and other sizes for symbolic dims where the guards allow."""
    rng = np.random.default_rng(1234)
    shapes = [tuple(t._data.shape) for t in inputs]
    leaves = {}
    for v in graph.inputs[:len(inputs)]:
        for d in v.spec.shape:
            if isinstance(d, SymInt) and d.is_leaf():
                leaves[d.expr[1:]] = d
    new_shapes = [list(s) for s in shapes]
    for i, s in enumerate(shapes):
        for axis in range(len(s)):
            d = graph.inputs[i].spec.shape[axis]
            if isinstance(d, SymInt):
                new_shapes[i][axis] = d.evaluate(shapes) + 1
    if keep_shapes or any(g.check(new_shapes) is not None for g in guards):
        new_shapes = [list(s) for s in shapes]
    out = []
    for t, shape in zip(inputs, new_shapes):
        a = t._data
        if a.dtype == np.bool_:
            b = rng.random(shape) > 0.5
        elif np.issubdtype(a.dtype, np.integer):
            lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 1)
            b = rng.integers(lo, hi + 1, size=shape)
        else:
            # within the traced values' range: ops may have domains (log, probabilities)
            finite = a[np.isfinite(a)] if a.size else a
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
            if lo == hi:
                lo, hi = (lo - 1.0, hi + 1.0) if lo not in (0.0, 1.0) else (lo, hi)
            b = rng.uniform(lo, hi, size=shape)
        out.append(Tensor._wrap(np.array(b, dtype=a.dtype).reshape(shape)))
    return out


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True))
    return bool(np.array_equal(a, b))


def _copies(ins) -> list:
    return [Tensor._wrap(np.array(t._data, copy=True)) for t in ins]


def _check_one(traced: TracedModule, model, ins, dynamic, keep_params, tol) -> None:
    with warnings.catch_warnings():  # eager on copies: the model may write into its inputs
        warnings.simplefilter("ignore", TracerWarning)
        tracer2, _, eager_outs = run_trace(model, _copies(ins), dynamic, keep_params,
                                           record_values=True)
    graph = traced.graph
    try:
        traced.check_inputs(ins)
    except (TypeError, ValueError) as e:
        raise TracingCheckError(f"check_trace: the check inputs do not fit the traced graph: {e}") from e
    got: dict = {}
    params = [t for _, t in traced._param_inputs]
    outs = Interpreter(graph).run(_copies(ins) + params,
                              on_value=lambda v, t: got.__setitem__(v.name, np.array(t._data)))
    ok = len(outs) == len(eager_outs) and all(
        _close(np.asarray(o._data), np.asarray(e._data), tol) for o, e in zip(outs, eager_outs))
    if ok:
        return
    calls1, calls2 = graph.calls(), tracer2.graph.calls()
    for k, (n1, n2) in enumerate(zip(calls1, calls2)):
        if n1.target != n2.target:
            raise TracingCheckError(
                f"check_trace: on the check inputs the model ran different ops: node {k} of the "
                f"graph is {n1.format()} (traced at {n1.source}) but the eager run called "
                f"{n2.target} at {n2.source}. Data-dependent control flow was baked into the trace.")
        for v1, v2 in zip(n1.outputs, n2.outputs):
            a, b = got.get(v1.name), tracer2.recorded.get(v2.name)
            if a is not None and b is not None and not _close(a, b, tol):
                raise TracingCheckError(
                    f"check_trace: the graph and the eager model differ first at node "
                    f"{n1.format()} (traced at {n1.source}): graph shape {list(a.shape)}, eager "
                    f"shape {list(b.shape)}" + _max_diff(a, b) +
                    ". A traced value was probably turned into a Python value (see the "
                    "TracerWarnings).")
    raise TracingCheckError("check_trace: the graph's outputs differ from the eager model's on "
                            "the check inputs (all recorded nodes agree; the outputs do not)")


def _max_diff(a, b) -> str:
    if a.shape == b.shape and a.dtype.kind == "f":
        return f", max abs difference {float(np.nanmax(np.abs(a - b))):.3g}"
    return ""


__all__ = ["trace", "load", "TracedModule", "LoadedModule", "TracingCheckError"]
