"""fwrun, the Python-free runner: same outputs as the Python runtime, clean errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from framework.jit import runtime as rt
from tests.runtime.models import mlp_graph

FWRUN = Path(__file__).resolve().parents[2] / "framework" / "bin" / "fwrun"

pytestmark = pytest.mark.skipif(not FWRUN.exists(), reason="fwrun not built (python setup.py build_ext)")


def _fwrun(*args):
    return subprocess.run([str(FWRUN), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("batch", [1, 6])
def test_fwrun_output_equals_python_output(tmp_path, batch):
    compiled = rt.compile(mlp_graph())
    compiled.save(tmp_path / "m.fwm")
    x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = _fwrun(tmp_path / "m.fwm", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "y.npy")
    want = compiled.run([x])[0].numpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_fwrun_bench_prints_load_first_run_and_latency(tmp_path):
    rt.save(mlp_graph(), tmp_path / "m.fwm")
    proc = _fwrun(tmp_path / "m.fwm", "--bench", 20, "--shape", "4,16")
    assert proc.returncode == 0, proc.stderr
    for key in ("load", "first run", "median", "p90"):
        assert key in proc.stdout


def test_fwrun_reports_bad_files_and_inputs(tmp_path):
    (tmp_path / "bad.fwm").write_bytes(b"not a model" * 10)
    proc = _fwrun(tmp_path / "bad.fwm", "--info")
    assert proc.returncode == 1 and "bad magic" in proc.stderr
    rt.save(mlp_graph(), tmp_path / "m.fwm")
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    proc = _fwrun(tmp_path / "m.fwm", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 1 and "dim 1 must be 16" in proc.stderr
    assert _fwrun().returncode == 2
