"""conv2d forward on the ResNet-18 layer shapes at batch 1 (NCHW float32), framework vs
torch side by side: equal thread counts, interleaved repetitions, medians. Also times the
backward ops (grad of input and weight) with --backward. Not a test: nothing asserts.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py [--repeat 15]
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

# (in_channels, H=W, out_channels, kernel, stride, padding): every distinct conv of ResNet-18.
RESNET18_CONVS = [
    (3, 224, 64, 7, 2, 3),
    (64, 56, 64, 3, 1, 1),
    (64, 56, 128, 3, 2, 1),
    (128, 28, 128, 3, 1, 1),
    (64, 56, 128, 1, 2, 0),
    (128, 28, 256, 3, 2, 1),
    (256, 14, 256, 3, 1, 1),
    (128, 28, 256, 1, 2, 0),
    (256, 14, 512, 3, 2, 1),
    (512, 7, 512, 3, 1, 1),
    (256, 14, 512, 1, 2, 0),
]


def _tensors(cin, h, cout, k):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, cin, h, h)).astype(np.float32)
    w = (rng.standard_normal((cout, cin, k, k)) * 0.05).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, w, b


def bench_forward(repeat: int) -> dict:
    rows, out = [], {}
    total = {"fw": 0.0, "torch": 0.0}
    for cin, h, cout, k, s, p in RESNET18_CONVS:
        x, w, b = _tensors(cin, h, cout, k)
        fx, fwt, fb = fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b)
        tx, twt, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        with torch.no_grad(), fw.no_grad():
            got = fw.conv2d(fx, fwt, fb, stride=s, padding=p).numpy()
            ref = torch.nn.functional.conv2d(tx, twt, tb, stride=s, padding=p).numpy()
            err = float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-12))
            t = interleaved({"fw": lambda: fw.conv2d(fx, fwt, fb, stride=s, padding=p),
                             "torch": lambda: torch.nn.functional.conv2d(tx, twt, tb, stride=s, padding=p)},
                            repeat=repeat, warmup=3)
        name = f"{cin}x{h}x{h} -> {cout} k{k} s{s}"
        flops = 2.0 * cout * cin * k * k * ((h + 2 * p - k) // s + 1) ** 2
        rows.append((name, t["fw"] * 1e3, t["torch"] * 1e3, flops / t["fw"] / 1e9, t["torch"] / t["fw"], err))
        out[name] = {"fw_ms": t["fw"] * 1e3, "torch_ms": t["torch"] * 1e3, "ratio": t["torch"] / t["fw"],
                     "max_rel_err": err}
        total["fw"] += t["fw"]
        total["torch"] += t["torch"]
    rows.append(("all layers (sum)", total["fw"] * 1e3, total["torch"] * 1e3, "", total["torch"] / total["fw"], ""))
    print_table("conv2d forward, ResNet-18 shapes, batch 1, float32 (ms; ratio = fw throughput / torch)",
                ["layer", "framework ms", "torch ms", "fw GFLOP/s", "ratio", "max rel err"], rows)
    return out


def bench_backward(repeat: int) -> dict:
    from framework.ops.conv import conv2d_backward_input, conv2d_backward_weight

    rows, out = [], {}
    for cin, h, cout, k, s, p in RESNET18_CONVS:
        x, w, _ = _tensors(cin, h, cout, k)
        ho = (h + 2 * p - k) // s + 1
        g = np.random.default_rng(2).standard_normal((1, cout, ho, ho)).astype(np.float32)
        fx, fwt, fg = fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(g)
        tx, twt, tg = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(g)
        with torch.no_grad(), fw.no_grad():
            t = interleaved({
                "fw_in": lambda: conv2d_backward_input(fx.shape, fwt, fg, s, p),
                "torch_in": lambda: torch.nn.grad.conv2d_input(tx.shape, twt, tg, s, p),
                "fw_w": lambda: conv2d_backward_weight(fx, fwt.shape, fg, s, p),
                "torch_w": lambda: torch.nn.grad.conv2d_weight(tx, twt.shape, tg, s, p),
            }, repeat=repeat, warmup=2)
        name = f"{cin}x{h}x{h} -> {cout} k{k} s{s}"
        rows.append((name, t["fw_in"] * 1e3, t["torch_in"] * 1e3, t["torch_in"] / t["fw_in"],
                     t["fw_w"] * 1e3, t["torch_w"] * 1e3, t["torch_w"] / t["fw_w"]))
        out[name] = {"input_ratio": t["torch_in"] / t["fw_in"], "weight_ratio": t["torch_w"] / t["fw_w"]}
    print_table("conv2d backward, ResNet-18 shapes, batch 1 (ms; ratio = fw throughput / torch)",
                ["layer", "fw grad_in", "torch grad_in", "ratio", "fw grad_w", "torch grad_w", "ratio"], rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backward", action="store_true", help="also time the backward ops")
    args = ap.parse_args()
    set_threads(args.threads)
    env = environment()
    print(f"threads={env['threads']} openblas={env['openblas_core']} torch={torch.__version__}")
    results = {"env": env, "forward": bench_forward(args.repeat)}
    if args.backward:
        results["backward"] = bench_backward(max(3, args.repeat // 3))
    print(f"\nwrote {write_json('bench_conv', results)}")


if __name__ == "__main__":
    main()
