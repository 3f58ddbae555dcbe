"""The benchmark suite: framework eager and graph mode against torch eager, torch.jit
(trace + freeze) and onnxruntime, per model, side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks [--quick] [--models mlp,gpt]
        [--compare benchmarks/results/OLD.json] [--threshold 0.1]

Every mode's output is checked against framework eager (or torch eager where framework
eager is unavailable) before timing; a mismatch fails the run. Modes of one model are
interleaved in rounds with equal thread counts, so ratios hold on a noisy machine. Reports
prepare (compile) time (for fw_graph split into trace, optimize, and load+plan), first-call
time, steady-state median/p10/p90, throughput, and the process's resident-memory growth
during the mode's first call (an upper bound, not an exact per-mode peak). Writes a
Markdown table, JSON and PNG charts under benchmarks/results/. Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import framework as fw  # noqa: E402
from benchmarks.common import RESULTS, environment, set_threads  # noqa: E402
from benchmarks.models import MODELS, TRAIN_MODELS  # noqa: E402

TOL = dict(rtol=2e-3, atol=2e-4)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def to_fw_state(sd):
    return {k: fw.tensor(v.detach().numpy()) for k, v in sd.items()}


class Mode:
    """A way to run a model: prepare() -> callable(np.ndarray) -> np.ndarray."""

    def __init__(self, name, prepare):
        self.name = name
        self.prepare = prepare


def modes_for(name, builder, tmodel, x_np, onnx_dir):
    """The modes that can run here (a mode whose prerequisites are missing is skipped)."""
    modes = []

    def torch_eager():
        def run(x):
            with torch.no_grad():
                return tmodel(torch.from_numpy(x)).numpy()
        return run

    def torch_jit():
        with torch.no_grad():
            m = torch.jit.freeze(torch.jit.trace(tmodel, torch.from_numpy(x_np)))

        def run(x):
            with torch.no_grad():
                return m(torch.from_numpy(x)).numpy()
        return run

    onnx_path = os.path.join(onnx_dir, f"{name}.onnx")

    def export_onnx():
        if not os.path.exists(onnx_path):
            torch.onnx.export(tmodel, (torch.from_numpy(x_np),), onnx_path, dynamo=False,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}},
                              opset_version=17)
        return onnx_path

    def ort():
        import onnxruntime as rt

        so = rt.SessionOptions()
        so.intra_op_num_threads = fw.get_num_threads()
        so.inter_op_num_threads = 1
        sess = rt.InferenceSession(export_onnx(), so, providers=["CPUExecutionProvider"])
        return lambda x: sess.run(None, {"x": x})[0]

    def fw_model():
        m = builder(fw)
        m.load_state_dict(to_fw_state(tmodel.state_dict()))
        return m.eval()

    def fw_eager():
        m = fw_model()

        def run(x):
            with fw.no_grad():
                return m(fw.from_numpy(x)).numpy()
        return run

    def fw_graph():
        model, xt = fw_model(), fw.from_numpy(x_np)
        t0 = time.perf_counter()
        traced = fw.jit.trace(model, (xt,), check_trace=False)
        t1 = time.perf_counter()
        traced = traced.optimize()
        t2 = time.perf_counter()
        traced.compile(xt)  # load into the C++ runtime (weights pre-packed) + memory plan
        t3 = time.perf_counter()

        def run(x):
            return traced(fw.from_numpy(x)).numpy()
        run.stages_ms = {"trace": (t1 - t0) * 1e3, "optimize": (t2 - t1) * 1e3, "load_plan": (t3 - t2) * 1e3}
        return run

    def fw_onnx():
        m = fw.onnx.load(export_onnx(), optimize=True)
        return lambda x: m(fw.from_numpy(x)).numpy()

    modes.append(Mode("fw_eager", fw_eager))
    modes.append(Mode("fw_graph", fw_graph))
    modes.append(Mode("torch_eager", torch_eager))
    modes.append(Mode("torch_jit", torch_jit))
    modes.append(Mode("onnxruntime", ort))
    modes.append(Mode("fw_onnx", fw_onnx))
    return modes


def timed_blocks(fns, x, quick, est_s, block_s=0.015):
    """Per-call samples for each callable, taken in rounds of blocks (a a a, b b b, ...).

    Runtimes park their worker threads only after spinning for a while (torch's OpenMP,
    onnxruntime, and framework's pool for FW_SPIN_US): on 2 cores a peer that spins steals a
    core from the next mode, and per-call interleaving measured that contention (~3 ms per
    switch), not the modes. So each block starts after a short sleep (every spinning thread
    has parked by then) and a few untimed settling calls, then times its calls one by one."""
    gap = 0.02 if quick else 0.05
    per_block = max(1, min(50, int(block_s / max(est_s, 1e-6))))
    # full runs: 20 rounds, more for slow models (1-2 calls per block) so that every mode has
    # ~100 samples from up to 60 blocks: a median over few blocks moved with one slow block
    rounds = 5 if quick else min(60, max(20, -(-100 // per_block)))
    settle = max(1, per_block // 4)
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(gap)
            for _ in range(settle):
                fn(x)
            for _ in range(per_block):
                t0 = time.perf_counter()
                fn(x)
                samples[name].append(time.perf_counter() - t0)
    return samples


def bench_model(name, batch, quick, onnx_dir):
    builder, shape, _ = MODELS[name]
    torch.manual_seed(0)
    tmodel = builder(torch).eval()
    x = np.random.default_rng(0).standard_normal((batch,) + shape).astype(np.float32)
    ready, rows, skipped = {}, {}, {}
    for mode in modes_for(name, builder, tmodel, x, onnx_dir):
        try:
            t0 = time.perf_counter()
            fn = mode.prepare()
            prep = time.perf_counter() - t0
            r0 = rss_mb()
            t0 = time.perf_counter()
            out = fn(x)
            first = time.perf_counter() - t0
            ready[mode.name] = fn
            rows[mode.name] = {"prepare_ms": prep * 1e3, "first_ms": first * 1e3,
                               "rss_growth_mb": rss_mb() - r0, "out": out}
            if hasattr(fn, "stages_ms"):
                rows[mode.name]["stages_ms"] = fn.stages_ms
        except Exception as e:  # a missing feature, reported, not fatal
            skipped[mode.name] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
            if os.environ.get("FW_BENCH_DEBUG"):
                traceback.print_exc()
    ref_name = "fw_eager" if "fw_eager" in rows else "torch_eager"
    ref = rows[ref_name]["out"]
    for mname, r in rows.items():
        out = r.pop("out")
        if out.shape != ref.shape or not np.allclose(out, ref, **TOL):
            err = float(np.abs(out - ref).max()) if out.shape == ref.shape else "shape"
            raise SystemExit(f"MISMATCH: {name} b{batch} {mname} differs from {ref_name} (max err {err})")
    samples = timed_blocks(ready, x, quick, min(r["first_ms"] for r in rows.values()) / 1e3)
    for mname, s in samples.items():
        s = sorted(s)
        med = statistics.median(s)
        rows[mname].update({"median_ms": med * 1e3, "p10_ms": s[len(s) // 10] * 1e3,
                            "p90_ms": s[min(len(s) - 1, (len(s) * 9) // 10)] * 1e3,
                            "throughput_per_s": batch / med})
    return {"model": name, "batch": batch, "modes": rows, "skipped": skipped}


def bench_training(name, batch, quick):
    builder, shape, _ = MODELS[name]
    torch.manual_seed(0)
    tmodel = builder(torch)
    x = np.random.default_rng(0).standard_normal((batch,) + shape).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, batch)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
        loss.backward()
        topt.step()
        return loss.item()

    fns = {"torch_eager": torch_step}
    skipped = {}
    try:
        fmodel = builder(fw)
        fmodel.load_state_dict(to_fw_state(tmodel.state_dict()))
        fopt = fw.optim.SGD(fmodel.parameters(), lr=0.01, momentum=0.9)
        fx, fy = fw.from_numpy(x), fw.from_numpy(y)

        def fw_step():
            fopt.zero_grad()
            loss = fw.nn.functional.cross_entropy(fmodel(fx), fy)
            loss.backward()
            fopt.step()
            return loss.item()

        fw_step()
        fns["fw_eager"] = fw_step
    except Exception as e:
        skipped["fw_eager"] = f"{type(e).__name__}: {e}"
    est = []
    for f in fns.values():  # one timed step each sizes the blocks (several steps per block)
        t0 = time.perf_counter()
        f()
        est.append(time.perf_counter() - t0)
    samples = timed_blocks({k: (lambda _x, f=f: f()) for k, f in fns.items()}, None, quick, min(est), block_s=0.06)
    rows = {k: {"median_ms": statistics.median(v) * 1e3} for k, v in samples.items()}
    return {"model": f"{name}_train", "batch": batch, "modes": rows, "skipped": skipped}


def ratios(res):
    m = res["modes"]

    def r(a, b):
        return m[a]["median_ms"] / m[b]["median_ms"] if a in m and b in m else None

    return {"graph/eager": r("fw_graph", "fw_eager"), "graph/ORT": r("fw_graph", "onnxruntime"),
            "eager/torch": r("fw_eager", "torch_eager"), "fw_onnx/ORT": r("fw_onnx", "onnxruntime")}


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}g}"


def markdown(results):
    lines = ["| model | batch | mode | prepare ms | first ms | median ms | p10 | p90 | items/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for mode, r in res["modes"].items():
            lines.append(f"| {res['model']} | {res['batch']} | {mode} | {fmt(r.get('prepare_ms'))} | "
                         f"{fmt(r.get('first_ms'))} | {fmt(r['median_ms'])} | {fmt(r.get('p10_ms'))} | "
                         f"{fmt(r.get('p90_ms'))} | {fmt(r.get('throughput_per_s'))} |")
    lines += ["", "fw_graph compile: trace + optimize + load into the runtime and plan (= its prepare ms)", "",
              "| model | batch | trace ms | optimize ms | load+plan ms | total ms |", "|---|---|---|---|---|---|"]
    for res in results:
        st = res["modes"].get("fw_graph", {}).get("stages_ms")
        if st:
            lines.append(f"| {res['model']} | {res['batch']} | {fmt(st['trace'])} | {fmt(st['optimize'])} | "
                         f"{fmt(st['load_plan'])} | {fmt(sum(st.values()))} |")
    lines += ["", "| model | batch | graph/eager | graph/ORT | eager/torch | fw_onnx/ORT | skipped |",
              "|---|---|---|---|---|---|---|"]
    for res in results:
        rr = ratios(res)
        sk = "; ".join(f"{k}: {v}" for k, v in res["skipped"].items())
        lines.append(f"| {res['model']} | {res['batch']} | {fmt(rr['graph/eager'])} | {fmt(rr['graph/ORT'])} | "
                     f"{fmt(rr['eager/torch'])} | {fmt(rr['fw_onnx/ORT'])} | {sk} |")
    return "\n".join(lines)


def charts(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5))
    labels = [f"{r['model']}\nb{r['batch']}" for r in results]
    modes = sorted({m for r in results for m in r["modes"]})
    width = 0.8 / max(len(modes), 1)
    for i, mode in enumerate(modes):
        vals = [r["modes"].get(mode, {}).get("median_ms", 0) for r in results]
        ax.bar(np.arange(len(results)) + i * width, vals, width, label=mode)
    ax.set_xticks(np.arange(len(results)) + 0.4 - width / 2)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median latency (ms, log)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def compare(results, old_path, threshold):
    old = {(r["model"], r["batch"]): r for r in json.loads(Path(old_path).read_text())["results"]}
    print(f"\n## Compared with {old_path} (flagging slowdowns beyond {threshold:.0%})\n")
    flagged = 0
    for res in results:
        prev = old.get((res["model"], res["batch"]))
        if not prev:
            continue
        for mode, r in res["modes"].items():
            if mode in prev["modes"]:
                change = r["median_ms"] / prev["modes"][mode]["median_ms"] - 1
                flag = " SLOWER" if change > threshold else ""
                flagged += bool(flag)
                print(f"{res['model']:>14} b{res['batch']:<3} {mode:<12} {change:+.1%}{flag}")
    return flagged


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few iterations, small models only")
    ap.add_argument("--models", default=None, help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--compare", default=None, help="an earlier results JSON to compare with")
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--strict", action="store_true", help="fail if any mode could not run (CI)")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    env = environment()
    print(f"OpenBLAS core: {env['openblas_core']} | threads: {args.threads} | "
          f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}")
    names = args.models.split(",") if args.models else (
        ["mlp", "small_cnn"] if args.quick else list(MODELS))
    results = []
    with tempfile.TemporaryDirectory() as onnx_dir:
        for name in names:
            for batch in MODELS[name][2]:
                print(f"... {name} batch {batch}", flush=True)
                results.append(bench_model(name, batch, args.quick, onnx_dir))
        for name, batch in TRAIN_MODELS.items():
            if name in names:
                print(f"... {name} training step batch {batch}", flush=True)
                results.append(bench_training(name, batch, args.quick))
    table = markdown(results)
    print("\n" + table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "quick" if args.quick else "full"
    (out / f"suite_{tag}.json").write_text(json.dumps({"env": env, "results": results}, indent=2))
    (out / f"suite_{tag}.md").write_text(table + "\n")
    try:
        charts(results, out / f"suite_{tag}.png")
    except ImportError:
        print("(matplotlib missing: no chart)")
    print(f"\nwrote {out}/suite_{tag}.json, .md, .png")
    if args.compare:
        compare(results, args.compare, args.threshold)
    skipped = [(r["model"], r["batch"], k, v) for r in results for k, v in r["skipped"].items()]
    if args.strict and skipped:
        raise SystemExit("modes that could not run: " + "; ".join(f"{m} b{b} {k}: {v}" for m, b, k, v in skipped))


if __name__ == "__main__":
    main()
