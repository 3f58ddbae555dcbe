"""Bad input raises Python exceptions naming the op and shapes; the process survives."""

import subprocess
import sys
import textwrap

import pytest

import framework as fw


def test_broadcast_mismatch_names_shapes():
    with pytest.raises(RuntimeError, match=r"\[2, 3\].*\[4\]|size of tensor"):
        fw.ones(2, 3) + fw.ones(4)


def test_matmul_mismatch_names_shapes():
    with pytest.raises(RuntimeError, match=r"2x3 and 4x5"):
        fw.ones(2, 3) @ fw.ones(4, 5)


def test_linear_mismatch():
    with pytest.raises(RuntimeError, match="in_features"):
        fw.linear(fw.ones(2, 3), fw.ones(4, 5))


def test_bad_dim():
    with pytest.raises(IndexError, match="Dimension out of range"):
        fw.ones(2, 3).sum(dim=2)


def test_bad_reshape():
    with pytest.raises(RuntimeError, match="invalid for input of size 6"):
        fw.ones(2, 3).reshape(4, 2)


def test_unsupported_dtype():
    import numpy as np

    with pytest.raises(TypeError):
        fw.from_numpy(np.zeros(2, dtype=np.complex64))


def test_process_survives_bad_inputs():
    code = textwrap.dedent("""
        import framework as fw
        import numpy as np
        bad = [
            lambda: fw.ones(2, 3) @ fw.ones(4, 5),
            lambda: fw.ones(2, 3).reshape(7),
            lambda: fw.ones(2, 3)[5],
            lambda: fw.ones(2, 3).permute(0, 0),
            lambda: fw.ones(3).expand(2, 4),
            lambda: fw.zeros(-1),
            lambda: fw.ones(2, 3).sum(dim=(0, 0)),
        ]
        n = 0
        for f in bad:
            try:
                f()
            except Exception:
                n += 1
        print("caught", n)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "caught 7" in r.stdout
