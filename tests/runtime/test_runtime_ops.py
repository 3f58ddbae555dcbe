"""Graph runtime == eager for every registered op: each OpDef sample is recorded into a graph
(tests/runtime/graphs.py), compiled into the C++ runtime and run on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

from framework.jit import runtime as rt
from framework.ops.registry import REGISTRY
from tests.runtime.graphs import record

CASES = []
for _op in sorted(REGISTRY.values(), key=lambda o: o.name):
    if _op.samples is None or "inplace" in _op.tags:
        continue  # in-place optimizer updates write into their inputs: not graph ops (yet)
    for _dt in _op.dtypes:
        for _i, _s in enumerate(_op.samples(_dt)):
            CASES.append(pytest.param(_op, _s, id=f"{_op.name}-{_dt.name}-{_i}"))


def _assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != eager {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != eager {want.dtype}"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.parametrize("op,sample", CASES)
def test_runtime_matches_eager(op, sample):
    graph, expected, inputs = record(op.fn, sample.args, sample.kwargs)
    compiled = rt.compile(graph)
    outs = compiled.run(inputs)
    assert len(outs) == len(expected)
    for k, (got, want) in enumerate(zip(outs, expected)):
        _assert_same(got.numpy(), want, f"{op.name} output {k}")


@pytest.mark.parametrize("op,sample", CASES[::7])
def test_runtime_matches_eager_after_file_round_trip(op, sample, tmp_path):
    graph, expected, inputs = record(op.fn, sample.args, sample.kwargs)
    rt.save(graph, tmp_path / "m.fwm")
    outs = rt.load(tmp_path / "m.fwm").run(inputs)
    for k, (got, want) in enumerate(zip(outs, expected)):
        _assert_same(got.numpy(), want, f"{op.name} output {k}")
