"""fw.jit.verify: eager vs unoptimized graph vs optimized graph, node by node.

It traces the model (recording every eager value), runs the traced graph in the
interpreter, runs it again in float64 as a high-precision reference, then applies the
passes one at a time, re-running the graph after every pass that changed it and comparing
every value with the unoptimized run (a value a pass replaced is compared with the one it
replaced). The report names the first diverging node, the pass that introduced it and the
user's source line. It changes nothing and is meant for debugging, not for speed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .interpreter import Interpreter
from .module import _as_inputs
from .passes import DEFAULT_PASSES, run_passes
from .tracer import TracerWarning, normalize_dynamic, run_trace


@dataclass
class Divergence:
    """Where two runs first disagree."""

    stage: str  # "graph vs eager" or "pass <name>"
    node: str  # the node's text form
    source: Optional[str]  # user file:line that created it
    pass_name: Optional[str]  # the pass that created the node (None: traced)
    detail: str

    def __str__(self):
        where = f" (from {self.source})" if self.source else ""
        made = f", node created by pass {self.pass_name}" if self.pass_name else ""
        return f"{self.stage}: first diverging node {self.node}{where}{made}: {self.detail}"


@dataclass
class VerifyReport:
    """The result of verify(): ok, the first divergence if any, and what was compared."""

    ok: bool
    divergence: Optional[Divergence]
    passes: list = field(default_factory=list)  # [(pass name, changed)]
    compared: int = 0  # values compared
    float64_error: float = 0.0  # max |graph - float64 graph| / (1 + |float64|) over outputs

    def __str__(self):
        head = "verify: OK" if self.ok else f"verify: FAILED\n  {self.divergence}"
        changed = [n for n, c in self.passes if c]
        return (f"{head}\n  {self.compared} values compared; passes that changed the graph: "
                f"{changed or 'none'}; max output error vs float64: {self.float64_error:.3g}")


def _tol(a: np.ndarray) -> tuple:
    if a.dtype == np.float64:
        return 1e-9, 1e-9
    return 1e-4, 1e-5


def _compare(got: np.ndarray, want: np.ndarray) -> Optional[str]:
    """None if equal within tolerance, else a description of the difference."""
    if got.shape != want.shape:
        return f"shape {list(got.shape)} vs {list(want.shape)}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} vs {want.dtype}"
    if got.dtype.kind != "f":
        if not np.array_equal(got, want):
            return f"{int(np.sum(got != want))} of {got.size} elements differ"
        return None
    rtol, atol = _tol(got)
    finite = np.abs(want[np.isfinite(want)])
    scale = float(finite.max()) if finite.size else 0.0
    if not np.array_equal(np.isinf(got) & (got > 0), np.isinf(want) & (want > 0)) or \
            not np.array_equal(np.isinf(got) & (got < 0), np.isinf(want) & (want < 0)):
        return "the infinities differ"
    if np.allclose(got, want, rtol=rtol, atol=atol * max(1.0, scale), equal_nan=True):
        return None
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    i = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
    return (f"max abs difference {float(np.nanmax(diff)):.3g} at index {list(map(int, i))} "
            f"(got {got[i]!r}, expected {want[i]!r})")


def _run(graph, inputs, float64=False) -> tuple:
    vals: dict = {}
    outs = Interpreter(graph, float64=float64).run(
        inputs, on_value=lambda v, t: vals.__setitem__(v.name, np.array(t._data)))
    return vals, [np.array(o._data) for o in outs]


def verify(model, inputs, *, passes: Optional[Sequence[Callable]] = None, dynamic_dims=None,
           raise_on_error: bool = False) -> VerifyReport:
    """Compares eager, the traced graph and the optimized graph on `inputs`, node by node."""
    ins = _as_inputs(inputs)
    dynamic = normalize_dynamic(dynamic_dims, ins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TracerWarning)
        tracer, _, _ = run_trace(model, ins, dynamic, record_values=True)
    g0 = tracer.graph
    params = [t for _, t in tracer.param_inputs]
    all_in = list(ins) + params
    vals0, outs0 = _run(g0, all_in)
    vals64, outs64 = _run(g0, all_in, float64=True)
    f64_err = 0.0
    for o, r in zip(outs0, outs64):
        if o.dtype.kind == "f" and o.size:
            f64_err = max(f64_err, float(np.nanmax(np.abs(o - r) / (1 + np.abs(r)))))
    report = VerifyReport(True, None, float64_error=f64_err)
    for n in g0.nodes:  # graph vs eager
        for v in n.outputs:
            if v.name in tracer.recorded:
                report.compared += 1
                msg = _compare(vals0[v.name], tracer.recorded[v.name])
                if msg is not None:
                    report.ok = False
                    report.divergence = Divergence("graph vs eager", n.format(), n.source, None,
                                                   msg + _f64_note(vals0[v.name], tracer.recorded[v.name],
                                                                   vals64.get(v.name)))
                    return _finish(report, raise_on_error)
    g = g0.copy()

    applied: list = []

    def check(name, graph):
        applied.append((name, True))
        vals, _ = _run(graph, all_in)
        for n in graph.nodes:
            for v in n.outputs:
                ref_name = v.name if v.name in vals0 else graph.value_origin.get(v.name)
                if ref_name not in vals0:
                    continue
                report.compared += 1
                msg = _compare(vals[v.name], vals0[ref_name])
                if msg is not None:
                    detail = msg + (f" (compared with %{ref_name} of the traced graph)"
                                    if ref_name != v.name else "")
                    detail += _f64_note(vals[v.name], vals0[ref_name], vals64.get(ref_name))
                    report.ok = False
                    report.divergence = Divergence(f"after pass {name}", n.format(), n.source,
                                                   n.meta.get("pass"), detail)
                    raise _Stop()

    try:
        report.passes = run_passes(g, DEFAULT_PASSES if passes is None else passes, check=False,
                                   on_pass=check)
    except _Stop:
        report.passes = applied
    return _finish(report, raise_on_error)


class _Stop(Exception):
    pass


def _f64_note(got, want, ref64) -> str:
    if ref64 is None or got.shape != ref64.shape or got.dtype.kind != "f":
        return ""
    e1 = float(np.nanmax(np.abs(got - ref64))) if got.size else 0.0
    e2 = float(np.nanmax(np.abs(want - ref64))) if want.size else 0.0
    return f"; vs the float64 run: this value is off by {e1:.3g}, the reference by {e2:.3g}"


def _finish(report: VerifyReport, raise_on_error: bool) -> VerifyReport:
    if raise_on_error and not report.ok:
        raise AssertionError(str(report))
    return report


__all__ = ["verify", "VerifyReport", "Divergence"]
