"""A runnable module for an imported ONNX graph: `fw.onnx.load(path)` returns one.

It runs the graph on the C++ runtime (framework.jit.runtime) when that is built, else on
the Python reference interpreter (framework.jit.interpreter), and as a last resort with the
small eager loop below (same kernels, op by op). Inputs are checked against the graph's
input specs (rank, dtype, static dims, consistent dynamic dims) before anything runs.
"""

from __future__ import annotations

import numpy as np

from ..jit.ir import Graph
from ..jit.symbolic import SymInt, evaluate


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


def run_eager(graph: Graph, arrays: list) -> list:
    """Runs the graph node by node through eager dispatch (the C++ kernels)."""
    from ..ops.dispatch import dispatch
    from ..ops.registry import get
    from ..tensor import Tensor

    shapes = check_inputs(graph, arrays)
    env = {}
    for n in graph.nodes:
        if n.op == "input":
            env[n.outputs[0]] = Tensor._wrap(arrays[graph.inputs.index(n.outputs[0])])
        elif n.op == "const":
            env[n.outputs[0]] = Tensor._wrap(n.const)
        elif n.op == "call":
            ins = [None if v is None else env[v] for v in n.inputs]
            out = dispatch(get(n.target), ins, evaluate(n.attrs, shapes))
            outs = out if isinstance(out, tuple) else (out,)
            for v, t in zip(n.outputs, outs):
                env[v] = t
    return [env[v] for v in graph.outputs]


class OnnxModule:
    """Runs an imported graph: `module(*inputs)` returns a Tensor (or a tuple of them)."""

    def __init__(self, graph: Graph, backend: str = "auto"):
        self.graph = graph
        self.backend = None
        self._compiled = None
        if backend in ("auto", "runtime"):
            try:
                from ..jit import runtime

                self._compiled = runtime.compile(graph)
                self.backend = "runtime"
            except (ImportError, AttributeError):
                if backend == "runtime":
                    raise
        if self.backend is None:
            self.backend = "eager"

    @property
    def input_names(self) -> list:
        return [v.name for v in self.graph.inputs]

    def __call__(self, *inputs):
        """Runs the model on numpy arrays or Tensors."""
        arrays = [np.require(_as_array(x), requirements="C") for x in inputs]
        if self._compiled is not None:
            check_inputs(self.graph, arrays)
            outs = self._compiled.run(arrays)
        else:
            outs = run_eager(self.graph, arrays)
        outs = list(outs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    forward = __call__

    def __repr__(self):
        return f"OnnxModule(backend={self.backend!r})\n{self.graph}"
