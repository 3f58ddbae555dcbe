"""Pooling and resampling ops over NCHW tensors: max_pool2d (with indices), avg_pool2d,
adaptive_avg_pool2d and interpolate (nearest, linear, bilinear, area), with torch.nn.functional's
signatures and semantics. Each backward computation is an op of its own so that a traced
training step captures it: avg/adaptive/interpolate backward are the adjoints of their
(linear) forwards, so their gradients are the forward ops again; max_pool2d_backward
scatters by the saved indices (its own gradient, a gather, is not implemented yet: double
backward through max_pool2d raises).

max_pool2d's last attribute, with_indices, says whether its kernel computes output #1 (the
argmax indices; else an empty int64 tensor): eager calls turn it on only when the indices
are returned or autograd will need them, and the skip_unused_outputs graph pass turns it off
where nothing reads them (OpDef.output_switches).

Kernels: csrc/kernels/pool.cpp and csrc/kernels/resize.cpp. No compute here.
"""

from __future__ import annotations

import math

from .. import autograd as AG
from .. import dtypes as D
from ._common import arg
from .conv import _ntuple
from .dispatch import dispatch
from .registry import Sample, defop


def _check_pool_input(op: str, x) -> None:
    if x.ndim not in (3, 4):
        raise RuntimeError(f"{op}: Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for "
                           f"input, but got: {list(x.shape)}")
    if any(s == 0 for s in tuple(x.shape)[-3:]):
        raise RuntimeError(f"{op}: Expected input to have non-zero size for non-batch dimensions, but input "
                           f"has sizes {list(x.shape)}")


def _batched(x):
    """(x as 4-d, whether a batch dim was added)."""
    return (x.unsqueeze(0), True) if x.ndim == 3 else (x, False)


def _pool_out(n, k, s, p, d, ceil_mode):
    """Output size of a pooling window sweep (ATen's pooling_output_shape)."""
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_shape(op, shape, k, s, p, d, ceil_mode):
    N, C, H, W = shape
    Ho = _pool_out(H, k[0], s[0], p[0], d[0], ceil_mode)
    Wo = _pool_out(W, k[1], s[1], p[1], d[1], ceil_mode)
    if Ho < 1 or Wo < 1:
        raise RuntimeError(f"{op}: Given input size: ({C}x{H}x{W}). Calculated output size: ({C}x{Ho}x{Wo}). "
                           f"Output size is too small")
    return (N, C, Ho, Wo)


def _window_args(op, kernel_size, stride, padding, dilation=1):
    k = _ntuple(kernel_size, 2, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else \
        _ntuple(stride, 2, "stride", op)
    p = _ntuple(padding, 2, "padding", op)
    d = _ntuple(dilation, 2, "dilation", op)
    if any(v <= 0 for v in k + s + d):
        raise RuntimeError(f"{op}: kernel_size, stride and dilation must be greater than zero, got kernel_size="
                           f"{list(k)}, stride={list(s)}, dilation={list(d)}")
    if any(v < 0 for v in p):
        raise RuntimeError(f"{op}: padding must be non-negative, got padding={list(p)}")
    return k, s, p, d


# ---------------------------------------------------------------------------------------
# max_pool2d


def _max_pool_infer(x, k, s, p, d, ceil_mode, with_indices=True):
    shape = _pool_shape("max_pool2d", tuple(x.shape), k, s, p, d, ceil_mode)
    return [(shape, x.dtype), (shape if with_indices else (0,), D.int64)]


def _max_pool_grad(c, g, _gi):
    if len(c.attrs) > 5 and not c.attrs[5]:
        raise RuntimeError("max_pool2d: the gradient needs the indices, but this call ran without them "
                           "(with_indices=False)")
    return (max_pool2d_backward(g, c.outputs[1], tuple(c.inputs[0].shape)),)


def _max_pool_samples(dt):
    return [
        Sample((arg((2, 3, 6, 6), dt), 2)),
        Sample((arg((2, 3, 7, 7), dt), 3), {"stride": 2, "padding": 1}, note="stride2-pad1"),
        Sample((arg((2, 3, 7, 6), dt), (3, 2)), {"stride": (2, 1), "dilation": (1, 2), "ceil_mode": True},
               note="dilation-ceil"),
        Sample((arg((2, 3, 5, 5), dt), 2), {"return_indices": True, "ceil_mode": True}, note="indices"),
        Sample((arg((3, 5, 5), dt), 3), {"stride": 1, "padding": 1}, note="unbatched"),
        Sample((arg((2, 3, 5, 10), dt)[..., ::2], 2), note="strided"),
        Sample((arg((1, 2, 9, 11), dt), 3), {"stride": 2, "padding": 1, "return_indices": True},
               note="3x3-s2-p1"),
        Sample((arg((2, 3, 7, 9), dt), (2, 3)), {"stride": 3, "padding": (1, 1)}, note="stride3"),
    ]


def check_pool_padding(op, k, p, error=RuntimeError):
    """torch's rule for max and average pools (the C++ kernels check it too): each padding at
    most half its kernel size; dilation does not count."""
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise error(f"{op}: pad should be smaller than or equal to half of kernel size, but got "
                    f"padding={list(p)}, kernel_size={list(k)}")


@defop(name="max_pool2d", inputs=("x",),
       attrs=("kernel_size", "stride", "padding", "dilation", "ceil_mode", "with_indices"),
       infer=_max_pool_infer, grad=_max_pool_grad, promote=None, num_outputs=2, output_switches={1: 5},
       torch_ref="torch.nn.functional.max_pool2d", samples=_max_pool_samples, tags=("pool",))
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling; with return_indices, also the flat h*W+w index of each maximum.

    The kernel computes the indices only when they are returned or autograd will need them."""
    op = "max_pool2d"
    _check_pool_input(op, input)
    k, s, p, d = _window_args(op, kernel_size, stride, padding, dilation)
    check_pool_padding(op, k, p)
    x, added = _batched(input)
    with_indices = bool(return_indices) or (AG.is_grad_enabled() and x.requires_grad)
    out, idx = dispatch(max_pool2d.opdef, [x], (k, s, p, d, bool(ceil_mode), with_indices))
    if added:
        out, idx = out.squeeze(0), (idx.squeeze(0) if with_indices else idx)
    return (out, idx) if return_indices else out


def _max_pool_bwd_infer(g, idx, input_size):
    if tuple(idx.shape) != tuple(g.shape) or len(input_size) != 4 or tuple(input_size[:2]) != tuple(g.shape[:2]):
        raise RuntimeError(f"max_pool2d_backward: grad_output {list(g.shape)}, indices {list(idx.shape)} and "
                           f"input_size {list(input_size)} do not agree")
    return [(tuple(input_size), g.dtype)]


def _max_pool_bwd_grad(c, h):
    # NOTE: differentiable only so that double backward fails loudly instead of silently
    # treating this gradient as a constant; its adjoint is a gather by the saved indices.
    raise NotImplementedError("double backward through max_pool2d is not supported yet "
                              "(the gradient of max_pool2d_backward needs a gather by indices)")


@defop(name="max_pool2d_backward", inputs=("grad_output", "indices"), attrs=("input_size",),
       infer=_max_pool_bwd_infer, grad=_max_pool_bwd_grad, promote=None, tags=("pool", "backward"),
       samples=lambda dt: [Sample((arg((1, 2, 2, 2), dt), arg((1, 2, 2, 2), D.int64, 0, 15), (1, 2, 4, 4)))])
def max_pool2d_backward(grad_output, indices, input_size):
    """Gradient of max_pool2d: grad_output added at the saved argmax indices."""
    return dispatch(max_pool2d_backward.opdef, [grad_output.contiguous(), indices.contiguous()],
                    (tuple(input_size),))


# ---------------------------------------------------------------------------------------
# avg_pool2d


def _avg_pool_infer(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    return [(_pool_shape("avg_pool2d", tuple(x.shape), k, s, p, (1, 1), ceil_mode), x.dtype)]


def _avg_pool_grad(c, g):
    return (avg_pool2d_backward(g, tuple(c.inputs[0].shape), *c.attrs),)


def _avg_pool_samples(dt):
    return [
        Sample((arg((2, 3, 6, 6), dt), 2)),
        Sample((arg((2, 3, 7, 7), dt), 3), {"stride": 2, "padding": 1, "count_include_pad": False},
               note="exclude-pad"),
        Sample((arg((2, 3, 7, 6), dt), (3, 2)), {"stride": (2, 1), "padding": 1, "ceil_mode": True},
               note="ceil-pad"),
        Sample((arg((2, 3, 5, 5), dt), 3), {"stride": 2, "ceil_mode": True, "count_include_pad": False},
               note="ceil-exclude"),
        Sample((arg((2, 3, 6, 6), dt), 3), {"padding": 1, "divisor_override": 4}, note="divisor"),
        Sample((arg((3, 5, 5), dt), 2), note="unbatched"),
    ]


@defop(name="avg_pool2d", inputs=("x",),
       attrs=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
       infer=_avg_pool_infer, grad=_avg_pool_grad, torch_ref="torch.nn.functional.avg_pool2d",
       samples=_avg_pool_samples, tags=("pool",))
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling."""
    op = "avg_pool2d"
    _check_pool_input(op, input)
    k, s, p, _ = _window_args(op, kernel_size, stride, padding)
    check_pool_padding(op, k, p)
    if divisor_override is not None:
        divisor_override = int(divisor_override)
        if divisor_override == 0:
            raise RuntimeError(f"{op}: divisor must be not zero")
    x, added = _batched(input)
    out = dispatch(avg_pool2d.opdef, [x], (k, s, p, bool(ceil_mode), bool(count_include_pad), divisor_override))
    return out.squeeze(0) if added else out


def _avg_pool_bwd_infer(g, input_size, k, s, p, ceil_mode, count_include_pad, divisor_override):
    expect = _pool_shape("avg_pool2d_backward", tuple(input_size), k, s, p, (1, 1), ceil_mode)
    if tuple(g.shape) != expect:
        raise RuntimeError(f"avg_pool2d_backward: grad_output of size {list(g.shape)} does not match the pooled "
                           f"size {list(expect)} of input {list(input_size)}")
    return [(tuple(input_size), g.dtype)]


def _avg_pool_bwd_grad(c, h):
    return (dispatch(avg_pool2d.opdef, [h], tuple(c.attrs[1:])),)


@defop(name="avg_pool2d_backward", inputs=("grad_output",),
       attrs=("input_size", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
              "divisor_override"),
       infer=_avg_pool_bwd_infer, grad=_avg_pool_bwd_grad, tags=("pool", "backward"),
       samples=lambda dt: [Sample((arg((2, 3, 3, 3), dt), (2, 3, 6, 6), (2, 2), (2, 2), (0, 0), False, True, None))])
def avg_pool2d_backward(grad_output, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """Gradient of avg_pool2d: each window's gradient spread over its elements."""
    return dispatch(avg_pool2d_backward.opdef, [grad_output],
                    (tuple(input_size), tuple(kernel_size), tuple(stride), tuple(padding), bool(ceil_mode),
                     bool(count_include_pad), divisor_override))


# ---------------------------------------------------------------------------------------
# adaptive_avg_pool2d


def _adaptive_infer(x, output_size):
    return [((x.shape[0], x.shape[1]) + tuple(output_size), x.dtype)]


def _adaptive_grad(c, g):
    return (adaptive_avg_pool2d_backward(g, tuple(c.inputs[0].shape)),)


def _adaptive_samples(dt):
    return [
        Sample((arg((2, 3, 7, 7), dt), 3)),
        Sample((arg((2, 3, 6, 5), dt), (4, 2)), note="uneven"),
        Sample((arg((2, 3, 5, 6), dt), (None, 2)), note="none"),
        Sample((arg((2, 3, 4, 3), dt), (6, 5)), note="upsample"),
        Sample((arg((3, 5, 5), dt), 1), note="unbatched-global"),
    ]


@defop(name="adaptive_avg_pool2d", inputs=("x",), attrs=("output_size",), infer=_adaptive_infer,
       grad=_adaptive_grad, torch_ref="torch.nn.functional.adaptive_avg_pool2d", samples=_adaptive_samples,
       tags=("pool",))
def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size (None keeps that input dim)."""
    op = "adaptive_avg_pool2d"
    _check_pool_input(op, input)
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size, output_size)
    output_size = tuple(output_size)
    if len(output_size) != 2:
        raise RuntimeError(f"{op}: output_size must be 2, got {list(output_size)}")
    size = tuple(int(input.shape[-2 + i]) if o is None else int(o) for i, o in enumerate(output_size))
    if any(o < 0 for o in size):
        raise RuntimeError(f"{op}: elements of output_size must be greater than or equal to 0 but received "
                           f"{list(size)}")
    x, added = _batched(input)
    out = dispatch(adaptive_avg_pool2d.opdef, [x], (size,))
    return out.squeeze(0) if added else out


def _adaptive_bwd_infer(g, input_size):
    if len(input_size) != 4 or g.ndim != 4 or tuple(g.shape[:2]) != tuple(input_size[:2]):
        raise RuntimeError(f"adaptive_avg_pool2d_backward: grad_output {list(g.shape)} does not match "
                           f"input_size {list(input_size)}")
    return [(tuple(input_size), g.dtype)]


def _adaptive_bwd_grad(c, h):
    g = c.inputs[0]
    return (dispatch(adaptive_avg_pool2d.opdef, [h], (tuple(g.shape[2:]),)),)


@defop(name="adaptive_avg_pool2d_backward", inputs=("grad_output",), attrs=("input_size",),
       infer=_adaptive_bwd_infer, grad=_adaptive_bwd_grad, tags=("pool", "backward"),
       samples=lambda dt: [Sample((arg((2, 3, 2, 2), dt), (2, 3, 5, 5)))])
def adaptive_avg_pool2d_backward(grad_output, input_size):
    """Gradient of adaptive_avg_pool2d."""
    return dispatch(adaptive_avg_pool2d_backward.opdef, [grad_output], (tuple(input_size),))


# ---------------------------------------------------------------------------------------
# interpolate


def _interp_infer(x, size, mode, align_corners, scale_h, scale_w):
    return [((x.shape[0], x.shape[1]) + tuple(size), x.dtype)]


def _interp_grad(c, g):
    size, mode, align_corners, sh, sw = c.attrs
    return (interpolate_backward(g, tuple(c.inputs[0].shape), mode, align_corners, sh, sw),)


def _interp_samples(dt):
    return [
        Sample((arg((2, 3, 4, 5), dt),), {"size": (8, 7)}),
        Sample((arg((2, 3, 4, 5), dt),), {"scale_factor": 2}, note="nearest-x2"),
        Sample((arg((2, 3, 5, 4), dt),), {"scale_factor": (1.7, 0.6)}, note="nearest-scale"),
        Sample((arg((2, 3, 4, 5), dt),), {"size": (7, 9), "mode": "bilinear"}, note="bilinear"),
        Sample((arg((2, 3, 4, 5), dt),), {"size": (7, 3), "mode": "bilinear", "align_corners": True},
               note="bilinear-align"),
        Sample((arg((2, 3, 6, 5), dt),), {"scale_factor": 0.6, "mode": "bilinear"}, note="bilinear-down"),
        Sample((arg((2, 3, 4, 4), dt),), {"scale_factor": 1.5, "mode": "bilinear", "recompute_scale_factor": True},
               note="bilinear-recompute"),
        Sample((arg((2, 3, 4, 10), dt)[..., ::2],), {"size": 6, "mode": "bilinear"}, note="strided"),
        Sample((arg((2, 3, 5), dt),), {"scale_factor": 1.6}, note="nearest-1d"),
        Sample((arg((2, 3, 5), dt),), {"size": 8, "mode": "linear", "align_corners": True}, note="linear-1d"),
        Sample((arg((2, 3, 7), dt),), {"scale_factor": 0.7, "mode": "linear"}, note="linear-1d-down"),
        Sample((arg((2, 3, 7, 6), dt),), {"size": (3, 4), "mode": "area"}, note="area"),
        Sample((arg((2, 3, 7), dt),), {"scale_factor": 0.5, "mode": "area"}, note="area-1d"),
    ]


@defop(name="interpolate", inputs=("x",), attrs=("size", "mode", "align_corners", "scale_h", "scale_w"),
       infer=_interp_infer, grad=_interp_grad, torch_ref="torch.nn.functional.interpolate",
       samples=_interp_samples, tags=("resize",))
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resamples an NCL or NCHW input to `size` or by `scale_factor` (modes nearest,
    linear (NCL), bilinear (NCHW), area)."""
    op = "interpolate"
    if mode not in ("nearest", "linear", "bilinear", "area"):
        raise NotImplementedError(f"{op}: mode {mode!r} is not supported (nearest, linear, bilinear, area)")
    nsp = input.ndim - 2
    if nsp not in (1, 2):
        raise NotImplementedError(f"{op}: only 3-D (N, C, L) and 4-D (N, C, H, W) inputs are supported, got "
                                  f"input of size {list(input.shape)}")
    if mode in ("linear", "bilinear") and nsp != (1 if mode == "linear" else 2):
        raise ValueError(f"{op}: Got {input.ndim}D input, but {mode} mode needs {3 if mode == 'linear' else 4}D "
                         f"input; input of size {list(input.shape)}")
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not supported")
    if mode in ("nearest", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size or scale_factor should be defined")
    spatial = tuple(input.shape[2:])
    scales = (None,) * nsp
    if size is not None:
        out = _ntuple(size, nsp, "size", op)
    else:
        sf = (float(scale_factor),) * nsp if isinstance(scale_factor, (int, float)) else \
            tuple(float(v) for v in scale_factor)
        if len(sf) != nsp:
            raise ValueError(f"{op}: scale_factor must be a number or {nsp} numbers, got {scale_factor!r}")
        if any(v <= 0 for v in sf):
            raise ValueError(f"{op}: scale_factor must be positive, got {list(sf)}")
        out = tuple(int(math.floor(float(n) * f)) for n, f in zip(spatial, sf))
        if not recompute_scale_factor:
            scales = sf
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{op}: output size {list(out)} should be greater than 0 (input {list(input.shape)})")
    if mode == "area":  # torch's area mode is adaptive average pooling
        if nsp == 1:
            return adaptive_avg_pool2d(input.unsqueeze(2), (1, out[0])).squeeze(2)
        return adaptive_avg_pool2d(input, out)
    kernel_mode = "nearest" if mode == "nearest" else "bilinear"
    ac = bool(align_corners) if mode != "nearest" else False
    if nsp == 1:  # a height-1 image: the height taps are the identity
        y = dispatch(interpolate.opdef, [input.unsqueeze(2)], ((1, out[0]), kernel_mode, ac, None, scales[0]))
        return y.squeeze(2)
    return dispatch(interpolate.opdef, [input], (out, kernel_mode, ac, scales[0], scales[1]))


def _interp_bwd_infer(g, input_size, mode, align_corners, scale_h, scale_w):
    if len(input_size) != 4 or g.ndim != 4 or tuple(g.shape[:2]) != tuple(input_size[:2]):
        raise RuntimeError(f"interpolate_backward: grad_output {list(g.shape)} does not match input_size "
                           f"{list(input_size)}")
    return [(tuple(input_size), g.dtype)]


def _interp_bwd_grad(c, h):
    g = c.inputs[0]
    _, mode, align_corners, sh, sw = c.attrs
    return (dispatch(interpolate.opdef, [h], (tuple(g.shape[2:]), mode, align_corners, sh, sw)),)


@defop(name="interpolate_backward", inputs=("grad_output",),
       attrs=("input_size", "mode", "align_corners", "scale_h", "scale_w"), infer=_interp_bwd_infer,
       grad=_interp_bwd_grad, tags=("resize", "backward"),
       samples=lambda dt: [Sample((arg((2, 3, 7, 9), dt), (2, 3, 4, 5), "bilinear", False, None, None))])
def interpolate_backward(grad_output, input_size, mode, align_corners, scale_h=None, scale_w=None):
    """Gradient of interpolate: each output gradient scattered onto its source taps."""
    return dispatch(interpolate_backward.opdef, [grad_output],
                    (tuple(input_size), mode, bool(align_corners), scale_h, scale_w))


__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "interpolate"]
