"""Recognition passes: softmax / log_softmax, layer_norm and attention written from
primitives become the registered ops (skipped while those ops are not registered)."""

import math

import numpy as np
import pytest

import framework as fw
from framework.jit import passes as P
from framework.jit.interpreter import Interpreter
from framework.ops.registry import REGISTRY


def _need(*ops):
    missing = [o for o in ops if o not in REGISTRY]
    if missing:
        pytest.skip(f"ops not registered yet: {missing}")


def _x(*shape, seed=0):
    return fw.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _check(fn, inputs, p, expect_target, other_inputs):
    traced = fw.jit.trace(fn, inputs)
    g = traced.graph.copy()
    P.fold_constants(g)
    changed = p(g)
    P.eliminate_dead_code(g)
    g.lint()
    assert changed and g.calls(expect_target), str(g)
    assert p(g) is False
    for ins in [inputs, other_inputs]:
        want = [o.numpy() for o in Interpreter(traced.graph).run(ins)]
        got = [o.numpy() for o in Interpreter(g).run(ins)]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return g


def test_softmax_from_logsumexp_and_from_amax():
    _need("softmax")
    g = _check(lambda x: fw.exp(x - x.logsumexp(-1, keepdim=True)), [_x(4, 5)],
               P.recognize_softmax, "softmax", [_x(2, 5, seed=1)])
    assert [n.target for n in g.calls()] == ["softmax"]

    def manual(x):
        e = fw.exp(x - x.amax(1, keepdim=True))
        return e / e.sum(1, keepdim=True)

    g = _check(manual, [_x(4, 5)], P.recognize_softmax, "softmax", [_x(3, 5, seed=2)])
    assert [n.target for n in g.calls()] == ["softmax"] and g.calls()[0].attrs == (1,)


def test_log_softmax():
    _need("log_softmax")
    g = _check(lambda x: x - x.logsumexp(1, keepdim=True), [_x(4, 5)], P.recognize_softmax,
               "log_softmax", [_x(2, 5, seed=1)])
    assert [n.target for n in g.calls()] == ["log_softmax"]


def test_layer_norm_with_and_without_affine():
    _need("layer_norm")
    w, b = _x(6, seed=3), _x(6, seed=4)

    def ln(x, affine=True):
        m = x.mean(-1, keepdim=True)
        v = x.var(-1, keepdim=True, correction=0)
        y = (x - m) * fw.rsqrt(v + 1e-5)
        return y * w + b if affine else y

    g = _check(ln, [_x(2, 3, 6)], P.recognize_layer_norm, "layer_norm", [_x(5, 3, 6, seed=1)])
    assert [n.target for n in g.calls()] == ["layer_norm"]
    node = g.calls("layer_norm")[0]
    assert node.attrs[0] == 1 and node.attrs[1] == pytest.approx(1e-5)  # eps went through f32
    assert node.inputs[1] is not None and node.inputs[2] is not None
    g = _check(lambda x: ln(x, False), [_x(2, 6)], P.recognize_layer_norm, "layer_norm", [_x(3, 6, seed=1)])
    assert g.calls("layer_norm")[0].inputs[1] is None


def test_attention_causal_and_plain():
    _need("softmax", "scaled_dot_product_attention")
    T, d = 5, 4
    causal = fw.from_numpy(np.triu(np.ones((T, T), bool), 1))

    def attn(q, k, v, masked=True):
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        if masked:
            s = s.masked_fill(causal, float("-inf"))
        p = fw.exp(s - s.logsumexp(-1, keepdim=True))
        return p @ v

    ins = [_x(2, 3, T, d, seed=i) for i in range(3)]
    other = [_x(4, 3, T, d, seed=10 + i) for i in range(3)]

    def pipeline(g):
        changed = P.recognize_softmax(g)
        return P.fuse_attention(g) or False if changed else False

    for masked in (True, False):
        g = _check(lambda q, k, v: attn(q, k, v, masked), ins, pipeline,
                   "scaled_dot_product_attention", other)
        node = g.calls("scaled_dot_product_attention")[0]
        assert node.attrs[0] is masked and abs(node.attrs[1] - 0.5) < 1e-7
        assert [n.target for n in g.calls()] == ["scaled_dot_product_attention"]
