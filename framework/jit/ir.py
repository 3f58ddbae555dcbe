"""The graph IR: a `Graph` of `Node`s in topological order, each producing `Value`s with a
`TensorSpec` (shape with symbolic dims, dtype).

Four opcodes: "input" (a graph input), "const" (a numpy payload: weights, folded values),
"call" (a registered op: `target` is a name in framework.ops.registry.REGISTRY; its OpDef
gives the kernel, the attribute order and the shape inference) and "output" (one, last; its
inputs are the graph outputs). Inputs are flat (Value or None for an absent optional
input); attributes are the op's positional attrs in kernel order, where ints may be SymInts.

This module only holds, prints, checks and edits graphs; it runs nothing (see
interpreter.py and runtime.py). The text form is stable: golden tests compare it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from .. import dtypes as D
from .symbolic import SymInt

_SHORT = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64", "bool": "bool"}


@dataclass(frozen=True)
class TensorSpec:
    """A value's static description: shape (ints and SymInts) and dtype."""

    shape: tuple
    dtype: D.dtype

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def is_static(self) -> bool:
        return not any(isinstance(d, SymInt) for d in self.shape)

    def evaluate(self, input_shapes) -> tuple:
        """The concrete shape for concrete graph-input shapes."""
        return tuple(d.evaluate(input_shapes) if isinstance(d, SymInt) else int(d)
                     for d in self.shape)

    def __str__(self):
        return f"{_SHORT[self.dtype.name]}[{','.join(str(d) for d in self.shape)}]"


class Value:
    """One SSA value: produced by exactly one node, used by any number of nodes."""

    __slots__ = ("name", "spec", "node", "index", "users")

    def __init__(self, name: str, spec: TensorSpec, node: "Node", index: int = 0):
        self.name = name
        self.spec = spec
        self.node = node  # producer
        self.index = index  # which output of node
        self.users: list[Node] = []  # unique consumers, in no particular order

    def __repr__(self):
        return f"%{self.name}"


class Node:
    """One operation. See the module docstring for the opcodes."""

    __slots__ = ("op", "target", "inputs", "attrs", "outputs", "const", "source", "name", "meta",
                 "graph")

    def __init__(self, op: str, target: Optional[str] = None, inputs=(), attrs: tuple = (),
                 const: Optional[np.ndarray] = None, source: Optional[str] = None,
                 name: Optional[str] = None):
        self.op = op
        self.target = target
        self.inputs: list[Optional[Value]] = list(inputs)
        self.attrs = tuple(attrs)
        self.outputs: list[Value] = []
        self.const = const
        self.source = source  # user file:line that created it (for error messages)
        self.name = name  # constants: the parameter's qualified name, e.g. "fc1.weight"
        self.meta: dict = {}  # free-form: the pass that created it, train-mode flags, ...
        self.graph: Optional[Graph] = None

    @property
    def opdef(self):
        from ..ops.registry import get

        return get(self.target)

    @property
    def output(self) -> Value:
        """The single output (most ops have one)."""
        return self.outputs[0]

    def format(self) -> str:
        """The node's line in the text form (without indentation)."""
        outs = ", ".join(f"%{v.name}" for v in self.outputs)
        specs = ", ".join(str(v.spec) for v in self.outputs)
        if self.op == "input":
            return f"{outs} : {specs}"
        if self.op == "const":
            label = self.name or "value"
            if self.const is not None and self.const.size == 1:
                label += f"={_fmt_scalar(self.const.reshape(-1)[0])}"
            return f"{outs} = const[{label}] : {specs}"
        if self.op == "output":
            return "return " + ", ".join(_fmt_input(v) for v in self.inputs)
        ins = list(self.inputs)
        while ins and ins[-1] is None and len(ins) > 1:  # absent trailing optional inputs
            ins.pop()
        args = [_fmt_input(v) for v in ins]
        names = _attr_names(self.target, len(self.attrs))
        args += [f"{n}={_fmt_attr(a)}" for n, a in zip(names, self.attrs)]
        return f"{outs} = {self.target}({', '.join(args)}) : {specs}"

    def __repr__(self):
        return f"<Node {self.format()}>"


def _attr_names(target: str, n: int) -> list:
    try:
        from ..ops.registry import REGISTRY

        names = list(REGISTRY[target].attrs)
    except KeyError:
        names = []
    return names[:n] + [f"attr{i}" for i in range(len(names), n)]


def _fmt_input(v) -> str:
    return "None" if v is None else f"%{v.name}"


def _fmt_scalar(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (np.floating, float)):
        return repr(float(x))
    return str(int(x))


def _fmt_attr(a) -> str:
    if isinstance(a, tuple):
        return "(" + ", ".join(_fmt_attr(x) for x in a) + ("," if len(a) == 1 else "") + ")"
    if isinstance(a, str):
        return repr(a)
    if isinstance(a, float):
        return repr(a)
    return str(a)


class SpecTensor:
    """Stands in for a Tensor when an OpDef's infer runs on specs (shape, dtype only)."""

    __slots__ = ("shape", "dtype")

    def __init__(self, spec: TensorSpec):
        self.shape = tuple(spec.shape)
        self.dtype = spec.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return len(self.shape)

    def size(self, d=None):
        return self.shape if d is None else self.shape[d]

    def numel(self):
        n = 1
        for d in self.shape:
            n = n * d
        return n

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point


def infer_specs(target: str, inputs: Sequence[Optional[TensorSpec]], attrs: tuple) -> list:
    """The output specs of op `target` on input specs, from its OpDef's infer."""
    from ..ops.registry import get

    op = get(target)
    if op.infer is None:
        raise TypeError(f"op {target!r} has no shape inference")
    proxies = [None if s is None else SpecTensor(s) for s in inputs]
    return [TensorSpec(tuple(shape), dt) for shape, dt in op.infer(*proxies, *attrs)]


class Graph:
    """Nodes in topological order; inputs are the "input" nodes, outputs the "output" node's
    inputs. Edit through the helpers so that users and names stay consistent."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.meta: dict = {}  # e.g. {"training": False}; kept by copy()
        self.value_origin: dict = {}  # value name -> name of the value it replaced (passes)
        self._names: set = set()
        self._insert_at: Optional[int] = None  # None: append (before the output node)

    # ---- queries -----------------------------------------------------------------
    @property
    def inputs(self) -> list:
        return [n.outputs[0] for n in self.nodes if n.op == "input"]

    @property
    def outputs(self) -> list:
        out = self.output_node
        return [] if out is None else list(out.inputs)

    @property
    def output_node(self) -> Optional[Node]:
        return self.nodes[-1] if self.nodes and self.nodes[-1].op == "output" else None

    def calls(self, target: Optional[str] = None) -> list:
        """The call nodes (of one target if given)."""
        return [n for n in self.nodes if n.op == "call" and (target is None or n.target == target)]

    def values(self) -> Iterable[Value]:
        for n in self.nodes:
            yield from n.outputs

    # ---- construction ------------------------------------------------------------
    def unique_name(self, base: str) -> str:
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in base) or "v"
        name, k = base, 1
        while name in self._names:
            name = f"{base}_{k}"
            k += 1
        self._names.add(name)
        return name

    def _place(self, node: Node) -> Node:
        node.graph = self
        if node.op == "input":
            pos = sum(1 for n in self.nodes if n.op == "input")
            self.nodes.insert(pos, node)
        elif node.op == "output":
            if self.output_node is not None:
                raise ValueError("graph already has an output node")
            self.nodes.append(node)
        elif self._insert_at is not None:
            self.nodes.insert(self._insert_at, node)
            self._insert_at += 1
        elif self.output_node is not None:
            self.nodes.insert(len(self.nodes) - 1, node)
        else:
            self.nodes.append(node)
        for v in node.inputs:
            if v is not None and node not in v.users:
                v.users.append(node)
        return node

    def _add_outputs(self, node: Node, specs, names) -> None:
        for i, spec in enumerate(specs):
            name = self.unique_name(names[i] if names and i < len(names) else (node.target or node.op))
            node.outputs.append(Value(name, spec, node, i))

    def add_input(self, name: str, spec: TensorSpec) -> Value:
        """Appends a graph input."""
        node = Node("input")
        self._add_outputs(node, [spec], [name])
        return self._place(node).outputs[0]

    def add_const(self, array: np.ndarray, name: Optional[str] = None,
                  value_name: Optional[str] = None) -> Value:
        """A constant (its spec comes from the array); `name` is e.g. "fc1.weight"."""
        array = np.asarray(array)
        spec = TensorSpec(array.shape, D.from_numpy_dtype(array.dtype))
        if spec.dtype.np != array.dtype:
            array = array.astype(spec.dtype.np)
        node = Node("const", const=array, name=name)
        self._add_outputs(node, [spec], [value_name or (name or "const").replace(".", "_")])
        return self._place(node).outputs[0]

    def call(self, target: str, inputs: Sequence[Optional[Value]], attrs: tuple = (),
             specs: Optional[Sequence[TensorSpec]] = None, source: Optional[str] = None,
             names: Optional[Sequence[str]] = None) -> Node:
        """Inserts a call of registered op `target`; specs are inferred if not given."""
        if specs is None:
            specs = infer_specs(target, [None if v is None else v.spec for v in inputs], attrs)
        node = Node("call", target, inputs, attrs, source=source)
        self._add_outputs(node, specs, names)
        return self._place(node)

    def set_output(self, values: Sequence[Value]) -> Node:
        """Sets the graph outputs (replacing any previous output node)."""
        old = self.output_node
        if old is not None:
            self.erase(old)
        return self._place(Node("output", inputs=list(values)))

    @contextlib.contextmanager
    def inserting_before(self, node: Node):
        """New call/const nodes go right before `node` inside this block."""
        prev = self._insert_at
        self._insert_at = self.nodes.index(node)
        try:
            yield
        finally:
            self._insert_at = prev

    # ---- editing -----------------------------------------------------------------
    def replace_all_uses(self, old: Value, new: Value) -> int:
        """Points every use of `old` at `new`; returns how many nodes changed."""
        if old is new:
            return 0
        users = list(old.users)
        self.value_origin.setdefault(new.name, self.value_origin.get(old.name, old.name))
        for user in users:
            user.inputs = [new if v is old else v for v in user.inputs]
            if user not in new.users:
                new.users.append(user)
        old.users = []
        return len(users)

    def set_input(self, node: Node, i: int, new: Optional[Value]) -> None:
        """node.inputs[i] = new, keeping users consistent."""
        old = node.inputs[i]
        node.inputs[i] = new
        if old is not None and old not in node.inputs and node in old.users:
            old.users.remove(node)
        if new is not None and node not in new.users:
            new.users.append(node)

    def erase(self, node: Node) -> None:
        """Removes a node whose outputs are unused."""
        for v in node.outputs:
            if v.users:
                raise ValueError(f"cannot erase {node.format()}: %{v.name} is still used by "
                                 f"{[u.format() for u in v.users]}")
        for v in node.inputs:
            if v is not None and node in v.users:
                v.users.remove(node)
        idx = self.nodes.index(node)
        del self.nodes[idx]
        if self._insert_at is not None and idx < self._insert_at:
            self._insert_at -= 1
        for v in node.outputs:
            self._names.discard(v.name)
        node.graph = None

    def copy(self) -> "Graph":
        """A structural copy (constant payloads are shared, never mutated by passes)."""
        g = Graph()
        g.meta = dict(self.meta)
        g.value_origin = dict(self.value_origin)
        vmap: dict = {}
        for n in self.nodes:
            m = Node(n.op, n.target, [None if v is None else vmap[v] for v in n.inputs], n.attrs,
                     const=n.const, source=n.source, name=n.name)
            m.meta = dict(n.meta)
            for v in n.outputs:
                nv = Value(v.name, v.spec, m, v.index)
                m.outputs.append(nv)
                vmap[v] = nv
                g._names.add(v.name)
            m.graph = g
            g.nodes.append(m)
            for v in m.inputs:
                if v is not None and m not in v.users:
                    v.users.append(m)
        return g

    # ---- invariants --------------------------------------------------------------
    def lint(self, check_infer: bool = True) -> None:
        """Checks the invariants; raises ValueError naming the first broken one."""
        from ..ops.registry import REGISTRY

        defined, names = set(), set()
        seen_call = False
        for pos, n in enumerate(self.nodes):
            where = f"node {pos} ({n.format() if n.outputs or n.op == 'output' else n.op})"
            if n.graph is not self:
                raise ValueError(f"{where}: node does not belong to this graph")
            if n.op not in ("input", "const", "call", "output"):
                raise ValueError(f"{where}: unknown opcode {n.op!r}")
            if n.op == "input" and seen_call:
                raise ValueError(f"{where}: inputs must come before other nodes")
            if n.op != "input":
                seen_call = True
            if n.op == "output" and pos != len(self.nodes) - 1:
                raise ValueError(f"{where}: the output node must be last")
            for v in n.inputs:
                if v is None:
                    continue
                if not isinstance(v, Value) or id(v) not in defined:
                    raise ValueError(f"{where}: input {v!r} is not defined before its use")
                if n not in v.users:
                    raise ValueError(f"{where}: %{v.name}.users does not list this node")
            if n.op == "call":
                self._lint_call(n, where, REGISTRY, check_infer)
            elif n.op == "const":
                spec = n.outputs[0].spec
                if not isinstance(n.const, np.ndarray) or tuple(n.const.shape) != spec.shape \
                        or n.const.dtype != spec.dtype.np:
                    raise ValueError(f"{where}: const payload does not match its spec")
            elif n.op in ("input", "output") and n.op == "input" and len(n.outputs) != 1:
                raise ValueError(f"{where}: an input node has one output")
            for i, v in enumerate(n.outputs):
                if v.node is not n or v.index != i:
                    raise ValueError(f"{where}: output %{v.name} does not point back at its node")
                if v.name in names:
                    raise ValueError(f"{where}: value name %{v.name} is not unique")
                names.add(v.name)
                _check_spec(v, where)
                defined.add(id(v))
                for u in v.users:
                    if u.graph is not self or v not in u.inputs:
                        raise ValueError(f"{where}: %{v.name}.users lists a node that does not use it")
        if self.output_node is None:
            raise ValueError("graph has no output node")

    def _lint_call(self, n: Node, where: str, registry, check_infer: bool) -> None:
        op = registry.get(n.target)
        if op is None:
            raise ValueError(f"{where}: target {n.target!r} is not a registered op")
        if op.kernel is None:
            raise ValueError(f"{where}: op {n.target!r} has no kernel (composites are traced "
                             "as their parts)")
        names = list(op.inputs)
        if names and names[-1].endswith("*"):  # variadic last input (cat, index): any number
            if len(n.inputs) < len(names) - 1:
                raise ValueError(f"{where}: {n.target} takes at least {len(names) - 1} inputs, "
                                 f"got {len(n.inputs)}")
            names = names[:-1] + [names[-1]] * (len(n.inputs) - len(names) + 1)
        elif len(n.inputs) != len(names):
            raise ValueError(f"{where}: {n.target} takes {len(op.inputs)} inputs, got {len(n.inputs)}")
        for name, v in zip(names, n.inputs):
            if v is None and not name.endswith("?"):
                raise ValueError(f"{where}: required input {name!r} is None")
        if len(n.attrs) != len(op.attrs):
            raise ValueError(f"{where}: {n.target} takes {len(op.attrs)} attrs {op.attrs}, "
                             f"got {len(n.attrs)}")
        if len(n.outputs) != op.num_outputs:
            raise ValueError(f"{where}: {n.target} has {op.num_outputs} outputs, got {len(n.outputs)}")
        if check_infer and not n.meta.get("specialized"):
            specs = infer_specs(n.target, [None if v is None else v.spec for v in n.inputs], n.attrs)
            got = [v.spec for v in n.outputs]
            if specs != got:
                raise ValueError(f"{where}: specs {[str(s) for s in got]} differ from inferred "
                                 f"{[str(s) for s in specs]}")

    # ---- printing ----------------------------------------------------------------
    def __str__(self):
        head = ", ".join(f"%{v.name}: {v.spec}" for v in self.inputs)
        lines = [f"graph({head}):"]
        for n in self.nodes:
            if n.op != "input":
                lines.append("  " + n.format())
        return "\n".join(lines)

    def to_dot(self) -> str:
        """The graph in Graphviz dot syntax (one box per node, one edge per use)."""
        ids = {}
        lines = ["digraph G {", '  node [shape=box, fontname="monospace"];']
        for i, n in enumerate(self.nodes):
            ids[id(n)] = f"n{i}"
            if n.op == "call":
                label = f"{n.target}\\n" + "\\n".join(f"%{v.name}: {v.spec}" for v in n.outputs)
            elif n.op == "output":
                label = "output"
            else:
                v = n.outputs[0]
                label = f"{n.op} {n.name or ''}\\n%{v.name}: {v.spec}"
            style = ', style=filled, fillcolor="#eeeeee"' if n.op in ("input", "const") else ""
            lines.append(f'  n{i} [label="{label}"{style}];')
        for n in self.nodes:
            for v in n.inputs:
                if v is not None:
                    lines.append(f"  {ids[id(v.node)]} -> {ids[id(n)]};")
        lines.append("}")
        return "\n".join(lines)


def _check_spec(v: Value, where: str) -> None:
    spec = v.spec
    if not isinstance(spec, TensorSpec) or not isinstance(spec.dtype, D.dtype):
        raise ValueError(f"{where}: %{v.name} has no valid spec")
    for d in spec.shape:
        if isinstance(d, SymInt):
            continue
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise ValueError(f"{where}: %{v.name} has a bad dim {d!r} in {spec}")


__all__ = ["TensorSpec", "Value", "Node", "Graph", "SpecTensor", "infer_specs"]
