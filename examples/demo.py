"""The main demo: train the digits CNN eagerly for a few seconds, trace and optimize it, save
it as one model file, run that file with the Python-free runner (fwrun), and print the
eager vs graph vs peers benchmark table at a quick size.

    python examples/demo.py [--epochs 3] [--full]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import framework as fw  # noqa: E402
from examples.train_digits import DigitsCNN  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="run the full benchmark suite")
    args = ap.parse_args()
    fw.set_num_threads(2)
    fw.manual_seed(0)

    digits = load_digits()
    x = fw.from_numpy((digits.images / 16.0).astype(np.float32)[:, None])
    y = fw.from_numpy(digits.target.astype(np.int64))
    n_train = 1400
    model = DigitsCNN()
    opt = fw.optim.Adam(model.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        perm = fw.randperm(n_train)
        for i in range(0, n_train, 64):
            idx = perm[i:i + 64]
            loss = fw.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
    model.eval()
    with fw.no_grad():
        acc = (model(x[n_train:]).argmax(1) == y[n_train:]).float().mean().item()
    print(f"eager training: {time.perf_counter() - t0:.1f} s, test accuracy {acc:.3f}")

    example = x[n_train:n_train + 8]
    t0 = time.perf_counter()
    traced = fw.jit.trace(model, (example,)).optimize()
    print(f"traced + optimized + planned in {(time.perf_counter() - t0) * 1e3:.0f} ms")
    print(traced.graph)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits.fwm"
        traced.save(str(path))
        batch = x[n_train:n_train + 32].numpy()
        np.save(Path(tmp) / "x.npy", batch)
        fwrun = Path(fw.__file__).parent / "bin" / "fwrun"
        r = subprocess.run([str(fwrun), str(path), "--input", str(Path(tmp) / "x.npy"),
                            "--output", str(Path(tmp) / "y.npy")], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"fwrun failed: {r.stderr}")
        out = np.load(Path(tmp) / "y.npy")
        with fw.no_grad():
            ref = model(fw.from_numpy(batch)).numpy()
        print(f"fwrun ({path.stat().st_size / 1024:.0f} KiB model file): max |fwrun - eager| = "
              f"{np.abs(out - ref).max():.2e}")
        r = subprocess.run([str(fwrun), str(path), "--bench", "50"], capture_output=True, text=True)
        print(r.stdout.strip())
    cmd = [sys.executable, "-m", "benchmarks"] + ([] if args.full else ["--quick"])
    subprocess.run(cmd, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
