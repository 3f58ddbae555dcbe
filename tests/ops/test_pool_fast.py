"""max_pool2d's f32 loop for 2x2 and 3x3 windows of stride 2 (padding 0 or 1) against torch:
values and indices on rows of one vector of outputs or less (two rows per vector), one and
several vectors, odd and even sizes, ceil_mode, NaN in every window position, ties and
signed zeros (the first maximum wins), all -inf windows (the first in-bounds index), strided
inputs, batches whose row pairs span planes, a split over threads, and float64 (the portable
loop). Shapes stay small."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import framework as fw

rng = np.random.default_rng(0)

WINDOWS = [(2, 0), (3, 1), (2, 1), (3, 0)]  # (kernel, padding), stride 2
SIZES = [(1, 1), (2, 3), (4, 4), (7, 5), (14, 14), (13, 15), (28, 28), (9, 33), (6, 34), (5, 70), (3, 2)]


def _check(x, k, p, ceil_mode=False, indices=True):
    """fw vs torch on x (numpy), values (NaN-aware, sign of zero too) and indices."""
    want, want_idx = TF.max_pool2d(torch.from_numpy(np.ascontiguousarray(x)), k, 2, p, ceil_mode=ceil_mode,
                                   return_indices=True)
    got = fw.nn.functional.max_pool2d(fw.from_numpy(x), k, 2, p, ceil_mode=ceil_mode, return_indices=indices)
    got, got_idx = got if indices else (got, None)
    got = got.numpy()
    assert got.shape == tuple(want.shape) and got.dtype == x.dtype
    np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want.numpy()))
    if indices:
        np.testing.assert_array_equal(got_idx.numpy(), want_idx.numpy())


def _valid(h, w, k, p):
    return h + 2 * p >= k and w + 2 * p >= k


@pytest.mark.parametrize("k,p", WINDOWS, ids=lambda v: str(v))
@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("indices", [False, True])
def test_random_planes_match_torch(k, p, hw, indices):
    h, w = hw
    if not _valid(h, w, k, p):
        pytest.skip("window larger than the padded input")
    for n, c in [(1, 3), (2, 5)]:
        _check(rng.standard_normal((n, c, h, w)).astype(np.float32), k, p, indices=indices)


@pytest.mark.parametrize("k,p", WINDOWS, ids=lambda v: str(v))
@pytest.mark.parametrize("hw", [(5, 5), (6, 7), (13, 34), (2, 17)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_ceil_mode_matches_torch(k, p, hw):
    if not _valid(*hw, k, p):
        pytest.skip("window larger than the padded input")
    x = rng.standard_normal((2, 3, *hw)).astype(np.float32)
    for indices in (False, True):
        _check(x, k, p, ceil_mode=True, indices=indices)


@pytest.mark.parametrize("k,p", [(2, 0), (3, 1)], ids=lambda v: str(v))
@pytest.mark.parametrize("hw", [(6, 6), (5, 7), (4, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_nan_anywhere_wins(k, p, hw):
    """One NaN at each position of a plane in turn (it is then in every window covering it)."""
    h, w = hw
    base = rng.standard_normal((1, 2, h, w)).astype(np.float32)
    for i in range(h):
        for j in range(w):
            x = base.copy()
            x[0, 1, i, j] = np.nan
            for indices in (False, True):
                _check(x, k, p, indices=indices)


@pytest.mark.parametrize("k,p", WINDOWS, ids=lambda v: str(v))
def test_many_nans_last_nan_wins(k, p):
    """Several NaNs per window: the values are NaN, the index is the last NaN's (torch)."""
    x = rng.standard_normal((3, 2, 11, 37)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[1, 1] = np.nan  # a plane of NaN only
    for indices in (False, True):
        _check(x, k, p, indices=indices)


@pytest.mark.parametrize("k,p", WINDOWS, ids=lambda v: str(v))
def test_ties_signed_zeros_and_infinities(k, p):
    """Ties keep the first maximum (index and sign of zero); all -inf windows get the first
    in-bounds index; +inf wins."""
    x = rng.integers(-1, 2, size=(2, 3, 9, 20)).astype(np.float32)
    x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)
    x[0, 1] = -np.inf
    x[1, 2, ::3, ::4] = np.inf
    for indices in (False, True):
        _check(x, k, p, indices=indices)


@pytest.mark.parametrize("k,p", [(2, 0), (3, 1)], ids=lambda v: str(v))
def test_strided_inputs_match_torch(k, p):
    base = rng.standard_normal((3, 4, 15, 40)).astype(np.float32)
    views = [
        base.transpose(1, 0, 2, 3),    # planes not in order (batch and channel strides swapped)
        base[:, ::2, 1:, 3:],          # row stride above the width
        base[:, :, :, ::2],            # column stride 2: planes are gathered first
        base[:, :, ::-1, :],           # negative row stride
    ]
    for v in views:
        for indices in (False, True):
            _check(v, k, p, indices=indices)


@pytest.mark.parametrize("shape", [(4, 64, 14, 14), (3, 32, 15, 9), (1, 8, 56, 56)], ids=str)
@pytest.mark.parametrize("k,p", [(2, 0), (3, 1)], ids=lambda v: str(v))
def test_split_over_threads_matches_one_thread(shape, k, p):
    """Enough planes to split over the pool: each range starts its own row pairs."""
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(x.shape) < 0.01] = np.nan
    before = fw.get_num_threads()
    try:
        for threads in (1, 2):
            fw.set_num_threads(threads)
            for indices in (False, True):
                _check(x, k, p, indices=indices)
    finally:
        fw.set_num_threads(before)


@pytest.mark.parametrize("k,p", WINDOWS, ids=lambda v: str(v))
def test_float64_matches_torch(k, p):
    x = rng.standard_normal((2, 3, 13, 34))
    x[0, 0, 4, 5] = np.nan
    for indices in (False, True):
        _check(x, k, p, indices=indices)


def test_unbatched_input_and_gradient_match_torch():
    x = rng.standard_normal((3, 14, 14)).astype(np.float32)
    _check(x[None], 2, 0)
    got = fw.nn.functional.max_pool2d(fw.from_numpy(x), 3, 2, 1)
    np.testing.assert_array_equal(got.numpy(), TF.max_pool2d(torch.from_numpy(x), 3, 2, 1).numpy())
    xf = fw.from_numpy(x[None].copy()).requires_grad_()
    xt = torch.from_numpy(x[None].copy()).requires_grad_()
    g = rng.standard_normal((1, 3, 7, 7)).astype(np.float32)
    (fw.nn.functional.max_pool2d(xf, 3, 2, 1) * fw.from_numpy(g)).sum().backward()
    (TF.max_pool2d(xt, 3, 2, 1) * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(xf.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)
