"""Helpers for the ONNX tests: run a model file in onnxruntime (the oracle), validate it with
the onnx checker and shape inference, compare outputs with per-dtype tolerances."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

# float64 tolerance allows for float attributes, which ONNX stores as float32
TOL = {np.dtype(np.float32): (1e-4, 1e-4), np.dtype(np.float64): (1e-6, 1e-9)}


def check_model(path) -> onnx.ModelProto:
    """Loads a file and runs the full checker and strict shape inference on it."""
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model


def run_ort(path, inputs: dict) -> list:
    """Outputs of the model file in onnxruntime's CPU provider."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def assert_close(got, expected, what="", tol=None):
    """Shape, then dtype, then values (NaN positions must agree)."""
    got = np.asarray(got.numpy() if hasattr(got, "numpy") else got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    if got.dtype.kind in "fc":
        rtol, atol = tol or TOL.get(got.dtype, (1e-4, 1e-4))
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=what)
