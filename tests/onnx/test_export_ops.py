"""Every registered op with an ONNX mapping, exported on each of its OpDef samples and run in
onnxruntime: the ONNX output must match the framework kernel's output (shape, dtype, values).
A new op with a mapping is covered with no new test code."""

from __future__ import annotations

import numpy as np
import pytest

import framework as fw
from framework.jit.ir import Graph, TensorSpec
from framework.onnx import OnnxError, mappings
from framework.onnx.exporter import graph_to_model
from framework.ops.registry import DISPATCH_HOOKS, REGISTRY
from tests.onnx.helpers import assert_close, check_model, run_ort
from tests.oracle import to_fw

mappings.attach()

CASES = []
for _op in sorted(REGISTRY.values(), key=lambda o: o.name):
    if _op.onnx is None or _op.samples is None:
        continue
    for _dt in _op.dtypes:
        for _i, _s in enumerate(_op.samples(_dt)):
            CASES.append(pytest.param(_op, _s, id=f"{_op.name}-{_dt.name}-{_i}{'-' + _s.note if _s.note else ''}"))


def _capture(op, sample):
    """The (inputs, attrs, outputs) of the last dispatch of `op` while running its sample."""
    calls = []

    def hook(o, inputs, attrs, outputs):
        if o is op:
            calls.append((list(inputs), tuple(attrs), list(outputs)))

    DISPATCH_HOOKS.append(hook)
    try:
        with fw.no_grad():
            op.fn(*[to_fw(a) for a in sample.args], **sample.kwargs)
    finally:
        DISPATCH_HOOKS.remove(hook)
    if not calls:
        pytest.skip(f"sample does not dispatch {op.name} (handled before the kernel)")
    return calls[-1]


@pytest.mark.parametrize("op,sample", CASES)
def test_op_exports_and_matches_onnxruntime(op, sample, tmp_path):
    inputs, attrs, outputs = _capture(op, sample)
    g = Graph()
    feeds, vals = {}, []
    for i, x in enumerate(inputs):
        if x is None:
            vals.append(None)
            continue
        v = g.add_input(f"in{i}", TensorSpec(tuple(x.shape), x.dtype))
        feeds[v.name] = np.array(x.numpy(), order="C")
        vals.append(v)
    node = g.call(op.name, vals, attrs)
    g.set_output(node.outputs)
    try:
        model = graph_to_model(g)
    except OnnxError as e:
        if "has no ONNX mapping" not in str(e):
            raise
        pytest.skip(f"configuration not exportable by design: {str(e)[-100:]}")
    path = tmp_path / "op.onnx"
    path.write_bytes(model.SerializeToString())
    check_model(path)
    try:
        got = run_ort(path, feeds)
    except Exception as e:  # the model is valid (checked above); onnxruntime lacks the kernel
        if "NOT_IMPLEMENTED" in str(e):
            pytest.skip(f"onnxruntime has no kernel: {str(e).splitlines()[0][-90:]}")
        raise
    for k, (o, r) in enumerate(zip(outputs, got)):
        assert_close(r, o.numpy(), what=f"{op.name} output {k} ({sample.note})")
