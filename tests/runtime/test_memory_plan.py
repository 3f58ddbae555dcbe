"""The memory plan: live values never overlap, reuse keeps the peak low, inputs/outputs/consts
stay out of the arena, symbolic shapes give one cached plan per input-shape signature."""

from __future__ import annotations

import numpy as np
import pytest

from framework.jit import runtime as rt
from tests.runtime.models import chain_graph, cnn_graph, mlp_eager, mlp_graph


def _assert_no_overlap(entries):
    arena = [e for e in entries if e["placement"] == "arena"]
    for e in arena:
        assert e["offset"] % 64 == 0, f"%{e['name']} at unaligned offset {e['offset']}"
    for i, a in enumerate(arena):
        for b in arena[i + 1:]:
            live_together = a["first_node"] <= b["last_node"] and b["first_node"] <= a["last_node"]
            a_end = a["offset"] + max(a["nbytes"], 1)
            b_end = b["offset"] + max(b["nbytes"], 1)
            disjoint = a_end <= b["offset"] or b_end <= a["offset"]
            assert not live_together or disjoint, f"%{a['name']} and %{b['name']} overlap while both live"


def test_live_values_never_overlap_on_a_chain():
    graph, _, inputs = chain_graph(batch=3, depth=10)
    entries, peak = rt.compile(graph).plan_entries([x.shape for x in inputs])
    _assert_no_overlap(entries)
    assert peak >= max(e["offset"] + e["nbytes"] for e in entries if e["placement"] == "arena")


@pytest.mark.parametrize("make", [chain_graph, cnn_graph], ids=["chain", "resnet_style_cnn"])
def test_peak_is_at_most_60_percent_of_all_intermediates(make):
    graph, expected, inputs = make()
    compiled = rt.compile(graph)
    entries, peak = compiled.plan_entries([x.shape for x in inputs])
    _assert_no_overlap(entries)
    total = sum(e["nbytes"] for e in entries if e["placement"] == "arena")
    assert peak <= 0.6 * total, f"peak {peak} vs intermediates {total}"
    np.testing.assert_allclose(compiled.run(inputs)[0].numpy(), expected[0], rtol=1e-5, atol=1e-5)


def test_inputs_consts_and_outputs_are_not_in_the_arena():
    graph = mlp_graph()
    entries, _ = rt.compile(graph).plan_entries([(5, 16)])
    kinds = {e["name"]: e["placement"] for e in entries}
    assert kinds[graph.inputs[0].name] == "input"
    assert kinds[graph.outputs[0].name] == "output"
    consts = [n.outputs[0].name for n in graph.nodes if n.op == "const"]
    assert all(kinds[c] == "const" for c in consts)


def test_plan_text_names_every_value_and_the_peak():
    graph = mlp_graph()
    text = rt.compile(graph).memory_plan([(2, 16)])
    for n in graph.nodes:
        for v in n.outputs:
            assert f"%{v.name}" in text
    assert "peak arena bytes:" in text
    assert "arena+0" in text and "input" in text and "output #0" in text and "const" in text


@pytest.mark.parametrize("batch", [1, 2, 7, 33])
def test_symbolic_batch_runs_at_any_batch(batch):
    graph = mlp_graph()
    compiled = rt.compile(graph)
    x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
    (y,) = compiled.run([x])
    np.testing.assert_allclose(y.numpy(), mlp_eager(graph, x), rtol=1e-5, atol=1e-5)
    assert compiled.output_shapes([(batch, 16)]) == [(batch, 4)]


def test_plan_cache_is_bounded():
    compiled = rt.compile(mlp_graph(), plan_cache=4)
    for batch in range(1, 20):
        compiled.run([np.zeros((batch, 16), np.float32)])
    assert compiled.cached_plans == 4


def test_wrong_input_shape_and_dtype_raise():
    compiled = rt.compile(mlp_graph())
    with pytest.raises(RuntimeError, match=r"input 0 .*dim 1 must be 16"):
        compiled.run([np.zeros((2, 15), np.float32)])
    with pytest.raises(RuntimeError, match="expected 2 dims"):
        compiled.run([np.zeros((2, 16, 1), np.float32)])
    with pytest.raises(RuntimeError, match="expected dtype float32, got float64"):
        compiled.run([np.zeros((2, 16), np.float64)])
    with pytest.raises(RuntimeError, match="takes 1 inputs, got 2"):
        compiled.run([np.zeros((2, 16), np.float32)] * 2)


def test_memory_limit_is_enforced():
    compiled = rt.compile(mlp_graph(), max_memory=1 << 16)
    compiled.run([np.zeros((4, 16), np.float32)])
    with pytest.raises(RuntimeError, match="memory limit"):
        compiled.run([np.zeros((4096, 16), np.float32)])
