"""Test helpers: graphs for the runtime tests, built from recorded eager dispatches.

`record(fn, args)` runs fn eagerly with a dispatch hook and returns (Graph, eager outputs,
input arrays): every dispatched op becomes a "call" node of a framework.jit.ir.Graph, tensors
created inside fn become constants. Shapes are static (the tracer makes them symbolic).
"""

from __future__ import annotations

import numpy as np

import framework as fw
from framework.jit.ir import Graph, TensorSpec
from framework.ops import registry


def record(fn, args, kwargs=None):
    """(graph, eager outputs as numpy, input arrays): fn(*args) recorded op by op."""
    g = Graph()
    values: dict = {}
    keep: list = []
    inputs: list = []  # the arrays that became graph inputs, in order

    def to_fw(a):
        if isinstance(a, np.ndarray):
            inputs.append(np.array(a, order="C"))
            t = fw.from_numpy(inputs[-1].copy())
            values[id(t)] = g.add_input(f"x{len(keep)}", TensorSpec(tuple(t.shape), t.dtype))
            keep.append(t)
            return t
        if isinstance(a, (list, tuple)) and any(isinstance(x, np.ndarray) for x in a):
            return type(a)(to_fw(x) for x in a)
        return a

    def value_of(t):
        if t is None:
            return None
        if not isinstance(t, fw.Tensor):  # a Python number (in-place ops pass them through)
            return g.add_const(np.asarray(t))
        if id(t) not in values:
            keep.append(t)
            values[id(t)] = g.add_const(np.array(t._data))
        return values[id(t)]

    def hook(op, ins, attrs, outs):
        in_vals = [value_of(t) for t in ins]
        specs = [TensorSpec(tuple(o.shape), o.dtype) for o in outs]
        node = g.call(op.name, in_vals, attrs, specs=specs, source="tests/runtime/graphs.py")
        for o, v in zip(outs, node.outputs):
            keep.append(o)
            values[id(o)] = v

    fw_args = [to_fw(a) for a in args]
    registry.DISPATCH_HOOKS.append(hook)
    try:
        with fw.no_grad():
            out = fn(*fw_args, **(kwargs or {}))
    finally:
        registry.DISPATCH_HOOKS.remove(hook)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    g.set_output([value_of(o) for o in outs])
    return g, [np.array(o._data) for o in outs], inputs
