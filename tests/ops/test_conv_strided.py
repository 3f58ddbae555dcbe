"""Strided f32 convolutions on the register-tiled fast path, against torch: the input is split
into stride-phase planes (one offset per tap over an extended output grid, or tiles per
output row for wide rows; no im2col), so these cover strides 2 and 3, uneven strides,
dilation with stride, kernels 1/3/7, odd and even sizes, wide rows, no, symmetric and
uneven padding, batch 1 and > 1, bias, residual and relu (eager conv2d_act and the graph
runtime's fused, pre-packed conv2d_act), the geometries that fall back to im2col, and the
backward ops that run the strided forward. Shapes stay small."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import framework as fw
from framework.jit import runtime as rt
from framework.ops import fused as F

rng = np.random.default_rng(0)


def _a(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _torch_conv(x, w, b, stride, p4, dilation):
    """torch's conv2d with padding (top, left, bottom, right) applied by F.pad first."""
    t, l, bo, r = p4
    xt = TF.pad(torch.from_numpy(x), (l, r, t, bo))
    return TF.conv2d(xt, torch.from_numpy(w), None if b is None else torch.from_numpy(b), stride=stride,
                     dilation=dilation)


STRIDED = [
    # (N, C, H, W, Cout, (kh, kw), stride, padding (t, l, b, r), dilation)
    (1, 3, 23, 23, 8, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),   # a stem: 7x7 s2 p3, odd size
    (2, 3, 24, 22, 13, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),  # even sizes, Cout not a tile multiple
    (1, 16, 14, 14, 20, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)), # a ResNet downsampling 3x3
    (3, 5, 15, 13, 7, (3, 3), (2, 2), (0, 0, 0, 0), (1, 1)),   # no padding, odd sizes
    (1, 8, 12, 12, 16, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),  # 1x1 s2: phase (0, 0) only
    (2, 6, 11, 9, 5, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),    # 1x1 s2, odd sizes
    (1, 4, 17, 16, 6, (3, 3), (3, 3), (1, 1, 1, 1), (1, 1)),   # stride 3
    (2, 4, 19, 20, 9, (7, 7), (3, 3), (2, 3, 1, 0), (1, 1)),   # stride 3, uneven padding
    (1, 5, 13, 12, 7, (3, 3), (2, 1), (1, 1, 1, 1), (1, 1)),   # uneven stride (2, 1)
    (1, 5, 12, 13, 7, (3, 5), (1, 3), (0, 2, 1, 2), (1, 1)),   # (1, 3), non-square kernel
    (1, 4, 21, 21, 6, (3, 3), (2, 2), (2, 2, 2, 2), (2, 2)),   # dilation 2 with stride 2: one phase
    (2, 4, 20, 19, 6, (3, 3), (2, 2), (3, 3, 3, 3), (3, 3)),   # dilation 3 with stride 2: both phases
    (1, 3, 16, 18, 5, (3, 3), (3, 2), (1, 0, 2, 1), (2, 3)),   # all uneven
    (1, 2, 9, 9, 4, (3, 3), (5, 5), (1, 1, 1, 1), (1, 1)),     # stride > kernel: unused rows
    (1, 2, 5, 6, 3, (3, 3), (4, 4), (1, 1, 1, 1), (1, 1)),     # stride > input: 2x2 output
    (1, 40, 9, 9, 70, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),   # several channel tiles
    (2, 3, 70, 10, 4, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),   # tall: more than one pixel tile
    (1, 2, 4, 150, 3, (1, 7), (1, 2), (0, 3, 0, 3), (1, 1)),   # wide rows, extended grid
    # rows of >= 48 pixels padding to whole vectors no more than the extended grid: row tiles
    (1, 3, 20, 96, 8, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),   # a stem, 48-pixel rows
    (2, 5, 7, 223, 13, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # 112-pixel rows: 64 + 48
    (2, 4, 9, 128, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),   # stride 1, 128-pixel rows
    (1, 2, 6, 96, 5, (3, 3), (2, 2), (2, 2, 2, 2), (2, 2)),    # dilation, 48-pixel rows
    # small K (<= 32) with rows of >= 16 pixels: row tiles too (no compaction pass)
    (3, 1, 28, 28, 32, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # the small CNN's first layer
    (2, 3, 9, 21, 10, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),   # 21-pixel rows: 16 + 5
    (1, 2, 8, 40, 9, (2, 2), (1, 2), (0, 1, 1, 0), (1, 1)),    # stride (1, 2), uneven padding
]


@pytest.mark.parametrize("case", STRIDED, ids=lambda c: "-".join(map(str, c)).replace(" ", ""))
@pytest.mark.parametrize("act", ["none", "relu"])
@pytest.mark.parametrize("with_res", [False, True])
def test_strided_conv2d_act_matches_torch(case, act, with_res):
    n, c, h, w, co, k, s, p, d = case
    x, wt, b = _a(n, c, h, w), _a(co, c, *k) * 0.3, _a(co)
    want = _torch_conv(x, wt, b, s, p, d)
    res = _a(*want.shape) if with_res else None
    got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(wt), fw.from_numpy(b), stride=s, padding=p, dilation=d,
                       activation=act, residual=None if res is None else fw.from_numpy(res)).numpy()
    if with_res:
        want = want + torch.from_numpy(res)
    if act == "relu":
        want = torch.relu(want)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [STRIDED[0], STRIDED[2], STRIDED[7], STRIDED[11], STRIDED[16]],
                         ids=lambda c: "-".join(map(str, c)).replace(" ", ""))
def test_strided_conv2d_without_bias_at_one_and_two_threads(case, threads):
    n, c, h, w, co, k, s, p, d = case
    x, wt = _a(n, c, h, w), _a(co, c, *k) * 0.3
    old = fw.get_num_threads()
    fw.set_num_threads(threads)
    try:
        got = fw.nn.functional.conv2d(fw.from_numpy(x), fw.from_numpy(wt), None, stride=s,
                                      padding=(p[0], p[1]) if p[:2] == p[2:] else 0, dilation=d)
    finally:
        fw.set_num_threads(old)
    pp = p if p[:2] == p[2:] else (0, 0, 0, 0)
    np.testing.assert_allclose(got.numpy(), _torch_conv(x, wt, None, s, pp, d).numpy(), rtol=1e-4, atol=1e-4)


def test_strided_conv_keeps_nan_and_inf_where_torch_does():
    x, wt, b = _a(1, 3, 11, 11), _a(4, 3, 3, 3), _a(4)
    x[0, 1, 4, 6] = np.nan
    x[0, 2, 8, 2] = np.inf
    got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(wt), fw.from_numpy(b), stride=(2, 2), padding=(1, 1, 1, 1),
                       activation="relu").numpy()
    want = torch.relu(_torch_conv(x, wt, b, (2, 2), (1, 1, 1, 1), (1, 1))).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [
    (1, 2, 3, 3, 4, (2, 2), (1, 1), (300,) * 4, (500, 500)),                # planes mostly padding: im2col
    (1, 2, 4, 4, 3, (3, 2), (2, 3), (200, 150, 200, 150), (190, 290)),  # the same, strided
    (1, 2, 4, 4, 3, (3, 2), (2, 3), (30, 20, 30, 20), (29, 37)),        # phase planes still
    (1, 3, 6, 6, 5, (2, 2), (1, 1), (4, 4, 4, 4), (9, 9)),              # dilation larger than the input
])
def test_geometries_whose_phase_planes_would_be_mostly_padding_match_torch(case):
    n, c, h, w, co, k, s, p, d = case
    x, wt, b = _a(n, c, h, w), _a(co, c, *k), _a(co)
    got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(wt), fw.from_numpy(b), stride=s, padding=p, dilation=d,
                       activation="none").numpy()
    np.testing.assert_allclose(got, _torch_conv(x, wt, b, s, p, d).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride,pad,dil,k", [((2, 2), 1, 1, 3), ((3, 2), 2, 1, 3), ((2, 2), 0, 1, 1),
                                              ((2, 2), 2, 2, 3), ((2, 2), 3, 1, 7)])
def test_strided_conv_gradients_match_torch(stride, pad, dil, k):
    # conv2d's backward (grad input via GEMM + col2im, grad weight via im2col), and the
    # grad of conv2d_backward_input (double backward), which runs the strided forward
    x, wt, b = _a(2, 3, 13, 12), _a(5, 3, k, k) * 0.3, _a(5)
    xf, wf, bf = (fw.from_numpy(v).requires_grad_() for v in (x, wt, b))
    xt, wtt, bt = (torch.from_numpy(v).requires_grad_() for v in (x, wt, b))
    y = fw.nn.functional.conv2d(xf, wf, bf, stride=stride, padding=pad, dilation=dil)
    yt = TF.conv2d(xt, wtt, bt, stride=stride, padding=pad, dilation=dil)
    v = _a(*yt.shape)
    (y * fw.from_numpy(v)).sum().backward()
    (yt * torch.from_numpy(v)).sum().backward()
    for got, want in ((xf.grad, xt.grad), (wf.grad, wtt.grad), (bf.grad, bt.grad)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
    go = fw.from_numpy(v).requires_grad_()
    gx = fw.ops.conv.conv2d_backward_input(tuple(x.shape), fw.from_numpy(wt), go, stride, pad, dil, 1)
    u = _a(*x.shape)
    (gx * fw.from_numpy(u)).sum().backward()
    want = TF.conv2d(torch.from_numpy(u), torch.from_numpy(wt), stride=stride, padding=pad, dilation=dil)
    np.testing.assert_allclose(go.grad.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


class _StridedBlock(fw.nn.Module):
    """relu(conv(x) + r) with a strided conv: optimize() fuses it into one conv2d_act."""

    def __init__(self, cin, cout, k, stride, pad, dil=1, bias=True):
        super().__init__()
        self.conv = fw.nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dil, bias=bias)

    def forward(self, x, r):
        return fw.relu(self.conv(x) + r)


@pytest.mark.parametrize("cin,cout,k,stride,pad,dil,hw,bias", [
    (3, 16, 7, 2, 3, 1, 30, True),      # a stem
    (64, 40, 3, 2, 1, 1, 14, True),     # K 576 on a 7x7 output: a pair + a partial panel
    (64, 32, 3, 2, 1, 1, 27, False),    # 14x14 output, odd input
    (128, 48, 1, 2, 0, 1, 13, True),    # 1x1 s2 downsample
    (64, 33, 3, (2, 1), 2, 2, 11, True),  # uneven stride, dilation
])
@pytest.mark.parametrize("batch", [1, 3])
def test_graph_runtime_strided_conv_block_matches_torch(cin, cout, k, stride, pad, dil, hw, bias, batch):
    fw.manual_seed(0)
    block = _StridedBlock(cin, cout, k, stride, pad, dil, bias).eval()
    tconv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dil, bias=bias)
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(block.conv.weight.detach().numpy()))
        if bias:
            tconv.bias.copy_(torch.from_numpy(block.conv.bias.detach().numpy()))
    x = fw.randn(batch, cin, hw, hw)
    with torch.no_grad():
        out_shape = tuple(tconv(torch.from_numpy(x.numpy())).shape)
    r = fw.randn(*out_shape)
    traced = fw.jit.trace(block, (x, r)).optimize()
    assert [n.target for n in traced.graph.calls()] == ["conv2d_act"]
    with torch.no_grad():
        want = torch.relu(tconv(torch.from_numpy(x.numpy())) + torch.from_numpy(r.numpy())).numpy()
    for compiled in (rt.compile(traced.graph), rt.compile(traced.graph, prepack=False)):
        np.testing.assert_allclose(compiled.run([x, r])[0].numpy(), want, rtol=1e-4, atol=1e-4)
