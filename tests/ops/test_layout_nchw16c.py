"""The nchw16c channel-blocked layout: reorder_nchw16c against torch's permutation, and the
blocked max_pool2d / adaptive_avg_pool2d kernels (called directly with the runtime's trailing
"layout" attribute) against torch.nn.functional on inputs blocked with that permutation.
f64 runs the portable loops, f32 the AVX-512 ones where the CPU has them."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import framework as fw
from framework import _C

DTYPES = [(fw.float32, torch.float32), (fw.float64, torch.float64)]


def to_blocked(t: torch.Tensor) -> torch.Tensor:
    """torch reference: logical NCHW -> the tensor whose flat memory is t in nchw16c order."""
    N, C, H, W = t.shape
    return t.reshape(N, C // 16, 16, H, W).permute(0, 1, 3, 4, 2).reshape(N, C, H, W).contiguous()


def from_blocked(t: torch.Tensor) -> torch.Tensor:
    N, C, H, W = t.shape
    return t.reshape(N, C // 16, H, W, 16).permute(0, 1, 4, 2, 3).reshape(N, C, H, W).contiguous()


def _rand(shape, tdt, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape)).to(tdt)


# ---- reorder_nchw16c ------------------------------------------------------------------


@pytest.mark.parametrize("dt,tdt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 32, 3, 5), (1, 16, 7, 7), (2, 16, 1, 1), (1, 48, 17, 19), (1, 16, 4, 4)])
def test_reorder_matches_torch_permutation_both_ways(dt, tdt, shape):
    x = _rand(shape, tdt)
    y = fw.reorder_nchw16c(fw.from_numpy(x.numpy()), True)
    assert tuple(y.shape) == shape and y.dtype is dt
    np.testing.assert_array_equal(y.numpy(), to_blocked(x).numpy())
    back = fw.reorder_nchw16c(fw.from_numpy(to_blocked(x).numpy()), to_blocked=False)
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    np.testing.assert_array_equal(fw.reorder_nchw16c(y, False).numpy(), x.numpy())  # round trip


def test_reorder_reads_strided_plain_inputs():
    base = np.random.default_rng(1).standard_normal((2, 32, 6, 12)).astype(np.float32)
    for view in (base[..., ::2], base[..., 1:5], base[:, :, ::2, 3:10], base[:, 16:]):
        got = fw.reorder_nchw16c(fw.from_numpy(view), True)
        np.testing.assert_array_equal(got.numpy(), to_blocked(torch.from_numpy(np.ascontiguousarray(view))).numpy())


@pytest.mark.parametrize("shape", [(16, 4, 4), (1, 8, 4, 4), (1, 24, 2, 2)])
def test_reorder_rejects_bad_shapes(shape):
    x = fw.zeros(*shape)
    with pytest.raises(ValueError, match=r"reorder_nchw16c.*" + re.escape(str(list(shape)))):
        fw.reorder_nchw16c(x, True)


def test_reorder_gradient_is_the_inverse_reorder():
    x = fw.from_numpy(_rand((1, 16, 2, 3), torch.float64).numpy()).requires_grad_(True)
    w = _rand((1, 16, 2, 3), torch.float64, seed=3)
    (fw.reorder_nchw16c(x, True) * fw.from_numpy(w.numpy())).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), from_blocked(w).numpy())


# ---- blocked kernels, called as the runtime calls them --------------------------------


def _call(op, dt, x: torch.Tensor, specs, attrs):
    h = _C.kernel_handle(op, dt.code)
    return _C.call(h, (x.numpy(),), specs, attrs)


def _max_pool_blocked(dt, x, k, s, p, d, ceil_mode, with_indices=False, layout=3, out_shape=None):
    ref = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil_mode)
    shape = out_shape or tuple(ref.shape)
    out = _call("max_pool2d", dt, to_blocked(x), [(shape, dt.code), ((0,), fw.int64.code)],
                ((k, k), (s, s), (p, p), (d, d), ceil_mode, with_indices, layout))
    return from_blocked(torch.from_numpy(out[0])), ref


POOL_GEOMETRIES = [  # kernel, stride, padding, dilation, ceil_mode, input (N, C, H, W)
    pytest.param(3, 2, 1, 1, False, (1, 32, 12, 12), id="resnet-3x3s2p1"),
    pytest.param(3, 2, 1, 1, False, (2, 16, 9, 11), id="3x3s2p1-odd"),
    pytest.param(2, 2, 0, 1, False, (2, 32, 8, 8), id="small-cnn-2x2s2"),
    pytest.param(2, 2, 0, 1, True, (1, 16, 7, 9), id="2x2s2-ceil"),
    pytest.param(3, 2, 0, 1, True, (1, 16, 8, 10), id="3x3s2-ceil"),
    pytest.param(3, 1, 1, 2, False, (1, 16, 7, 8), id="3x3-dilation2"),
    pytest.param(2, 3, 1, 2, True, (2, 16, 9, 7), id="dilation-stride3-ceil"),
    pytest.param(1, 1, 0, 1, False, (1, 16, 3, 4), id="1x1"),
]


@pytest.mark.parametrize("dt,tdt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k,s,p,d,ceil_mode,shape", POOL_GEOMETRIES)
def test_blocked_max_pool_matches_torch(dt, tdt, k, s, p, d, ceil_mode, shape):
    x = _rand(shape, tdt)
    got, ref = _max_pool_blocked(dt, x, k, s, p, d, ceil_mode)
    assert torch.equal(got, ref)


@pytest.mark.parametrize("dt,tdt", DTYPES, ids=["f32", "f64"])
def test_blocked_max_pool_propagates_nan_and_infinities(dt, tdt):
    x = _rand((1, 32, 9, 9), tdt, seed=5)
    x[0, 3, 2, 2] = float("nan")
    x[0, 17, 0, 0] = float("nan")
    x[0, 20, 4, 4] = float("inf")
    x[0, 31, :, :] = float("-inf")
    x[0, 5, 6:, 6:] = float("nan")
    for k, s, p, d in ((3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 2)):
        got, ref = _max_pool_blocked(dt, x, k, s, p, d, False)
        assert torch.equal(torch.isnan(got), torch.isnan(ref)) and torch.isnan(got).any()
        torch.testing.assert_close(got, ref, equal_nan=True, rtol=0, atol=0)


def test_blocked_max_pool_keeps_the_first_of_tied_zeros():
    # torch's update (v > m || isnan(v)) keeps the first of equal values: the sign of 0.0
    x = torch.from_numpy(np.random.default_rng(7).choice([-0.0, 0.0], size=(1, 16, 6, 6)).astype(np.float32))
    got, ref = _max_pool_blocked(fw.float32, x, 3, 2, 1, 1, False)
    assert torch.equal(torch.signbit(got), torch.signbit(ref))


def test_blocked_max_pool_errors():
    x = _rand((1, 16, 6, 6), torch.float32)
    with pytest.raises(RuntimeError, match="max_pool2d: the nchw16c layout computes no indices"):
        _max_pool_blocked(fw.float32, x, 2, 2, 0, 1, False, with_indices=True)
    for layout in (1, 2, 7):
        with pytest.raises(RuntimeError, match=f"max_pool2d: unsupported layout attribute {layout}"):
            _max_pool_blocked(fw.float32, x, 2, 2, 0, 1, False, layout=layout)
    bad = torch.zeros(1, 8, 6, 6)  # channels not a multiple of 16
    with pytest.raises(RuntimeError, match="max_pool2d: the nchw16c input must be .* multiple of 16"):
        _call("max_pool2d", fw.float32, bad, [((1, 8, 3, 3), fw.float32.code), ((0,), fw.int64.code)],
              ((2, 2), (2, 2), (0, 0), (1, 1), False, False, 3))


@pytest.mark.parametrize("dt,tdt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("out_size", [(1, 1), (3, 3), (4, 2), (12, 13)], ids=str)
@pytest.mark.parametrize("layout", [1, 3])
def test_blocked_adaptive_avg_pool_matches_torch_and_the_nchw_kernel(dt, tdt, out_size, layout):
    x = _rand((2, 80, 7, 9), tdt)  # 10 channel blocks: groups of four and a partial one
    ref = F.adaptive_avg_pool2d(x, out_size)
    out = torch.from_numpy(_call("adaptive_avg_pool2d", dt, to_blocked(x), [(tuple(ref.shape), dt.code)],
                                 (out_size, layout))[0])
    got = from_blocked(out) if layout == 3 else out
    torch.testing.assert_close(got, ref)
    # each lane sums its window in the NCHW kernel's order: equal bit for bit
    np.testing.assert_array_equal(got.numpy(), fw.adaptive_avg_pool2d(fw.from_numpy(x.numpy()), out_size).numpy())


def test_blocked_adaptive_avg_pool_errors():
    x = _rand((1, 16, 4, 4), torch.float32)
    with pytest.raises(RuntimeError, match="adaptive_avg_pool2d: unsupported layout attribute 2"):
        _call("adaptive_avg_pool2d", fw.float32, x, [((1, 16, 1, 1), fw.float32.code)], ((1, 1), 2))
    with pytest.raises(RuntimeError, match="adaptive_avg_pool2d: the nchw16c input must be"):
        _call("adaptive_avg_pool2d", fw.float32, torch.zeros(1, 8, 4, 4), [((1, 8, 1, 1), fw.float32.code)],
              ((1, 1), 1))


def test_adaptive_avg_pool_rejects_window_blowup_instead_of_hanging():
    """Growing one dim while shrinking the other by huge factors would visit ~1e9 elements
    per plane (a fuzzer-found hang); such shapes raise, moderate mixed ones still run."""
    x = np.random.default_rng(0).random((1, 16, 10, 1000)).astype(np.float32)
    got = fw.nn.functional.adaptive_avg_pool2d(fw.from_numpy(x), (100, 10)).numpy()
    ref = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), (100, 10)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    big = fw.zeros(1, 1, 4, 60000)
    with pytest.raises(RuntimeError, match="grows one dim while it shrinks the other"):
        fw.nn.functional.adaptive_avg_pool2d(big, (40000, 2))
