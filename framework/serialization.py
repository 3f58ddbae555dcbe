"""Checkpoints: framework.save / framework.load in a documented, code-free format
(docs/checkpoint-format.md): an 16-byte preamble, a JSON header describing the object
tree, and 64-byte-aligned raw little-endian tensor bytes. Loading never unpickles or
evaluates anything; every malformed file raises CheckpointError naming the problem.
Also: converting torch state dicts (from_torch_state_dict) and importing torch checkpoint
files (load_torch_checkpoint, which needs torch and uses torch.load(weights_only=True))."""

from __future__ import annotations

import json
import math
import os
import struct
from collections import OrderedDict

import numpy as np

from . import dtypes as D
from .tensor import Tensor

MAGIC = b"FWCKPT\x00\x01"  # name + format version 1
ALIGN = 64
MAX_HEADER = 1 << 30
MAX_DEPTH = 200
_DTYPES = {d.name: d for d in D.ALL}

__all__ = ["CheckpointError", "from_torch_state_dict", "load", "load_torch_checkpoint", "save"]


class CheckpointError(RuntimeError):
    """A checkpoint file is malformed, truncated, hostile or not a framework checkpoint."""


# ---- save ----------------------------------------------------------------------------------
class _Writer:
    def __init__(self):
        self.blobs: list[bytes] = []
        self.size = 0
        self.memo: dict[int, dict] = {}

    def add_tensor(self, t: Tensor) -> dict:
        if id(t) in self.memo:
            return self.memo[id(t)]
        arr = t.detach()._data
        arr = arr if arr.flags.c_contiguous else arr.copy(order="C")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        pad = (-self.size) % ALIGN
        if pad:
            self.blobs.append(b"\x00" * pad)
            self.size += pad
        from .nn.parameter import Parameter

        rec = {
            "$tensor": {
                "dtype": t.dtype.name,
                "shape": list(arr.shape),
                "offset": self.size,
                "nbytes": len(data),
                "requires_grad": bool(t.requires_grad),
                "parameter": isinstance(t, Parameter),
            }
        }
        self.blobs.append(data)
        self.size += len(data)
        self.memo[id(t)] = rec
        return rec

    def encode(self, obj, path: str, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ValueError(
                f"framework.save: object nested deeper than {MAX_DEPTH} levels at {path}"
            )
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return {"$int": str(obj)}
        if isinstance(obj, float):
            return {"$float": obj.hex()}
        if isinstance(obj, Tensor):
            return self.add_tensor(obj)
        if isinstance(obj, D.dtype):
            return {"$dtype": obj.name}
        if isinstance(obj, (list, tuple)):
            items = [self.encode(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(obj)]
            return {"$tuple": items} if isinstance(obj, tuple) else items
        if isinstance(obj, dict):
            items = [
                [
                    self.encode(k, f"{path} key", depth + 1),
                    self.encode(v, f"{path}[{k!r}]", depth + 1),
                ]
                for k, v in obj.items()
            ]
            return {"$odict" if isinstance(obj, OrderedDict) else "$dict": items}
        if isinstance(obj, np.ndarray):
            from .creation import from_numpy

            return self.add_tensor(from_numpy(np.ascontiguousarray(obj)))
        raise TypeError(
            f"framework.save: cannot save an object of type {type(obj).__name__} at {path} "
            "(supported: tensors, dicts, lists, tuples, numbers, strings, None, dtypes)"
        )


def save(obj, f) -> None:
    """Writes obj (tensors, state dicts, optimizer state, nested dicts/lists/tuples of numbers,
    strings and None) to a path or binary file object."""
    w = _Writer()
    tree = w.encode(obj, "obj")
    header = json.dumps(
        {"format": "framework-checkpoint", "version": 1, "root": tree},
        separators=(",", ":"),
        allow_nan=False,
    ).encode("utf-8")
    head = MAGIC + struct.pack("<Q", len(header)) + header
    head += b"\x00" * ((-len(head)) % ALIGN)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _write(fh, head, w.blobs)
    else:
        _write(f, head, w.blobs)


def _write(fh, head, blobs):
    fh.write(head)
    for b in blobs:
        fh.write(b)


# ---- load ----------------------------------------------------------------------------------
def _sniff(buf: bytes, name: str) -> None:
    if buf[:8] == MAGIC:
        return
    if buf[:4] == b"PK\x03\x04":
        raise CheckpointError(
            f"{name} is a zip archive (the torch.save format), not a framework checkpoint; "
            "framework.load never unpickles. Import it with framework.load_torch_checkpoint(path) "
            "(needs torch; uses torch.load(weights_only=True))."
        )
    if buf[:1] == b"\x80":
        raise CheckpointError(
            f"{name} looks like a Python pickle (first byte {buf[:1]!r}), not a framework checkpoint; "
            "framework.load refuses pickles because loading one can execute arbitrary code. "
            "Convert torch files with framework.load_torch_checkpoint(path)."
        )
    if buf[:6] == MAGIC[:6]:
        raise CheckpointError(f"{name}: unsupported framework checkpoint version {buf[6:8]!r}")
    raise CheckpointError(f"{name} is not a framework checkpoint (bad magic bytes {buf[:8]!r})")


class _Reader:
    def __init__(self, data: memoryview, name: str):
        self.data = data
        self.name = name
        self.memo: dict = {}

    def fail(self, msg: str):
        raise CheckpointError(f"{self.name}: {msg}")

    def tensor(self, spec) -> Tensor:
        from .creation import from_numpy

        if not isinstance(spec, dict):
            self.fail("tensor record is not an object")
        dt = _DTYPES.get(spec.get("dtype")) if isinstance(spec.get("dtype"), str) else None
        if dt is None:
            self.fail(f"unknown tensor dtype {spec.get('dtype')!r}")
        shape, off, nbytes = spec.get("shape"), spec.get("offset"), spec.get("nbytes")
        if (
            not isinstance(shape, list)
            or len(shape) > 8
            or not all(type(s) is int and s >= 0 for s in shape)
        ):
            self.fail(f"bad tensor shape {shape!r}")
        for v, what in ((off, "offset"), (nbytes, "nbytes")):
            if type(v) is not int or v < 0:
                self.fail(f"bad tensor {what} {v!r}")
        need = math.prod(shape) * dt.itemsize
        if need != nbytes:
            self.fail(
                f"tensor of shape {shape} and dtype {dt.name} needs {need} bytes, header says {nbytes}"
            )
        if off + nbytes > len(self.data):
            self.fail(
                f"tensor data [{off}, {off + nbytes}) lies outside the data section "
                f"({len(self.data)} bytes): file truncated or corrupt"
            )
        if dt is D.bool_:  # a bool byte other than 0 or 1 would be undefined in the C++ kernels
            raw = np.frombuffer(self.data[off : off + nbytes], dtype=np.uint8)
            if raw.size and int(raw.max()) > 1:
                bad = int(np.argmax(raw > 1))
                self.fail(f"bool tensor data holds byte {int(raw[bad])} at data offset {off + bad} "
                          "(a bool must be 0 or 1)")
        arr = np.frombuffer(self.data[off : off + nbytes], dtype=dt.np.newbyteorder("<")).astype(
            dt.np
        )
        arr = np.array(arr.reshape(shape), copy=True)
        t = from_numpy(arr) if arr.ndim else Tensor._wrap(arr)
        if spec.get("parameter") is True:
            from .nn.parameter import Parameter

            t = Parameter(
                t, requires_grad=bool(spec.get("requires_grad", True)) and dt.is_floating_point
            )
        elif spec.get("requires_grad") is True and dt.is_floating_point:
            t.requires_grad_(True)
        return t

    def decode(self, node, depth: int = 0):
        if depth > MAX_DEPTH:
            self.fail(f"object nested deeper than {MAX_DEPTH} levels")
        if node is None or isinstance(node, (bool, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        if not isinstance(node, dict) or len(node) != 1:
            self.fail(f"unexpected JSON value {str(node)[:80]!r}")
        ((tag, val),) = node.items()
        if tag == "$int":
            if not isinstance(val, str) or len(val) > 4300:
                self.fail("bad $int")
            try:
                return int(val)
            except ValueError:
                self.fail(f"bad $int {val[:40]!r}")
        if tag == "$float":
            try:
                return float.fromhex(val)
            except (TypeError, ValueError, OverflowError):
                self.fail(f"bad $float {str(val)[:40]!r}")
        if tag == "$tensor":
            mkey = json.dumps(val, sort_keys=True) if isinstance(val, dict) else None
            if mkey is not None and mkey in self.memo:
                return self.memo[mkey]
            t = self.tensor(val)
            if mkey is not None:
                self.memo[mkey] = t
            return t
        if tag == "$dtype":
            if val not in _DTYPES:
                self.fail(f"unknown dtype {val!r}")
            return _DTYPES[val]
        if tag == "$tuple":
            if not isinstance(val, list):
                self.fail("bad $tuple")
            return tuple(self.decode(v, depth + 1) for v in val)
        if tag in ("$dict", "$odict"):
            if not isinstance(val, list):
                self.fail(f"bad {tag}")
            out = OrderedDict() if tag == "$odict" else {}
            for item in val:
                if not isinstance(item, list) or len(item) != 2:
                    self.fail(f"bad {tag} entry")
                k = self.decode(item[0], depth + 1)
                try:
                    hash(k)
                except TypeError:
                    self.fail(f"unhashable dict key of type {type(k).__name__}")
                out[k] = self.decode(item[1], depth + 1)
            return out
        self.fail(f"unknown tag {tag[:40]!r}")


def load(f, map_location=None, weights_only: bool = True, mmap=None, **kwargs):
    """Reads an object written by framework.save (path or binary file object). Raises
    CheckpointError for anything that is not a well-formed framework checkpoint."""
    if (
        map_location not in (None, "cpu")
        and not callable(map_location)
        and not isinstance(map_location, dict)
    ):
        raise RuntimeError(
            f"framework.load: map_location={map_location!r} is not available (CPU only)"
        )
    if isinstance(f, (str, os.PathLike)):
        name = os.fspath(f)
        with open(f, "rb") as fh:
            buf = fh.read()
    else:
        name = getattr(f, "name", "<file object>")
        buf = f.read()
    if not isinstance(buf, (bytes, bytearray)):
        raise TypeError("framework.load: the file object must be opened in binary mode")
    return _loads(bytes(buf), str(name))


def _loads(buf: bytes, name: str):
    if len(buf) < 16:
        if buf[:1] == b"\x80" or buf[:4] == b"PK\x03\x04":
            _sniff(buf, name)
        raise CheckpointError(
            f"{name}: file too short ({len(buf)} bytes) to be a framework checkpoint"
        )
    _sniff(buf, name)
    (hlen,) = struct.unpack("<Q", buf[8:16])
    if hlen > MAX_HEADER or 16 + hlen > len(buf):
        raise CheckpointError(
            f"{name}: header length {hlen} exceeds the file size ({len(buf)} bytes): "
            "file truncated or corrupt"
        )
    try:
        header = json.loads(
            buf[16 : 16 + hlen].decode("utf-8"),
            parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)),
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(
            f"{name}: header is not valid UTF-8 JSON ({type(e).__name__}: {str(e)[:100]})"
        ) from None
    if (
        not isinstance(header, dict)
        or header.get("format") != "framework-checkpoint"
        or "root" not in header
    ):
        raise CheckpointError(f"{name}: header lacks the framework-checkpoint format marker")
    if header.get("version") != 1:
        raise CheckpointError(f"{name}: unsupported checkpoint version {header.get('version')!r}")
    start = 16 + hlen
    start += (-start) % ALIGN
    data = memoryview(buf)[start:] if start <= len(buf) else memoryview(b"")
    try:
        return _Reader(data, name).decode(header["root"])
    except RecursionError:
        raise CheckpointError(f"{name}: object nested too deeply") from None


# ---- torch interop -----------------------------------------------------------------------
def _convert_torch_value(v):
    mod = type(v).__module__
    if isinstance(v, np.ndarray):
        return _from_array(v)
    if mod.startswith("torch") and hasattr(v, "detach") and hasattr(v, "numpy"):
        t = v.detach().cpu()
        if t.dtype.is_floating_point and str(t.dtype) not in ("torch.float32", "torch.float64"):
            t = t.float()  # float16 / bfloat16 widen to float32
        elif str(t.dtype) in ("torch.uint8", "torch.int8", "torch.int16"):
            t = t.long()
        return _from_array(t.numpy())
    if isinstance(v, dict):
        out = OrderedDict() if isinstance(v, OrderedDict) else {}
        for k, x in v.items():
            out[k] = _convert_torch_value(x)
        return out
    if isinstance(v, (list, tuple)):
        return type(v)(_convert_torch_value(x) for x in v)
    return v


def _from_array(a: np.ndarray) -> Tensor:
    from .creation import from_numpy

    a = np.array(a, copy=True)
    if a.dtype.kind == "f" and a.dtype.itemsize not in (4, 8):
        a = a.astype(np.float32)
    elif a.dtype.kind in "iu" and a.dtype not in (np.int32, np.int64):
        a = a.astype(np.int64)
    return from_numpy(a) if a.ndim else Tensor._wrap(a)


def from_torch_state_dict(state_dict):
    """Converts a torch state_dict (or any nested dict/list of torch tensors or numpy arrays)
    into the same structure of framework tensors (copies). float16/bfloat16 become float32."""
    return _convert_torch_value(state_dict)


def load_torch_checkpoint(path, **kwargs):
    """Reads a torch.save file with torch.load(weights_only=True) (no arbitrary code) and
    converts its tensors into framework tensors. Requires torch."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "load_torch_checkpoint needs torch installed; or export the state_dict to "
            "numpy arrays and use framework.utils.from_torch_state_dict"
        ) from None
    obj = torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    return from_torch_state_dict(obj)
