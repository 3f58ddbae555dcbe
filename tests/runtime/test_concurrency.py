"""One loaded model, many threads: outputs are bit-identical to single-threaded runs, and
repeated calls do not grow memory."""

from __future__ import annotations

import resource
import threading

import numpy as np

from framework.jit import runtime as rt
from tests.runtime.models import chain_graph, mlp_graph


def test_8_threads_x_200_calls_are_bit_identical():
    compiled = rt.compile(mlp_graph())
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((b, 16)).astype(np.float32) for b in (1, 3, 8, 5)]
    expected = [compiled.run([x])[0].numpy().copy() for x in xs]
    errors = []

    def worker(t):
        try:
            for i in range(200):
                k = (t + i) % len(xs)
                got = compiled.run([xs[k]])[0].numpy()
                if not np.array_equal(got, expected[k]):
                    errors.append(f"thread {t} call {i}: batch {xs[k].shape[0]} differs")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {e!r}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_10000_calls_keep_resident_memory_flat():
    graph, _, inputs = chain_graph(batch=4, width=64, depth=4)
    compiled = rt.compile(graph)
    for _ in range(500):  # warm up: plan cached, arena pooled, allocator caches filled
        compiled.run(inputs)
    before = _rss_kb()
    for _ in range(10_000):
        compiled.run(inputs)
    grown = _rss_kb() - before
    assert grown < 4096, f"resident memory grew by {grown} kB over 10,000 calls"
