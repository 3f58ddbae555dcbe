"""The IR: building, printing, linting and editing graphs."""

import numpy as np
import pytest

import framework as fw
from framework.jit.ir import Graph, TensorSpec
from framework.jit.symbolic import SymInt

N = SymInt.input_dim(0, 0)


def _mlp_graph():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 4), fw.float32))
    w = g.add_const(np.ones((3, 4), np.float32), "fc1.weight")
    b = g.add_const(np.zeros((3,), np.float32), "fc1.bias")
    h = g.call("linear", [x, w, b]).output
    r = g.call("relu", [h]).output
    g.set_output([r])
    return g


def test_text_form_is_stable():
    g = _mlp_graph()
    g.lint()
    assert str(g) == (
        "graph(%x: f32[N,4]):\n"
        "  %fc1_weight = const[fc1.weight] : f32[3,4]\n"
        "  %fc1_bias = const[fc1.bias] : f32[3]\n"
        "  %linear = linear(%x, %fc1_weight, %fc1_bias) : f32[N,3]\n"
        "  %relu = relu(%linear) : f32[N,3]\n"
        "  return %relu"
    )


def test_lint_catches_unregistered_target_and_bad_order():
    g = _mlp_graph()
    g.calls("relu")[0].target = "no_such_op"
    with pytest.raises(ValueError, match="not a registered op"):
        g.lint()
    g = _mlp_graph()
    relu = g.calls("relu")[0]
    g.nodes.remove(relu)
    g.nodes.insert(1, relu)
    with pytest.raises(ValueError, match="not defined before its use"):
        g.lint()


def test_lint_catches_wrong_spec_and_duplicate_names():
    g = _mlp_graph()
    g.calls("relu")[0].outputs[0].spec = TensorSpec((N, 5), fw.float32)
    with pytest.raises(ValueError, match="differ from inferred"):
        g.lint()
    g = _mlp_graph()
    g.calls("relu")[0].outputs[0].name = "linear"
    with pytest.raises(ValueError, match="not unique"):
        g.lint()


def test_replace_and_erase_keep_users_consistent():
    g = _mlp_graph()
    relu = g.calls("relu")[0]
    lin = g.calls("linear")[0]
    g.replace_all_uses(relu.output, lin.output)
    g.erase(relu)
    g.lint()
    assert g.outputs == [lin.output]
    with pytest.raises(ValueError, match="still used"):
        g.erase(lin)


def test_copy_is_independent():
    g = _mlp_graph()
    h = g.copy()
    h.lint()
    assert str(h) == str(g)
    h.erase(h.nodes[1]) if not h.nodes[1].outputs[0].users else None
    relu = h.calls("relu")[0]
    h.replace_all_uses(relu.output, relu.inputs[0])
    h.erase(relu)
    h.lint()
    g.lint()
    assert len(g.calls("relu")) == 1


def test_inserting_before_and_dot():
    g = _mlp_graph()
    relu = g.calls("relu")[0]
    with g.inserting_before(relu):
        t = g.call("tanh", [relu.inputs[0]])
    g.set_input(relu, 0, t.output)
    g.lint()
    assert g.nodes.index(t) < g.nodes.index(relu)
    dot = g.to_dot()
    assert dot.startswith("digraph") and "tanh" in dot
