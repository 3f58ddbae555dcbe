"""ONNX export: a framework Graph (traced if needed) -> an ONNX ModelProto / file.

Each call node is emitted by its OpDef's `onnx` mapping (attached in mappings.py):
`mapping(ctx, ins, attrs, outs)` gets this module's ExportContext, the ONNX names of the
node's inputs (None for absent optional inputs), its attributes in kernel order and the
names to give its outputs, and adds ONNX nodes/initializers through the context.

Symbolic dims stay symbolic: graph inputs get named dynamic dims (dim_param), and an
attribute holding SymInts (a reshape target, an expand shape, a slice end) becomes a small
Shape -> Gather -> arithmetic -> Concat subgraph computed from the inputs' shapes at run
time (`ctx.shape_tensor`), never a constant with the traced batch baked in.

Every node is checked for a mapping before anything is built, and the error names the op,
the node and the user's source line; no file is written on error.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ..jit.ir import Graph, Node, TensorSpec
from ..jit.symbolic import SymInt, dim_name
from ._proto import OnnxError, onnx, onnx_dtype

_SYM_OPS = {"add": "Add", "sub": "Sub", "mul": "Mul", "floordiv": "Div", "mod": "Mod",
            "max": "Max", "min": "Min"}


class ExportContext:
    """What a mapping function uses to emit ONNX: nodes, constants, shape tensors."""

    def __init__(self, graph: Graph, opset: int, input_names: dict):
        self.graph = graph
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.node: Optional[Node] = None  # the IR node being exported
        self._input_names = input_names  # graph-input index -> ONNX name
        self._counter = 0
        self._used: set = set()
        self._sym_cache: dict = {}
        self._const_cache: dict = {}

    # ---- names -------------------------------------------------------------------
    def fresh(self, base: str = "t") -> str:
        """A new unique ONNX value name."""
        while True:
            self._counter += 1
            name = f"{base}__{self._counter}"
            if name not in self._used:
                self._used.add(name)
                return name

    def reserve(self, name: str) -> str:
        base, k = name, 1
        while name in self._used:
            name = f"{base}_{k}"
            k += 1
        self._used.add(name)
        return name

    # ---- specs of the current node -----------------------------------------------
    def in_spec(self, i: int) -> TensorSpec:
        return self.node.inputs[i].spec

    def out_spec(self, i: int = 0) -> TensorSpec:
        return self.node.outputs[i].spec

    # ---- emitting ------------------------------------------------------------------
    def add(self, op_type: str, inputs: Sequence[Optional[str]], outputs=None, **attrs):
        """Adds an ONNX node; returns its output name (or names if several were asked)."""
        helper = onnx().helper
        n_out = outputs if isinstance(outputs, int) else None
        if outputs is None or isinstance(outputs, int):
            outputs = [self.fresh(op_type) for _ in range(n_out or 1)]
        elif isinstance(outputs, str):
            outputs = [outputs]
        ins = ["" if x is None else x for x in inputs]
        while ins and ins[-1] == "":
            ins.pop()
        attrs = {k: v for k, v in attrs.items() if v is not None}
        name = f"{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, ins, list(outputs), name=name, **attrs))
        return outputs[0] if len(outputs) == 1 and n_out is None else list(outputs)

    def const(self, value, dtype=None, name: Optional[str] = None) -> str:
        """An initializer holding `value` (numpy array or scalar); returns its name."""
        from onnx import numpy_helper

        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            arr = arr.astype(np.float32)
        key = None
        if arr.size <= 16 and name is None:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._const_cache:
                return self._const_cache[key]
        cname = self.reserve(name) if name else self.fresh("const")
        self.initializers.append(numpy_helper.from_array(np.require(arr, requirements="C"), cname))
        if key is not None:
            self._const_cache[key] = cname
        return cname

    def scalar(self, value, like: TensorSpec) -> str:
        """A 0-d constant of `like`'s dtype."""
        return self.const(np.asarray(value, dtype=like.dtype.np))

    def ints(self, values: Sequence[int]) -> str:
        """A 1-d int64 constant."""
        return self.const(np.asarray(list(values), dtype=np.int64))

    def shape_tensor(self, dims: Sequence) -> str:
        """A 1-d int64 tensor of ints and SymInts, computed from the input shapes at run time."""
        dims = list(dims)
        if not any(isinstance(d, SymInt) for d in dims):
            return self.ints([int(d) for d in dims])
        key = tuple(dims)
        if key in self._sym_cache:
            return self._sym_cache[key]
        parts, run = [], []
        for d in dims:
            if isinstance(d, SymInt):
                if run:
                    parts.append(self.ints(run))
                    run = []
                parts.append(self._sym(d))
            else:
                run.append(int(d))
        if run:
            parts.append(self.ints(run))
        out = parts[0] if len(parts) == 1 else self.add("Concat", parts, axis=0)
        self._sym_cache[key] = out
        return out

    def _sym(self, s) -> str:
        """A 1-element int64 tensor holding SymInt (or int) s."""
        if not isinstance(s, SymInt):
            return self.ints([int(s)])
        if s in self._sym_cache:
            return self._sym_cache[s]
        e = s.expr
        if e[0] == "dim":
            i, axis = e[1], e[2]
            if self.opset >= 15:
                out = self.add("Shape", [self._input_names[i]], start=axis, end=axis + 1)
            else:
                shape = self.add("Shape", [self._input_names[i]])
                out = self.add("Gather", [shape, self.ints([axis])], axis=0)
        else:
            a, b = self._sym(e[1]), self._sym(e[2])
            out = self.add(_SYM_OPS[e[0]], [a, b])
        self._sym_cache[s] = out
        return out

    def scalar_sym(self, s) -> str:
        """A 0-d int64 tensor for an int or SymInt."""
        if not isinstance(s, SymInt):
            return self.const(np.asarray(int(s), dtype=np.int64))
        return self.add("Squeeze", [self._sym(s), self.ints([0])])

    def reduce(self, op_type: str, x: str, axes, keepdims: bool, out=None) -> str:
        """A Reduce* node with axes as an attribute or an input, as the opset wants."""
        axes = list(axes)
        takes_input = op_type == "ReduceSum" or self.opset >= 18
        if takes_input:
            return self.add(op_type, [x, self.ints(axes)], out, keepdims=int(keepdims))
        return self.add(op_type, [x], out, axes=axes, keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes, out=None) -> str:
        return self.add("Unsqueeze", [x, self.ints(axes)], out)

    def squeeze(self, x: str, axes, out=None) -> str:
        return self.add("Squeeze", [x, self.ints(axes)], out)


# ---------------------------------------------------------------------------------------


def _graph_of(model_or_traced, args) -> Graph:
    if isinstance(model_or_traced, Graph):
        return model_or_traced
    g = getattr(model_or_traced, "graph", None)
    if isinstance(g, Graph):
        return g
    try:
        from ..jit import trace
    except ImportError:
        raise OnnxError("exporting a model needs framework.jit.trace; pass a traced module or "
                        "a Graph instead") from None
    if not isinstance(args, tuple):
        args = (args,)
    traced = trace(model_or_traced, args)
    return traced.graph


def check_mappings(graph: Graph) -> None:
    """Raises OnnxError naming every call node whose op has no ONNX mapping."""
    from . import mappings
    from ..ops.registry import REGISTRY

    mappings.attach()

    problems = []
    for n in graph.nodes:
        if n.op != "call":
            continue
        op = REGISTRY.get(n.target)
        if op is None or op.onnx is None:
            why = f" ({op.onnx_reason})" if op is not None and op.onnx_reason else ""
            problems.append(f"op {n.target!r}{why} has no ONNX mapping: node `{n.format()}`"
                            f" at {n.source or '<unknown source>'}")
    if problems:
        raise OnnxError("cannot export to ONNX:\n  " + "\n  ".join(problems))


def _names(given, values, what) -> list:
    if given is None:
        return [None] * len(values)
    given = list(given)
    if len(given) > len(values):
        raise OnnxError(f"{len(given)} {what} names for {len(values)} {what}s")
    return given + [None] * (len(values) - len(given))


def _value_info(name: str, spec: TensorSpec, dim_names: dict):
    helper = onnx().helper
    dims = []
    for d in spec.shape:
        if isinstance(d, SymInt):
            dims.append(dim_names.get(d, str(d)) if d.is_leaf() else None)
        else:
            dims.append(int(d))
    return helper.make_tensor_value_info(name, onnx_dtype(spec.dtype), dims)


def graph_to_model(graph: Graph, *, input_names=None, output_names=None, dynamic_axes=None,
                   opset_version: int = 17, producer: str = "framework"):
    """The ONNX ModelProto of a Graph."""
    ox = onnx()
    if not 13 <= opset_version <= 18:
        raise OnnxError(f"opset_version {opset_version} is not supported (13..18)")
    check_mappings(graph)
    from ..ops.registry import REGISTRY

    ins, outs = graph.inputs, graph.outputs
    in_names = _names(input_names, ins, "input")
    out_names = _names(output_names, outs, "output")
    names: dict = {}  # Value -> ONNX name
    ctx = ExportContext(graph, opset_version, {})
    for i, v in enumerate(ins):
        names[v] = ctx.reserve(in_names[i] or v.name)
        ctx._input_names[i] = names[v]
    dim_names = _dim_names(graph, [names[v] for v in ins], dynamic_axes)
    out_set = {}
    for i, v in enumerate(outs):
        if v not in out_set and v not in names:
            out_set[v] = ctx.reserve(out_names[i] or v.name)
    for n in graph.nodes:
        if n.op == "const":
            v = n.outputs[0]
            names[v] = ctx.const(n.const, name=n.name or v.name)
        elif n.op == "call":
            ctx.node = n
            in_n = [None if v is None else names[v] for v in n.inputs]
            out_n = []
            for v in n.outputs:
                nm = out_set.get(v) or ctx.reserve(v.name)
                names[v] = nm
                out_n.append(nm)
            try:
                REGISTRY[n.target].onnx(ctx, in_n, n.attrs, out_n)
            except OnnxError as e:
                raise OnnxError(f"cannot export node `{n.format()}` at "
                                f"{n.source or '<unknown source>'}: {e}") from None
    ctx.node = None
    # graph outputs that are inputs/constants/repeated values need an Identity
    final_outs = []
    seen = set()
    for i, v in enumerate(outs):
        nm = names[v]
        want = out_set.get(v, nm)
        if nm != want or nm in seen or v.node.op in ("input", "const"):
            want = ctx.reserve(out_names[i] or f"{v.name}_out")
            ctx.add("Identity", [nm], want)
        seen.add(want)
        final_outs.append(_value_info(want, v.spec, dim_names))
    helper = ox.helper
    g = helper.make_graph(ctx.nodes, "framework_graph",
                          [_value_info(names[v], v.spec, dim_names) for v in ins],
                          final_outs, initializer=ctx.initializers)
    model = helper.make_model(g, producer_name=producer,
                              opset_imports=[helper.make_opsetid("", opset_version)])
    model.ir_version = min(model.ir_version, 8 if opset_version <= 17 else 9)
    return model


def _dim_names(graph: Graph, input_names: list, dynamic_axes) -> dict:
    """SymInt leaf -> dim_param name (dynamic_axes names win, else N, d0_1, ...)."""
    out = {}
    specs = [v.spec for v in graph.inputs]
    if dynamic_axes:
        for key, axes in dynamic_axes.items():
            if key not in input_names:
                continue  # output names are named by the inputs' dims they depend on
            i = input_names.index(key)
            items = axes.items() if isinstance(axes, dict) else ((a, None) for a in axes)
            for axis, label in items:
                d = specs[i].shape[axis] if axis < len(specs[i].shape) else None
                if not isinstance(d, SymInt):
                    raise OnnxError(f"dynamic_axes asks for dim {axis} of input {key!r} to be "
                                    f"dynamic, but the traced graph has it static ({d}); trace "
                                    "with that dim marked dynamic")
                out[d] = label or f"{key}_dim{axis}"
    for i, spec in enumerate(specs):
        for axis, d in enumerate(spec.shape):
            if isinstance(d, SymInt) and d.is_leaf() and d not in out:
                out[d] = dim_name(*d.expr[1:])
    return out


def export(model_or_traced, args, path, *, input_names=None, output_names=None,
           dynamic_axes=None, opset_version: int = 17):
    """Traces (if needed) and writes an ONNX file; returns the ModelProto."""
    graph = _graph_of(model_or_traced, args)
    model = graph_to_model(graph, input_names=input_names, output_names=output_names,
                           dynamic_axes=dynamic_axes, opset_version=opset_version)
    data = model.SerializeToString()
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return model
