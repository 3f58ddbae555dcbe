"""NN op speed vs torch (not a test): softmax, log_softmax, layer_norm on (64, 512, 512)
float32 and fused attention (batch 1, 4 heads, seq 128, head dim 64), forward and backward.
Both frameworks use 2 threads; runs are interleaved (fw, torch, fw, torch, ...) and the
median of each is reported with the ratio fw / torch (lower is better, 1.0 = parity).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_nn_ops.py [--reps N]
     [--threads T]   (on a loaded machine torch's spinning OpenMP threads suffer more than
                      the framework's sleeping pool: compare --threads 1 too)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import framework as fw
from framework.ops.attention import scaled_dot_product_attention as fw_sdpa


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(name, fw_fn, torch_fn, reps):
    fw_fn()
    torch_fn()  # warm up (allocators, thread pools)
    tf, tt = [], []
    for _ in range(reps):
        tf.append(_time(fw_fn))
        tt.append(_time(torch_fn))
    mf, mt = statistics.median(tf), statistics.median(tt)
    print(f"{name:<34} {mf * 1e3:9.2f} ms {mt * 1e3:9.2f} ms {mf / mt:7.2f}x")
    return mf / mt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2, help="threads for both frameworks")
    args = ap.parse_args()
    fw.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 512, 512), dtype=np.float32)
    fx, tx = fw.from_numpy(x), torch.from_numpy(x)
    w = rng.standard_normal(512, dtype=np.float32)
    b = rng.standard_normal(512, dtype=np.float32)
    fwt, fbt, twt, tbt = (
        fw.from_numpy(w),
        fw.from_numpy(b),
        torch.from_numpy(w),
        torch.from_numpy(b),
    )
    print(f"{'op':<34} {'framework':>12} {'torch':>12} {'ratio':>8}")
    with fw.no_grad(), torch.no_grad():
        bench(
            "softmax (64,512,512) dim=-1",
            lambda: fw.softmax(fx, -1),
            lambda: torch.softmax(tx, -1),
            args.reps,
        )
        bench(
            "log_softmax (64,512,512) dim=-1",
            lambda: fw.log_softmax(fx, -1),
            lambda: torch.log_softmax(tx, -1),
            args.reps,
        )
        bench(
            "layer_norm (64,512,512) [512]",
            lambda: fw.layer_norm(fx, (512,), fwt, fbt),
            lambda: TF.layer_norm(tx, (512,), twt, tbt),
            args.reps,
        )
    q, k, v = (rng.standard_normal((1, 4, 128, 64), dtype=np.float32) for _ in range(3))
    fq, fk, fv = (fw.from_numpy(a) for a in (q, k, v))
    tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
    with fw.no_grad(), torch.no_grad():
        bench(
            "attention (1,4,128,64)",
            lambda: fw_sdpa(fq, fk, fv),
            lambda: TF.scaled_dot_product_attention(tq, tk, tv),
            args.reps * 10,
        )
        bench(
            "attention causal (1,4,128,64)",
            lambda: fw_sdpa(fq, fk, fv, is_causal=True),
            lambda: TF.scaled_dot_product_attention(tq, tk, tv, is_causal=True),
            args.reps * 10,
        )
    fq2, fk2, fv2 = (fw.from_numpy(a).requires_grad_() for a in (q, k, v))
    tq2, tk2, tv2 = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
    bench(
        "attention fwd+bwd (1,4,128,64)",
        lambda: fw_sdpa(fq2, fk2, fv2).sum().backward(),
        lambda: TF.scaled_dot_product_attention(tq2, tk2, tv2).sum().backward(),
        args.reps * 10,
    )
    xs = rng.standard_normal((64, 128, 512), dtype=np.float32)
    fxs, txs = fw.from_numpy(xs).requires_grad_(), torch.from_numpy(xs).requires_grad_()
    bench(
        "layer_norm fwd+bwd (64,128,512)",
        lambda: fw.layer_norm(fxs, (512,), fwt, fbt).sum().backward(),
        lambda: TF.layer_norm(txs, (512,), twt, tbt).sum().backward(),
        args.reps,
    )
    bench(
        "softmax fwd+bwd (64,128,512)",
        lambda: fw.softmax(fxs, -1).sum().backward(),
        lambda: torch.softmax(txs, -1).sum().backward(),
        args.reps,
    )


if __name__ == "__main__":
    main()
