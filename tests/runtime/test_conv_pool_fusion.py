"""conv2d_act_maxpool (framework/ops/fused.py, created by fuse_conv_pool): each sample's conv
map is pooled while it is in cache. Against torch over pool geometries, residuals, batch 1
(tiles split over threads) and > 1 (samples split), f32 and f64, and with the blocked
(nchw16c) and plain layouts; eager calls and bad attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import framework as fw
from framework.jit import runtime as rt
from framework.ops import fused as FU


def _model(lib, cin, pool_args, act=True):
    nn = lib.nn
    layers = [nn.Conv2d(cin, 32, 3, padding=1)] + ([nn.ReLU()] if act else []) + [nn.MaxPool2d(**pool_args)]
    return nn.Sequential(*layers, nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


@pytest.mark.parametrize("pool_args,hw", [
    (dict(kernel_size=2), (12, 12)),
    (dict(kernel_size=2), (13, 9)),                          # odd sizes: the last row/column dropped
    (dict(kernel_size=3, stride=2, padding=1), (11, 14)),    # ResNet's stem pool
    (dict(kernel_size=(2, 3), stride=(1, 2)), (9, 9)),
    (dict(kernel_size=2, stride=1), (6, 7)),                 # overlapping windows
    (dict(kernel_size=3, stride=3, padding=1, ceil_mode=True), (10, 10)),
    (dict(kernel_size=2, dilation=2), (9, 10)),
])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("act", [True, False])
def test_fused_conv_pool_matches_torch(pool_args, hw, batch, act):
    torch.manual_seed(0)
    tm = _model(torch, 3, pool_args, act).eval()
    fm = _model(fw, 3, pool_args, act).eval()
    fm.load_state_dict({k: fw.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((batch, 3, *hw)).astype(np.float32)
    traced = fw.jit.trace(fm, (fw.from_numpy(x),), check_trace=False).optimize()
    assert [n.target for n in traced.graph.calls()] == ["conv2d_act_maxpool"] * 2
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    for blocked in (True, False):
        got = rt.compile(traced.graph, blocked_layout=blocked).run([x])[0].numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"blocked_layout={blocked}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eager_op_matches_torch_with_a_residual(dtype):
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in [(2, 5, 9, 8), (6, 5, 3, 3), (6,)])
    r = rng.standard_normal((2, 6, 9, 8)).astype(dtype)
    x[0, 1, 2, 3] = np.nan  # a NaN propagates through the relu and the pool, as in torch
    got = FU.conv2d_act_maxpool(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b), padding=(1, 1, 1, 1),
                                residual=fw.from_numpy(r), kernel_size=(3, 3), pool_stride=(2, 2),
                                pool_padding=(1, 1)).numpy()
    t = [torch.from_numpy(a) for a in (x, w, b, r)]
    want = TF.max_pool2d(torch.relu(TF.conv2d(t[0], t[1], t[2], padding=1) + t[3]), 3, 2, 1).numpy()
    assert np.isnan(got).sum() == np.isnan(want).sum() > 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bad_attributes_raise_clear_errors():
    x, w = fw.randn(1, 3, 8, 8), fw.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match="activation must be 'none' or 'relu'"):
        FU.conv2d_act_maxpool(x, w, activation="gelu")
    with pytest.raises(ValueError, match="pad should be smaller than or equal to half of kernel size"):
        FU.conv2d_act_maxpool(x, w, kernel_size=(2, 2), pool_padding=(2, 2))
    with pytest.raises(ValueError, match="half of kernel size"):  # as max_pool2d: dilation does not count
        FU.conv2d_act_maxpool(x, w, kernel_size=(3, 3), pool_padding=(2, 2), pool_dilation=(2, 2))
    with pytest.raises(RuntimeError, match="Output size is too small"):
        FU.conv2d_act_maxpool(x, w, kernel_size=(9, 9))


def _residual_model(lib):
    nn = lib.nn

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            a = lib.relu(self.c1(x))
            return self.pool(lib.relu(self.c2(a) + a))  # conv + residual + relu + pool: one node

    return M()


@pytest.mark.parametrize("batch", [1, 2])
def test_fused_conv_pool_with_a_blocked_residual(batch):
    torch.manual_seed(3)
    tm, fm = _residual_model(torch).eval(), _residual_model(fw).eval()
    fm.load_state_dict({k: fw.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((batch, 3, 10, 10)).astype(np.float32)
    traced = fw.jit.trace(fm, (fw.from_numpy(x),), check_trace=False).optimize()
    assert [n.target for n in traced.graph.calls()] == ["conv2d_act", "conv2d_act_maxpool"]
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    for blocked in (True, False):
        got = rt.compile(traced.graph, blocked_layout=blocked).run([x])[0].numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"blocked_layout={blocked}")


def test_profiler_counts_the_conv_flops_of_a_fused_node():
    # The pooled output hides the conv's own size: fw.profiler reads the node's attributes
    # (CompiledGraph.node_int_attrs) and counts 2 * N * Cout * Ho * Wo * C * kh * kw.
    fm = _model(fw, 3, dict(kernel_size=2)).eval()
    x = fw.randn(2, 3, 12, 12)
    traced = fw.jit.trace(fm, (x,), check_trace=False).optimize()
    traced(x)
    with fw.profiler.profile() as p:
        traced(x)
    flops = [e.flops for e in p.events if e.kind == "graph" and e.name == "conv2d_act_maxpool"]
    assert flops == [2 * 2 * 32 * 12 * 12 * 3 * 9, 2 * 2 * 16 * 6 * 6 * 32 * 9]
