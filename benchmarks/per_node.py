"""Per-node times of one benchmark model: framework's graph runtime (fw.profiler) against
onnxruntime's own profiler on the same model exported to ONNX, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks.per_node \\
        small_cnn --batch 64 --threads 2 --reps 50        # from the repository root

Prints each runtime's nodes with their median microseconds (framework's with FLOPs and
GFLOP/s) and the sums. onnxruntime's profiler adds a little per node, so compare nodes, not
only totals. Used to find which kernel to work on before optimizing (see issue 7's notes).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as fw  # noqa: E402
from benchmarks.models import MODELS  # noqa: E402


def ort_nodes(onnx_path: str, x: np.ndarray, threads: int, reps: int, tmp: str) -> list:
    """[(node name, median us)] from onnxruntime's profiler over `reps` calls."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tmp, "ortprof")
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    for _ in range(reps):
        sess.run(None, {"x": x})
    events = json.load(open(sess.end_profiling()))
    per: dict = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per.setdefault(e["name"][: -len("_kernel_time")], []).append(e["dur"])
    return [(k, float(np.median(v))) for k, v in per.items()]


def fw_nodes(traced, xt, reps: int) -> list:
    """[(kernel, output shape, MFLOPs, median us)] per node of the graph runtime."""
    for _ in range(5):
        traced(xt)
    with fw.profiler.profile() as p:
        for _ in range(reps):
            traced(xt)
    ev = [e for e in p.events if e.kind == "graph"]
    per = len(ev) // reps
    return [(ev[i].name, ev[i].shapes[0] if ev[i].shapes else (), ev[i].flops / 1e6,
             float(np.median([ev[c * per + i].dur_us for c in range(reps)]))) for i in range(per)]


def main(argv=None) -> int:
    """Runs both profiles for one model and prints them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)
    import torch

    fw.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    builder, shape, _ = MODELS[args.model]
    torch.manual_seed(0)
    tm = builder(torch).eval()
    x = np.random.default_rng(0).standard_normal((args.batch,) + shape).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        torch.onnx.export(tm, (torch.from_numpy(x),), path, dynamo=False, input_names=["x"],
                          output_names=["y"], opset_version=17)
        ort = ort_nodes(path, x, args.threads, args.reps, tmp)
        for f in glob.glob(os.path.join(tmp, "ortprof*")):
            os.remove(f)
    fm = builder(fw).eval()
    fm.load_state_dict({k: fw.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    xt = fw.from_numpy(x)
    traced = fw.jit.trace(fm, (xt,), check_trace=False).optimize()
    ours = fw_nodes(traced, xt, args.reps)
    print(f"onnxruntime nodes (median us), {args.model} batch {args.batch}, {args.threads} threads:")
    for name, us in ort:
        print(f"  {name:60s} {us:9.1f}")
    print(f"  {'total':60s} {sum(us for _, us in ort):9.1f}")
    print("framework nodes (median us):")
    for i, (name, shp, mf, us) in enumerate(ours):
        rate = mf / us * 1e3 if us else 0.0
        print(f"  {i:3d} {name:22s} {str(shp):24s} {mf:9.1f} MF {us:9.1f} {rate:7.1f} GF/s")
    print(f"  {'total':60s} {sum(r[3] for r in ours):9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
