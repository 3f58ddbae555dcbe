"""Eager op benchmarks against torch (and numpy for GEMM), side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_ops.py [--quick]

Prints Markdown tables with ratios and writes benchmarks/results/bench_ops.json.
Targets (issue 2): dispatch <= 1.5x torch; matmul >= 95% of numpy (same OpenBLAS);
elementwise >= 0.8x torch GB/s; conv2d >= 0.5x torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import framework as fw  # noqa: E402
from benchmarks.common import environment, interleaved, print_table, set_threads, write_json  # noqa: E402


def bench_dispatch(repeat):
    rows, out = [], {}
    for rg in (False, True):
        a = fw.ones(1, requires_grad=rg)
        b = fw.ones(1)
        ta = torch.ones(1, requires_grad=rg)
        tb = torch.ones(1)
        n = 2000
        t = interleaved({"fw": lambda: [a + b for _ in range(n)], "torch": lambda: [ta + tb for _ in range(n)]},
                        repeat=repeat)
        fw_us, t_us = t["fw"] / n * 1e6, t["torch"] / n * 1e6
        rows.append((f"add 1-elem requires_grad={rg}", fw_us, t_us, fw_us / t_us))
        out[f"dispatch_requires_grad_{rg}"] = {"fw_us": fw_us, "torch_us": t_us, "ratio": fw_us / t_us}
    print_table("Dispatch overhead (us/op, lower is better)", ["case", "framework", "torch", "fw/torch"], rows)
    return out


def bench_matmul(sizes, repeat):
    rows, out = [], {}
    for n in sizes:
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
        fa, fb = fw.from_numpy(a), fw.from_numpy(b)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        t = interleaved({"fw": lambda: fa @ fb, "torch": lambda: ta @ tb, "numpy": lambda: a @ b},
                        repeat=max(3, repeat // (1 if n <= 256 else 4)))
        flops = 2 * n ** 3
        g = {k: flops / v / 1e9 for k, v in t.items()}
        rows.append((n, g["fw"], g["torch"], g["numpy"], g["fw"] / g["numpy"]))
        out[f"matmul_{n}"] = {**{f"{k}_gflops": v for k, v in g.items()}, "fw_over_numpy": g["fw"] / g["numpy"]}
    print_table("matmul float32 (GFLOP/s, higher is better)", ["n", "framework", "torch", "numpy", "fw/numpy"], rows)
    return out


def bench_elementwise(numel, repeat):
    x = fw.randn(numel)
    y = fw.randn(numel)
    tx, ty = torch.from_numpy(x.numpy().copy()), torch.from_numpy(y.numpy().copy())
    rows, out = [], {}
    cases = {
        "relu": (lambda: x.relu(), lambda: tx.relu(), 2),
        "add": (lambda: x + y, lambda: tx + ty, 3),
    }
    for name, (f, tf, touched) in cases.items():
        t = interleaved({"fw": f, "torch": tf}, repeat=repeat)
        gb = {k: touched * numel * 4 / v / 1e9 for k, v in t.items()}
        rows.append((f"{name} {numel} floats", gb["fw"], gb["torch"], gb["fw"] / gb["torch"]))
        out[name] = {"fw_gbs": gb["fw"], "torch_gbs": gb["torch"], "ratio": gb["fw"] / gb["torch"]}
    print_table("Elementwise (GB/s, higher is better)", ["case", "framework", "torch", "fw/torch"], rows)
    return out


RESNET18_CONVS = [  # (Cin, H, Cout, k, stride, pad)
    (3, 224, 64, 7, 2, 3), (64, 56, 64, 3, 1, 1), (64, 56, 128, 3, 2, 1), (128, 28, 128, 3, 1, 1),
    (128, 28, 256, 3, 2, 1), (256, 14, 256, 3, 1, 1), (256, 14, 512, 3, 2, 1), (512, 7, 512, 3, 1, 1),
    (64, 56, 128, 1, 2, 0),
]


def bench_conv(repeat):
    if not hasattr(fw, "conv2d"):
        print("\n(conv2d not available yet: skipped)")
        return {}
    rows, out = [], {}
    for cin, h, cout, k, s, p in RESNET18_CONVS:
        x = np.random.default_rng(0).standard_normal((1, cin, h, h)).astype(np.float32)
        w = np.random.default_rng(1).standard_normal((cout, cin, k, k)).astype(np.float32) * 0.05
        fx, fwt = fw.from_numpy(x), fw.from_numpy(w)
        tx, twt = torch.from_numpy(x), torch.from_numpy(w)
        with torch.no_grad():
            t = interleaved({"fw": lambda: fw.conv2d(fx, fwt, stride=s, padding=p),
                             "torch": lambda: torch.nn.functional.conv2d(tx, twt, stride=s, padding=p)},
                            repeat=repeat)
        name = f"{cin}x{h}x{h} -> {cout} k{k} s{s}"
        rows.append((name, t["fw"] * 1e3, t["torch"] * 1e3, t["torch"] / t["fw"]))
        out[name] = {"fw_ms": t["fw"] * 1e3, "torch_ms": t["torch"] * 1e3, "throughput_ratio": t["torch"] / t["fw"]}
    print_table("conv2d ResNet-18 shapes, batch 1 (ms, lower is better)",
                ["layer", "framework", "torch", "fw throughput / torch"], rows)
    return out


def bench_rowwise(shape, repeat):
    x = fw.randn(*shape)
    tx = torch.from_numpy(x.numpy().copy())
    w, b = fw.ones(shape[-1]), fw.zeros(shape[-1])
    tw, tb = torch.ones(shape[-1]), torch.zeros(shape[-1])
    cases = {}
    if hasattr(fw, "softmax"):
        cases["softmax"] = (lambda: fw.softmax(x, -1), lambda: torch.softmax(tx, -1))
    if hasattr(fw, "layer_norm"):
        cases["layer_norm"] = (lambda: fw.layer_norm(x, (shape[-1],), w, b),
                               lambda: torch.nn.functional.layer_norm(tx, (shape[-1],), tw, tb))
    rows, out = [], {}
    for name, (f, tf) in cases.items():
        t = interleaved({"fw": f, "torch": tf}, repeat=repeat)
        rows.append((f"{name} {shape}", t["fw"] * 1e3, t["torch"] * 1e3, t["torch"] / t["fw"]))
        out[name] = {"fw_ms": t["fw"] * 1e3, "torch_ms": t["torch"] * 1e3, "throughput_ratio": t["torch"] / t["fw"]}
    if rows:
        print_table("Row-wise NN ops (ms, lower is better)", ["case", "framework", "torch", "fw throughput / torch"], rows)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes and few repetitions")
    args = ap.parse_args(argv)
    set_threads(2)
    env = environment()
    print(f"OpenBLAS core: {env['openblas_core']}; threads: {env['threads']}; "
          f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}")
    rep = 5 if args.quick else 20
    results = {"env": env}
    results["dispatch"] = bench_dispatch(rep)
    results["matmul"] = bench_matmul([256] if args.quick else [256, 1024, 2048], rep)
    results["elementwise"] = bench_elementwise(1 << (20 if args.quick else 24), rep)
    results["conv2d"] = bench_conv(3 if args.quick else 10)
    results["rowwise"] = bench_rowwise((8, 64, 64) if args.quick else (64, 512, 512), rep if args.quick else 10)
    path = write_json("bench_ops" + ("_quick" if args.quick else ""), results)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
