"""fw.profiler: where the time of graph-runtime calls goes, node by node.

    with fw.profiler.profile() as p:
        compiled.run([x])            # or a traced module running on the C++ runtime
    print(p.table())                 # per op: calls, total/avg time, FLOPs, bytes, GFLOP/s
    p.export_chrome_trace("t.json")  # chrome://tracing or https://ui.perfetto.dev

Graph calls are timed in C++ around each kernel (framework.jit.runtime records them while a
profile is active). Eager ops dispatched inside the block are recorded as instant events
with their FLOPs and bytes (eager dispatch has no timing hook yet). FLOPs count a
multiply-add as 2 for GEMM and convolution ops and one per output element otherwise.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

_ACTIVE: list = []
_LOCK = threading.Lock()

_GEMM = {"matmul", "linear", "addmm", "baddbmm", "bmm", "linear_act"}
_CONV = {"conv1d", "conv2d", "conv2d_act", "conv_transpose2d"}
# Convs whose output is pooled: their FLOPs need the conv's own output size, from the attrs.
_POOLED_CONV = {"conv2d_act_maxpool"}


@dataclass
class Event:
    """One kernel run: op name, kernel, start and duration (microseconds), FLOPs, bytes."""

    name: str
    kernel: str
    start_us: float
    dur_us: float
    flops: int
    nbytes: int
    shapes: list = field(default_factory=list)
    source: str = ""
    kind: str = "graph"  # "graph" or "eager"


def _numel(shape) -> int:
    return int(math.prod(shape)) if shape else 1


def node_flops(op: str, in_shapes: list, out_shapes: list, attrs=None) -> int:
    """FLOPs of one node from its input and output shapes (and, for a conv with a fused pool,
    its attributes: stride, padding, dilation first)."""
    out = _numel(out_shapes[0]) if out_shapes else 0
    if op in _POOLED_CONV:
        if attrs is None or len(in_shapes) < 2 or len(in_shapes[0]) != 4 or len(in_shapes[1]) != 4:
            return 0  # unknown
        from .ops.conv import _conv_out

        (n, _, h, w), wt = in_shapes[0], in_shapes[1]
        s, p, d = attrs[0], attrs[1], attrs[2]
        conv_out = n * wt[0] * _conv_out(h, wt[2], s[0], p[0], p[2], d[0]) * _conv_out(w, wt[3], s[1], p[1], p[3], d[1])
        return 2 * conv_out * (_numel(wt) // max(int(wt[0]), 1))
    if op in _GEMM and in_shapes and in_shapes[0]:
        return 2 * out * int(in_shapes[0][-1])
    if op in _CONV and len(in_shapes) > 1 and in_shapes[1]:
        w = in_shapes[1]
        per_out = _numel(w) // max(int(w[0]), 1) if op != "conv_transpose2d" else _numel(w[1:])
        return 2 * out * per_out
    if op == "scaled_dot_product_attention" and len(in_shapes) > 1 and in_shapes[0] and in_shapes[1]:
        q, k = in_shapes[0], in_shapes[1]  # (..., L, E), (..., S, E); out (..., L, Ev)
        ev = int(out_shapes[0][-1]) if out_shapes[0] else 1
        return 2 * (out // max(ev, 1)) * int(k[-2]) * (int(q[-1]) + ev)
    return out


class profile:
    """Context manager collecting Events from graph-runtime calls (and eager ops)."""

    def __init__(self, record_eager: bool = True):
        self.events: list[Event] = []
        self.record_eager = record_eager
        self._t0 = 0.0

    def __enter__(self) -> "profile":
        self._t0 = time.perf_counter()
        with _LOCK:
            _ACTIVE.append(self)
        if self.record_eager:
            from .ops.registry import DISPATCH_HOOKS

            DISPATCH_HOOKS.append(self._eager_hook)
        return self

    def __exit__(self, *exc) -> None:
        with _LOCK:
            _ACTIVE.remove(self)
        if self.record_eager:
            from .ops.registry import DISPATCH_HOOKS

            DISPATCH_HOOKS.remove(self._eager_hook)

    def _now_us(self) -> float:
        return (time.perf_counter() - self._t0) * 1e6

    def _eager_hook(self, op, inputs, attrs, outputs) -> None:
        ins = [tuple(x.shape) for x in inputs if hasattr(x, "shape")]
        outs = [tuple(o.shape) for o in outputs if o is not None]
        nbytes = sum(x.numel() * x.element_size() for x in [*inputs, *outputs] if hasattr(x, "numel"))
        self.events.append(Event(op.name, op.kernel or "", self._now_us(), 0.0,
                                 node_flops(op.name, ins, outs, attrs), nbytes, outs, "", "eager"))

    def add_graph_call(self, compiled, input_shapes, timings, call_start: float) -> None:
        """Records one runtime call from its per-node (node, start s, duration s) timings."""
        entries, _ = compiled.plan_entries(input_shapes)
        nodes = compiled.nodes()
        base = (call_start - self._t0) * 1e6
        for index, start, seconds in timings:
            op, kernel, source, ins, outs = nodes[index]
            in_shapes = [entries[i]["shape"] for i in ins if i >= 0]
            out_shapes = [entries[i]["shape"] for i in outs]
            nbytes = sum(entries[i]["nbytes"] for i in [*ins, *outs] if i >= 0)
            attrs = compiled.node_int_attrs(index) if op in _POOLED_CONV else None
            self.events.append(Event(op, kernel, base + start * 1e6, seconds * 1e6,
                                     node_flops(op, in_shapes, out_shapes, attrs), nbytes, out_shapes, source))

    def summary(self) -> list:
        """[(op, calls, total us, FLOPs, bytes)] sorted by total time, then FLOPs."""
        agg: dict = {}
        for e in self.events:
            a = agg.setdefault(e.name, [0, 0.0, 0, 0])
            a[0] += 1
            a[1] += e.dur_us
            a[2] += e.flops
            a[3] += e.nbytes
        rows = [(k, *v) for k, v in agg.items()]
        return sorted(rows, key=lambda r: (-r[2], -r[3]))

    def table(self, row_limit: Optional[int] = 30) -> str:
        """A summary table per op: calls, total and average time, FLOPs, bytes, GFLOP/s."""
        rows = self.summary()
        total = sum(r[2] for r in rows) or 1.0
        lines = [f"{'op':<24}{'calls':>7}{'total ms':>11}{'avg us':>10}{'%':>7}"
                 f"{'MFLOPs':>11}{'MB':>9}{'GFLOP/s':>9}"]
        for name, calls, us, flops, nbytes in rows[:row_limit]:
            rate = f"{flops / us / 1e3:9.2f}" if us > 0 else f"{'-':>9}"
            lines.append(f"{name:<24}{calls:>7}{us / 1e3:>11.3f}{us / calls:>10.1f}{100 * us / total:>7.1f}"
                         f"{flops / 1e6:>11.2f}{nbytes / 1e6:>9.2f}{rate}")
        lines.append(f"{'total':<24}{sum(r[1] for r in rows):>7}{total / 1e3:>11.3f}")
        return "\n".join(lines)

    def export_chrome_trace(self, path) -> None:
        """Writes the events in the Chrome trace-event JSON format (chrome://tracing, Perfetto)."""
        events = []
        for e in self.events:
            ev = {"name": e.name, "cat": e.kind, "ph": "X" if e.kind == "graph" else "i",
                  "ts": e.start_us, "pid": 0, "tid": 0 if e.kind == "graph" else 1,
                  "args": {"kernel": e.kernel, "flops": e.flops, "bytes": e.nbytes,
                           "shapes": [list(s) for s in e.shapes], "source": e.source}}
            if e.kind == "graph":
                ev["dur"] = e.dur_us
            else:
                ev["s"] = "t"
            events.append(ev)
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)


def active() -> list:
    """The profiles currently recording."""
    return list(_ACTIVE)


__all__ = ["profile", "Event", "node_flops", "active"]
