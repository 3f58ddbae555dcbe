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


@pytest.mark.parametrize("batch,prepack", [(1, True), (6, True), (12, True), (1, False)])
def test_fwrun_output_equals_python_output(tmp_path, batch, prepack):
    compiled = rt.compile(mlp_graph(), prepack=prepack)
    compiled.save(tmp_path / "m.fwm")
    x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    flags = [] if prepack else ["--no-prepack"]
    proc = _fwrun(tmp_path / "m.fwm", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", *flags)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "y.npy")
    want = compiled.run([x])[0].numpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_fwrun_is_a_small_binary_that_links_no_python():
    """Issue 5: runner plus core library <= 5 MB, BLAS aside (fwrun links the core itself)."""
    assert FWRUN.stat().st_size <= 5 * 2**20, f"fwrun is {FWRUN.stat().st_size} bytes"
    libs = subprocess.run(["ldd", str(FWRUN)], capture_output=True, text=True).stdout
    assert "python" not in libs.lower(), libs


def test_fwrun_bench_prints_load_first_run_and_latency(tmp_path):
    rt.save(mlp_graph(), tmp_path / "m.fwm")
    proc = _fwrun(tmp_path / "m.fwm", "--bench", 20, "--shape", "4,16")
    assert proc.returncode == 0, proc.stderr
    for key in ("load", "first run", "median", "p90"):
        assert key in proc.stdout


def test_fwrun_profile_lists_the_nodes_of_the_first_run(tmp_path):
    rt.save(mlp_graph(), tmp_path / "m.fwm")
    proc = _fwrun(tmp_path / "m.fwm", "--bench", 3, "--shape", "2,16", "--profile")
    assert proc.returncode == 0, proc.stderr
    assert "first run: nodes" in proc.stdout and "linear" in proc.stdout


def test_fwrun_reports_bad_files_and_inputs(tmp_path):
    (tmp_path / "bad.fwm").write_bytes(b"not a model" * 10)
    proc = _fwrun(tmp_path / "bad.fwm", "--info")
    assert proc.returncode == 1 and "bad magic" in proc.stderr
    rt.save(mlp_graph(), tmp_path / "m.fwm")
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    proc = _fwrun(tmp_path / "m.fwm", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 1 and "dim 1 must be 16" in proc.stderr
    assert _fwrun().returncode == 2


def test_cpp_example_builds_against_the_library_and_matches_python(tmp_path):
    import shutil
    import sys

    root = FWRUN.parents[2]
    if shutil.which("cmake") is None or not (root / "framework/lib/libfw_runtime.so").exists():
        pytest.skip("cmake or the runtime library is missing")
    build = tmp_path / "build"
    cfg = subprocess.run(["cmake", "-S", str(root / "examples/cpp"), "-B", str(build),
                          f"-DFRAMEWORK_DIR={root / 'framework'}", f"-DPython_EXECUTABLE={sys.executable}"],
                         capture_output=True, text=True, timeout=300)
    assert cfg.returncode == 0, cfg.stderr
    make = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True, timeout=300)
    assert make.returncode == 0, make.stderr + make.stdout
    compiled = rt.compile(mlp_graph())
    compiled.save(tmp_path / "m.fwm")
    proc = subprocess.run([str(build / "classify"), str(tmp_path / "m.fwm"), "3"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    x = (np.arange(3 * 16) % 7).astype(np.float32).reshape(3, 16) / 7.0
    want = compiled.run([x])[0].numpy().reshape(-1)[:4]
    got = [float(v) for v in proc.stdout.split("]")[1].split()]
    assert proc.stdout.startswith("output 0: shape [3, 4]")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
