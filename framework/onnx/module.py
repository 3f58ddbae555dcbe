"""A runnable module for an imported ONNX graph: `fw.onnx.load(path)` returns one.

It runs the graph on the C++ runtime (framework.jit.runtime) when that is built, else on
the Python reference interpreter (framework.jit.interpreter): the same kernels either way.
Inputs are checked against the graph's
input specs (rank, dtype, static dims, consistent dynamic dims) before anything runs.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..jit.ir import Graph
from ..jit.symbolic import SymInt
from ..profiler import _ACTIVE as _PROFILING  # the active profiles (a list changed in place)
from ..tensor import Tensor

_wrap = Tensor._wrap


def _as_array(x) -> np.ndarray:
    if hasattr(x, "_data"):
        return x._data
    return np.asarray(x)


def check_inputs(graph: Graph, arrays: list) -> list:
    """Validates concrete inputs against the graph's input specs; returns their shapes."""
    specs = [v.spec for v in graph.inputs]
    names = [v.name for v in graph.inputs]
    if len(arrays) != len(specs):
        raise TypeError(f"the model takes {len(specs)} input(s) {names}, got {len(arrays)}")
    shapes = [tuple(a.shape) for a in arrays]
    for i, (a, spec) in enumerate(zip(arrays, specs)):
        if a.dtype != spec.dtype.np:
            raise TypeError(f"input {names[i]!r}: expected dtype {spec.dtype.name}, got {a.dtype}")
        if a.ndim != len(spec.shape):
            raise ValueError(f"input {names[i]!r}: expected rank {len(spec.shape)} "
                             f"{[str(d) for d in spec.shape]}, got shape {list(a.shape)}")
        for axis, d in enumerate(spec.shape):
            want = d.evaluate(shapes) if isinstance(d, SymInt) else d
            if want != a.shape[axis]:
                raise ValueError(f"input {names[i]!r}: dim {axis} must be {d} (= {want}), got "
                                 f"shape {list(a.shape)}")
    return shapes


class OnnxModule:
    """Runs an imported graph: `module(*inputs)` returns a Tensor (or a tuple of them)."""

    def __init__(self, graph: Graph, backend: str = "auto"):
        from ..jit.interpreter import Interpreter
        from ..jit.module import _runtime_compile

        if backend not in ("auto", "runtime", "interpreter"):
            raise ValueError(f"backend must be auto, runtime or interpreter, got {backend!r}")
        self.graph = graph
        self._run = None
        self._run_arrays = None  # the runtime's lean numpy-in, numpy-out call
        self._checked = {}  # input (shape, dtype) signatures that passed check_inputs
        # One input, one output on the runtime: (shape, dtype, the runtime's numpy call) of the
        # last input signature that passed check_inputs, checked first per call.
        self._fast = None
        self._array_runner = None
        compile_ = _runtime_compile() if backend != "interpreter" else None
        if compile_ is None and backend == "runtime":
            raise RuntimeError("backend='runtime' but framework.jit.runtime is not available")
        if compile_ is not None:
            try:
                compiled = compile_(graph)
                self._run, self._run_arrays, self.backend = compiled.run, compiled.run_arrays, "runtime"
                self._array_runner = compiled.array_runner()
            except Exception as e:  # noqa: BLE001
                if backend == "runtime":
                    raise
                warnings.warn(f"the C++ runtime could not compile this model ({e}); running it "
                              "with the interpreter", RuntimeWarning, stacklevel=3)
        if self._run is None:
            self._run, self.backend = Interpreter(graph).run, "interpreter"

    @property
    def input_names(self) -> list:
        return [v.name for v in self.graph.inputs]

    def __call__(self, *inputs):
        """Runs the model on numpy arrays or Tensors."""
        fast = self._fast
        if fast is not None and len(inputs) == 1 and not _PROFILING:  # the leanest path
            a = inputs[0]
            a = getattr(a, "_data", a)
            if a.__class__ is np.ndarray and a.shape == fast[0] and a.dtype is fast[1]:
                return _wrap(fast[2]([a])[0])
        arrays = [_as_array(x) for x in inputs]
        arrays = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays]
        # check_inputs depends on shapes and dtypes only: a signature that passed once is not
        # checked again (the C++ runtime still validates every buffer it is given)
        sig = tuple([(a.shape, a.dtype) for a in arrays])
        if sig not in self._checked:
            check_inputs(self.graph, arrays)
            if len(self._checked) >= 64:
                self._checked.clear()
            self._checked[sig] = True
        if self._run_arrays is not None:
            outs = [_wrap(a) for a in self._run_arrays(arrays)]
            if len(arrays) == 1 and len(outs) == 1:
                self._fast = (arrays[0].shape, arrays[0].dtype, self._array_runner)
        else:
            outs = list(self._run([Tensor._wrap(a) for a in arrays]))
        return outs[0] if len(outs) == 1 else tuple(outs)

    forward = __call__

    def save(self, path) -> None:
        """Writes the framework model file (docs/model-format.md): `fw.jit.load(path)` and the
        fwrun runner load it without ONNX, protobuf or Python."""
        try:
            from ..jit import runtime
        except ImportError:
            raise NotImplementedError("saving needs framework.jit.runtime, which is not "
                                      "available in this build") from None
        runtime.save(self.graph, path)

    def __repr__(self):
        return f"OnnxModule(backend={self.backend!r})\n{self.graph}"
