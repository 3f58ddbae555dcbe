"""DataLoader benchmark, framework vs torch side by side (interleaved rounds, median): one
epoch over a dataset whose samples cost CPU time (a 3x32x32 image made and augmented in
numpy; num_workers 0 and 2), and one over 3x224x224 frames that cost nothing to make, so
that moving 9.6 MB batches from the workers is what is timed (2 workers).

    python benchmarks/bench_data.py [--quick]

Both loaders run the same dataset code and default collation; workers are forked per
epoch (persistent_workers=False), so the figure includes starting them. Prints a Markdown
table of ms per epoch and framework/torch ratios and writes benchmarks/results/bench_data.json.
Not a test: nothing asserts.
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


class Images:
    """n samples: (a 3x32x32 float32 image, an int label), each made from its index by a
    few numpy passes (noise, a random crop of a padded image, a flip, normalization)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        img = rng.standard_normal((3, 40, 40)).astype(np.float32)
        for _ in range(4):
            img = np.tanh(img * 1.1 + 0.1)
        y0, x0 = rng.integers(0, 8, 2)
        img = img[:, y0:y0 + 32, x0:x0 + 32]
        if i % 2:
            img = img[:, :, ::-1]
        img = (img - img.mean()) / (img.std() + 1e-5)
        return np.ascontiguousarray(img), int(i % 10)


class TorchImages(Images, torch.utils.data.Dataset):
    pass


class FwImages(Images, fw.utils.data.Dataset):
    pass


class Frames:
    """n constant 3x224x224 float32 frames: batches cost their transfer, not their making."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((3, 224, 224), i % 7, np.float32), int(i % 10)


class TorchFrames(Frames, torch.utils.data.Dataset):
    pass


class FwFrames(Frames, fw.utils.data.Dataset):
    pass


def epoch_fn(lib, ds, workers: int, batch: int):
    def run():
        n = 0
        for x, y in lib.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers):
            n += x.shape[0] + int(y[0]) * 0 + int(x[0, 0, 0, 0]) * 0  # touch the batch
        return n
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and rounds")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    set_threads(args.threads)
    n, repeat = (512, 3) if args.quick else (2048, 7)
    rows, out = [], {}
    nf = 64 if args.quick else 256
    cases = [(f"{n} images 3x32x32, batch 64, num_workers={w}", f"workers_{w}", FwImages(n), TorchImages(n), n, w, 64)
             for w in (0, 2)]
    cases.append((f"{nf} frames 3x224x224, batch 16, num_workers=2", "frames_workers_2", FwFrames(nf),
                  TorchFrames(nf), nf, 2, 16))
    for label, key, f_ds, t_ds, count, workers, batch in cases:
        f_run = epoch_fn(fw, f_ds, workers, batch)
        t_run = epoch_fn(torch, t_ds, workers, batch)
        assert f_run() == t_run() == count
        t = interleaved({"framework": f_run, "torch": t_run}, repeat=repeat, warmup=1)
        f_ms, t_ms = t["framework"] * 1e3, t["torch"] * 1e3
        rows.append((label, f_ms, t_ms, f_ms / t_ms))
        out[key] = {"framework_ms": f_ms, "torch_ms": t_ms, "ratio": f_ms / t_ms}
    print_table(f"DataLoader epoch (ms, median of {repeat}, {args.threads} threads)",
                ["case", "framework", "torch", "fw/torch"], rows)
    path = write_json("bench_data", {"environment": environment(), "results": out})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
