"""Eager f32 linear / linear_act without a packed weight (csrc/kernels/linear_nt.cpp): on
AVX-512 CPUs, products of 3+ rows with K >= 256 (or K >= 64 up to 16 rows; K <= 784 past 64
rows) run dot-product register tiles (6 rows of x by 4 rows of W, 16-wide k chunks, a masked
K tail) that read the weight in place, or, for 96-512 rows with K <= 320, transpose W per
call into panel pairs for 12 x 32 tiles, or, for 65-160 rows with K > 784, pack all of W per
call for the same tiles; 1-2 rows with K >= 256 take the dot-product tiles when W's rows
split over two threads or more; the rest, strided operands and f64 use BLAS. Every
row, column and K tail, with and without bias, relu in the tile's store (NaN kept), other
activations after it, and strided operands, all against torch at 1 and 2 threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from framework.ops.fused import linear_act

ROWS = (3, 4, 5, 6, 7, 9, 11, 12, 13, 16, 17, 23, 40)  # tiles of 6 rows and every remainder
COLS = (1, 2, 3, 4, 5, 17, 70)  # quads of 4 columns and every remainder
TOL = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = fw.get_num_threads()
    fw.set_num_threads(request.param)
    yield request.param
    fw.set_num_threads(before)


def _data(rng, m, k, n, dtype=np.float32):
    return (rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((n, k)).astype(dtype),
            rng.standard_normal(n).astype(dtype))


def _torch_linear(x, w, b):
    return torch.nn.functional.linear(torch.from_numpy(np.ascontiguousarray(x)),
                                      torch.from_numpy(np.ascontiguousarray(w)),
                                      None if b is None else torch.from_numpy(np.ascontiguousarray(b))).numpy()


# K: the tiles' lower bounds (64 up to 16 rows, 256), a tail of 1 and of 15, 784 (no tail);
# 1, 15 and 100 past 16 rows go to BLAS.
@pytest.mark.parametrize("k", [1, 15, 64, 100, 257, 271, 784])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_matches_torch_over_every_tile_tail(threads, k, bias):
    rng = np.random.default_rng(k)
    for m in ROWS:
        for n in COLS:
            x, w, b = _data(rng, m, k, n)
            b = b if bias else None
            got = fw.nn.functional.linear(fw.from_numpy(x), fw.from_numpy(w), None if b is None else fw.from_numpy(b))
            np.testing.assert_allclose(got.numpy(), _torch_linear(x, w, b), **TOL, err_msg=f"{m}x{k} -> {n}")


# 96-512 rows with K <= 320 transpose W per call into 32-column panel pairs: row tiles of 12,
# K tails of 7 and 12, a partial pair of 1, 17 (two panels) and 6 columns.
def _check_with_and_without_bias_relu(rng, rows, k, cols):
    """linear (with bias) and linear_act relu (without) against torch over rows x cols."""
    for m in rows:
        for n in cols:
            x, w, b = _data(rng, m, k, n)
            got = fw.nn.functional.linear(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b))
            np.testing.assert_allclose(got.numpy(), _torch_linear(x, w, b), **TOL, err_msg=f"{m}x{k} -> {n}")
            got = linear_act(fw.from_numpy(x), fw.from_numpy(w), None, "relu")
            want = np.maximum(_torch_linear(x, w, None), 0)
            np.testing.assert_allclose(got.numpy(), want, **TOL, err_msg=f"relu {m}x{k} -> {n}")


@pytest.mark.parametrize("k", [256, 263, 300])
def test_linear_transposed_panels_match_torch(threads, k):
    _check_with_and_without_bias_relu(np.random.default_rng(k), (96, 101, 130), k, (1, 17, 32, 70))


# 65-160 rows with K > 784 pack the whole W per call (shared by the threads), then run the
# packed 12 x 32 tiles: K tails, partial panel pairs, strided x rows and bias, relu.
@pytest.mark.parametrize("k", [785, 800, 1031])
def test_linear_packed_per_call_matches_torch(threads, k):
    rng = np.random.default_rng(k)
    _check_with_and_without_bias_relu(rng, (65, 100, 128, 160), k, (1, 17, 48, 70))
    xs = rng.standard_normal((100, 2 * 800)).astype(np.float32)[:, ::2]  # strided rows and columns
    wide = rng.standard_normal((100, 900)).astype(np.float32)[:, :800]  # row stride 900
    w, b = rng.standard_normal((40, 800)).astype(np.float32), rng.standard_normal(80).astype(np.float32)[::2]
    for x in (xs, wide):
        got = fw.nn.functional.linear(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b))
        np.testing.assert_allclose(got.numpy(), _torch_linear(x, w, b), **TOL)


# One or two rows with K >= 256 split W's rows over the pool when there is work for two
# threads (else BLAS): quads and their tails, K tails, a 1-D input, bias and relu, and an N
# too small to split.
@pytest.mark.parametrize("k", [256, 271, 784])
def test_linear_one_or_two_rows_match_torch(threads, k):
    rng = np.random.default_rng(k)
    _check_with_and_without_bias_relu(rng, (1, 2), k, (3, 70, 511, 512, 1030))
    x, w, b = _data(rng, 1, k, 300)
    got = fw.nn.functional.linear(fw.from_numpy(x[0]), fw.from_numpy(w), fw.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), _torch_linear(x[0], w, b), **TOL)
    wide = rng.standard_normal((2, k + 9)).astype(np.float32)[:, :k]  # row stride k + 9
    got = fw.nn.functional.linear(fw.from_numpy(wide), fw.from_numpy(w), fw.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), _torch_linear(wide, w, b), **TOL)


@pytest.mark.parametrize("activation", ["relu", "none", "gelu", "tanh"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_act_matches_torch(threads, activation, bias):
    rng = np.random.default_rng(7)
    acts = {"relu": torch.relu, "none": lambda t: t, "gelu": torch.nn.functional.gelu, "tanh": torch.tanh}
    for m, k, n in [(9, 100, 70), (13, 784, 17), (40, 257, 5), (64, 512, 10), (5, 300, 1), (100, 260, 40),
                    (33, 1000, 19), (70, 1000, 9)]:
        x, w, b = _data(rng, m, k, n)
        b = b if bias else None
        got = linear_act(fw.from_numpy(x), fw.from_numpy(w), None if b is None else fw.from_numpy(b), activation)
        want = acts[activation](torch.from_numpy(_torch_linear(x, w, b))).numpy()
        np.testing.assert_allclose(got.numpy(), want, **TOL, err_msg=f"{activation} {m}x{k} -> {n}")


def test_linear_act_relu_keeps_nan_and_zeroes_negatives(threads):
    rng = np.random.default_rng(3)
    x, w, b = _data(rng, 11, 300, 9)
    x[2, 17] = np.nan  # row 2 all NaN
    w[5, 0] = np.nan  # column 5 all NaN
    b[1] = -1e6  # column 1 all negative: relu gives exact zeros
    got = linear_act(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b), "relu").numpy()
    want = torch.relu(torch.from_numpy(_torch_linear(x, w, b))).numpy()
    assert np.isnan(got[2]).all() and np.isnan(got[:, 5]).all()
    assert (got[np.arange(11) != 2, 1] == 0).all()
    np.testing.assert_allclose(got, want, **TOL)


def test_linear_reads_strided_operands(threads):
    rng = np.random.default_rng(5)
    m, k, n = 19, 300, 21
    x, w, b = _data(rng, m, k, n)
    wide = np.zeros((m, k + 9), np.float32)
    wide[:, 3:3 + k] = x
    x_rows = wide[:, 3:3 + k]  # unit column stride, row stride k + 9: the tiles
    x_t = np.ascontiguousarray(x.T).T  # a transposed view (column stride m): BLAS
    w_t = np.ascontiguousarray(w.T).T
    b_st = np.repeat(b, 2)[::2]  # a strided bias
    want = _torch_linear(x, w, b)
    for xv, wv, bv, what in [(x_rows, w, b, "row-strided x"), (x_t, w, b, "transposed x"),
                             (x, w_t, b, "transposed weight"), (x, w, b_st, "strided bias")]:
        got = fw.nn.functional.linear(fw.from_numpy(xv), fw.from_numpy(wv), fw.from_numpy(bv))
        np.testing.assert_allclose(got.numpy(), want, **TOL, err_msg=what)
        got = linear_act(fw.from_numpy(xv), fw.from_numpy(wv), fw.from_numpy(bv), "relu")
        np.testing.assert_allclose(got.numpy(), np.maximum(want, 0), **TOL, err_msg=f"relu, {what}")
    # a transposed view of a 3-D input is copied to rows first
    x3 = rng.standard_normal((k, 4, 5)).astype(np.float32).transpose(1, 2, 0)
    got = fw.nn.functional.linear(fw.from_numpy(x3), fw.from_numpy(w), fw.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), _torch_linear(x3, w, b), **TOL)


def test_linear_float64_keeps_blas(threads):
    rng = np.random.default_rng(9)
    x, w, b = _data(rng, 17, 300, 13, np.float64)
    got = fw.nn.functional.linear(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b))
    assert got.dtype == fw.float64
    np.testing.assert_allclose(got.numpy(), _torch_linear(x, w, b), rtol=1e-12, atol=1e-12)


def test_linear_with_zero_rows():
    x = np.ones((0, 300), np.float32)
    w = np.ones((7, 300), np.float32)
    assert fw.nn.functional.linear(fw.from_numpy(x), fw.from_numpy(w)).shape == (0, 7)
