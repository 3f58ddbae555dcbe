"""Test helpers: graphs for the runtime tests, built from recorded eager dispatches.

`record(fn, args)` runs fn eagerly with a dispatch hook and returns (Graph, eager outputs,
input arrays): every dispatched op becomes a "call" node, tensors created inside fn become
constants. The Graph here follows the IR contract (framework/jit/ir.py) with only what the
runtime's serializer reads; `Sym` is a minimal SymInt (to_program) for symbolic shapes.
"""

from __future__ import annotations

import numpy as np

import framework as fw
from framework.ops import registry


class Spec:
    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = dtype


class Value:
    def __init__(self, name, spec, node):
        self.name, self.spec, self.node = name, spec, node


class Node:
    def __init__(self, op, target=None, inputs=(), attrs=(), const=None, source=None):
        self.op, self.target, self.inputs, self.attrs = op, target, list(inputs), tuple(attrs)
        self.const, self.source, self.outputs = const, source, []


class Graph:
    def __init__(self):
        self.nodes, self._n = [], 0

    def _value(self, node, spec, base):
        self._n += 1
        v = Value(f"{base}{self._n}", spec, node)
        node.outputs.append(v)
        return v

    def add_input(self, spec, name="x"):
        n = Node("input")
        self.nodes.append(n)
        return self._value(n, spec, name)

    def add_const(self, array):
        array = np.array(array, order="C")
        n = Node("const", const=array)
        self.nodes.append(n)
        return self._value(n, Spec(array.shape, fw.dtypes.from_numpy_dtype(array.dtype)), "c")

    def call(self, target, inputs, attrs, specs):
        n = Node("call", target, inputs, attrs, source="tests/runtime/graphs.py")
        self.nodes.append(n)
        return [self._value(n, s, target) for s in specs]

    def set_output(self, values):
        self.nodes.append(Node("output", inputs=values))

    @property
    def inputs(self):
        return [n.outputs[0] for n in self.nodes if n.op == "input"]

    @property
    def outputs(self):
        return list(self.nodes[-1].inputs) if self.nodes and self.nodes[-1].op == "output" else []


class Sym:
    """A symbolic dim for tests: a postfix program over the graph inputs' dims."""

    def __init__(self, prog):
        self.prog = list(prog)

    @staticmethod
    def dim(i, axis):
        return Sym([1, i, axis])

    def _bin(self, o, code, rev=False):
        a = self.prog
        b = o.prog if isinstance(o, Sym) else [0, int(o)]
        return Sym(b + a + [code] if rev else a + b + [code])

    def __add__(self, o):
        return self._bin(o, 2)

    def __mul__(self, o):
        return self._bin(o, 4)

    def __floordiv__(self, o):
        return self._bin(o, 5)

    def to_program(self):
        return self.prog


def _flatten(args):
    for a in args:
        if isinstance(a, (list, tuple)) and a and isinstance(a[0], np.ndarray):
            yield from a
        elif isinstance(a, np.ndarray):
            yield a


def record(fn, args, kwargs=None):
    """(graph, eager outputs as numpy, input arrays): fn(*args) recorded op by op."""
    g = Graph()
    values: dict = {}
    keep: list = []
    inputs = list(_flatten(args))

    def to_fw(a):
        if isinstance(a, np.ndarray):
            t = fw.from_numpy(np.array(a, order="C"))
            values[id(t)] = g.add_input(Spec(t.shape, t.dtype))
            keep.append(t)
            return t
        if isinstance(a, (list, tuple)) and a and isinstance(a[0], np.ndarray):
            return type(a)(to_fw(x) for x in a)
        return a

    def value_of(t):
        if t is None:
            return None
        if id(t) not in values:
            keep.append(t)
            values[id(t)] = g.add_const(np.array(t._data))
        return values[id(t)]

    def hook(op, ins, attrs, outs):
        in_vals = [value_of(t) for t in ins]
        specs = [Spec(o.shape, o.dtype) for o in outs]
        for o, v in zip(outs, g.call(op.name, in_vals, attrs, specs)):
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
