"""Recognition passes: softmax / log_softmax, layer_norm and attention written from
primitives become the registered ops (skipped while those ops are not registered)."""

import io
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


def test_attention_with_query_and_key_scaled_before_the_product():
    # torch's ONNX export of MultiheadAttention: (q * c) @ (k^T * c), c = d ** -0.25; also
    # c * q and a key scaled before its transpose is left alone (then k^T is not a permute)
    _need("softmax", "scaled_dot_product_attention")
    T, d = 5, 4
    c = d ** -0.25

    def attn(q, k, v, q_first=True):
        qs = q * c if q_first else c * q
        return fw.softmax(qs @ (k.transpose(-2, -1) * c), -1) @ v

    ins = [_x(2, 3, T, d, seed=i) for i in range(3)]
    other = [_x(4, 3, T, d, seed=10 + i) for i in range(3)]
    for q_first in (True, False):
        g = _check(lambda q, k, v: attn(q, k, v, q_first), ins, P.fuse_attention,
                   "scaled_dot_product_attention", other)
        node = g.calls("scaled_dot_product_attention")[0]
        assert abs(node.attrs[1] - c * c) < 1e-7
        assert [n.target for n in g.calls()] == ["scaled_dot_product_attention"]
    # a non-constant factor is not folded into the scale
    g = fw.jit.trace(lambda q, k, v: fw.softmax((q * v) @ k.transpose(-2, -1), -1) @ v, ins).graph.copy()
    P.fuse_attention(g)
    P.eliminate_dead_code(g)
    assert "mul" in [n.target for n in g.calls()]


def test_attention_with_the_key_transposed_in_one_permute_and_an_additive_causal_mask():
    # GPT-style ONNX exports: heads split by a reshape, k^T = x.permute(0, 2, 3, 1) straight
    # from (N, T, H, E) (the pass adds k's own permute (0, 2, 1, 3)), and the causal mask as a
    # constant 0 / -inf matrix added to the scores (becomes is_causal)
    _need("softmax", "scaled_dot_product_attention")
    T, H, E = 5, 2, 4
    c = E ** -0.25
    causal = fw.from_numpy(np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, 0).astype(np.float32))
    other_mask = fw.from_numpy(np.random.default_rng(3).standard_normal((T, T)).astype(np.float32))

    def attn(q, k, v, mask):
        qh = q.reshape(q.shape[0], T, H, E).permute(0, 2, 1, 3)
        kt = k.reshape(k.shape[0], T, H, E).permute(0, 2, 3, 1)
        vh = v.reshape(v.shape[0], T, H, E).permute(0, 2, 1, 3)
        return fw.softmax((qh * c) @ (kt * c) + mask, -1) @ vh

    ins = [_x(2, T, H * E, seed=i) for i in range(3)]
    other = [_x(3, T, H * E, seed=10 + i) for i in range(3)]
    for mask, is_causal in ((causal, True), (other_mask, False)):
        g = _check(lambda q, k, v: attn(q, k, v, mask), ins, P.fuse_attention,
                   "scaled_dot_product_attention", other)
        node = g.calls("scaled_dot_product_attention")[0]
        assert node.attrs[0] is is_causal and abs(node.attrs[1] - c * c) < 1e-7
        assert "matmul" not in [n.target for n in g.calls()]
        assert (node.inputs[3] is None) is is_causal


def test_exact_gelu_from_erf():
    # torch's ONNX export of nn.GELU: x * (erf(x / sqrt(2)) + 1) * 0.5; other orders too
    _need("gelu", "erf")
    r2 = math.sqrt(2.0)
    forms = [
        lambda x: x * (fw.erf(x / r2) + 1) * 0.5,
        lambda x: (x * 0.5) * (1 + fw.erf(x * (1 / r2))),
        lambda x: 0.5 * (x * (fw.erf(x / r2) + 1)),
    ]
    ins, other = [_x(3, 8)], [_x(5, 8, seed=1)]
    for form in forms:
        g = _check(form, ins, P.recognize_gelu, "gelu", other)
        assert [n.target for n in g.calls()] == ["gelu"]
        np.testing.assert_allclose(Interpreter(g).run(ins)[0].numpy(),
                                   fw.nn.functional.gelu(ins[0]).numpy(), rtol=1e-6, atol=1e-7)
    # not GELU: another constant, or an intermediate value that something else reads
    def shared(x):
        e = fw.erf(x / r2)
        return x * (e + 1) * 0.5, e

    for fn in (lambda x: x * (fw.erf(x / 2.0) + 1) * 0.5, shared):
        g = fw.jit.trace(fn, ins).graph.copy()
        P.fold_constants(g)
        assert P.recognize_gelu(g) is False


def test_imported_gpt_graph_matches_the_traced_one():
    # the ONNX export writes attention and GELU from primitives; the passes recover the ops
    # tracing records, so the imported model runs the same kernels
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    from benchmarks.models import MODELS

    b, shape, _ = MODELS["gpt"]
    torch.manual_seed(0)
    tm = b(torch).eval()
    x = np.random.default_rng(0).standard_normal((1,) + shape).astype(np.float32)
    buf = io.BytesIO()
    torch.onnx.export(tm, (torch.from_numpy(x),), buf, dynamo=False, input_names=["x"], output_names=["y"],
                      opset_version=17)
    imported = fw.onnx.load(buf.getvalue(), optimize=True)
    fm = b(fw)
    fm.load_state_dict({k: fw.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    traced = fw.jit.trace(fm.eval(), (fw.from_numpy(x),), check_trace=False).optimize()
    assert sorted(n.target for n in imported.graph.calls()) == sorted(n.target for n in traced.graph.calls())
    assert not {"matmul", "softmax", "erf"} & {n.target for n in imported.graph.calls()}
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(imported(x).numpy(), want, rtol=1e-4, atol=1e-4)


def test_a_one_by_one_mask_is_not_taken_for_causal():
    # a (1, 1) mask broadcasts over the scores: False / 0 masks nothing, so is_causal would be wrong
    _need("softmax", "scaled_dot_product_attention")
    T, d = 5, 4
    ins = [_x(2, 3, T, d, seed=i) for i in range(3)]
    other = [_x(4, 3, T, d, seed=10 + i) for i in range(3)]
    nothing = fw.from_numpy(np.zeros((1, 1), bool))
    zero = fw.zeros(1, 1)
    forms = [lambda q, k, v: fw.softmax((q @ k.transpose(-2, -1)).masked_fill(nothing, float("-inf")), -1) @ v,
             lambda q, k, v: fw.softmax(q @ k.transpose(-2, -1) + zero, -1) @ v]
    for form in forms:
        g = _check(form, ins, P.fuse_attention, "scaled_dot_product_attention", other)
        assert g.calls("scaled_dot_product_attention")[0].attrs[0] is False
