"""Training-step benchmark: forward + backward + optimizer step, framework eager vs torch
eager, side by side (interleaved rounds, median), equal threads (2 by default).

    python benchmarks/bench_train.py [--quick] [--threads 2]

Models: the MLP 784-512-512-10 and the small CNN (benchmarks/models.py), batch 64, with SGD
(momentum) and Adam. Prints a Markdown table of ms/step and framework/torch ratios (target
<= 1.0) and writes benchmarks/results/bench_train.json. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

import framework as fw
from benchmarks.common import environment, interleaved, print_table, set_threads, write_json
from benchmarks.models import mlp, small_cnn

CASES = {"mlp": (mlp, (64, 784)), "small_cnn": (small_cnn, (64, 1, 28, 28))}
OPTIMIZERS = {
    "sgd": lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9),
    "adam": lambda lib, p: lib.optim.Adam(p, lr=1e-3),
}


def step_fn(lib, model, opt, x, y):
    loss_fn = lib.nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def bench(case: str, opt_name: str, repeat: int):
    build, shape = CASES[case]
    torch.manual_seed(0)
    t_model = build(torch)
    f_model = build(fw)
    f_model.load_state_dict(t_model.state_dict())
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 10, shape[0]).astype(np.int64)
    t_step = step_fn(
        torch,
        t_model,
        OPTIMIZERS[opt_name](torch, t_model.parameters()),
        torch.from_numpy(x),
        torch.from_numpy(y),
    )
    f_step = step_fn(
        fw,
        f_model,
        OPTIMIZERS[opt_name](fw, f_model.parameters()),
        fw.from_numpy(x.copy()),
        fw.from_numpy(y.copy()),
    )
    # same first loss: the comparison is of the same computation
    lt, lf = t_step().item(), f_step().item()
    if abs(lt - lf) > 1e-4 * max(1.0, abs(lt)):
        print(f"WARNING: {case}/{opt_name}: first losses differ: torch {lt}, framework {lf}")
    t = interleaved({"framework": f_step, "torch": t_step}, repeat=repeat, warmup=3)
    return t["framework"] * 1e3, t["torch"] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    set_threads(args.threads)
    repeat = 7 if args.quick else 25
    rows, out = [], {}
    for case in CASES:
        for opt_name in OPTIMIZERS:
            f_ms, t_ms = bench(case, opt_name, repeat)
            rows.append((f"{case} b64 {opt_name}", f_ms, t_ms, f_ms / t_ms))
            out[f"{case}_{opt_name}"] = {
                "framework_ms": f_ms,
                "torch_ms": t_ms,
                "ratio": f_ms / t_ms,
            }
    print_table(
        f"Training step, forward+backward+step (ms, median of {repeat}, {args.threads} threads; "
        "ratio <= 1.0 is the target)",
        ["case", "framework", "torch", "fw/torch"],
        rows,
    )
    path = write_json("bench_train", {"environment": environment(), "results": out})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
