"""ONNX import: an ONNX file (untrusted input) -> a framework Graph (framework/jit/ir.py).

The importer walks the ONNX nodes in order and keeps, for every ONNX value name, either a
graph `Value` (a tensor computed when the graph runs) or a *known* numpy array: an
initializer, a Constant, or the result of a shape computation. Known arrays may hold
`SymInt`s (object dtype): `Shape` of a tensor with a dynamic batch gives `[N, 3, 8, 8]`, and
Gather/Slice/Concat/arithmetic on such arrays are folded here, so the shape subgraphs that
exporters emit (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) become symbolic attributes
of one framework op instead of tensors computed at run time. Known arrays become "const"
nodes only where an op consumes them as data.

The per-op rules live in import_rules.py (one function per ONNX op type). Everything a file
can get wrong (protobuf, opset, dangling names, shapes, external data paths) raises
OnnxError with the node and the reason; nothing here crashes on bad input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..jit.ir import Graph, Value
from ..jit.symbolic import SymInt
from ._proto import MAX_OPSET, MIN_OPSET, OnnxError, fw_dtype, onnx

MAX_FOLD_ELEMENTS = 1 << 16  # known arrays larger than this are computed at run time


@dataclass
class Rule:
    """How one ONNX op type is imported (see import_rules.py)."""

    fn: Callable  # (imp, node, inputs, attrs) -> list of outputs (Value | ndarray | None)
    attrs: frozenset  # attribute names the rule understands
    needs: tuple = ()  # framework ops the rule emits (refused if not registered)
    fold: Optional[Callable] = None  # (imp, inputs, attrs) -> list of ndarray, all inputs known
    opsets: tuple = (1, 10 ** 6)  # the default-domain opsets whose semantics the rule follows


RULES: dict[str, Rule] = {}


def rule(op_type: str, attrs=(), needs=(), fold=None, opsets=(1, 10 ** 6)):
    """Decorator: registers the import rule of an ONNX op type."""

    def wrap(fn):
        RULES[op_type] = Rule(fn, frozenset(attrs), tuple(needs), fold, opsets)
        return fn

    return wrap


# ---------------------------------------------------------------------------------------
# reading the file


def read_model(path_or_bytes):
    """Parses an ONNX file (path or bytes) into a ModelProto with external data resolved."""
    ox = onnx()
    base_dir = None
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        path = os.fspath(path_or_bytes)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise OnnxError(f"cannot read ONNX file {path!r}: {e.strerror}") from None
        base_dir = os.path.dirname(os.path.abspath(path))
    model = ox.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf DecodeError and friends
        raise OnnxError(f"not a valid ONNX model (protobuf parse failed: {e})") from None
    if not model.HasField("graph"):
        raise OnnxError("not a valid ONNX model: it has no graph")
    _resolve_external_data(model, base_dir)
    return model


def _resolve_external_data(model, base_dir) -> None:
    for t in model.graph.initializer:
        if t.data_location != 1:  # EXTERNAL
            continue
        info = {e.key: e.value for e in t.external_data}
        where = f"initializer {t.name!r}"
        if base_dir is None:
            raise OnnxError(f"{where} uses external data, which needs the model loaded from a path")
        loc = info.get("location", "")
        if not loc or os.path.isabs(loc):
            raise OnnxError(f"{where}: external data location {loc!r} must be a relative path")
        root = os.path.realpath(base_dir)
        full = os.path.realpath(os.path.join(root, loc))
        if os.path.commonpath([root, full]) != root:
            raise OnnxError(f"{where}: external data path {loc!r} is outside the model's folder")
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
            size = os.path.getsize(full)
        except (ValueError, OSError) as e:
            raise OnnxError(f"{where}: bad external data {loc!r}: {e}") from None
        if length is None:
            length = size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise OnnxError(f"{where}: external data range [{offset}, {offset + length}) is outside "
                            f"{loc!r} ({size} bytes)")
        with open(full, "rb") as f:
            f.seek(offset)
            t.raw_data = f.read(length)
        del t.external_data[:]
        t.data_location = 0


def tensor_to_array(t, where: str) -> np.ndarray:
    """A TensorProto as a numpy array, checking its size against its dims."""
    from onnx import numpy_helper

    fw_dtype(t.data_type, where)
    if any(d < 0 for d in t.dims):
        raise OnnxError(f"{where}: negative dim in {list(t.dims)}")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:
        raise OnnxError(f"{where}: tensor data does not match its dims {list(t.dims)} "
                        f"({type(e).__name__}: {e})") from None
    if tuple(arr.shape) != tuple(t.dims):
        raise OnnxError(f"{where}: tensor data has shape {list(arr.shape)}, dims say {list(t.dims)}")
    return np.require(arr, requirements="C")


def default_opset(model) -> int:
    """The default-domain opset of a model; OnnxError if missing or out of range."""
    versions = {o.domain: o.version for o in model.opset_import}
    v = versions.get("", versions.get("ai.onnx"))
    if v is None:
        raise OnnxError("the model imports no default-domain (ai.onnx) opset")
    if not MIN_OPSET <= v <= MAX_OPSET:
        raise OnnxError(f"opset {v} is not supported: framework imports ai.onnx opsets "
                        f"{MIN_OPSET}..{MAX_OPSET} (re-export the model with a supported opset_version)")
    return v


def attr_dict(node) -> dict:
    """A node's attributes as Python values (tensors as numpy arrays, strings as str)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        if a.type == 4:  # TENSOR
            out[a.name] = tensor_to_array(a.t, f"node {node.name!r} attribute {a.name}")
            continue
        if a.type in (5, 9, 10, 11, 12, 13, 14):  # graphs, tensor lists, sparse, type protos
            out[a.name] = None  # no supported rule reads these: refused where used
            continue
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def check_supported(model, opset: int) -> None:
    """Raises one OnnxError listing every node whose op or attributes are unsupported."""
    from ..ops.registry import REGISTRY
    from . import import_rules  # noqa: F401  (fills RULES)

    problems = []
    for i, node in enumerate(model.graph.node):
        name = node.name or f"#{i}"
        domain = node.domain or "ai.onnx"
        r = RULES.get(node.op_type) if domain == "ai.onnx" else None
        if r is None:
            problems.append(f"{domain}::{node.op_type} (node {name!r}, opset {opset}): unsupported op")
            continue
        bad = sorted(a.name for a in node.attribute if a.name not in r.attrs)
        if bad:
            problems.append(f"{node.op_type} (node {name!r}, opset {opset}): unsupported "
                            f"attribute(s) {bad}")
        # rules that can fold (shape arithmetic) check their ops when they emit them
        missing = [t for t in r.needs if t not in REGISTRY] if r.fold is None else []
        if missing:
            problems.append(f"{node.op_type} (node {name!r}, opset {opset}): needs framework "
                            f"op(s) {missing}, not available")
        if not r.opsets[0] <= opset <= r.opsets[1]:
            problems.append(f"{node.op_type} (node {name!r}): opset {opset} is not supported "
                            f"(rule covers {r.opsets[0]}..{r.opsets[1]})")
    if problems:
        raise OnnxError(f"the ONNX model uses {len(problems)} unsupported op(s)/attribute(s):\n  "
                        + "\n  ".join(problems))


# ---------------------------------------------------------------------------------------
# the import


def is_known(x) -> bool:
    return isinstance(x, np.ndarray)


def as_known(x) -> np.ndarray:
    """A fold result as an array (numpy returns bare elements for 0-d object results)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, SymInt):
        arr = np.empty((), dtype=object)
        arr[()] = x
        return arr
    return np.asarray(x)


def normalize_known(arr: np.ndarray) -> np.ndarray:
    """Object arrays holding only ints become int64; others are returned as they are."""
    if arr.dtype == object and not any(isinstance(v, SymInt) for v in arr.reshape(-1)):
        return np.asarray(arr.tolist(), dtype=np.int64).reshape(arr.shape)
    return arr


class Importer:
    """State of one import: the graph being built and the ONNX-name environment."""

    def __init__(self, model, opset: int):
        self.model = model
        self.opset = opset
        self.graph = Graph()
        self.env: dict = {}  # onnx name -> Value | np.ndarray (known)
        self._known_names: dict = {}  # id(known array) -> its ONNX name (const names)
        self._materialized: dict = {}  # id(array) -> const Value
        self.node = None  # the node being imported (for errors)

    # ---- values ------------------------------------------------------------------
    def value(self, x, hint: str = "const") -> Value:
        """x as a graph Value (a known array becomes a const node)."""
        if isinstance(x, Value):
            return x
        if not is_known(x):
            raise OnnxError(f"{self.where()}: expected a tensor, got {x!r}")
        key = id(x)
        if key in self._materialized:
            return self._materialized[key][0]
        hint = self._known_names.get(key, hint)
        arr = normalize_known(x)
        if arr.dtype == object:
            raise OnnxError(f"{self.where()}: a shape computed from dynamic dims "
                            f"{[str(v) for v in arr.reshape(-1)]} is used as tensor data; "
                            "framework keeps dynamic dims symbolic and cannot compute this")
        v = self.graph.add_const(arr, name=hint)
        self._materialized[key] = (v, x)  # keep x alive so its id stays unique
        return v

    def shape(self, x) -> tuple:
        return tuple(x.spec.shape) if isinstance(x, Value) else tuple(x.shape)

    def ints(self, x, what: str) -> list:
        """A known 0-d/1-d integer array as a list of ints and SymInts."""
        if x is None:
            raise OnnxError(f"{self.where()}: {what} is required")
        if not is_known(x):
            raise OnnxError(f"{self.where()}: {what} must be a constant or a shape computed from "
                            "input shapes; it is a tensor computed at run time")
        if x.dtype != object and not np.issubdtype(x.dtype, np.integer):
            raise OnnxError(f"{self.where()}: {what} must be integers, got {x.dtype}")
        return [v if isinstance(v, SymInt) else int(v) for v in x.reshape(-1).tolist()]

    def call(self, target: str, inputs: list, attrs: tuple = ()):
        """Emits a call node; returns its Value (or list of Values for several outputs)."""
        from ..ops.registry import REGISTRY

        if target not in REGISTRY:
            raise OnnxError(f"{self.where()}: needs framework op {target!r}, which is not available")
        ins = [None if x is None else self.value(x) for x in inputs]
        names = [o for o in self.node.output] if self.node is not None else None
        node = self.graph.call(target, ins, attrs, names=names, source=self.where())
        return node.outputs[0] if len(node.outputs) == 1 else list(node.outputs)

    def where(self) -> str:
        n = self.node
        if n is None:
            return "ONNX graph"
        return f"node {n.name or '<unnamed>'!r} ({n.op_type}, opset {self.opset})"

    # ---- the walk ----------------------------------------------------------------
    def run(self) -> Graph:
        g = self.model.graph
        init_names = {t.name for t in g.initializer}
        for t in g.initializer:
            if not t.name:
                raise OnnxError("an initializer has no name")
            self._set(t.name, tensor_to_array(t, f"initializer {t.name!r}"))
        self._add_inputs([i for i in g.input if i.name not in init_names])
        for node in g.node:
            self.node = node
            self._import_node(node)
        self.node = None
        outs = []
        for o in g.output:
            if o.name not in self.env:
                raise OnnxError(f"graph output {o.name!r} is not produced by any node")
            x = self.env[o.name]
            if x is None:
                raise OnnxError(f"graph output {o.name!r} is an absent optional value")
            v = self.value(x, hint=o.name)
            self._check_declared(o, v)
            outs.append(v)
        if not outs:
            raise OnnxError("the ONNX graph has no outputs")
        self.graph.set_output(outs)
        return self.graph

    def _add_inputs(self, inputs) -> None:
        syms: dict = {}
        for i, vi in enumerate(inputs):
            where = f"graph input {vi.name!r}"
            if not vi.type.HasField("tensor_type"):
                raise OnnxError(f"{where}: only tensor inputs are supported")
            tt = vi.type.tensor_type
            dt = fw_dtype(tt.elem_type, where)
            if not tt.HasField("shape"):
                raise OnnxError(f"{where}: has no shape (framework needs each input's rank)")
            shape = []
            for axis, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value"):
                    if d.dim_value < 0:
                        raise OnnxError(f"{where}: negative dim {d.dim_value}")
                    shape.append(int(d.dim_value))
                elif d.HasField("dim_param") and d.dim_param in syms:
                    shape.append(syms[d.dim_param])
                else:
                    s = SymInt.input_dim(i, axis)
                    if d.HasField("dim_param"):
                        syms[d.dim_param] = s
                    shape.append(s)
            from ..jit.ir import TensorSpec

            self.env[vi.name] = self.graph.add_input(vi.name, TensorSpec(tuple(shape), dt))

    def _check_declared(self, vi, v: Value) -> None:
        if not vi.type.HasField("tensor_type"):
            return
        tt = vi.type.tensor_type
        if tt.elem_type:
            dt = fw_dtype(tt.elem_type, f"graph output {vi.name!r}")
            if dt is not v.spec.dtype:
                raise OnnxError(f"graph output {vi.name!r} is declared {dt.name} but computes "
                                f"{v.spec.dtype.name}")
        if tt.HasField("shape"):
            dims = tt.shape.dim
            ours = v.spec.shape
            if len(dims) != len(ours):
                raise OnnxError(f"graph output {vi.name!r} is declared with rank {len(dims)} but "
                                f"computes shape {list(map(str, ours))}")
            for d, o in zip(dims, ours):
                if d.HasField("dim_value") and isinstance(o, int) and d.dim_value != o:
                    raise OnnxError(f"graph output {vi.name!r} is declared with shape "
                                    f"{[x.dim_value or x.dim_param for x in dims]} but computes "
                                    f"{list(map(str, ours))}")

    def _import_node(self, node) -> None:
        ins = []
        for name in node.input:
            if name == "":
                ins.append(None)
            elif name not in self.env:
                raise OnnxError(f"{self.where()}: input {name!r} is not defined by an earlier "
                                "node, an initializer or a graph input")
            else:
                ins.append(self.env[name])
        r = RULES[node.op_type]
        at = attr_dict(node)
        try:
            outs = None
            if r.fold is not None and all(x is None or is_known(x) for x in ins):
                outs = r.fold(self, ins, at)
                outs = None if outs is None else [None if o is None else as_known(o) for o in outs]
                if outs is not None and any(o is not None and o.size > MAX_FOLD_ELEMENTS for o in outs):
                    outs = None
            if outs is None:
                outs = r.fn(self, node, ins, at)
        except OnnxError:
            raise
        except Exception as e:
            raise OnnxError(f"{self.where()}: {type(e).__name__}: {e}") from None
        if len(outs) < len([o for o in node.output if o]):
            used = [o for o in node.output[len(outs):] if o]
            raise OnnxError(f"{self.where()}: optional output(s) {used} are not supported")
        for name, x in zip(node.output, outs):
            if not name:
                continue
            if name in self.env:
                raise OnnxError(f"{self.where()}: value {name!r} is defined twice")
            self._set(name, normalize_known(x) if is_known(x) else x)

    def _set(self, name: str, x) -> None:
        self.env[name] = x
        if is_known(x):
            self._known_names.setdefault(id(x), name)


def to_graph(path_or_bytes) -> Graph:
    """Imports an ONNX model (a path or the file's bytes) as a framework Graph."""
    model = read_model(path_or_bytes)
    opset = default_opset(model)
    check_supported(model, opset)
    graph = Importer(model, opset).run()
    try:
        graph.lint()
    except ValueError as e:
        raise OnnxError(f"the imported graph is inconsistent: {e}") from None
    return graph
