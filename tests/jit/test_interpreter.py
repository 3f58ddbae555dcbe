"""The interpreter: runs graphs through eager ops, evaluates symbolic attrs, frees values
at their last use, and names the node when an op fails."""

import gc
import weakref

import numpy as np
import pytest

import framework as fw
from framework.jit.interpreter import Interpreter
from framework.jit.ir import Graph, TensorSpec
from framework.jit.symbolic import SymInt

N = SymInt.input_dim(0, 0)


def test_symbolic_attrs_are_evaluated_per_call():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 6), fw.float32))
    r = g.call("reshape", [x], ((N * 2, 3),)).output
    g.set_output([g.call("full", [], ((N, 2), 1.5, fw.float32.code)).output, r])
    g.lint()
    for n in (1, 5):
        full, r = Interpreter(g).run([fw.ones(n, 6)])
        assert full.shape == (n, 2) and r.shape == (2 * n, 3)


def test_values_are_freed_after_their_last_use():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    a = g.call("exp", [x]).output
    b = g.call("neg", [a]).output
    c = g.call("tanh", [b]).output
    g.set_output([g.call("relu", [c]).output])
    refs = {}
    gc.disable()
    try:
        inp = fw.ones(2, 3)
        out = Interpreter(g).run([inp], on_value=lambda v, t: refs.__setitem__(v.name, weakref.ref(t)))
        alive = {k for k, r in refs.items() if r() is not None}
    finally:
        gc.enable()
    assert alive == {"x", "relu"}  # the input (held by the caller) and the output
    np.testing.assert_allclose(out[0].numpy(), np.maximum(np.tanh(-np.exp(np.ones((2, 3)))), 0), rtol=1e-6)


def test_errors_name_the_node():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    w = g.add_const(np.ones((4, 3), np.float32), "w")
    g.set_output([g.call("linear", [x, w, None], source="model.py:12").output])
    with pytest.raises(RuntimeError, match=r"linear.*traced at model.py:12"):
        Interpreter(g).run([fw.ones(2, 5)])
    with pytest.raises(TypeError, match="takes 1 inputs"):
        Interpreter(g).run([])


def test_float64_mode_runs_in_double():
    g = Graph()
    x = g.add_input("x", TensorSpec((N, 3), fw.float32))
    g.set_output([g.call("mul", [x, g.add_const(np.float32(3.0))]).output])
    (out,) = Interpreter(g, float64=True).run([fw.ones(2, 3)])
    assert out.dtype is fw.float64
