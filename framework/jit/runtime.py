"""The C++ graph runtime from Python: compile a Graph, run it, print its memory plan, and
save/load the model file.

`serialize(graph)` writes the versioned model file (docs/model-format.md) from any Graph
that follows the IR contract (framework/jit/ir.py: nodes "input"/"const"/"call"/"output",
values with a TensorSpec whose dims are ints or SymInts). `compile(graph)` parses those bytes
in C++ (framework._C.RuntimeModel, csrc/runtime), so the Python path and the file path are
one path. Nothing here computes: every node runs its C++ kernel from the eager kernel table.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from typing import Optional, Sequence

import numpy as np

from .. import _C
from .. import dtypes as D
from .. import profiler as _profiler

MAGIC = b"FWMODEL\0"
FORMAT_VERSION = 1
HEADER_SIZE = 64
ALIGN = 64

# Attribute tags of the graph section (docs/model-format.md).
TAG_NONE, TAG_INT, TAG_FLOAT, TAG_INTS, TAG_FLOATS, TAG_STR, TAG_SYMINT, TAG_SYMINTS = range(8)
OP_CONST = 0  # SymInt program opcode for a literal


def _is_sym(x) -> bool:
    return hasattr(x, "to_program") and not isinstance(x, (int, np.integer))


def _program(d) -> list:
    """The postfix program of a dim or int attribute (an int or a SymInt)."""
    if _is_sym(d):
        return list(d.to_program())
    return [OP_CONST, int(d)]


class _Writer:
    """Little-endian primitives of the graph section."""

    def __init__(self):
        self.parts: list = []

    def u8(self, v):
        self.parts.append(struct.pack("<B", v))

    def u32(self, v):
        self.parts.append(struct.pack("<I", v))

    def i32(self, v):
        self.parts.append(struct.pack("<i", v))

    def u64(self, v):
        self.parts.append(struct.pack("<Q", v))

    def i64(self, v):
        self.parts.append(struct.pack("<q", v))

    def f64(self, v):
        self.parts.append(struct.pack("<d", v))

    def str(self, s: str):
        b = s.encode("utf-8")
        self.u32(len(b))
        self.parts.append(b)

    def program(self, prog: Sequence[int]):
        self.u32(len(prog))
        self.parts.append(struct.pack(f"<{len(prog)}q", *prog))

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def _attr(w: _Writer, a, where: str) -> None:
    if a is None:
        w.u8(TAG_NONE)
    elif isinstance(a, (bool, np.bool_)):
        w.u8(TAG_INT)
        w.i64(int(a))
    elif isinstance(a, D.dtype):
        w.u8(TAG_INT)
        w.i64(a.code)
    elif isinstance(a, (int, np.integer)):
        w.u8(TAG_INT)
        w.i64(int(a))
    elif _is_sym(a):
        w.u8(TAG_SYMINT)
        w.program(_program(a))
    elif isinstance(a, (float, np.floating)):
        w.u8(TAG_FLOAT)
        w.f64(float(a))
    elif isinstance(a, str):
        w.u8(TAG_STR)
        w.str(a)
    elif isinstance(a, (tuple, list)):
        items = list(a)
        if any(_is_sym(x) for x in items):
            w.u8(TAG_SYMINTS)
            w.u32(len(items))
            for x in items:
                if not (_is_sym(x) or isinstance(x, (int, np.integer))):
                    raise TypeError(f"{where}: a list attribute mixes SymInts with {x!r}")
                w.program(_program(x))
        elif all(isinstance(x, (int, np.integer, bool)) for x in items):
            w.u8(TAG_INTS)
            w.u32(len(items))
            for x in items:
                w.i64(int(x))
        else:
            w.u8(TAG_FLOATS)
            w.u32(len(items))
            for x in items:
                w.f64(float(x))
    else:
        raise TypeError(f"{where}: attribute {a!r} of type {type(a).__name__} cannot be saved")


def _dispatch_dtype(node, opdef) -> D.dtype:
    """The kernel's dtype, chosen as eager dispatch does (the dispatch input's dtype)."""
    i = opdef.dispatch_input
    if i < len(node.inputs) and node.inputs[i] is not None:
        return node.inputs[i].spec.dtype
    return node.outputs[0].spec.dtype


def serialize(graph) -> bytes:
    """The model file (docs/model-format.md) for a Graph, as bytes."""
    return _serialize_array(graph).tobytes()


def _aligned_bytes(n: int) -> np.ndarray:
    """n zero bytes (uint8) starting at a 64-byte-aligned address."""
    raw = np.zeros(n + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + n]


def _serialize_array(graph) -> np.ndarray:
    """The model file for a Graph in one 64-byte-aligned uint8 array: each constant's bytes
    are copied once, straight into place (the C++ runtime can run from this buffer)."""
    from ..ops.registry import REGISTRY

    ids: dict = {}
    values = []
    for node in graph.nodes:
        for v in node.outputs:
            ids[id(v)] = len(values)
            values.append(v)
    w = _Writer()
    w.u32(len(values))
    for v in values:
        w.str(v.name)
        w.u8(v.spec.dtype.code)
        w.u8(len(v.spec.shape))
        for d in v.spec.shape:
            w.program(_program(d))
    for group in (graph.inputs, graph.outputs):
        w.u32(len(group))
        for v in group:
            w.u32(ids[id(v)])
    consts = [n for n in graph.nodes if n.op == "const"]
    data, offset = [], 0
    w.u32(len(consts))
    for n in consts:
        v = n.outputs[0]
        arr = np.asarray(n.const, dtype=v.spec.dtype.np.newbyteorder("<"), order="C")
        if tuple(arr.shape) != tuple(int(d) for d in v.spec.shape):
            raise ValueError(f"constant %{v.name}: payload shape {arr.shape} != spec {v.spec}")
        w.u32(ids[id(v)])
        w.u64(offset)
        w.u64(arr.nbytes)
        data.append((offset, arr))
        offset += arr.nbytes + (-arr.nbytes % ALIGN)
    calls = [n for n in graph.nodes if n.op == "call"]
    w.u32(len(calls))
    for n in calls:
        opdef = REGISTRY.get(n.target)
        if opdef is None:
            raise ValueError(f"node {n.target!r}: not a registered op")
        if opdef.kernel is None:
            raise ValueError(f"op {n.target!r} has no kernel (a composite): the graph should hold "
                             "its primitives")
        w.str(n.target)
        w.str(opdef.kernel)
        w.str(n.source or "")
        w.u8(_dispatch_dtype(n, opdef).code)
        w.u32(len(n.inputs))
        for v in n.inputs:
            w.i32(-1 if v is None else ids[id(v)])
        w.u32(len(n.outputs))
        for v in n.outputs:
            w.u32(ids[id(v)])
        w.u32(len(n.attrs))
        for a in n.attrs:
            _attr(w, a, f"node {n.target}")
    graph_bytes = w.bytes()
    data_offset = HEADER_SIZE + len(graph_bytes)
    data_offset += -data_offset % ALIGN
    file_size = data_offset + offset
    header = MAGIC + struct.pack("<IB3xQQQQQ", FORMAT_VERSION, 1, file_size, HEADER_SIZE,
                                 len(graph_bytes), data_offset, offset)
    header += struct.pack("<I4x", zlib.crc32(graph_bytes, zlib.crc32(header)))
    assert len(header) == HEADER_SIZE
    out = _aligned_bytes(file_size)
    out[:HEADER_SIZE] = np.frombuffer(header, np.uint8)
    out[HEADER_SIZE:HEADER_SIZE + len(graph_bytes)] = np.frombuffer(graph_bytes, np.uint8)
    for off, arr in data:
        if arr.nbytes:
            start = data_offset + off
            out[start:start + arr.nbytes] = arr.reshape(-1).view(np.uint8)
    return out


def _as_array(x) -> np.ndarray:
    """The numpy array of a Tensor or array-like (the runtime copies non-contiguous ones)."""
    arr = getattr(x, "_data", None)
    return arr if isinstance(arr, np.ndarray) else np.asarray(x)


_WRAP = None


def _tensor_wrap():
    """Tensor._wrap (imported on first use: framework.tensor imports this package)."""
    global _WRAP
    if _WRAP is None:
        from ..tensor import Tensor

        _WRAP = Tensor._wrap
    return _WRAP


class CompiledGraph:
    """A graph loaded into the C++ runtime. Thread-safe: run() may be called concurrently."""

    def __init__(self, model, graph=None):
        self._model = model
        self.graph = graph
        self._int_attrs = None  # node_int_attrs, read once (the loaded nodes never change)

    @property
    def num_inputs(self) -> int:
        return self._model.num_inputs

    @property
    def num_outputs(self) -> int:
        return self._model.num_outputs

    def input_specs(self) -> list:
        """[(name, shape with -1 for input-dependent dims, dtype)] of the inputs."""
        out = []
        for i in range(self._model.num_inputs):
            d = self._model.input_info(i)
            out.append((d["name"], d["shape"], D.BY_CODE[d["dtype"]]))
        return out

    def run(self, inputs: Sequence) -> list:
        """Runs the graph on Tensors or numpy arrays; returns a list of Tensors."""
        arrays = [_as_array(x) for x in inputs]
        wrap = _tensor_wrap()
        if not _profiler._ACTIVE:
            return [wrap(a) for a in self._model(arrays)]
        start = time.perf_counter()
        outs, timings = self._model.run(arrays, True)
        for prof in _profiler.active():
            prof.add_graph_call(self, [a.shape for a in arrays], timings, start)
        return [wrap(a) for a in outs]

    def run_arrays(self, arrays: list) -> list:
        """Runs the graph on numpy arrays; returns numpy arrays (the lean per-call path:
        callers check inputs themselves; the profiler, when active, still sees the call)."""
        if not _profiler._ACTIVE:
            return self._model(arrays)
        start = time.perf_counter()
        outs, timings = self._model.run(arrays, True)
        for prof in _profiler.active():
            prof.add_graph_call(self, [a.shape for a in arrays], timings, start)
        return outs

    def array_runner(self):
        """The runtime's own call: a list of numpy arrays in (copied when not C-contiguous), a
        list of numpy arrays out; no checks in Python, and the profiler does not see it
        (callers that keep it check the inputs and `framework.profiler` themselves)."""
        return self._model

    def run_profiled(self, inputs: Sequence) -> tuple:
        """(outputs, [(node index, start s, duration s)]) for one run."""
        wrap = _tensor_wrap()
        outs, timings = self._model.run([_as_array(x) for x in inputs], True)
        return [wrap(a) for a in outs], timings

    def __call__(self, *inputs):
        outs = self.run(inputs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def output_shapes(self, input_shapes: Sequence[Sequence[int]]) -> list:
        """The output shapes for the given input shapes."""
        return [tuple(s) for s in self._model.output_shapes([list(s) for s in input_shapes])]

    def memory_plan(self, input_shapes: Sequence[Sequence[int]]) -> str:
        """The printable memory plan for these input shapes (per value and the peak bytes)."""
        return self._model.memory_plan([list(s) for s in input_shapes])

    def plan_entries(self, input_shapes: Sequence[Sequence[int]]) -> tuple:
        """([{name, placement, offset, nbytes, first_node, last_node, shape, alias_of}], peak bytes);
        an "alias" lives at byte `offset` in the buffer of value index `alias_of`."""
        return self._model.plan_entries([list(s) for s in input_shapes])

    def nodes(self) -> list:
        """[(op, kernel, source, input value ids, output value ids)] in run order."""
        return self._model.nodes()

    def node_int_attrs(self, index: int) -> list:
        """Node `index`'s static attributes as int lists: an Int as [v], Ints as they are, any
        other kind [] (the runtime's appended layout attribute included)."""
        if self._int_attrs is None:
            self._int_attrs = self._model.node_int_attrs()
        return self._int_attrs[index]

    def value_names(self) -> list:
        return self._model.value_names()

    @property
    def cached_plans(self) -> int:
        return self._model.cached_plans

    def to_bytes(self) -> bytes:
        """The model file's bytes."""
        return self._model.to_bytes()

    def save(self, path) -> None:
        """Writes the model file."""
        _write(path, self._model.to_bytes())


def compile(graph, *, max_memory: Optional[int] = None, plan_cache: Optional[int] = None,
            prepack: bool = True, blocked_layout: bool = True, alias_views: bool = True) -> CompiledGraph:
    """Loads a Graph into the C++ runtime (kernels resolved, everything validated; weights
    pre-packed at load unless prepack=False; with prepack, activations between convolutions
    kept channel-blocked on AVX-512 CPUs unless blocked_layout=False; reshape/clone/contiguous
    select outputs share their input's buffer unless alias_views=False, docs/runtime.md)."""
    model = _C.RuntimeModel.from_array(_serialize_array(graph), max_memory or 0, plan_cache or 0, prepack,
                                       blocked_layout, alias_views)
    return CompiledGraph(model, graph)


def _write(path, data: bytes) -> None:
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save(graph, path) -> None:
    """Writes a Graph (or a CompiledGraph) as a model file."""
    if isinstance(graph, CompiledGraph):
        graph.save(path)
    else:
        _write(path, _serialize_array(graph))


def load(path, *, max_memory: Optional[int] = None, plan_cache: Optional[int] = None,
         prepack: bool = True, blocked_layout: bool = True, alias_views: bool = True) -> CompiledGraph:
    """Loads a model file (memory-mapped) into the C++ runtime (options as for compile)."""
    model = _C.RuntimeModel.load(os.fspath(path), max_memory or 0, plan_cache or 0, prepack, blocked_layout,
                                 alias_views)
    return CompiledGraph(model)


__all__ = ["CompiledGraph", "compile", "save", "load", "serialize", "FORMAT_VERSION"]
