"""Views without copies in the runtime (csrc/runtime/planner.h): the outputs of reshape, clone
and contiguous selects live inside their input's buffer (an "alias"), their kernels are
skipped, and the root's arena lifetime covers every alias. Graphs built with the IR API and
traced models are checked against numpy / torch, with aliasing on and off, and the memory
plan shows the aliases and a smaller peak."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from framework.jit import runtime as rt
from framework.jit.ir import Graph, TensorSpec as Spec
from framework.jit.symbolic import SymInt

F32 = fw.float32


def _entries(compiled, shapes):
    entries, peak = compiled.plan_entries(shapes)
    return {e["name"]: e for e in entries}, [e["name"] for e in entries], peak


def _arena_total(by_name):
    return sum(e["nbytes"] for e in by_name.values() if e["placement"] == "arena")


def _run_both(graph, inputs):
    """Outputs with aliasing on and off (they must agree), plus the aliasing CompiledGraph."""
    on, off = rt.compile(graph), rt.compile(graph, alias_views=False)
    got = [o.numpy() for o in on.run(inputs)]
    ref = [o.numpy() for o in off.run(inputs)]
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    return got, on, off


def _check_lifetimes(compiled, shapes):
    """Every alias's root outlives the alias's last user; arena values never overlap."""
    by_name, names, _ = _entries(compiled, shapes)
    for e in by_name.values():
        if e["placement"] != "alias":
            continue
        root = by_name[names[e["alias_of"]]]
        assert root["placement"] != "alias", f"%{e['name']}: alias of an alias"
        assert e["offset"] + e["nbytes"] <= root["nbytes"], f"%{e['name']} lies outside %{root['name']}"
        if root["placement"] == "arena":
            assert root["last_node"] >= e["last_node"], f"%{root['name']} dies before its alias %{e['name']}"
    arena = [e for e in by_name.values() if e["placement"] == "arena"]
    for i, a in enumerate(arena):
        for b in arena[i + 1:]:
            if a["first_node"] <= b["last_node"] and b["first_node"] <= a["last_node"]:
                assert (a["offset"] + max(a["nbytes"], 1) <= b["offset"]
                        or b["offset"] + max(b["nbytes"], 1) <= a["offset"]), (a["name"], b["name"])


def test_aliases_consumed_by_later_nodes():
    # x[2,12] -> relu -> reshape [2,3,4] -> select(0, -1) [3,4] -> clone -> mul w -> out;
    # a non-contiguous select (dim 1 of [2,3,4]) keeps its kernel.
    g = Graph()
    x = g.add_input("x", Spec((2, 12), F32))
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    r = g.call("relu", [x]).output
    v = g.call("reshape", [r], ((2, 3, 4),), names=["v"]).output
    s = g.call("select", [v], (0, -1), names=["s"]).output
    c = g.call("clone", [s], names=["c"]).output
    m = g.call("mul", [c, g.add_const(w, value_name="w")], names=["m"]).output
    ns = g.call("select", [v], (1, 1), names=["ns"]).output
    n2 = g.call("neg", [ns], names=["n2"]).output
    g.set_output([m, n2])
    xs = np.random.default_rng(0).standard_normal((2, 12)).astype(np.float32)
    (got_m, got_n), on, off = _run_both(g, [xs])
    relu = np.maximum(xs, 0).reshape(2, 3, 4)
    np.testing.assert_allclose(got_m, relu[-1] * w, rtol=1e-6)
    np.testing.assert_allclose(got_n, -relu[:, 1], rtol=1e-6)
    by_name, names, peak = _entries(on, [(2, 12)])
    assert by_name["v"]["placement"] == "alias" and names[by_name["v"]["alias_of"]] == r.name
    assert by_name["s"]["placement"] == "alias" and by_name["s"]["offset"] == 12 * 4
    assert by_name["c"]["placement"] == "alias" and names[by_name["c"]["alias_of"]] == r.name
    assert by_name["ns"]["placement"] == "arena"  # strided: the kernel copies it
    _check_lifetimes(on, [(2, 12)])
    _, _, peak_off = _entries(off, [(2, 12)])
    assert peak < peak_off
    text = on.memory_plan([(2, 12)])
    assert f"alias of %{r.name} +48" in text and "(alias: not run)" in text
    assert "alias" not in off.memory_plan([(2, 12)])


def test_alias_outputs_and_aliases_of_outputs():
    # r is a graph output and the root of aliases; reshape / select / clone outputs that are
    # graph outputs are written by their kernels into the caller's buffers.
    g = Graph()
    x = g.add_input("x", Spec((1, 3, 4), F32))
    r = g.call("relu", [x], names=["r"]).output
    v = g.call("reshape", [r], ((12,),), names=["v"]).output
    s = g.call("select", [r], (1, 2), names=["s"]).output
    c = g.call("clone", [s], names=["c"]).output
    e = g.call("exp", [v], names=["e"]).output
    cv = g.call("reshape", [c], ((2, 2),), names=["cv"]).output
    g.set_output([r, v, c, e, cv, r])
    xs = np.random.default_rng(1).standard_normal((1, 3, 4)).astype(np.float32)
    got, on, _ = _run_both(g, [xs])
    relu = np.maximum(xs, 0)
    for out, want in zip(got, [relu, relu.reshape(12), relu[:, 2], np.exp(relu.reshape(12)),
                               relu[:, 2].reshape(2, 2), relu]):
        np.testing.assert_allclose(out, want, rtol=1e-6)
    by_name, names, _ = _entries(on, [(1, 3, 4)])
    assert [by_name[n]["placement"] for n in ("r", "v", "c", "e", "cv")] == ["output"] * 5
    assert by_name["s"]["placement"] == "alias" and names[by_name["s"]["alias_of"]] == "r"
    _check_lifetimes(on, [(1, 3, 4)])


def test_aliases_of_inputs_and_constants():
    g = Graph()
    x = g.add_input("x", Spec((2, 6), F32))
    k = np.arange(18, dtype=np.float32).reshape(3, 6) - 4
    kc = g.add_const(k, value_name="k")
    xv = g.call("reshape", [x], ((3, 4),), names=["xv"]).output
    y = g.call("relu", [xv], names=["y"]).output
    ks = g.call("select", [kc], (0, 2), names=["ks"]).output           # const row 2
    xs1 = g.call("select", [x], (0, 1), names=["xs1"]).output          # input row 1
    a = g.call("add", [ks, xs1], (1,), names=["a"]).output
    xc = g.call("clone", [x], names=["xc"]).output                     # a graph output: copied
    kr = g.call("reshape", [kc], ((18,),), names=["kr"]).output        # a graph output: copied
    g.set_output([y, a, xc, kr, x])
    xs = np.random.default_rng(2).standard_normal((2, 6)).astype(np.float32)
    got, on, _ = _run_both(g, [xs])
    for out, want in zip(got, [np.maximum(xs.reshape(3, 4), 0), k[2] + xs[1], xs, k.reshape(18), xs]):
        np.testing.assert_allclose(out, want, rtol=1e-6)
    by_name, names, _ = _entries(on, [(2, 6)])
    assert names[by_name["xv"]["alias_of"]] == "x" and names[by_name["xs1"]["alias_of"]] == "x"
    assert names[by_name["ks"]["alias_of"]] == "k" and by_name["ks"]["offset"] == 2 * 6 * 4
    assert by_name["xc"]["placement"] == "output" and by_name["kr"]["placement"] == "output"
    assert got[4] is not xs and not np.shares_memory(got[2], xs)


def test_chained_aliases_resolve_to_the_root_with_summed_offsets():
    # relu [4,6] -> reshape [2,2,6] -> select(0, 1) [2,6] (+48 B) -> reshape [1,12]
    #   -> select(1, 5) [] (+20 B) -> mul; plus select on dim 1 behind a size-1 dim.
    g = Graph()
    x = g.add_input("x", Spec((4, 6), F32))
    r = g.call("relu", [x], names=["r"]).output
    a = g.call("reshape", [r], ((2, 2, 6),), names=["a"]).output
    b = g.call("select", [a], (0, 1), names=["b"]).output
    c = g.call("reshape", [b], ((1, 12),), names=["c"]).output
    d = g.call("select", [c], (1, 5), names=["d"]).output
    e = g.call("clone", [d], names=["e"]).output
    m = g.call("mul", [r, e], names=["m"]).output
    u = g.call("reshape", [r], ((1, 4, 6),), names=["u"]).output
    t = g.call("select", [u], (1, -2), names=["t"]).output
    n = g.call("neg", [t], names=["n"]).output
    g.set_output([m, n])
    xs = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    (got_m, got_n), on, off = _run_both(g, [xs])
    relu = np.maximum(xs, 0)
    np.testing.assert_allclose(got_m, relu * relu.reshape(2, 2, 6)[1].reshape(1, 12)[0, 5], rtol=1e-6)
    np.testing.assert_allclose(got_n, -relu.reshape(1, 4, 6)[:, -2], rtol=1e-6)
    by_name, names, peak = _entries(on, [(4, 6)])
    for v, off_b in (("a", 0), ("b", 48), ("c", 48), ("d", 68), ("e", 68), ("u", 0), ("t", 48)):
        assert by_name[v]["placement"] == "alias" and names[by_name[v]["alias_of"]] == "r", v
        assert by_name[v]["offset"] == off_b, v
    _check_lifetimes(on, [(4, 6)])
    assert peak < _entries(off, [(4, 6)])[2]


def test_symbolic_select_index_is_resolved_per_plan():
    g = Graph()
    n = SymInt.input_dim(0, 0)
    x = g.add_input("x", Spec((n, 5), F32))
    r = g.call("relu", [x], names=["r"]).output
    last = g.call("select", [r], (0, n - 1), specs=[Spec((5,), F32)], names=["last"]).output
    y = g.call("mul", [last, last], names=["y"]).output
    g.set_output([y])
    compiled = rt.compile(g)
    for batch in (1, 2, 7):
        xs = np.random.default_rng(batch).standard_normal((batch, 5)).astype(np.float32)
        np.testing.assert_allclose(compiled.run([xs])[0].numpy(), np.maximum(xs[-1], 0) ** 2, rtol=1e-6)
        by_name, _, _ = _entries(compiled, [(batch, 5)])
        assert by_name["last"]["placement"] == "alias" and by_name["last"]["offset"] == (batch - 1) * 20


def test_bad_select_index_in_a_crafted_graph_still_raises():
    # An index the planner cannot place (out of range for this batch) falls back to the kernel,
    # which names the node and the index; nothing is read out of bounds.
    g = Graph()
    n = SymInt.input_dim(0, 0)
    x = g.add_input("x", Spec((n, 5), F32))
    r = g.call("relu", [x]).output
    s = g.call("select", [r], (0, 3), specs=[Spec((5,), F32)], names=["s"]).output
    g.set_output([g.call("neg", [s]).output])
    compiled = rt.compile(g)
    xs = np.ones((4, 5), np.float32)
    np.testing.assert_array_equal(compiled.run([xs])[0].numpy(), -np.ones(5, np.float32))
    with pytest.raises(RuntimeError, match=r"select.*index 3 out of range for size 2"):
        compiled.run([np.ones((2, 5), np.float32)])
    by_name, _, _ = _entries(compiled, [(2, 5)])
    assert by_name["s"]["placement"] == "arena"


def test_dtype_changing_copy_is_not_an_alias():
    g = Graph()
    x = g.add_input("x", Spec((3,), F32))
    y = g.call("to", [x], (fw.float64.code,), names=["y"]).output
    g.set_output([g.call("neg", [y]).output])
    compiled = rt.compile(g)
    xs = np.array([1.5, -2, 3], np.float32)
    np.testing.assert_array_equal(compiled.run([xs])[0].numpy(), -xs.astype(np.float64))
    assert _entries(compiled, [(3,)])[0]["y"]["placement"] == "arena"


class _Heads(fw.nn.Module):
    """qkv projection split the way torch's MultiheadAttention does (select on dim 0)."""

    def __init__(self, lib, c=8):
        super().__init__()
        self.c = c
        self.qkv = lib.nn.Linear(c, 3 * c)

    def forward(self, x):
        b, t, c = x.shape
        p = self.qkv(x).unflatten(-1, (3, c)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()
        q, k, v = p[0], p[1], p[2]
        q = q.view(b, t, 2, c // 2).clone()
        return (q.reshape(b, t, c) * k + v).flatten(1)


def test_traced_model_with_symbolic_batch_matches_torch():
    fw.manual_seed(0)
    fm = _Heads(fw)
    x2 = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    traced = fw.jit.trace(fm, (fw.from_numpy(x2),), check_trace=False, dynamic_dims={0: [0]}).optimize()
    on, off = rt.compile(traced.graph), rt.compile(traced.graph, alias_views=False)
    w = fm.qkv.weight.detach().numpy()
    bias = fm.qkv.bias.detach().numpy()
    for batch in (2, 3, 1):
        xs = np.random.default_rng(batch).standard_normal((batch, 5, 8)).astype(np.float32)
        xt = torch.from_numpy(xs)
        p = torch.nn.functional.linear(xt, torch.from_numpy(w), torch.from_numpy(bias))
        q, k, v = p.split(8, dim=-1)
        want = (q * k + v).flatten(1).numpy()
        np.testing.assert_allclose(on.run([xs])[0].numpy(), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(on.run([xs])[0].numpy(), off.run([xs])[0].numpy())
        by_name, _, peak = _entries(on, [(batch, 5, 8)])
        assert sum(e["placement"] == "alias" for e in by_name.values()) >= 4
        _check_lifetimes(on, [(batch, 5, 8)])
        # the peak is linear + permute live together either way; the other buffers are gone
        off_entries, _, off_peak = _entries(off, [(batch, 5, 8)])
        assert peak <= off_peak
        assert _arena_total(by_name) < _arena_total(off_entries)


@pytest.mark.parametrize("name", ["transformer", "gpt"])
def test_benchmark_models_match_torch(name):
    from benchmarks.models import MODELS
    from benchmarks.run import to_fw_state

    builder = MODELS[name][0]
    torch.manual_seed(0)
    kw = dict(d_model=32, nhead=4, layers=2) if name == "gpt" else dict(d_model=32, nhead=4, ff=64, layers=2)
    if name == "gpt":
        kw.update(vocab=50, ctx=16)
    tm = builder(torch, **kw).eval()
    fm = builder(fw, **kw)
    fm.load_state_dict(to_fw_state(tm.state_dict()))
    fm.eval()
    x = np.random.default_rng(0).standard_normal((2, 16, 32)).astype(np.float32)
    traced = fw.jit.trace(fm, (fw.from_numpy(x),), check_trace=False).optimize()
    compiled = rt.compile(traced.graph)
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    for _ in range(2):
        np.testing.assert_allclose(compiled.run([x])[0].numpy(), want, rtol=1e-4, atol=1e-4)
    by_name, _, peak = _entries(compiled, [x.shape])
    assert any(e["placement"] == "alias" for e in by_name.values())
    _check_lifetimes(compiled, [x.shape])
    off_entries, _, off_peak = _entries(rt.compile(traced.graph, alias_views=False), [x.shape])
    assert peak <= off_peak and _arena_total(by_name) < _arena_total(off_entries)
    with fw.profiler.profile() as p:
        compiled.run([x])
    assert len([e for e in p.events if e.kind == "graph"]) == len(compiled.nodes())


def test_fwrun_plan_shows_aliases_and_runs_them(tmp_path):
    from tests.runtime.test_fwrun import FWRUN, _fwrun

    if not FWRUN.exists():
        pytest.skip("fwrun not built (python setup.py build_ext)")
    g = Graph()
    x = g.add_input("x", Spec((2, 6), F32))
    r = g.call("relu", [x], names=["r"]).output
    s = g.call("select", [r], (0, 1), names=["s"]).output
    g.set_output([g.call("neg", [s], names=["y"]).output])
    rt.save(g, tmp_path / "m.fwm")
    plan = _fwrun(tmp_path / "m.fwm", "--plan", "--shape", "2,6")
    assert plan.returncode == 0 and "alias of %r +24" in plan.stdout, plan.stdout + plan.stderr
    plain = _fwrun(tmp_path / "m.fwm", "--plan", "--shape", "2,6", "--no-alias-views")
    assert plain.returncode == 0 and "alias" not in plain.stdout, plain.stdout + plain.stderr
    xs = np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", xs)
    run = _fwrun(tmp_path / "m.fwm", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), -np.maximum(xs[1], 0), rtol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_permutes_that_only_move_size_one_dims_alias(batch):
    # (N, T, C) -> (T, N, C) keeps the memory order when N is 1 (seq-first attention layouts at
    # batch 1): an alias then, a copy for N > 1; (T, C) transposes always copy
    g = Graph()
    n = SymInt.input_dim(0, 0)
    x = g.add_input("x", Spec((n, 4, 6), F32))
    r = g.call("relu", [x], names=["r"]).output
    p = g.call("permute", [r], ((1, 0, 2),), names=["p"]).output
    t = g.call("permute", [p], ((0, 2, 1),), names=["t"]).output  # swaps 6 and N: order kept only for N == 1
    u = g.call("permute", [r], ((0, 2, 1),), names=["u"]).output  # swaps 4 and 6: always a copy
    y = g.call("add", [g.call("reshape", [t], ((4, 6 * batch),)).output,
                       g.call("reshape", [u], ((4, 6 * batch),)).output], names=["y"]).output
    g.set_output([y, g.call("neg", [p], names=["q"]).output])
    xs = np.random.default_rng(1).standard_normal((batch, 4, 6)).astype(np.float32)
    (got_y, got_q), on, _ = _run_both(g, [xs])
    rx = np.maximum(xs, 0)
    np.testing.assert_array_equal(got_q, -rx.transpose(1, 0, 2))
    want = rx.transpose(1, 0, 2).transpose(0, 2, 1).reshape(4, -1) + rx.transpose(0, 2, 1).reshape(4, -1)
    np.testing.assert_allclose(got_y, want, rtol=1e-6)
    by_name, _, _ = _entries(on, [(batch, 4, 6)])
    assert by_name["p"]["placement"] == ("alias" if batch == 1 else "arena")
    assert by_name["t"]["placement"] == ("alias" if batch == 1 else "arena")
    assert by_name["u"]["placement"] == "arena"
    _check_lifetimes(on, [(batch, 4, 6)])
