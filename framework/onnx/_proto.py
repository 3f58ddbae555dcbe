"""Small helpers shared by the ONNX exporter and importer: dtype tables, the lazy `onnx`
import, and the error type. `onnx` is a test/interchange dependency only, so nothing here
imports it at module import time.
"""

from __future__ import annotations

from .. import dtypes as D

# ONNX TensorProto element types <-> framework dtypes (the ones framework supports).
FLOAT, INT32, INT64, BOOL, DOUBLE = 1, 6, 7, 9, 11
TO_FW = {FLOAT: D.float32, DOUBLE: D.float64, INT32: D.int32, INT64: D.int64, BOOL: D.bool_}
FROM_FW = {v.name: k for k, v in TO_FW.items()}
ELEM_NAMES = {0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16",
              6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE",
              12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"}

# The default-domain opsets the importer accepts (what torch.onnx.export emits, 13..18,
# plus newer ones whose changes to the supported ops are handled).
MIN_OPSET, MAX_OPSET = 13, 21


class OnnxError(ValueError):
    """An ONNX model that cannot be imported or a graph that cannot be exported."""


def onnx():
    """The `onnx` package, imported on first use with a clear error if it is missing."""
    try:
        import onnx as _onnx
    except ImportError as e:  # pragma: no cover - onnx is installed in the test venv
        raise ImportError("framework.onnx needs the `onnx` package (pip install onnx)") from e
    return _onnx


def fw_dtype(elem_type: int, where: str) -> D.dtype:
    """The framework dtype of an ONNX element type, or an OnnxError naming `where`."""
    dt = TO_FW.get(elem_type)
    if dt is None:
        raise OnnxError(f"{where}: element type {ELEM_NAMES.get(elem_type, elem_type)} is not "
                        f"supported (supported: FLOAT, DOUBLE, INT32, INT64, BOOL)")
    return dt


def onnx_dtype(dt: D.dtype) -> int:
    """The ONNX element type of a framework dtype."""
    return FROM_FW[dt.name]
