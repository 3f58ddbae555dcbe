"""Graph-mode pass benchmarks: eager vs the traced graph vs the optimized graph, side by
side (interleaved) in one run, for the patterns the passes rewrite.

    python benchmarks/bench_jit.py [--quick]

The traced module runs through the C++ runtime when framework.jit.runtime is available
(else the interpreter); the "executor" column says which. Writes
benchmarks/results/bench_jit.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import framework as fw  # noqa: E402
from benchmarks.common import environment, interleaved, print_table, set_threads, write_json  # noqa: E402


def gelu_tanh(h):
    return 0.5 * h * (1.0 + fw.tanh(0.7978845608 * (h + 0.044715 * h * h * h)))


def make_mlp(d):
    rng = np.random.default_rng(0)
    w1 = fw.from_numpy((rng.standard_normal((4 * d, d)) * 0.05).astype(np.float32))
    b1 = fw.from_numpy(np.zeros(4 * d, np.float32))
    w2 = fw.from_numpy((rng.standard_normal((d, 4 * d)) * 0.05).astype(np.float32))

    def mlp(x):
        return fw.linear(fw.relu(fw.linear(x, w1, b1)), w2)

    return mlp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    set_threads(2)
    repeat = 5 if args.quick else 20
    cases = [("gelu-tanh chain (9 elementwise ops)", gelu_tanh, (512, 1024)),
             ("gelu-tanh chain (9 elementwise ops)", gelu_tanh, (2048, 1024)),
             ("MLP linear-relu-linear", make_mlp(256), (256, 256))]
    rows, out = [], []
    for name, fn, shape in cases:
        x = fw.randn(*shape)
        traced = fw.jit.trace(fn, (x,))
        opt = traced.optimize()
        traced(x)
        opt(x)
        np.testing.assert_allclose(opt(x).numpy(), fn(x).numpy(), rtol=1e-4, atol=1e-5)
        t = interleaved({"eager": lambda: fn(x), "graph": lambda: traced(x), "optimized": lambda: opt(x)},
                        repeat=repeat)
        ops = f"{len(traced.graph.calls())} -> {len(opt.graph.calls())}"
        rows.append([name, str(list(shape)), ops, t["eager"] * 1e3, t["graph"] * 1e3,
                     t["optimized"] * 1e3, t["eager"] / t["optimized"], opt.executor])
        out.append({"case": name, "shape": list(shape), "nodes": ops, **{k: v for k, v in t.items()},
                    "executor": opt.executor})
    print_table("eager vs traced graph vs optimized graph (ms, median)",
                ["case", "shape", "call nodes", "eager", "graph", "optimized", "eager/optimized",
                 "executor"], rows)
    write_json("bench_jit", {"env": environment(), "results": out})


if __name__ == "__main__":
    main()
