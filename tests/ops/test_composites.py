"""The composites' plain functions (framework/ops/composites.py) against torch: the ones
whose results OpDef samples cannot compare (Python values, several outputs, random draws),
the nn modules over them, einsum's errors, and a traced einsum running in the C++ runtime.
(The OpDef composites are checked by test_opinfo from their samples.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw


def t2f(t, requires_grad=False):
    return fw.from_numpy(t.detach().numpy().copy()).requires_grad_(requires_grad)


def test_allclose_meshgrid_std_mean_var_mean():
    a = torch.tensor([1.0, 2.0, float("nan")])
    for b, kw in [(a + 1e-7, {}), (a + 1e-2, {}), (a, {"equal_nan": True}), (a + 0.05, {"rtol": 0.1})]:
        assert fw.allclose(t2f(a), t2f(b), **kw) == torch.allclose(a, b, **kw)
    x, y, z = torch.arange(3.0), torch.arange(2.0) + 10, torch.tensor(7.0)
    for indexing in ("ij", "xy"):
        got = fw.meshgrid(t2f(x), t2f(y), t2f(z), indexing=indexing)
        want = torch.meshgrid(x, y, z, indexing=indexing)
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
    v = torch.randn(4, 5, dtype=torch.float64)
    for kw in [{}, {"dim": 1}, {"dim": 0, "correction": 0, "keepdim": True}]:
        for fn in ("std_mean", "var_mean"):
            got, want = getattr(fw, fn)(t2f(v), **kw), getattr(torch, fn)(v, **kw)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True)])
def test_pool1d_forward_indices_and_grad_match_torch(kw):
    x = torch.randn(2, 3, 9, dtype=torch.float64, requires_grad=True)
    fx = t2f(x, True)
    out, idx = torch.nn.functional.max_pool1d(x, return_indices=True, **kw)
    fout, fidx = fw.nn.functional.max_pool1d(fx, return_indices=True, **kw)
    np.testing.assert_allclose(fout.detach().numpy(), out.detach().numpy())
    assert fidx.tolist() == idx.tolist()
    out.sum().backward()
    fout.sum().backward()
    np.testing.assert_allclose(fx.grad.numpy(), x.grad.numpy())
    akw = {k: v for k, v in kw.items() if k != "dilation"}
    a, fa = torch.nn.functional.avg_pool1d(x, **akw), fw.nn.functional.avg_pool1d(fx, **akw)
    np.testing.assert_allclose(fa.detach().numpy(), a.detach().numpy(), rtol=1e-12)
    # the modules, unbatched
    u = torch.randn(3, 8)
    np.testing.assert_allclose(fw.nn.MaxPool1d(2)(t2f(u)).numpy(), torch.nn.MaxPool1d(2)(u).numpy())
    np.testing.assert_allclose(fw.nn.AvgPool1d(2)(t2f(u)).numpy(), torch.nn.AvgPool1d(2)(u).numpy(), rtol=1e-6)


def test_nn_modules_over_composites_match_torch():
    x = torch.randn(2, 8, 3, 3)
    np.testing.assert_allclose(fw.nn.PixelShuffle(2)(t2f(x)).numpy(), torch.nn.PixelShuffle(2)(x).numpy())
    np.testing.assert_allclose(fw.nn.PixelUnshuffle(3)(t2f(x)).numpy(), torch.nn.PixelUnshuffle(3)(x).numpy())
    a, b = torch.randn(4, 6), torch.randn(4, 6)
    np.testing.assert_allclose(fw.nn.CosineSimilarity(dim=0)(t2f(a), t2f(b)).numpy(),
                               torch.nn.CosineSimilarity(dim=0)(a, b).numpy(), rtol=1e-5)
    lp, p = torch.log_softmax(a, 1), torch.softmax(b, 1)
    for red in ("batchmean", "sum", "none"):
        np.testing.assert_allclose(fw.nn.KLDivLoss(reduction=red)(t2f(lp), t2f(p)).numpy(),
                                   torch.nn.KLDivLoss(reduction=red)(lp, p).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fw.nn.HuberLoss(delta=0.5)(t2f(a), t2f(b)).numpy(),
                               torch.nn.HuberLoss(delta=0.5)(a, b).numpy(), rtol=1e-5)
    # a zero target contributes 0 (0 * log 0), as torch's xlogy
    t0 = torch.tensor([[0.0, 1.0]])
    assert fw.nn.functional.kl_div(t2f(lp[:1, :2]), t2f(t0), reduction="sum").item() == pytest.approx(
        torch.nn.functional.kl_div(lp[:1, :2], t0, reduction="sum").item())


def test_multinomial_draws_follow_the_weights():
    w = fw.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 0.0, 2.0]])
    g = fw.Generator().manual_seed(0)
    s = fw.multinomial(w, 4000, replacement=True, generator=g)
    assert s.shape == fw.Size([2, 4000]) and s.dtype is fw.int64
    for row, weights in zip(s.numpy(), w.numpy()):
        freq = np.bincount(row, minlength=4) / row.size
        np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.03)
        assert freq[weights == 0].sum() == 0
    again = fw.multinomial(w, 4000, replacement=True, generator=fw.Generator().manual_seed(0))
    assert again.tolist() == s.tolist()
    # without replacement: distinct categories, zero weights never drawn, first draw ~ weights
    firsts = []
    for seed in range(300):
        d = fw.multinomial(fw.tensor([0.1, 0.0, 0.6, 0.3]), 3, generator=fw.Generator().manual_seed(seed)).tolist()
        assert sorted(d) == [0, 2, 3]
        firsts.append(d[0])
    np.testing.assert_allclose(np.bincount(firsts, minlength=4) / 300, [0.1, 0.0, 0.6, 0.3], atol=0.08)
    with pytest.raises(RuntimeError, match="without replacement"):
        fw.multinomial(fw.tensor([0.5, 0.5]), 3)
    with pytest.raises(RuntimeError, match="element < 0"):
        fw.multinomial(fw.tensor([0.5, -0.5]), 1)
    with pytest.raises(RuntimeError, match="not enough"):
        fw.multinomial(fw.tensor([0.5, 0.0, 0.0]), 2)


def test_einsum_and_repeat_interleave_errors():
    a = fw.ones(2, 3)
    with pytest.raises(ValueError, match="number of subscripts"):
        fw.einsum("ijk->i", a)
    with pytest.raises(ValueError, match="2 operand"):
        fw.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="output subscript k does not appear"):
        fw.einsum("ij->k", a)
    with pytest.raises(RuntimeError, match="do not broadcast"):
        fw.einsum("ij,ij->i", a, fw.ones(2, 4))
    with pytest.raises(NotImplementedError, match="diagonal"):
        fw.einsum("ii->i", fw.ones(3, 3))
    assert fw.einsum("ij,jk", [a, fw.ones(3, 2)]).tolist() == [[3.0, 3.0], [3.0, 3.0]]  # a list of operands
    with pytest.raises(RuntimeError, match="same size"):
        fw.repeat_interleave(a, fw.tensor([1, 2]), dim=1)
    with pytest.raises(RuntimeError, match="negative"):
        a.repeat_interleave(-1)
    with pytest.raises(RuntimeError, match="divisible"):
        fw.nn.functional.pixel_shuffle(fw.ones(1, 3, 2, 2), 2)


def test_traced_einsum_runs_in_the_runtime():
    class Attn(fw.nn.Module):
        def forward(self, q, k):
            return fw.einsum("bqd,bkd->bqk", q, k).softmax(-1).isnan().logical_not().float() * fw.lerp(q[..., :1], 1.0, 0.5)

    q, k = fw.randn(2, 5, 4), fw.randn(2, 6, 4)
    tr = fw.jit.trace(Attn(), (q, k)).optimize()
    assert "einsum" not in {n.op for n in tr.graph.nodes}  # recorded as the ops it runs
    np.testing.assert_allclose(tr(q, k).numpy(), Attn()(q, k).numpy(), rtol=1e-6)


def test_unique_matches_torch():
    for v in ([3, 1, 2, 1, 3, 3], [[2.5, -1.0], [2.5, 0.0]], [7], []):
        t = torch.tensor(v)
        f = fw.tensor(v) if v else fw.zeros(0, dtype=fw.int64)
        for kw in [{}, {"return_inverse": True}, {"return_counts": True},
                   {"return_inverse": True, "return_counts": True}]:
            got, want = fw.unique(f, **kw), torch.unique(t, **kw)
            got, want = (got if isinstance(got, tuple) else (got,)), (want if isinstance(want, tuple) else (want,))
            assert [g.tolist() for g in got] == [w.tolist() for w in want], (v, kw)
    with pytest.raises(NotImplementedError, match="dim"):
        fw.unique(fw.ones(2, 2), dim=0)


@pytest.mark.parametrize("fn,args,kw", [
    ("vector_norm", (), {}), ("vector_norm", (1,), {"dim": 1}), ("vector_norm", (3.5,), {"dim": (0, 2), "keepdim": True}),
    ("vector_norm", (float("inf"),), {"dim": -1}), ("vector_norm", (float("-inf"),), {}), ("vector_norm", (0,), {"dim": 1}),
    ("matrix_norm", (), {}), ("matrix_norm", (1,), {}), ("matrix_norm", (-1,), {"keepdim": True}),
    ("matrix_norm", (float("inf"),), {"dim": (0, 2)}), ("matrix_norm", (float("-inf"),), {}),
    ("norm", (), {}), ("norm", (), {"dim": 1}), ("norm", (), {"dim": (1, 2)}), ("norm", ("fro",), {"dim": (0, 1)}),
    ("vecdot", (), {}),
])
def test_linalg_norms_match_torch(fn, args, kw):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4))
    a[0, 1, 2] = 0.0
    t = torch.tensor(a, requires_grad=True)
    f = fw.tensor(a).requires_grad_(True)
    if fn == "vecdot":
        want, got = torch.linalg.vecdot(t, t * 2), fw.linalg.vecdot(f, f * 2)
    else:
        want, got = getattr(torch.linalg, fn)(t, *args, **kw), getattr(fw.linalg, fn)(f, *args, **kw)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10)
    if args[:1] != (0,):
        want.sum().backward()
        got.sum().backward()
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_linalg_refuses_what_it_does_not_compute():
    with pytest.raises(NotImplementedError, match="singular values"):
        fw.linalg.matrix_norm(fw.ones(2, 2), "nuc")
    with pytest.raises(RuntimeError, match="1D or 2D"):
        fw.linalg.norm(fw.ones(2, 2, 2), 3)
    assert fw.linalg.norm(fw.tensor([[3.0, 0.0], [0.0, 4.0]]), 1).item() == torch.linalg.norm(
        torch.tensor([[3.0, 0.0], [0.0, 4.0]]), 1).item()


def test_unfold_fold_modules_and_errors():
    x = torch.randn(2, 3, 6, 5)
    u = torch.nn.Unfold(3, padding=1, stride=2)(x)
    fu = fw.nn.Unfold(3, padding=1, stride=2)(t2f(x))
    np.testing.assert_allclose(fu.numpy(), u.numpy())
    np.testing.assert_allclose(fw.nn.Fold((6, 5), 3, padding=1, stride=2)(fu).numpy(),
                               torch.nn.Fold((6, 5), 3, padding=1, stride=2)(u).numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="does not fit"):
        fw.nn.functional.unfold(fw.ones(1, 1, 2, 2), 3)
    with pytest.raises(RuntimeError, match=r"expected an input of shape \(N, C \* 9, 9\)"):
        fw.nn.functional.fold(fw.ones(1, 9, 5), (6, 5), 3, padding=1, stride=2)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("case", ["2d", "offsets", "last_offset", "padding", "weights"])
def test_embedding_bag_matches_torch(mode, case):
    if case == "weights" and mode != "sum":
        pytest.skip("per_sample_weights: mode='sum' only, as torch")
    w = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    fwt = t2f(w, True)
    kw = {"mode": mode}
    if case == "2d":
        inp, args = torch.tensor([[1, 2, 4], [4, 3, 9]]), ()
    else:
        inp = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9])
        offs = torch.tensor([0, 2, 2, 5]) if case != "last_offset" else torch.tensor([0, 2, 2, 5, 8])
        args = (offs,)
        kw["include_last_offset"] = case == "last_offset"
        if case == "padding":
            kw["padding_idx"] = 4
        if case == "weights":
            kw["per_sample_weights"] = torch.rand(8, dtype=torch.float64)
    want = torch.nn.functional.embedding_bag(inp, w, *args, **kw)
    fkw = {k: (t2f(v) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    got = fw.nn.functional.embedding_bag(fw.tensor(inp.tolist()), fwt, *(fw.tensor(a.tolist()) for a in args), **fkw)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    gw = torch.randn(*want.shape, dtype=torch.float64)
    (want * gw).sum().backward()
    (got * t2f(gw)).sum().backward()
    np.testing.assert_allclose(fwt.grad.numpy(), w.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_embedding_bag_module():
    m = fw.nn.EmbeddingBag(10, 3, mode="sum")
    tm = torch.nn.EmbeddingBag(10, 3, mode="sum")
    tm.weight.data = torch.from_numpy(m.weight.detach().numpy().copy())
    x = [[1, 2], [3, 3]]
    np.testing.assert_allclose(m(fw.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-6)
