"""The channel-blocked activation layout (csrc/runtime/layout.h): on AVX-512 CPUs the runtime
keeps activations between convolutions and pools in nchw16c, inserting reorder_nchw16c nodes
where plain NCHW consumers or graph outputs read them. Every model agrees with torch and with
the same model loaded with blocked_layout=False, over the geometries the blocked kernels take
(first-layer convs on plain inputs, stride 2, 1x1, residuals, odd maps, batches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from framework import _C
from framework.jit import runtime as rt

def _has_blocked_kernels():
    return _C.kernel_handle("reorder_nchw16c", fw.float32.code) is not None


def _pair(build, x_shape, seed=0):
    """(torch model, framework model with the same weights) for a builder taking the library."""
    torch.manual_seed(seed)
    tm = build(torch).eval()
    fm = build(fw).eval()
    fm.load_state_dict({k: fw.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    # BatchNorm statistics that are not the identity, so folding them is exercised.
    for m in list(tm.modules()):
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    fm.load_state_dict({k: fw.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return tm, fm


def _check(build, x_shape, batches=(1,), seed=0, expect_blocked=True):
    tm, fm = _pair(build, x_shape, seed)
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((batches[0], *x_shape)).astype(np.float32)
    traced = fw.jit.trace(fm, (fw.from_numpy(x0),), check_trace=False, dynamic_dims={0: [0]}).optimize()
    blocked = rt.compile(traced.graph)
    plain = rt.compile(traced.graph, blocked_layout=False)
    kernels = [n[1] for n in blocked.nodes()]
    assert "reorder_nchw16c" not in [n[1] for n in plain.nodes()]
    if expect_blocked and _has_blocked_kernels() and _C.cpu_has_avx512f():
        assert "reorder_nchw16c" in kernels, kernels
    for batch in batches:
        x = rng.standard_normal((batch, *x_shape)).astype(np.float32)
        with torch.no_grad():
            ref = tm(torch.from_numpy(x))
        ref = ref if isinstance(ref, (tuple, list)) else (ref,)
        got_b = blocked.run([x])
        got_p = plain.run([x])
        for gb, gp, r in zip(got_b, got_p, ref):
            np.testing.assert_allclose(np.asarray(gb), r.numpy(), rtol=1e-4, atol=1e-4,
                                       err_msg=f"blocked vs torch, batch {batch}")
            np.testing.assert_allclose(np.asarray(gb), np.asarray(gp), rtol=1e-4, atol=1e-4,
                                       err_msg=f"blocked vs plain, batch {batch}")
    return kernels


def _chain(lib):
    """A first conv on a 3-channel input, a residual block, a stride-2 conv, a 1x1 conv with a
    residual, a non-relu activation and two outputs (one blocked, one from a plain op)."""
    nn = lib.nn

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 32, 3, padding=1)
            self.c2 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(32)
            self.c3 = nn.Conv2d(32, 48, 3, stride=2, padding=1)
            self.c4 = nn.Conv2d(48, 48, 1)

        def forward(self, x):
            a = lib.relu(self.c1(x))
            b = lib.relu(self.bn2(self.c2(a)) + a)
            c = self.c3(b)
            d = self.c4(c) + c
            return d, lib.sigmoid(c)

    return M()


@pytest.mark.parametrize("hw", [7, 14, 17, 28])
def test_conv_chain_matches_torch_and_the_plain_layout(hw):
    _check(_chain, (3, hw, hw), batches=(3, 1))


def _edge_conv(k, stride, pad):
    """A blocked-input conv of the given geometry between two blocked convs: its output
    rows and columns that read padding skip those taps (kernels/conv.cpp, tap_rows and the
    column tiles)."""
    def build(lib):
        nn = lib.nn
        return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(32, 32, k, stride=stride, padding=pad), nn.ReLU(),
                             nn.Conv2d(32, 16, 1))
    return build


@pytest.mark.parametrize("k,stride,pad,hw", [
    (5, 1, 2, (9, 20)),        # two border columns and rows at each edge; a wide map
    (5, 2, 2, (11, 8)),        # stride 2: the columns' taps skip by phase
    ((1, 3), 1, (0, 1), (6, 15)),  # columns only
    ((3, 1), 1, (1, 0), (15, 6)),  # rows only
    (3, 1, 1, (30, 3)),        # 3 columns, all of them border ones; 30 rows in runs of <= 7
    (3, 2, 1, (4, 2)),         # one output column that reads both paddings
])
def test_blocked_conv_skips_the_taps_that_read_padding(k, stride, pad, hw):
    _check(_edge_conv(k, stride, pad), (3, *hw), batches=(2, 1))


def _small_cnn(lib):
    """benchmarks/models.py's small CNN."""
    from benchmarks.models import small_cnn

    return small_cnn(lib)


def test_small_cnn_with_pools_and_a_flatten():
    kernels = _check(_small_cnn, (1, 28, 28), batches=(4, 1))
    if _has_blocked_kernels() and _C.cpu_has_avx512f():
        # conv + pool (fused) -> conv + pool (fused) blocked; the flatten became the one reorder
        # (written straight into the flatten's output, no second copy).
        assert kernels == ["conv2d_act_maxpool", "conv2d_act_maxpool", "reorder_nchw16c", "linear"], kernels


def _resnet_stem(lib):
    """benchmarks/models.py's ResNet-18, narrowed to two stages of 16 and 32 channels."""
    from benchmarks.models import resnet18

    return resnet18(lib, num_classes=5, widths=(16, 32))


def test_resnet_style_net_stays_blocked_to_the_average_pool():
    kernels = _check(_resnet_stem, (3, 40, 40), batches=(2, 1), expect_blocked=False)
    if _has_blocked_kernels() and _C.cpu_has_avx512f():
        # conv1 .. the last block all blocked; the global average reads blocked and writes NCHW.
        assert kernels.count("reorder_nchw16c") == 0, kernels


def _ineligible(lib):
    """Channels not in multiples of 16, groups, dilation: nothing is blocked."""
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 24, 3, padding=2, dilation=2,
                                                                              groups=3))


def test_ineligible_convs_stay_plain():
    kernels = _check(_ineligible, (3, 9, 9), batches=(2, 1), expect_blocked=False)
    assert "reorder_nchw16c" not in kernels


def test_saved_model_reloads_blocked(tmp_path):
    tm, fm = _pair(_small_cnn, (1, 28, 28))
    x = np.random.default_rng(3).standard_normal((2, 1, 28, 28)).astype(np.float32)
    traced = fw.jit.trace(fm, (fw.from_numpy(x),), check_trace=False).optimize()
    path = tmp_path / "m.fwm"
    rt.save(traced.graph, path)
    loaded = rt.load(path)
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(loaded.run([x])[0].numpy(), ref, rtol=1e-4, atol=1e-4)
    # The file holds the graph as traced: the layout is chosen again at every load.
    assert "reorder_nchw16c" not in [n[1] for n in rt.load(path, blocked_layout=False).nodes()]


def test_conv_kernel_rejects_a_bad_layout_attribute():
    h = _C.kernel_handle("conv2d", fw.float32.code)
    x = np.zeros((1, 16, 4, 4), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    with pytest.raises(RuntimeError, match="layout attribute 1"):
        _C.call(h, (x, w, None), [((1, 16, 4, 4), fw.float32.code)], ((1, 1), (1, 1, 1, 1), (1, 1), 1, 1))
    with pytest.raises(RuntimeError, match="packed at load"):
        _C.call(h, (x, w, None), [((1, 16, 4, 4), fw.float32.code)], ((1, 1), (1, 1, 1, 1), (1, 1), 1, 3))
    w24 = np.zeros((24, 16, 3, 3), np.float32)
    with pytest.raises(RuntimeError, match="multiples of 16"):
        _C.call(h, (x, w24, None), [((1, 24, 4, 4), fw.float32.code)], ((1, 1), (1, 1, 1, 1), (1, 1), 1, 2))
