"""The fast paths of the conv2d and max_pool2d kernels against torch: the register-tiled f32
convolution (stride 1 over a padded input with dropped columns, strided via im2col, fused
bias, residual and relu, tiles with partial rows and columns, batch 1 and > 1), and max
pooling's 2x2 stride-2 loop, separable values-only loop and per-tap loop with indices (NaN
propagation and torch's argmax indices included). Shapes stay small."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import framework as fw
from framework.jit import passes as P
from framework.jit.interpreter import Interpreter
from framework.jit.ir import Graph, TensorSpec
from framework.ops import fused as F

rng = np.random.default_rng(0)


def _a(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- conv2d ----------------------------------------------------------------------------

CONV_CASES = [
    # (N, C, H, W, Cout, k, stride, padding, dilation)
    (1, 1, 28, 28, 32, 3, 1, 1, 1),     # first layer, Cin = 1
    (2, 5, 9, 7, 13, 3, 1, 1, 1),       # odd sizes, Cout not a multiple of the tile
    (1, 4, 6, 6, 7, 3, 1, 0, 1),        # no padding: input read in place plus a tail
    (3, 6, 11, 10, 9, 3, 2, 1, 1),      # strided (im2col columns)
    (1, 3, 15, 15, 8, 7, 2, 3, 1),      # a stem-like 7x7 stride 2
    (2, 64, 40, 40, 8, 3, 2, 1, 1),     # strided with several im2col row tiles per sample
    (2, 8, 5, 5, 6, 1, 1, 0, 1),        # 1x1: the input is the GEMM operand itself
    (1, 8, 9, 9, 5, 1, 2, 0, 1),        # 1x1 stride 2
    (1, 3, 10, 12, 4, 3, 1, 2, 2),      # dilation
    (1, 2, 70, 3, 3, 3, 1, 1, 1),       # more than one tile of pixels, narrow rows
    # more channels than one tile of output channels, odd sizes, no padding
    (1, 16, 12, 12, 17, 3, 1, 1, 1),
    (2, 16, 13, 11, 16, 3, 1, 1, 1),
    (1, 18, 14, 15, 16, 3, 1, 0, 1),    # no padding
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("act", ["none", "relu"])
def test_conv2d_act_fast_path_matches_torch(case, act):
    n, c, h, w, co, k, s, p, d = case
    x, wt, b = _a(n, c, h, w), _a(co, c, k, k) * 0.3, _a(co)
    got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(wt), fw.from_numpy(b), stride=(s, s),
                       padding=(p, p, p, p), dilation=(d, d), activation=act).numpy()
    want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(b), stride=s, padding=p,
                     dilation=d)
    if act == "relu":
        want = torch.relu(want)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, None])
def test_conv2d_over_several_row_bands_matches_torch(threads):
    """A wide image exceeds one band of scratch: the stride-1 path runs it band by band."""
    x, wt, b = _a(2, 8, 80, 254), _a(8, 8, 3, 3) * 0.3, _a(8)
    before = fw.get_num_threads()
    try:
        if threads:
            fw.set_num_threads(threads)
        got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(wt), fw.from_numpy(b), padding=(1, 2, 1, 0),
                           activation="relu").numpy()
    finally:
        fw.set_num_threads(before)
    want = torch.relu(TF.conv2d(TF.pad(torch.from_numpy(x), (2, 0, 1, 1)), torch.from_numpy(wt), torch.from_numpy(b)))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CONV_CASES[:4], ids=lambda c: "x".join(map(str, c)))
def test_conv2d_without_bias_matches_torch(case):
    n, c, h, w, co, k, s, p, d = case
    x, wt = _a(n, c, h, w), _a(co, c, k, k) * 0.3
    got = fw.conv2d(fw.from_numpy(x), fw.from_numpy(wt), None, stride=s, padding=p, dilation=d).numpy()
    want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(wt), None, stride=s, padding=p, dilation=d)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[3], CONV_CASES[-2]], ids=lambda c: "x".join(map(str, c)))
def test_conv2d_act_residual_matches_torch(case):
    n, c, h, w, co, k, s, p, d = case
    x, wt, b = _a(n, c, h, w), _a(co, c, k, k) * 0.3, _a(co)
    want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(b), stride=s, padding=p,
                     dilation=d)
    r = _a(*want.shape)
    got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(wt), fw.from_numpy(b), stride=(s, s), padding=(p, p, p, p),
                       dilation=(d, d), activation="relu", residual=fw.from_numpy(r)).numpy()
    np.testing.assert_allclose(got, torch.relu(want + torch.from_numpy(r)).numpy(), rtol=1e-4, atol=1e-4)


def test_conv2d_act_relu_keeps_nan_like_torch():
    x, wt, b = _a(1, 2, 5, 5), _a(3, 2, 3, 3), _a(3)
    x[0, 1, 2, 2] = np.nan
    got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(wt), fw.from_numpy(b), padding=(1, 1, 1, 1),
                       activation="relu").numpy()
    want = torch.relu(TF.conv2d(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(b), padding=1))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want.numpy()))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


# ---- max_pool2d ------------------------------------------------------------------------

POOL_CASES = [
    # (shape, kernel, stride, padding, dilation, ceil_mode)
    ((1, 3, 8, 8), 2, 2, 0, 1, False),      # the 2x2 stride-2 loop
    ((2, 3, 7, 9), 2, 2, 0, 1, False),      # odd sizes: the last row/column is dropped
    ((2, 3, 7, 9), 2, 2, 0, 1, True),       # ceil_mode: clipped last windows
    ((1, 4, 11, 13), 3, 2, 1, 1, False),    # ResNet's 3x3 stride 2 padding 1
    ((2, 2, 10, 10), 3, 2, 1, 1, True),
    ((1, 2, 9, 8), 3, 1, 1, 1, False),      # stride 1
    ((1, 2, 9, 8), (2, 3), (1, 2), (1, 1), 1, False),
    ((1, 2, 12, 12), 3, 3, 0, 1, False),    # stride 3 (the per-tap loop)
    ((1, 2, 12, 11), 3, 2, 1, 2, False),    # dilation (the per-tap loop)
    ((1, 1, 4, 40), 2, 2, 0, 1, False),     # rows longer than one vector
    ((1, 1, 5, 40), 3, 2, 1, 1, False),
]


def _pool_input(shape, nans):
    x = _a(*shape)
    x.reshape(-1)[::7] = x.reshape(-1)[3]  # ties: torch keeps the first maximum
    if nans:
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, size=max(1, flat.size // 15), replace=False)] = np.nan
    return x


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: str(c).replace(" ", ""))
@pytest.mark.parametrize("nans", [False, True], ids=["finite", "nan"])
@pytest.mark.parametrize("indices", [False, True], ids=["values", "indices"])
def test_max_pool2d_paths_match_torch(case, nans, indices):
    shape, k, s, p, d, ceil = case
    x = _pool_input(shape, nans)
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil, return_indices=indices)
    with fw.no_grad():
        got = fw.max_pool2d(fw.from_numpy(x), k, **kw)
    want = TF.max_pool2d(torch.from_numpy(x), k, **kw)
    if indices:
        np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
        got, want = got[0], want[0]
    np.testing.assert_array_equal(got.numpy(), want.numpy())  # max is exact, NaN where torch has NaN


def test_max_pool2d_strided_input_matches_torch():
    x = _a(2, 3, 8, 16)[..., ::2]
    with fw.no_grad():
        got = fw.max_pool2d(fw.from_numpy(x), 3, stride=2, padding=1)
    np.testing.assert_array_equal(got.numpy(), TF.max_pool2d(torch.from_numpy(x), 3, 2, 1).numpy())


def test_max_pool2d_computes_indices_only_when_needed():
    x = fw.from_numpy(_a(1, 2, 4, 4))
    with fw.no_grad():
        assert tuple(fw.max_pool2d(x, 2, return_indices=True)[1].shape) == (1, 2, 2, 2)
    xr = fw.from_numpy(_a(1, 2, 4, 4))
    xr.requires_grad = True
    y = fw.max_pool2d(xr, 2)  # grad needs the indices: the backward still matches torch
    y.sum().backward()
    tx = torch.from_numpy(xr.detach().numpy()).requires_grad_()
    TF.max_pool2d(tx, 2).sum().backward()
    np.testing.assert_array_equal(xr.grad.numpy(), tx.grad.numpy())


def test_skip_unused_outputs_turns_off_unused_indices():
    g = Graph()
    x = g.add_input("x", TensorSpec((2, 3, 6, 6), fw.float32))
    pooled = g.call("max_pool2d", [x], ((2, 2), (2, 2), (0, 0), (1, 1), False, True))
    kept = g.call("max_pool2d", [x], ((3, 3), (2, 2), (1, 1), (1, 1), False, True))
    g.set_output([pooled.outputs[0], kept.outputs[0], kept.outputs[1]])
    xs = [fw.from_numpy(_a(2, 3, 6, 6))]
    before = [o.numpy().copy() for o in Interpreter(g).run(xs)]
    assert P.skip_unused_outputs(g) is True
    g.lint()
    first, second = g.calls("max_pool2d")
    assert first.attrs[5] is False and tuple(first.outputs[1].spec.shape) == (0,)
    assert second.attrs[5] is True  # its indices are a graph output
    for a, b in zip(Interpreter(g).run(xs), before):
        np.testing.assert_array_equal(a.numpy(), b)
    assert P.skip_unused_outputs(g) is False


def test_traced_cnn_runs_max_pool_without_indices():
    # (a tanh between: a pool right after a conv is fused into it, fuse_conv_pool)
    model = fw.nn.Sequential(fw.nn.Conv2d(1, 4, 3, padding=1), fw.nn.Tanh(), fw.nn.MaxPool2d(2))
    x = fw.from_numpy(_a(2, 1, 6, 6))
    opt = fw.jit.trace(model, (x,), check_trace=False).optimize()
    (node,) = opt.graph.calls("max_pool2d")
    assert node.attrs[5] is False
    with fw.no_grad():
        want = TF.max_pool2d(torch.tanh(TF.conv2d(torch.from_numpy(x.numpy()),
                                                  torch.from_numpy(model[0].weight.detach().numpy()),
                                                  torch.from_numpy(model[0].bias.detach().numpy()), padding=1)), 2)
        np.testing.assert_allclose(opt(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


class _Block(fw.nn.Module):
    """conv-bn-relu, conv-bn, + identity, relu: a ResNet basic block."""

    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = fw.nn.Conv2d(c, c, 3, padding=1, bias=False), fw.nn.BatchNorm2d(c)
        self.c2, self.b2 = fw.nn.Conv2d(c, c, 3, padding=1, bias=False), fw.nn.BatchNorm2d(c)

    def forward(self, x):
        h = fw.relu(self.b1(self.c1(x)))
        return fw.relu(self.b2(self.c2(h)) + x)


def test_resnet_block_becomes_two_conv_nodes_with_fused_residual():
    block = _Block(4)
    for bn in (block.b1, block.b2):
        bn.running_mean.copy_(fw.from_numpy(_a(4) * 0.1))
        bn.running_var.copy_(fw.from_numpy(np.abs(_a(4)) + 0.5))
    block.eval()
    x = fw.from_numpy(_a(2, 4, 5, 5))
    opt = fw.jit.trace(block, (x,), check_trace=False).optimize()
    targets = [n.target for n in opt.graph.calls()]
    assert targets == ["conv2d_act", "conv2d_act"], targets
    second = opt.graph.calls()[1]
    assert second.inputs[3] is not None and second.attrs[4] == "relu"
    with fw.no_grad():
        np.testing.assert_allclose(opt(x).numpy(), block(x).numpy(), rtol=1e-4, atol=1e-5)


def test_fuse_conv_residual_leaves_a_shared_conv_output_alone():
    g = Graph()
    x = g.add_input("x", TensorSpec((1, 2, 4, 4), fw.float32))
    w = g.add_const(_a(2, 2, 3, 3))
    conv = g.call("conv2d", [x, w, None], ((1, 1), (1, 1, 1, 1), (1, 1), 1))
    s = g.call("add", [conv.output, x], (1,))
    g.set_output([s.output, conv.output])  # the conv output is used twice: no fusion
    assert P.fuse_conv_residual(g) is False
    g2 = Graph()
    x = g2.add_input("x", TensorSpec((1, 2, 4, 4), fw.float32))
    w = g2.add_const(_a(2, 2, 3, 3))
    conv = g2.call("conv2d", [x, w, None], ((1, 1), (1, 1, 1, 1), (1, 1), 1))
    s = g2.call("add", [x, conv.output], (1,))
    g2.set_output([s.output])
    xs = [fw.from_numpy(_a(1, 2, 4, 4))]
    before = Interpreter(g2).run(xs)[0].numpy().copy()
    assert P.fuse_conv_residual(g2) is True
    g2.lint()
    assert [n.target for n in g2.calls()] == ["conv2d_act"]
    np.testing.assert_allclose(Interpreter(g2).run(xs)[0].numpy(), before, rtol=1e-5, atol=1e-6)
    assert P.fuse_conv_residual(g2) is False


def test_max_pool_huge_kernel_over_a_small_input_is_cheap_and_right():
    """A kernel of 2^13+1 taps (padding 2^12) over 3x5 pixels: only the taps that can land
    inside the input are visited (a crafted file made the loop over every tap hang)."""
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 5)).astype(np.float32)
    k, p = 2**13 + 1, 2**12
    for idx in (False, True):
        got = fw.nn.functional.max_pool2d(fw.tensor(x), (k, k), stride=(1, 2), padding=(p, p), return_indices=idx)
        ref = torch.nn.functional.max_pool2d(torch.from_numpy(x), (k, k), stride=(1, 2), padding=(p, p),
                                             return_indices=idx)
        if idx:
            np.testing.assert_array_equal(got[1].numpy(), ref[1].numpy())
            got, ref = got[0], ref[0]
        np.testing.assert_array_equal(got.numpy(), ref.numpy())
