"""The reference interpreter: runs any Graph node by node through eager dispatch.

It defines what a graph means: a pass is correct when the interpreter gives the same
answer before and after it. Symbolic attributes are evaluated against the actual input
shapes; each value is freed right after its last use (graph outputs excepted). It does no
optimization and keeps no state between runs.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from .. import autograd as AG
from .. import dtypes as D
from ..ops.dispatch import dispatch
from ..ops.registry import get
from ..tensor import Tensor
from . import symbolic as S
from .ir import Graph


def _as_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return Tensor._wrap(np.asarray(x))


class Interpreter:
    """Runs `graph`; `run(inputs)` returns the list of output tensors.

    float64=True runs every float32 value in float64 instead (a high-precision reference
    for verify()). on_value(value, tensor) is called for every value computed.
    """

    def __init__(self, graph: Graph, *, float64: bool = False):
        self.graph = graph
        self.float64 = float64
        last: dict = {}
        for i, n in enumerate(graph.nodes):
            for v in n.inputs:
                if v is not None:
                    last[id(v)] = i
        keep = {id(v) for v in graph.outputs}
        self._free_after: list = [[] for _ in graph.nodes]
        for n in graph.nodes:
            for v in n.outputs:
                if id(v) in keep:
                    continue
                self._free_after[last.get(id(v), graph.nodes.index(n))].append(id(v))
        self._ops = [get(n.target) if n.op == "call" else None for n in graph.nodes]
        self._symbolic = [n.op == "call" and S.is_symbolic(n.attrs) for n in graph.nodes]

    def run(self, inputs: Sequence, on_value: Optional[Callable] = None) -> list:
        g = self.graph
        ins = [_as_tensor(x) for x in inputs]
        gin = g.inputs
        if len(ins) != len(gin):
            raise TypeError(f"graph takes {len(gin)} inputs, got {len(ins)}")
        shapes = [tuple(t._data.shape) for t in ins]
        env: dict = {}
        k = 0
        with AG.no_grad():
            for i, n in enumerate(g.nodes):
                if n.op == "input":
                    t = ins[k]
                    k += 1
                    if self.float64 and t.dtype is D.float32:
                        t = t.double()
                    env[id(n.outputs[0])] = t
                elif n.op == "const":
                    arr = n.const
                    if self.float64 and arr.dtype == np.float32:
                        arr = arr.astype(np.float64)
                    env[id(n.outputs[0])] = Tensor._wrap(arr)
                elif n.op == "call":
                    attrs = S.evaluate(n.attrs, shapes) if self._symbolic[i] else n.attrs
                    if self.float64:
                        attrs = _attrs_to_f64(self._ops[i], attrs)
                    args = [None if v is None else env[id(v)] for v in n.inputs]
                    try:
                        out = dispatch(self._ops[i], args, attrs)
                    except Exception as e:  # noqa: BLE001 - re-raised with the node
                        raise type(e)(f"{e}\n  while running node {n.format()}"
                                      + (f" (traced at {n.source})" if n.source else "")) from e
                    outs = out if isinstance(out, tuple) else (out,)
                    for v, t in zip(n.outputs, outs):
                        env[id(v)] = t
                else:
                    return [env[id(v)] for v in n.inputs]
                if on_value is not None:
                    for v in n.outputs:
                        on_value(v, env[id(v)])
                for vid in self._free_after[i]:
                    env.pop(vid, None)
        raise ValueError("graph has no output node")


def _attrs_to_f64(op, attrs):
    """dtype attributes that name float32 are switched to float64 (for float64 runs)."""
    if "dtype" not in op.attrs:
        return attrs
    i = op.attrs.index("dtype")
    if attrs[i] == D.float32.code:
        attrs = attrs[:i] + (D.float64.code,) + attrs[i + 1:]
    return attrs


def run(graph: Graph, inputs: Sequence) -> list:
    """Runs graph on inputs with a fresh Interpreter."""
    return Interpreter(graph).run(inputs)
