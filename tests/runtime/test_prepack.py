"""Weights pre-packed at load (csrc/runtime/prepack.h): linear and linear_act nodes get a
packed copy of their constant weight, used for products of up to 8 rows (panel GEMV, f32 and
f64; f32 with 1-4 rows in tiles of 4 panels on AVX-512) and, for f32 on AVX-512 CPUs, for more rows (12 x 32 register tiles); f64 with more
rows uses BLAS on the original weight. Results agree with torch at every batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from framework.jit import runtime as rt
from framework.jit.ir import Graph, TensorSpec as Spec
from framework.jit.symbolic import SymInt

ACTS = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu,
        "tanh": torch.tanh}
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _graph(op, dtype, n_out, k_in, bias, act=None, seed=0):
    """x[N, k_in] -> op(x, w, b?) : [N, n_out], the batch symbolic; returns (graph, w, b)."""
    rng = np.random.default_rng(seed)
    fdt = fw.float32 if dtype == np.float32 else fw.float64
    g = Graph()
    n = SymInt.input_dim(0, 0)
    x = g.add_input("x", Spec((n, k_in), fdt))
    w = rng.standard_normal((n_out, k_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype) if bias else None
    wv = g.add_const(w)
    bv = g.add_const(b) if bias else None
    attrs = (act,) if op == "linear_act" else ()
    y = g.call(op, [x, wv, bv], attrs, specs=[Spec((n, n_out), fdt)]).output
    g.set_output([y])
    return g, w, b


def _torch(x, w, b, act):
    y = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                   None if b is None else torch.from_numpy(b))
    return (ACTS[act](y) if act else y).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,act", [("linear", None), ("linear_act", "relu"), ("linear_act", "gelu"),
                                    ("linear_act", "silu"), ("linear_act", "tanh")])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_matches_torch_at_small_and_large_batches(dtype, op, act, bias):
    g, w, b = _graph(op, dtype, n_out=37, k_in=13, bias=bias, act=act)  # a partial panel, odd K
    compiled = rt.compile(g)
    rng = np.random.default_rng(1)
    # 9..11 rows: one partial row tile; 12, 24: whole tiles; 13, 20, 31: whole + partial
    for batch in (1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 20, 24, 31):
        x = rng.standard_normal((batch, 13)).astype(dtype)
        got = compiled.run([x])[0].numpy()
        np.testing.assert_allclose(got, _torch(x, w, b, act), **TOL[dtype],
                                   err_msg=f"{op} {act} batch {batch}")


def test_packed_weight_appears_in_the_memory_plan_only_when_prepacking():
    g, _, _ = _graph("linear_act", np.float32, 40, 24, True, "relu")
    weight = next(n.outputs[0].name for n in g.nodes if n.op == "const")
    packed = rt.compile(g)
    plain = rt.compile(g, prepack=False)
    assert f"%{weight}.packed" in packed.memory_plan([(1, 24)])
    assert ".packed" not in plain.memory_plan([(1, 24)])
    # nodes() shows the graph as in the file: the packed input is the runtime's own
    assert [n[3] for n in packed.nodes()] == [n[3] for n in plain.nodes()]


def test_prepacked_and_plain_runtimes_agree_on_a_traced_mlp():
    torch.manual_seed(0)
    model = fw.nn.Sequential(fw.nn.Linear(30, 50), fw.nn.ReLU(), fw.nn.Linear(50, 50), fw.nn.GELU(),
                             fw.nn.Linear(50, 7)).eval()
    x4 = fw.randn(4, 30)
    traced = fw.jit.trace(model, (x4,)).optimize()
    assert any(n.target == "linear_act" for n in traced.graph.calls())
    packed, plain = rt.compile(traced.graph), rt.compile(traced.graph, prepack=False)
    for batch in (4, 1, 64):  # the traced batch, a smaller and a larger one
        x = fw.randn(batch, 30)
        with fw.no_grad():
            eager = model(x).numpy()
        a, b = packed.run([x])[0].numpy(), plain.run([x])[0].numpy()
        np.testing.assert_allclose(a, eager, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, eager, rtol=1e-4, atol=1e-5)


def test_saved_file_has_no_packed_weights_and_loads_either_way(tmp_path):
    g, w, b = _graph("linear", np.float32, 33, 17, True)
    path = tmp_path / "m.fwm"
    rt.save(g, path)
    assert rt.compile(g).to_bytes() == path.read_bytes()
    x = np.random.default_rng(2).standard_normal((2, 17)).astype(np.float32)
    for prepack in (True, False):
        got = rt.load(path, prepack=prepack).run([x])[0].numpy()
        np.testing.assert_allclose(got, _torch(x, w, b, None), rtol=1e-4, atol=1e-5)


def test_weights_whose_packed_copy_would_be_large_stay_as_stored():
    # one output column: panel padding would need 16x the weight's bytes
    g, w, b = _graph("linear", np.float32, n_out=1, k_in=50, bias=True)
    compiled = rt.compile(g)
    assert ".packed" not in compiled.memory_plan([(1, 50)])
    x = np.random.default_rng(3).standard_normal((1, 50)).astype(np.float32)
    np.testing.assert_allclose(compiled.run([x])[0].numpy(), _torch(x, w, b, None), rtol=1e-4, atol=1e-5)
    # a packed copy larger than the memory limit is skipped, not an error
    g, _, _ = _graph("linear", np.float32, n_out=50, k_in=64, bias=False)  # 12.8 KB, packed 16 KB
    assert ".packed" not in rt.compile(g, max_memory=14 * 1024).memory_plan([(1, 64)])
    assert ".packed" in rt.compile(g).memory_plan([(1, 64)])


@pytest.mark.parametrize("n_out", [16, 32, 48, 64, 70])
def test_packed_tiles_cover_whole_and_partial_panel_pairs(n_out):
    # pairs of 16-column panels: exact pairs (32, 64), a lone last panel (16, 48), a partial one
    g, w, b = _graph("linear_act", np.float32, n_out=n_out, k_in=200, bias=True, act="relu")
    compiled = rt.compile(g)
    x = np.random.default_rng(4).standard_normal((29, 200)).astype(np.float32)
    np.testing.assert_allclose(compiled.run([x])[0].numpy(), _torch(x, w, b, "relu"), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_out", [16, 64, 80, 100, 200, 250])
def test_packed_few_rows_cover_whole_and_partial_panel_groups(n_out):
    # 1-4 rows (f32, AVX-512) run tiles of 4 panels: whole groups (64, 200 = 3 groups + a
    # partial panel), a lone panel (16, 80), a partial group (100: 4 + 3 panels, the last
    # partial); K 300 splits the groups over two threads; strided rows and NaN through relu.
    g, w, b = _graph("linear_act", np.float32, n_out=n_out, k_in=300, bias=True, act="relu")
    compiled = rt.compile(g)
    rng = np.random.default_rng(6)
    for batch in (1, 2, 3, 4):
        x = rng.standard_normal((batch, 310)).astype(np.float32)[:, :300]  # row stride 310
        x[batch - 1, 7] = np.nan
        got = compiled.run([x])[0].numpy()
        want = _torch(np.ascontiguousarray(x), w, b, "relu")
        assert np.isnan(got[batch - 1]).all(), f"batch {batch}"
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"batch {batch}")
    g, w, _ = _graph("linear", np.float32, n_out=n_out, k_in=300, bias=False)
    x = rng.standard_normal((2, 300)).astype(np.float32)
    np.testing.assert_allclose(rt.compile(g).run([x])[0].numpy(), _torch(x, w, None, None), rtol=1e-4, atol=1e-4)


def test_packed_tiles_keep_nan_through_relu_and_read_strided_rows():
    g, w, b = _graph("linear_act", np.float32, n_out=40, k_in=24, bias=True, act="relu")
    compiled = rt.compile(g)
    x = np.random.default_rng(5).standard_normal((20, 48)).astype(np.float32)[:, :24]  # row stride 48
    x[3, 5] = np.nan
    got = compiled.run([x])[0].numpy()
    want = _torch(np.ascontiguousarray(x), w, b, "relu")
    assert np.isnan(got[3]).all() and np.isnan(want[3]).all()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


class _ConvBlock(fw.nn.Module):
    """relu(conv(x) + r): optimize() fuses it into one conv2d_act with a residual."""

    def __init__(self, cin, cout, k, pad, dil=1, bias=True, stride=1):
        super().__init__()
        self.conv = fw.nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dil, bias=bias)

    def forward(self, x, r):
        return fw.relu(self.conv(x) + r)


@pytest.mark.parametrize("cin,cout,k,pad,dil,hw,bias", [
    (64, 40, 3, 1, 1, 13, True),    # K 576: packed tiles; a pair + a partial panel; rows 13 = 7 + 6
    (64, 16, 3, 1, 1, 7, False),    # one panel, one 7-pixel segment per row
    (64, 64, 3, 2, 2, 14, True),    # dilation 2; rows 14 = 7 + 7
    (600, 33, 1, 0, 1, 5, True),    # 1x1, no padding (reads the input rows in place)
    (64, 48, 3, 1, 1, 12, True),    # a 12x12 map: one 12-pixel segment per row
])
@pytest.mark.parametrize("batch", [1, 3])
def test_packed_conv_matches_torch_and_the_unpacked_runtime(cin, cout, k, pad, dil, hw, bias, batch):
    fw.manual_seed(0)
    block = _ConvBlock(cin, cout, k, pad, dil, bias).eval()
    ho = hw + 2 * pad - dil * (k - 1)
    x, r = fw.randn(batch, cin, hw, hw), fw.randn(batch, cout, ho, ho)
    traced = fw.jit.trace(block, (x, r)).optimize()
    assert [n.target for n in traced.graph.calls()] == ["conv2d_act"]
    packed, plain = rt.compile(traced.graph), rt.compile(traced.graph, prepack=False)
    assert ".packed" in packed.memory_plan([tuple(x.shape), tuple(r.shape)])
    tconv = torch.nn.Conv2d(cin, cout, k, padding=pad, dilation=dil, bias=bias)
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(block.conv.weight.detach().numpy()))
        if bias:
            tconv.bias.copy_(torch.from_numpy(block.conv.bias.detach().numpy()))
        want = torch.relu(tconv(torch.from_numpy(x.numpy())) + torch.from_numpy(r.numpy())).numpy()
    np.testing.assert_allclose(packed.run([x, r])[0].numpy(), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(plain.run([x, r])[0].numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,stride,pad,dil,hw", [
    (3, 1, 3, 1, 6),   # padding beyond the kernel: rows 0, 1, 6, 7 read padding only (bias alone)
    (3, 2, 1, 1, 9),   # stride 2: only the first row skips a kernel row
    (3, 2, 2, 1, 8),   # stride 2, padding 2: the first and last rows skip
    (3, 1, 3, 2, 7),   # dilation 2: kernel rows 2 apart
    (5, 1, 2, 1, 7),   # two padding rows at each edge
    ((3, 1), 1, (2, 0), 1, 6),  # a 3x1 kernel, rows padded only
])
def test_packed_conv_skips_only_the_kernel_rows_that_read_padding(k, stride, pad, dil, hw):
    # The packed weight runs kernel row first and each output row multiplies only the rows
    # that read real input rows (kernels/conv.cpp, tap_rows): every edge case against torch.
    fw.manual_seed(1)
    block = _ConvBlock(64, 32, k, pad, dil, True, stride).eval()
    x = fw.randn(2, 64, hw, hw)
    tconv = torch.nn.Conv2d(64, 32, k, stride=stride, padding=pad, dilation=dil)
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(block.conv.weight.detach().numpy()))
        tconv.bias.copy_(torch.from_numpy(block.conv.bias.detach().numpy()))
        y = tconv(torch.from_numpy(x.numpy()))
    r = fw.from_numpy(np.random.default_rng(2).standard_normal(tuple(y.shape)).astype(np.float32))
    want = torch.relu(y + torch.from_numpy(r.numpy())).numpy()
    traced = fw.jit.trace(block, (x, r)).optimize()
    packed = rt.compile(traced.graph)
    assert ".packed" in packed.memory_plan([tuple(x.shape), tuple(r.shape)])
    np.testing.assert_allclose(packed.run([x, r])[0].numpy(), want, rtol=1e-4, atol=1e-4)
