"""Benchmark helpers: interleaved timing of several candidates (so a noisy shared machine
affects them alike), medians, BLAS info, JSON output. Not a test: nothing here asserts."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def set_threads(n: int = 2) -> None:
    """Equal thread counts for every peer."""
    import framework as fw
    import torch

    fw.set_num_threads(n)
    torch.set_num_threads(n)


def interleaved(candidates: dict, repeat: int = 20, inner: int = 1, warmup: int = 2, gap: float = 0.01) -> dict:
    """Times each callable in rounds (a, b, c, a, b, c, ...); returns {name: median seconds per call}.

    Each timed block follows a short sleep (`gap` seconds) and one untimed settling call:
    thread pools that spin after work (torch's OpenMP, onnxruntime, framework's pool) would
    otherwise slow the next candidate, and the comparison would measure that contention."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples = {k: [] for k in candidates}
    for _ in range(repeat):
        for name, fn in candidates.items():
            time.sleep(gap)
            fn()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def environment() -> dict:
    import framework as fw

    info = fw._C.blas_info()
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "threads": fw.get_num_threads(),
        "openblas_core": info["corename"],
        "openblas_config": info["config"],
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def print_table(title: str, header: list, rows: list) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in r) + " |")
