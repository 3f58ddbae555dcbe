"""One owner of threads: set/get_num_threads, results independent of the thread count, and
fork after threads started does not hang."""

import os
import subprocess
import sys
import textwrap

import numpy as np

import framework as fw


def test_set_get_num_threads_and_results_independent_of_threads():
    prev = fw.get_num_threads()
    a = fw.randn(300, 400)
    b = fw.randn(400, 200)
    try:
        fw.set_num_threads(1)
        r1 = (a @ b).relu().sum(1)
        assert fw.get_num_threads() == 1
        fw.set_num_threads(2)
        r2 = (a @ b).relu().sum(1)
    finally:
        fw.set_num_threads(prev)
    np.testing.assert_allclose(r1.numpy(), r2.numpy(), rtol=1e-5)


def test_fork_after_threads_started_does_not_hang():
    code = textwrap.dedent("""
        import os, framework as fw
        fw.set_num_threads(2)
        x = fw.randn(1 << 20)
        (x + x).sum()
        pid = os.fork()
        if pid == 0:
            y = fw.randn(1 << 20)
            s = (y * 2).sum().item()
            os._exit(0 if s == s else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "child 0" in r.stdout


def test_caching_allocator_reuses_blocks():
    from framework import _C

    x = fw.empty(1 << 20)
    del x
    before = _C.allocator_stats()["hits"]
    y = fw.empty(1 << 20)
    assert _C.allocator_stats()["hits"] > before
    del y
    _ = os
