"""fw.profiler around graph-runtime calls: one timed event per node with FLOPs and bytes, a
summary table, and a Chrome trace that loads as JSON."""

from __future__ import annotations

import json

import numpy as np

import framework as fw
from framework.jit import runtime as rt
from tests.runtime.models import mlp_graph


def test_profile_records_every_node_with_flops_and_bytes(tmp_path):
    graph = mlp_graph()
    compiled = rt.compile(graph)
    x = np.ones((4, 16), np.float32)
    with fw.profiler.profile() as p:
        compiled.run([x])
        compiled.run([x])
    calls = [n for n in graph.nodes if n.op == "call"]
    graph_events = [e for e in p.events if e.kind == "graph"]
    assert [e.name for e in graph_events] == [n.target for n in calls] * 2
    first_linear = graph_events[0]
    assert first_linear.flops == 2 * 4 * 32 * 16
    assert first_linear.nbytes == (4 * 16 + 32 * 16 + 32 + 4 * 32) * 4
    assert all(e.dur_us >= 0 for e in graph_events)
    table = p.table()
    assert "linear" in table and "GFLOP/s" in table
    p.export_chrome_trace(tmp_path / "t.json")
    trace = json.loads((tmp_path / "t.json").read_text())
    assert len([e for e in trace["traceEvents"] if e["ph"] == "X"]) == len(graph_events)


def test_no_events_outside_a_profile():
    compiled = rt.compile(mlp_graph())
    with fw.profiler.profile() as p:
        pass
    compiled.run([np.ones((2, 16), np.float32)])
    assert p.events == []
    assert fw.profiler.active() == []
