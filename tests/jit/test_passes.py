"""Each pass: the graph gets the property, the changed flag is right (True, then False on
a second run), and the interpreter's outputs are unchanged on random inputs."""

import numpy as np
import pytest

import framework as fw
from framework import config
from framework.jit import passes as P
from framework.jit.interpreter import Interpreter
from framework.jit.ir import Graph, TensorSpec
from framework.jit.symbolic import SymInt
from tests.jit.models import MLP, gelu_tanh_mlp

N = SymInt.input_dim(0, 0)
rng = np.random.default_rng(0)


def _rand(*shape):
    return fw.from_numpy(rng.standard_normal(shape).astype(np.float32))


def _outputs(graph, inputs):
    return [o.numpy().copy() for o in Interpreter(graph).run(inputs)]


def _apply(graph, p, inputs):
    """Runs pass p on a copy; checks outputs are unchanged and a second run is a no-op."""
    before = _outputs(graph, inputs)
    g = graph.copy()
    changed = p(g)
    g.lint()
    after = _outputs(g, inputs)
    for a, b in zip(after, before):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return g, changed


def _const(g, value):
    return g.add_const(np.asarray(value, dtype=np.float32))


def test_dead_code_elimination():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    dead = g.call("exp", [x]).output
    g.call("neg", [dead])
    _const(g, np.ones(3))
    g.set_output([g.call("relu", [x]).output])
    g2, changed = _apply(g, P.eliminate_dead_code, [_rand(4, 3)])
    assert changed and [n.target for n in g2.calls()] == ["relu"]
    assert not [n for n in g2.nodes if n.op == "const"]
    assert P.eliminate_dead_code(g2) is False


def test_common_subexpression_elimination():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    a = g.call("exp", [x]).output
    b = g.call("exp", [x]).output
    c1, c2 = _const(g, 2.0), _const(g, 2.0)
    g.set_output([g.call("add", [g.call("mul", [a, c1]).output, g.call("mul", [b, c2]).output], (1,)).output])
    g2, changed = _apply(g, P.eliminate_common_subexpressions, [_rand(4, 3)])
    assert changed and len(g2.calls("exp")) == 1 and len(g2.calls("mul")) == 1
    assert P.eliminate_common_subexpressions(g2) is False


def test_cse_keeps_random_ops_apart():
    g = Graph()
    u1 = g.call("uniform", [], ((3,), 1, 0.0, 1.0, fw.float32.code)).output
    u2 = g.call("uniform", [], ((3,), 1, 0.0, 1.0, fw.float32.code)).output
    g.set_output([u1, u2])
    assert P.eliminate_common_subexpressions(g) is False


def test_constant_folding_includes_shape_ops():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    w = _const(g, rng.standard_normal((3, 2)))
    wt = g.call("permute", [w], ((1, 0),)).output  # shape op on a constant
    s = g.call("mul", [wt, _const(g, 3.0)]).output
    g.set_output([g.call("matmul", [x, g.call("permute", [s], ((1, 0),)).output]).output])
    g2, changed = _apply(g, P.fold_constants, [_rand(5, 3)])
    assert changed and [n.target for n in g2.calls()] == ["matmul"]
    assert P.fold_constants(g2) is False


def test_constant_folding_skips_symbolic_and_huge_results():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    big = g.call("expand", [_const(g, np.ones((1, 1)))], ((4096, 4096),)).output
    f = g.call("full", [], ((N, 3), 1.0, fw.float32.code)).output
    g.set_output([g.call("add", [x, f], (1,)).output, big])
    assert P.fold_constants(g) is False


def test_remove_noops():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3, 4), fw.float32))
    r = g.call("reshape", [x], ((N, 3, 4),)).output  # same shape
    p1 = g.call("permute", [r], ((0, 2, 1),)).output
    p2 = g.call("permute", [p1], ((0, 2, 1),)).output  # undoes p1
    m = g.call("mul", [p2, _const(g, 1.0)]).output
    a = g.call("add", [m, _const(g, np.zeros(4))], (1,)).output
    r1 = g.call("reshape", [a], ((N, 12),)).output
    r2 = g.call("reshape", [r1], ((N, 4, 3),)).output  # chain -> one reshape
    g.set_output([g.call("tanh", [r2]).output])
    g2 = g.copy()
    changed = True
    while changed:  # to its fixed point, with DCE in between
        changed = P.remove_noops(g2)
        P.eliminate_dead_code(g2)
    g2.lint()
    x_ = _rand(2, 3, 4)
    np.testing.assert_allclose(_outputs(g2, [x_])[0], _outputs(g, [x_])[0])
    assert [n.target for n in g2.calls()] == ["reshape", "tanh"]
    assert g2.calls("reshape")[0].inputs[0] is g2.inputs[0]


def test_remove_dropout_only_in_eval_graphs():
    from framework.ops.registry import REGISTRY

    if "dropout" not in REGISTRY:
        pytest.skip("dropout not registered")
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    d = g.call("dropout", [x], (0.5, 7))
    g.set_output([g.call("relu", [d.outputs[0]]).output])
    g.meta["training"] = True
    assert P.remove_dropout(g) is False
    g.meta["training"] = False
    assert P.remove_dropout(g) is True
    assert not g.calls("dropout")
    g.lint()


def test_fuse_matmul_bias_and_linear_activation():
    w1, b1, w2 = _rand(6, 4), _rand(6), _rand(3, 6)
    traced = fw.jit.trace(lambda x: fw.sigmoid(x @ w1.T + b1) @ w2.T, (_rand(5, 4),))
    g = traced.graph
    x_ = [_rand(7, 4)]
    g2 = g.copy()
    P.fold_constants(g2)
    g3, changed = _apply(g2, P.fuse_matmul_bias, x_)
    assert changed and len(g3.calls("linear")) == 2 and not g3.calls("matmul")
    assert g3.calls("linear")[0].inputs[2] is not None
    g4, changed = _apply(g3, P.fuse_linear_activation, x_)
    assert changed and [n.target for n in g4.calls()] == ["linear_act", "linear"]
    assert g4.calls("linear_act")[0].attrs == ("sigmoid",)
    assert P.fuse_linear_activation(g4) is False


@pytest.mark.parametrize("act,fn", [("relu", fw.relu), ("gelu", fw.gelu), ("silu", fw.silu),
                                    ("tanh", fw.tanh)])
def test_linear_activation_each_activation(act, fn):
    w, b = _rand(5, 3), _rand(5)
    traced = fw.jit.trace(lambda x: fn(fw.linear(x, w, b)), (_rand(4, 3),))
    g, changed = _apply(traced.graph, P.fuse_linear_activation, [_rand(2, 3)])
    assert changed and g.calls("linear_act")[0].attrs == (act,)


def test_fuse_elementwise_chain():
    traced = fw.jit.trace(gelu_tanh_mlp, (_rand(4, 6), _rand(8, 6), _rand(8), _rand(2, 8)),
                          dynamic_dims={0: 0})
    g = traced.graph.copy()
    P.fold_constants(g)
    P.fuse_matmul_bias(g)
    n_before = len(g.calls())
    ins = [_rand(3, 6), _rand(8, 6), _rand(8), _rand(2, 8)]
    g2, changed = _apply(g, P.fuse_elementwise, ins)
    fused = g2.calls("fused_elementwise")
    assert changed and len(fused) == 1
    assert len(g2.calls()) < n_before - 5
    assert not any(n.target in ("tanh", "mul") for n in g2.calls())
    assert len(g2.calls("add")) == 1  # the bias add feeds four uses: an input of the fused op
    assert "tanh" in fused[0].meta["expr"]
    assert P.fuse_elementwise(g2) is False


def test_fuse_elementwise_broadcast_inputs_and_shared_values():
    def f(x, y):
        s = fw.sigmoid(x)  # used twice: stays a separate input of the fused op
        return (s * y + 1.0) * s - fw.relu(y)

    traced = fw.jit.trace(f, (_rand(4, 3), _rand(3)), dynamic_dims={0: 0})
    g, changed = _apply(traced.graph, P.fuse_elementwise, [_rand(6, 3), _rand(3)])
    assert changed
    assert len(g.calls("fused_elementwise")) == 1


def test_fuse_elementwise_respects_input_limit():
    xs = [_rand(2, 3) for _ in range(10)]

    def f(*ts):
        acc = ts[0]
        for t in ts[1:]:
            acc = acc * t
        return fw.exp(acc)

    traced = fw.jit.trace(f, xs)
    g, changed = _apply(traced.graph, P.fuse_elementwise, xs)
    assert changed
    for n in g.calls("fused_elementwise"):
        assert sum(v is not None for v in n.inputs) <= 8


def test_pass_manager_fixed_point_and_limit(monkeypatch):
    traced = fw.jit.trace(MLP(), (_rand(4, 8),))
    g = traced.graph.copy()
    log = P.run_passes(g)
    assert any(c for _, c in log) and not any(c for _, c in log[-len(P.DEFAULT_PASSES):])
    assert g.calls("linear_act")
    assert all(n.meta.get("pass") == "fuse_linear_activation" for n in g.calls("linear_act"))
    g0 = traced.graph.copy()
    assert P.run_passes(g0, limit=0) == []
    monkeypatch.setattr(config, "pass_limit", 3)
    g1 = traced.graph.copy()
    assert len(P.run_passes(g1)) == 3


def test_pass_limit_env_knob_is_read(monkeypatch):
    import importlib

    monkeypatch.setenv("FW_PASS_LIMIT", "5")
    cfg = importlib.reload(config)
    try:
        assert cfg.pass_limit == 5
        monkeypatch.setenv("FW_PASS_LIMIT", "x")
        with pytest.raises(ValueError, match="FW_PASS_LIMIT"):
            importlib.reload(config)
    finally:
        monkeypatch.delenv("FW_PASS_LIMIT")
        importlib.reload(config)


def test_pass_that_breaks_invariants_is_named():
    def breaker(graph):
        graph.calls()[0].attrs = (1, 2, 3)
        return True

    g = fw.jit.trace(MLP(), (_rand(4, 8),)).graph.copy()
    with pytest.raises(ValueError, match="pass breaker broke the graph"):
        P.run_passes(g, [breaker])


def test_fold_batch_norm_into_conv_and_linear():
    from framework.ops.registry import REGISTRY

    if "batch_norm" not in REGISTRY:
        pytest.skip("batch_norm not registered yet")
    bn = REGISTRY["batch_norm"].fn
    cw, cb = _rand(4, 3, 3, 3), _rand(4)
    stats = [_rand(4), _rand(4), _rand(4), fw.from_numpy(rng.uniform(0.5, 2, 4).astype(np.float32))]

    def f(x):
        y = fw.conv2d(x, cw, cb, padding=1)
        return bn(y, stats[2], stats[3], stats[0], stats[1], False, 0.1, 1e-5)

    traced = fw.jit.trace(f, (_rand(2, 3, 5, 5),))
    g, changed = _apply(traced.graph, P.fold_batch_norm, [_rand(3, 3, 5, 5)])
    assert changed and not g.calls("batch_norm")


def test_conv_activation_fusion():
    w, b = _rand(4, 3, 3, 3), _rand(4)
    traced = fw.jit.trace(lambda x: fw.silu(fw.conv2d(x, w, b, padding=1)), (_rand(2, 3, 5, 5),))
    g, changed = _apply(traced.graph, P.fuse_linear_activation, [_rand(3, 3, 5, 5)])
    assert changed and [n.target for n in g.calls()] == ["conv2d_act"]
    assert g.calls()[0].attrs[-1] == "silu"


def _conv_pool_graph(fn, shape=(2, 3, 8, 8)):
    traced = fw.jit.trace(fn, (_rand(*shape),))
    g = P.optimize(traced.graph)
    return g, [n.target for n in g.calls()]


@pytest.mark.parametrize("act", [None, "relu"])
def test_conv_pool_fusion(act):
    w, b = _rand(4, 3, 3, 3), _rand(4)
    relu = fw.relu if act else (lambda y: y)

    def f(x):
        return fw.nn.functional.max_pool2d(relu(fw.conv2d(x, w, b, padding=1)), 3, 2, 1)

    traced = fw.jit.trace(f, (_rand(2, 3, 9, 9),))
    g = P.optimize(traced.graph)
    (node,) = g.calls()
    assert node.target == "conv2d_act_maxpool"
    assert node.attrs[4] == (act or "none") and node.attrs[5:] == ((3, 3), (2, 2), (1, 1), (1, 1), False)
    x = _rand(3, 3, 9, 9)
    np.testing.assert_allclose(_outputs(g, [x])[0], _outputs(traced.graph, [x])[0], rtol=1e-5, atol=1e-6)


def test_conv_pool_fusion_takes_a_fused_residual():
    w, b = _rand(4, 3, 3, 3), _rand(4)

    def f(x, r):
        return fw.nn.functional.max_pool2d(fw.relu(fw.conv2d(x, w, b, padding=1) + r), 2)

    traced = fw.jit.trace(f, (_rand(2, 3, 8, 8), _rand(2, 4, 8, 8)))
    g = P.optimize(traced.graph)
    assert [n.target for n in g.calls()] == ["conv2d_act_maxpool"]
    assert g.calls()[0].inputs[3] is not None  # the residual
    ins = [_rand(2, 3, 8, 8), _rand(2, 4, 8, 8)]
    np.testing.assert_allclose(_outputs(g, ins)[0], _outputs(traced.graph, ins)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["gelu", "indices", "two_users"])
def test_conv_pool_fusion_leaves_what_it_cannot_fuse(case):
    w, b = _rand(4, 3, 3, 3), _rand(4)
    F = fw.nn.functional

    def f(x):
        y = fw.conv2d(x, w, b, padding=1)
        if case == "gelu":  # a non-monotonic activation before the pool
            return F.max_pool2d(F.gelu(y), 2)
        if case == "indices":  # the argmax indices are read
            v, i = F.max_pool2d(y, 2, return_indices=True)
            return v, i
        return F.max_pool2d(y, 2), y  # the conv output is needed as it is

    _, targets = _conv_pool_graph(f)
    assert "max_pool2d" in targets and "conv2d_act_maxpool" not in targets, targets
