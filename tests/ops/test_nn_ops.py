"""Focused tests for the NN ops beyond the registry-driven ones: batch_norm running
statistics over several steps, dropout statistics and mask reuse, attention dropout
gradients, embedding/loss gradients torch cannot check through opinfo, error messages,
and a subprocess check that bad indices raise instead of crashing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import framework as fw
from framework.ops import attention as A
from framework.ops import embedding as E
from framework.ops import loss as L
from tests.oracle import GRAD_TOL, assert_close


def _pair(a, requires_grad=False):
    t = torch.from_numpy(a.copy()).requires_grad_(requires_grad)
    f = fw.from_numpy(a.copy()).requires_grad_(requires_grad)
    return f, t


# ---- batch_norm --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_running_stats_follow_torch_over_steps(dtype):
    rng = np.random.default_rng(0)
    c = 3
    f_rm, t_rm = _pair(np.zeros(c, dtype))
    f_rv, t_rv = _pair(np.ones(c, dtype))
    w = rng.uniform(0.5, 1.5, c).astype(dtype)
    b = rng.uniform(-0.5, 0.5, c).astype(dtype)
    for step in range(4):
        x = rng.normal(step, 1 + step, size=(5, c, 2, 3)).astype(dtype)
        v0 = f_rm._version.value
        got = fw.batch_norm(
            fw.from_numpy(x), f_rm, f_rv, fw.from_numpy(w), fw.from_numpy(b), True, 0.2, 1e-4
        )
        exp = TF.batch_norm(
            torch.from_numpy(x),
            t_rm,
            t_rv,
            torch.from_numpy(w),
            torch.from_numpy(b),
            True,
            0.2,
            1e-4,
        )
        assert_close(got, exp, what=f"step {step} output")
        assert_close(f_rm, t_rm, what=f"step {step} running_mean")
        assert_close(f_rv, t_rv, what=f"step {step} running_var (unbiased update)")
        assert f_rm._version.value == v0 + 1
    x = rng.normal(size=(4, c, 2)).astype(dtype)
    got = fw.batch_norm(fw.from_numpy(x), f_rm, f_rv, fw.from_numpy(w), fw.from_numpy(b), False)
    exp = TF.batch_norm(
        torch.from_numpy(x), t_rm, t_rv, torch.from_numpy(w), torch.from_numpy(b), False
    )
    assert_close(got, exp, what="eval with the running stats")


def test_batch_norm_eval_gradients_match_torch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3, 5))
    fx, tx = _pair(x, True)
    fw_, tw = _pair(rng.uniform(0.5, 1.5, 3), True)
    fb, tb = _pair(rng.normal(size=3), True)
    rm, rv = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    g = rng.normal(size=x.shape)
    fw.batch_norm(fx, fw.from_numpy(rm), fw.from_numpy(rv), fw_, fb, False).backward(
        fw.from_numpy(g)
    )
    TF.batch_norm(tx, torch.from_numpy(rm), torch.from_numpy(rv), tw, tb, False).backward(
        torch.from_numpy(g)
    )
    for f, t in ((fx, tx), (fw_, tw), (fb, tb)):
        assert_close(f.grad, t.grad, tol=GRAD_TOL[fw.float64])


def test_batch_norm_errors():
    x = fw.randn(4, 3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        fw.batch_norm(fw.randn(1, 3), None, None, training=True)
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 2"):
        fw.batch_norm(x, fw.zeros(2), fw.ones(3), training=True)
    with pytest.raises(RuntimeError, match="evaluation mode"):
        fw.batch_norm(x, None, None, training=False)


# ---- dropout -----------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_mask_fraction_scaling_and_gradient(p):
    fw.manual_seed(123)
    x = fw.from_numpy(np.random.default_rng(2).uniform(1, 2, size=(200, 500))).requires_grad_()
    y = fw.dropout(x, p, True)
    yd, xd = y.detach()._data, x.detach()._data
    kept = yd != 0
    assert abs(1 - kept.mean() - p) < 0.01, f"dropped fraction {1 - kept.mean():.4f}, expected {p}"
    np.testing.assert_allclose(yd[kept], xd[kept] / (1 - p), rtol=1e-12)
    g = np.random.default_rng(3).normal(size=y.shape)
    y.backward(fw.from_numpy(g))
    np.testing.assert_allclose(x.grad._data, np.where(kept, g / (1 - p), 0.0), rtol=1e-12)


def test_dropout_is_seeded_and_fresh_per_call():
    x = fw.ones(64, 64)
    fw.manual_seed(7)
    a = fw.dropout(x, 0.5)._data.copy()
    b = fw.dropout(x, 0.5)._data.copy()
    fw.manual_seed(7)
    a2 = fw.dropout(x, 0.5)._data.copy()
    np.testing.assert_array_equal(a, a2)
    assert (a != b).any()


def test_dropout_edge_cases():
    x = fw.randn(5, 6, requires_grad=True)
    assert fw.dropout(x, 0.0) is x
    assert fw.dropout(x, 0.9, training=False) is x
    assert not fw.dropout(x, 1.0)._data.any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        fw.dropout(x, 1.5)


# ---- attention ---------------------------------------------------------------------------


def test_attention_dropout_gradient_matches_finite_differences():
    """Backward regenerates forward's dropout mask from the seed: check it numerically."""
    rng = np.random.default_rng(4)
    q, k, v = (rng.normal(size=(2, 3, 4)) for _ in range(3))
    w = rng.normal(size=(2, 3, 4))

    def loss(qa, requires_grad=False):
        fw.manual_seed(11)
        qt = fw.from_numpy(qa.copy()).requires_grad_(requires_grad)
        out = A.scaled_dot_product_attention(qt, fw.from_numpy(k), fw.from_numpy(v), dropout_p=0.4)
        return qt, (out * fw.from_numpy(w)).sum()

    qt, l0 = loss(q, True)
    l0.backward()
    eps = 1e-6
    for idx in [(0, 0, 0), (0, 2, 3), (1, 1, 2)]:
        qp, qm = q.copy(), q.copy()
        qp[idx] += eps
        qm[idx] -= eps
        num = (loss(qp)[1].item() - loss(qm)[1].item()) / (2 * eps)
        np.testing.assert_allclose(qt.grad._data[idx], num, rtol=1e-5, atol=1e-8)


def test_attention_dropout_zeroes_some_weights():
    fw.manual_seed(0)
    q = fw.randn(1, 8, 4)
    out_a = A.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    out_b = A.scaled_dot_product_attention(q, q, q)
    assert not np.allclose(out_a._data, out_b._data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_reads_strided_query_key_value(dtype):
    """q, k, v as views, read through their strides block by block: heads split off one
    (N, L, 3, H, E) projection, transposed (N, L, H, E) views, a key broadcast over heads, a
    value with every other column; with a mask, causal, and the gradients."""
    rng = np.random.default_rng(8)
    qkv = rng.normal(size=(2, 6, 3, 2, 4)).astype(dtype)  # (N, L, 3, H, E)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-10)

    def split(t):  # -> q, k, v (N, H, L, E) views
        t = t.permute(2, 0, 3, 1, 4)
        return t[0], t[1], t[2]

    fq, tq = _pair(qkv, requires_grad=True)
    mask = rng.normal(size=(6, 6)).astype(dtype)
    for kwargs in ({}, {"is_causal": True}, {"attn_mask": mask}):
        fk = {k: fw.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        tk = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        fq.grad = None
        tq.grad = None
        got = A.scaled_dot_product_attention(*split(fq), **fk)
        want = TF.scaled_dot_product_attention(*split(tq), **tk)
        assert_close(got, want, tol=tol)
        w = rng.normal(size=tuple(want.shape)).astype(dtype)
        (got * fw.from_numpy(w)).sum().backward()
        (want * torch.from_numpy(w)).sum().backward()
        assert_close(fq.grad, tq.grad, tol=tol)
    x = rng.normal(size=(2, 6, 2, 4)).astype(dtype)  # (N, L, H, E) -> (N, H, L, E) views
    k1 = rng.normal(size=(2, 1, 5, 4)).astype(dtype)
    v2 = rng.normal(size=(2, 2, 5, 6)).astype(dtype)
    fx, tx = fw.from_numpy(x).transpose(1, 2), torch.from_numpy(x).transpose(1, 2)
    fk, tk = fw.from_numpy(k1).expand(2, 2, 5, 4), torch.from_numpy(k1).expand(2, 2, 5, 4)
    fv, tv = fw.from_numpy(v2)[..., ::2], torch.from_numpy(v2)[..., ::2]
    assert_close(A.scaled_dot_product_attention(fx, fk, fv), TF.scaled_dot_product_attention(tx, tk, tv),
                 tol=tol)


def test_attention_errors_name_op_and_shapes():
    q = fw.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match=r"scaled_dot_product_attention.*\[2, 5, 3\]"):
        A.scaled_dot_product_attention(q, fw.randn(2, 5, 3), fw.randn(2, 5, 3))
    with pytest.raises(RuntimeError, match="is_causal"):
        A.scaled_dot_product_attention(q, q, q, attn_mask=fw.ones(3, 3), is_causal=True)
    with pytest.raises(RuntimeError, match="attn_mask of shape"):
        A.scaled_dot_product_attention(q, q, q, attn_mask=fw.ones(4, 3))


# ---- embedding ---------------------------------------------------------------------------


def test_embedding_padding_row_and_freq_scaling_match_torch():
    rng = np.random.default_rng(5)
    idx = np.array([[0, 2, 2, 3], [3, 3, 1, 2]])
    wt = rng.normal(size=(5, 3))
    g = rng.normal(size=(2, 4, 3))
    for kwargs in (
        {"padding_idx": 2},
        {"scale_grad_by_freq": True},
        {"padding_idx": 3, "scale_grad_by_freq": True},
    ):
        fwt, twt = _pair(wt, True)
        fw.embedding(fw.from_numpy(idx), fwt, **kwargs).backward(fw.from_numpy(g))
        TF.embedding(torch.from_numpy(idx), twt, **kwargs).backward(torch.from_numpy(g))
        assert_close(fwt.grad, twt.grad, what=str(kwargs))
    fwt = fw.from_numpy(wt).requires_grad_()
    fw.embedding(fw.from_numpy(idx), fwt, padding_idx=2).sum().backward()
    assert not fwt.grad._data[2].any()


@pytest.mark.parametrize("bad", [5, -1, 2**40])
def test_embedding_bad_index_raises_index_error(bad):
    with pytest.raises(IndexError, match="index out of range in self"):
        fw.embedding(fw.tensor([0, bad]), fw.randn(5, 3))


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        E.one_hot(fw.tensor([0, 5]), 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        E.one_hot(fw.tensor([0, -1]), 3)
    with pytest.raises(RuntimeError, match="LongTensor"):
        E.one_hot(fw.tensor([0.0, 1.0]), 3)


# ---- losses ------------------------------------------------------------------------------


def test_cross_entropy_weighted_smoothing_input_grad_matches_torch():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(6, 4))
    t = np.array([0, 3, -100, 1, 2, 2])
    w = rng.uniform(0.5, 2, 4)
    for red in ("mean", "sum", "none"):
        fx, tx = _pair(x, True)
        got = L.cross_entropy(
            fx, fw.from_numpy(t), fw.from_numpy(w), reduction=red, label_smoothing=0.15
        )
        exp = TF.cross_entropy(
            tx, torch.from_numpy(t), torch.from_numpy(w), reduction=red, label_smoothing=0.15
        )
        assert_close(got, exp, what=red)
        got.sum().backward()
        exp.sum().backward()
        assert_close(fx.grad, tx.grad, what=f"{red} grad", tol=GRAD_TOL[fw.float64])


def test_nll_loss_all_ignored_mean_is_nan_like_torch():
    x = fw.randn(2, 3)
    assert np.isnan(L.nll_loss(x, fw.tensor([-100, -100])).item())


@pytest.mark.parametrize("fn", [L.nll_loss, L.cross_entropy])
def test_class_target_out_of_range_raises_index_error(fn):
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):
        fn(fw.randn(2, 3), fw.tensor([0, 5]))
    with pytest.raises(IndexError, match="Target -3 is out of bounds"):
        fn(fw.randn(2, 3), fw.tensor([-3, 0]))


def test_loss_shape_errors_name_shapes():
    with pytest.raises(ValueError, match=r"batch_size \(2\).*batch_size \(3\)"):
        L.nll_loss(fw.randn(2, 3), fw.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match=r"Expected target size \[2, 4\], got \[2, 5\]"):
        L.cross_entropy(fw.randn(2, 3, 4), fw.zeros(2, 5, dtype=fw.int64))
    with pytest.raises(ValueError, match=r"\[3, 4\].*\[3, 5\]"):
        L.binary_cross_entropy_with_logits(fw.randn(3, 5), fw.rand(3, 4))
    with pytest.raises(RuntimeError, match=r"mse_loss.*\[3, 4\].*\[3, 5\]"):
        L.mse_loss(fw.randn(3, 4), fw.randn(3, 5))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        L.binary_cross_entropy(fw.tensor([0.5, 1.5]), fw.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        L.l1_loss(fw.randn(3), fw.randn(3), reduction="avg")


# ---- norms and softmax -------------------------------------------------------------------


def test_norm_errors_name_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"layer_norm.*normalized_shape=\[5\].*\[2, 4\]"):
        fw.layer_norm(fw.randn(2, 4), (5,))
    with pytest.raises(RuntimeError, match=r"layer_norm.*weight of shape \[3\]"):
        fw.layer_norm(fw.randn(2, 4), (4,), fw.ones(3))
    with pytest.raises(
        RuntimeError, match=r"group_norm.*divisible by num_groups.*\[2, 6, 3\].*num_groups=4"
    ):
        fw.group_norm(fw.randn(2, 6, 3), 4)


def test_softmax_large_rows_and_inner_dims_match_torch():
    rng = np.random.default_rng(7)
    for shape, dim in (((64, 1000), 1), ((8, 37, 33), 1), ((3, 5, 700), 2)):
        x = rng.normal(scale=5, size=shape).astype(np.float32)
        for f, t in ((fw.softmax, torch.softmax), (fw.log_softmax, torch.log_softmax)):
            assert_close(
                f(fw.from_numpy(x), dim), t(torch.from_numpy(x), dim), what=f"{f.__name__} {shape}"
            )


def test_softmax_double_backward_matches_torch():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 5))
    for f, t in ((fw.softmax, torch.softmax), (fw.log_softmax, torch.log_softmax)):
        fx, tx = _pair(x, True)
        w = rng.normal(size=x.shape)
        (fg,) = fw.autograd.grad((f(fx, 1) * fw.from_numpy(w)).sum(), [fx], create_graph=True)
        (tg,) = torch.autograd.grad((t(tx, 1) * torch.from_numpy(w)).sum(), [tx], create_graph=True)
        (fg * fg).sum().backward()
        (tg * tg).sum().backward()
        assert_close(fx.grad, tx.grad, tol=GRAD_TOL[fw.float64], what=f.__name__)


# ---- bad indices never crash the process -------------------------------------------------


def test_bad_indices_raise_in_a_subprocess_instead_of_crashing():
    code = textwrap.dedent("""
        import framework as fw
        from framework.ops import embedding as E, loss as L
        cases = [
            lambda: fw.embedding(fw.tensor([0, 10**12]), fw.randn(4, 2)),
            lambda: fw.embedding(fw.tensor([-(10**12)]), fw.randn(4, 2)),
            lambda: E.one_hot(fw.tensor([2**62]), 3),
            lambda: L.nll_loss(fw.randn(3, 4), fw.tensor([0, 1, 2**40])),
            lambda: L.cross_entropy(fw.randn(2, 4, 3), fw.tensor([[0, 1, 9], [0, 0, 0]])),
            lambda: E.embedding_backward(fw.randn(2, 3), fw.tensor([0, 99]), 4),
        ]
        for i, f in enumerate(cases):
            try:
                f()
            except (IndexError, RuntimeError) as e:
                print(i, type(e).__name__)
            else:
                print(i, "no error")
    """)
    r = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, f"crashed with {r.returncode}: {r.stderr[-2000:]}"
    lines = r.stdout.split("\n")
    assert "no error" not in r.stdout, r.stdout
    assert sum(1 for ln in lines if ln.strip()) == 6, r.stdout


def test_kernels_accept_strided_views_a_graph_may_pass():
    """Graph passes drop the contiguous() copies, so kernels get views (expand, slices)."""
    from framework.ops.dispatch import dispatch
    from framework.ops.registry import REGISTRY

    rng = np.random.default_rng(9)
    base = rng.normal(size=(4, 10)).astype(np.float32)
    x = fw.from_numpy(base)[:, ::2]  # a strided view, not copied
    t = fw.from_numpy(base[:1, :5].copy()).expand(4, 5)  # a broadcast view
    tx, tt = (
        torch.from_numpy(base[:, ::2].copy()),
        torch.from_numpy(base[:1, :5].copy()).expand(4, 5),
    )
    assert not x._data.flags.c_contiguous and not t._data.flags.c_contiguous
    assert_close(dispatch(REGISTRY["softmax"], [x], (1,)), torch.softmax(tx, 1))
    assert_close(
        dispatch(REGISTRY["layer_norm"], [x, None, None], (1, 1e-5))[0], TF.layer_norm(tx, (5,))
    )
    assert_close(
        dispatch(REGISTRY["mse_loss"], [x, t, None, None], (0, 0.0)),
        TF.mse_loss(tx, tt, reduction="none"),
    )


def test_strided_packing_handles_broadcast_last_dim_and_permutes():
    from framework.ops.dispatch import dispatch
    from framework.ops.registry import REGISTRY

    rng = np.random.default_rng(10)
    a = rng.normal(size=(3, 4, 5))
    x = fw.from_numpy(a).permute(2, 0, 1)  # (5, 3, 4), no unit stride on the last dim
    col = fw.from_numpy(a[:, :, :1].copy()).expand(3, 4, 5)  # stride 0 on the last dim
    assert_close(
        dispatch(REGISTRY["log_softmax"], [x], (2,)),
        torch.log_softmax(torch.from_numpy(a).permute(2, 0, 1), 2),
    )
    assert_close(
        dispatch(REGISTRY["l1_loss"], [fw.from_numpy(a), col, None, None], (2, 0.0)),
        TF.l1_loss(
            torch.from_numpy(a),
            torch.from_numpy(a[:, :, :1].copy()).expand(3, 4, 5),
            reduction="sum",
        ),
    )


def test_layer_norm_grads_over_many_row_blocks_match_torch():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 700, 64))  # several fixed row blocks for the weight/bias partials
    fx, tx = _pair(x, True)
    fwt, twt = _pair(rng.uniform(0.5, 1.5, 64), True)
    fb, tb = _pair(rng.normal(size=64), True)
    g = rng.normal(size=x.shape)
    fw.layer_norm(fx, (64,), fwt, fb).backward(fw.from_numpy(g))
    TF.layer_norm(tx, (64,), twt, tb).backward(torch.from_numpy(g))
    for f, t in ((fx, tx), (fwt, twt), (fb, tb)):
        assert_close(f.grad, t.grad, tol=GRAD_TOL[fw.float64])


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_embedding_max_norm_renormalizes_rows_in_place_like_torch(norm_type):
    rng = np.random.default_rng(12)
    wt = rng.normal(size=(6, 4)) * 3
    idx = np.array([[0, 2, 2], [5, 0, 1]])
    fwt, twt = _pair(wt, True)
    g = rng.normal(size=(2, 3, 4))
    out = fw.embedding(fw.from_numpy(idx), fwt, max_norm=1.5, norm_type=norm_type)
    exp = TF.embedding(torch.from_numpy(idx), twt, max_norm=1.5, norm_type=norm_type)
    assert_close(out, exp, what="output")
    assert_close(fwt.detach(), twt.detach(), what="weight renormalized in place")
    out.backward(fw.from_numpy(g))
    exp.backward(torch.from_numpy(g))
    assert_close(fwt.grad, twt.grad, what="grad")
