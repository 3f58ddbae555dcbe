"""Convolution, pooling, pad and interpolate: bad arguments raise Python exceptions that name
the op and the shapes (never a crash), backward runs through registered backward ops, and
double backward (backward ops differentiated again) agrees with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import framework as fw
from framework.ops import conv as C
from framework.ops import pool as P
from framework.ops.registry import DISPATCH_HOOKS
from tests.oracle import GRAD_TOL, assert_close

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return fw.from_numpy(rng.standard_normal(shape).astype(dtype))


# ---- conv errors -----------------------------------------------------------------------

def test_conv2d_wrong_input_rank_names_op_and_shape():
    with pytest.raises(RuntimeError, match=r"conv2d.*\[2, 3\]"):
        fw.conv2d(randn(2, 3), randn(4, 3, 3, 3))


def test_conv2d_wrong_weight_rank():
    with pytest.raises(RuntimeError, match=r"conv2d: weight should have 4 dims.*\[4, 3, 3\]"):
        fw.conv2d(randn(1, 3, 5, 5), randn(4, 3, 3))


def test_conv2d_channel_mismatch():
    with pytest.raises(RuntimeError, match=r"conv2d.*input\[2, 5, 7, 7\] to have 3 channels, but got 5"):
        fw.conv2d(randn(2, 5, 7, 7), randn(4, 3, 3, 3))


def test_conv2d_groups_must_divide_out_channels():
    with pytest.raises(RuntimeError, match=r"conv2d: Given groups=2, expected weight to be divisible by 2.*\[3, 2, 3, 3\]"):
        fw.conv2d(randn(2, 4, 5, 5), randn(3, 2, 3, 3), groups=2)


def test_conv2d_groups_must_divide_in_channels():
    with pytest.raises(RuntimeError, match=r"conv2d: Given groups=2.*to have 4 channels, but got 5"):
        fw.conv2d(randn(2, 5, 5, 5), randn(4, 2, 3, 3), groups=2)


def test_conv2d_kernel_larger_than_padded_input():
    with pytest.raises(RuntimeError, match=r"conv2d: Calculated padded input size per channel: \(2 x 2\)\. "
                                           r"Kernel size: \(3 x 3\).*\[1, 3, 2, 2\].*\[4, 3, 3, 3\]"):
        fw.conv2d(randn(1, 3, 2, 2), randn(4, 3, 3, 3))


def test_conv2d_dilated_kernel_larger_than_input():
    with pytest.raises(RuntimeError, match=r"conv2d: .*Kernel size: \(5 x 5\)"):
        fw.conv2d(randn(1, 3, 4, 4), randn(4, 3, 3, 3), dilation=2)


def test_conv2d_bias_shape():
    with pytest.raises(RuntimeError, match=r"conv2d: .*bias to be 1-dimensional with 4 elements.*\[3\]"):
        fw.conv2d(randn(1, 3, 5, 5), randn(4, 3, 3, 3), randn(3))


def test_conv2d_same_padding_with_stride_is_rejected():
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        fw.conv2d(randn(1, 3, 5, 5), randn(4, 3, 3, 3), stride=2, padding="same")


def test_conv2d_bad_padding_string_and_values():
    with pytest.raises(ValueError, match="invalid padding string"):
        fw.conv2d(randn(1, 3, 5, 5), randn(4, 3, 3, 3), padding="full")
    with pytest.raises(RuntimeError, match="conv2d: non-positive stride"):
        fw.conv2d(randn(1, 3, 5, 5), randn(4, 3, 3, 3), stride=0)
    with pytest.raises(RuntimeError, match="conv2d: negative padding"):
        fw.conv2d(randn(1, 3, 5, 5), randn(4, 3, 3, 3), padding=-1)
    with pytest.raises(RuntimeError, match="conv2d: non-positive groups"):
        fw.conv2d(randn(1, 3, 5, 5), randn(4, 3, 3, 3), groups=0)


def test_conv1d_errors_name_conv1d_and_its_shapes():
    with pytest.raises(RuntimeError, match=r"conv1d.*\[2, 3, 4, 5\]"):
        fw.conv1d(randn(2, 3, 4, 5), randn(4, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv1d.*input\[2, 5, 7\] to have 3 channels"):
        fw.conv1d(randn(2, 5, 7), randn(4, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv1d: Calculated padded input size per channel: \(2\)"):
        fw.conv1d(randn(2, 3, 2), randn(4, 3, 3))


def test_conv_transpose2d_errors():
    with pytest.raises(RuntimeError, match=r"conv_transpose2d.*input\[2, 3, 4, 4\] to have 4 channels"):
        fw.conv_transpose2d(randn(2, 3, 4, 4), randn(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match="conv_transpose2d: output padding must be"):
        fw.conv_transpose2d(randn(2, 4, 4, 4), randn(4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match=r"conv_transpose2d.*\[4, 4\]"):
        fw.conv_transpose2d(randn(4, 4), randn(4, 2, 3, 3))


def test_conv_backward_ops_check_shapes():
    with pytest.raises(RuntimeError, match=r"conv2d_backward_input: grad_output of size \[1, 4, 3, 3\]"):
        C.conv2d_backward_input((1, 3, 6, 6), randn(4, 3, 3, 3), randn(1, 4, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv2d_backward_weight: grad_output of size \[1, 4, 5, 5\]"):
        C.conv2d_backward_weight(randn(1, 3, 6, 6), (4, 3, 3, 3), randn(1, 4, 5, 5))


def test_conv2d_kernel_rejects_inconsistent_output_instead_of_crashing():
    # the graph runtime calls kernels without the Python checks: the kernel checks too
    x, w = randn(1, 3, 5, 5), randn(4, 3, 3, 3)
    bad_out = np.empty((1, 4, 5, 5), np.float32)
    with pytest.raises(RuntimeError, match="conv2d: output 5x5 does not match input 5x5"):
        fw._C.run(C.conv2d.opdef.handle(fw.float32), (x._data, w._data, None), (bad_out,),
                  ((1, 1), (0, 0, 0, 0), (1, 1), 1))
    with pytest.raises(RuntimeError, match="conv2d: groups=2 must divide"):
        fw._C.run(C.conv2d.opdef.handle(fw.float32), (x._data, w._data, None),
                  (np.empty((1, 4, 3, 3), np.float32),), ((1, 1), (0, 0, 0, 0), (1, 1), 2))


# ---- pooling / pad / interpolate errors ------------------------------------------------

def test_max_pool2d_errors():
    with pytest.raises(RuntimeError, match=r"max_pool2d: Expected 3D or 4D.*\[2, 3\]"):
        fw.max_pool2d(randn(2, 3), 2)
    with pytest.raises(RuntimeError, match="max_pool2d: pad should be smaller than or equal to half of kernel size"):
        fw.max_pool2d(randn(1, 3, 6, 6), 3, padding=2)
    # as torch: dilation does not widen the padding allowed (the kernel checks the same)
    with pytest.raises(RuntimeError, match="max_pool2d: pad should be smaller than or equal to half of kernel size"):
        fw.max_pool2d(randn(1, 2, 9, 9), 3, stride=1, padding=2, dilation=2)
    with pytest.raises(RuntimeError, match="pad should be smaller than or equal to half of kernel size"):
        torch.nn.functional.max_pool2d(torch.randn(1, 2, 9, 9), 3, stride=1, padding=2, dilation=2)
    with pytest.raises(RuntimeError, match=r"max_pool2d: Given input size: \(3x2x2\)\. Calculated output size: "
                                           r"\(3x0x0\)\. Output size is too small"):
        fw.max_pool2d(randn(1, 3, 2, 2), 3)


def test_pool_kernels_reject_an_output_size_the_window_does_not_give():
    # a model file states output shapes; the kernels check them against torch's formula
    x = np.zeros((1, 2, 9, 7), np.float32)
    idx = np.zeros((1, 2, 4, 3), np.int64)
    mp = P.max_pool2d.opdef.handle(fw.float32)
    fw._C.run(mp, (x,), (np.zeros((1, 2, 4, 3), np.float32), idx), ((2, 2), (2, 2), (0, 0), (1, 1), False, True))
    with pytest.raises(RuntimeError, match=r"max_pool2d: output 9x3 does not match the window over input 9x7 "
                                           r"\(expected 4x3\)"):
        fw._C.run(mp, (x,), (np.zeros((1, 2, 9, 3), np.float32), np.zeros((1, 2, 9, 3), np.int64)),
                  ((2, 2), (2, 2), (0, 0), (1, 1), False, True))
    ap = P.avg_pool2d.opdef.handle(fw.float32)
    with pytest.raises(RuntimeError, match=r"avg_pool2d: output 4x4 does not match .* \(expected 5x4\)"):
        fw._C.run(ap, (x,), (np.zeros((1, 2, 4, 4), np.float32),), ((2, 2), (2, 2), (0, 0), True, True, None))


def test_max_pool2d_backward_rejects_out_of_range_indices():
    g = randn(1, 1, 2, 2)
    idx = fw.from_numpy(np.array([[[[0, 1], [2, 99]]]], dtype=np.int64))
    with pytest.raises(RuntimeError, match="max_pool2d_backward: an index is outside the 4x4 input plane"):
        P.max_pool2d_backward(g, idx, (1, 1, 4, 4))


def test_avg_pool2d_errors():
    with pytest.raises(RuntimeError, match="avg_pool2d: divisor must be not zero"):
        fw.avg_pool2d(randn(1, 3, 6, 6), 2, divisor_override=0)
    with pytest.raises(RuntimeError, match="avg_pool2d: pad should be smaller than or equal to half"):
        fw.avg_pool2d(randn(1, 3, 6, 6), 2, padding=2)
    with pytest.raises(RuntimeError, match=r"avg_pool2d: Expected 3D or 4D.*\[1, 1, 3, 6, 6\]"):
        fw.avg_pool2d(randn(1, 1, 3, 6, 6), 2)


def test_adaptive_avg_pool2d_errors():
    with pytest.raises(RuntimeError, match=r"adaptive_avg_pool2d: Expected 3D or 4D.*\[6\]"):
        fw.adaptive_avg_pool2d(randn(6), 2)
    with pytest.raises(RuntimeError, match="adaptive_avg_pool2d: elements of output_size must be greater"):
        fw.adaptive_avg_pool2d(randn(1, 3, 6, 6), (-1, 2))
    with pytest.raises(RuntimeError, match=r"adaptive_avg_pool2d: .*non-zero size.*\[1, 3, 0, 6\]"):
        fw.adaptive_avg_pool2d(randn(1, 3, 0, 6), 2)


def test_pad_errors():
    x = randn(1, 3, 4, 4)
    with pytest.raises(RuntimeError, match="pad: Padding length must be divisible by 2"):
        fw.pad(x, (1, 2, 3))
    with pytest.raises(RuntimeError, match=r"pad: Padding length too large.*\[1, 3, 4, 4\]"):
        fw.pad(x, (1,) * 10)
    with pytest.raises(RuntimeError, match=r"pad: Padding size should be less than.*\(4, 0\) at dimension 3.*\[1, 3, 4, 4\]"):
        fw.pad(x, (4, 0, 0, 0), mode="reflect")
    with pytest.raises(RuntimeError, match='pad: Padding mode "reflect" doesn\'t take in value'):
        fw.pad(x, (1, 1), mode="reflect", value=2.0)
    with pytest.raises(RuntimeError, match="resulted in a negative output size"):
        fw.pad(x, (-3, -2))
    with pytest.raises(NotImplementedError, match="circular"):
        fw.pad(x, (1, 1), mode="circular")
    with pytest.raises(NotImplementedError, match=r"pad: replicate padding of 1 dims needs a 2-D or 3-D input"):
        fw.pad(x, (1, 1), mode="replicate")


def test_interpolate_errors():
    x = randn(1, 3, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        fw.interpolate(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        fw.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        fw.interpolate(x, size=4, align_corners=True)
    with pytest.raises(NotImplementedError, match=r"interpolate: only 3-D .* and 4-D .*\[3, 4, 4, 4, 4\]"):
        fw.interpolate(randn(3, 4, 4, 4, 4), size=8)
    with pytest.raises(ValueError, match=r"interpolate: Got 3D input, but bilinear mode needs 4D input"):
        fw.interpolate(randn(3, 4, 4), size=8, mode="bilinear")
    with pytest.raises(NotImplementedError, match="bicubic"):
        fw.interpolate(x, size=8, mode="bicubic")
    with pytest.raises(RuntimeError, match=r"interpolate: output size \[0, 0\]"):
        fw.interpolate(x, scale_factor=0.2)


# ---- backward goes through registered ops ---------------------------------------------

def _ops_dispatched_by_backward(loss):
    seen = []
    hook = lambda op, inputs, attrs, outs: seen.append(op.name)  # noqa: E731
    DISPATCH_HOOKS.append(hook)
    try:
        loss.backward()
    finally:
        DISPATCH_HOOKS.remove(hook)
    return seen


@pytest.mark.parametrize("fn,backward_ops", [
    (lambda x, w: fw.conv2d(x, w, padding=1), {"conv2d_backward_input", "conv2d_backward_weight"}),
    (lambda x, w: fw.max_pool2d(x, 2), {"max_pool2d_backward"}),
    (lambda x, w: fw.avg_pool2d(x, 2), {"avg_pool2d_backward"}),
    (lambda x, w: fw.adaptive_avg_pool2d(x, 3), {"adaptive_avg_pool2d_backward"}),
    (lambda x, w: fw.pad(x, (1, 1, 2, 0), mode="reflect"), {"pad_backward"}),
    (lambda x, w: fw.interpolate(x, scale_factor=2, mode="bilinear"), {"interpolate_backward"}),
])
def test_backward_runs_registered_backward_ops(fn, backward_ops):
    x = randn(2, 3, 6, 6).requires_grad_(True)
    w = randn(4, 3, 3, 3).requires_grad_(True)
    seen = _ops_dispatched_by_backward(fn(x, w).sum())
    assert backward_ops <= set(seen), f"backward dispatched {seen}"
    assert x.grad is not None and tuple(x.grad.shape) == (2, 3, 6, 6)


# ---- double backward vs torch -----------------------------------------------------------

@pytest.mark.parametrize("name,fn", [
    ("conv2d", lambda F, x, w: F.conv2d(x, w, stride=2, padding=1, groups=1)),
    ("conv_transpose2d", lambda F, x, w: F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=1,
                                                            output_padding=1)),
    ("avg_pool2d", lambda F, x, w: F.avg_pool2d(x * x, 3, stride=2, padding=1, count_include_pad=False)),
    ("adaptive_avg_pool2d", lambda F, x, w: F.adaptive_avg_pool2d(x * x, (4, 3))),
    ("pad", lambda F, x, w: F.pad(x * x, (2, 1, 1, 2), mode="reflect")),
    ("interpolate", lambda F, x, w: F.interpolate(x * x, scale_factor=1.5, mode="bilinear")),
])
def test_double_backward_matches_torch(name, fn):
    """d/d(x, w) of |d out/d x|^2: differentiates the backward ops themselves."""
    xs = rng.standard_normal((2, 3, 6, 6))
    ws = rng.standard_normal((4, 3, 3, 3))
    cot = None
    grads = {}
    for lib, F, make in ((fw, fw, fw.from_numpy), (torch, TF, torch.from_numpy)):
        x = make(xs.copy()).requires_grad_(True)
        w = make(ws.copy()).requires_grad_(True)
        out = fn(F, x, w)
        if cot is None:
            cot = rng.uniform(0.5, 1.5, size=tuple(out.shape))
        (gx,) = lib.autograd.grad((out * make(cot)).sum(), [x], create_graph=True)
        inputs = [x, w] if name.startswith("conv") else [x]
        grads[lib.__name__] = lib.autograd.grad((gx * gx).sum(), inputs, allow_unused=True)
    for got, exp in zip(grads["framework"], grads["torch"]):
        assert_close(got, exp, what=f"{name} double backward", tol=GRAD_TOL[fw.float64])


def test_conv2d_batch_parallel_path_matches_torch():
    # N >= threads takes the one-sample-per-worker path
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((6, 8, 9, 9), (16, 8, 3, 3), (16,)))
    got = fw.conv2d(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b), padding=1)
    exp = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1)
    assert_close(got, exp, what="conv2d batch 6")


@pytest.mark.parametrize("fn", [
    lambda x: fw.conv2d(x, fw.ones(4, 3, 3, 3), padding=1),
    lambda x: fw.conv_transpose2d(x, fw.ones(3, 2, 3, 3), stride=2),
    lambda x: fw.max_pool2d(x, 2),
    lambda x: fw.avg_pool2d(x, 2),
    lambda x: fw.adaptive_avg_pool2d(x, 3),
    lambda x: fw.pad(x, (1, 1, 2, 2), mode="reflect"),
    lambda x: fw.interpolate(x, scale_factor=2, mode="bilinear"),
])
def test_empty_batch_forward_and_backward(fn):
    x = fw.zeros(0, 3, 4, 4).requires_grad_(True)
    tx = torch.zeros(0, 3, 4, 4)
    out = fn(x)
    assert out.shape[0] == 0
    out.sum().backward()
    assert tuple(x.grad.shape) == tuple(tx.shape)


@pytest.mark.parametrize("groups,stride", [(1, 1), (2, 2)])
def test_conv2d_split_gemm_path_matches_torch(groups, stride):
    # big enough that the GEMMs are split over two workers (forward and both backward ops)
    prev = fw.get_num_threads()
    fw.set_num_threads(2)
    try:
        xs = rng.standard_normal((1, 16, 20, 18))
        ws = rng.standard_normal((40, 16 // groups, 3, 3))
        fx, fwt = fw.from_numpy(xs).requires_grad_(True), fw.from_numpy(ws).requires_grad_(True)
        tx, tw = torch.from_numpy(xs).requires_grad_(True), torch.from_numpy(ws).requires_grad_(True)
        got = fw.conv2d(fx, fwt, stride=stride, padding=1, groups=groups)
        exp = TF.conv2d(tx, tw, stride=stride, padding=1, groups=groups)
        assert_close(got, exp, what="conv2d split forward")
        cot = rng.standard_normal(tuple(exp.shape))
        (got * fw.from_numpy(cot)).sum().backward()
        (exp * torch.from_numpy(cot)).sum().backward()
        assert_close(fx.grad, tx.grad, what="grad input", tol=GRAD_TOL[fw.float64])
        assert_close(fwt.grad, tw.grad, what="grad weight", tol=GRAD_TOL[fw.float64])
    finally:
        fw.set_num_threads(prev)


def test_double_backward_through_max_pool2d_raises_instead_of_silently_dropping():
    x = randn(1, 2, 4, 4).requires_grad_(True)
    y = fw.max_pool2d(x, 2)
    (gx,) = fw.autograd.grad((y * y).sum(), [x], create_graph=True)  # grad_output 2y depends on x
    with pytest.raises(NotImplementedError, match="double backward through max_pool2d"):
        (gx * gx).sum().backward()


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 2)])
def test_conv2d_row_tiled_im2col_matches_torch(stride, dilation):
    # K * Wo * Ho > 2^20 elements: im2col runs in tiles of output rows (forward and backward)
    xs = rng.standard_normal((2, 32, 200, 100))
    ws = rng.standard_normal((6, 32, 3, 3))
    bs = rng.standard_normal(6)
    fx, fwt, fb = (fw.from_numpy(a).requires_grad_(True) for a in (xs, ws, bs))
    tx, tw, tb = (torch.from_numpy(a).requires_grad_(True) for a in (xs, ws, bs))
    got = fw.conv2d(fx, fwt, fb, stride=stride, padding=1, dilation=dilation)
    exp = TF.conv2d(tx, tw, tb, stride=stride, padding=1, dilation=dilation)
    assert_close(got, exp, what="conv2d tiled forward")
    cot = rng.standard_normal(tuple(exp.shape))
    (got * fw.from_numpy(cot)).sum().backward()
    (exp * torch.from_numpy(cot)).sum().backward()
    for a, b, name in ((fx, tx, "input"), (fwt, tw, "weight"), (fb, tb, "bias")):
        assert_close(a.grad, b.grad, what=f"grad {name}", tol=GRAD_TOL[fw.float64])
