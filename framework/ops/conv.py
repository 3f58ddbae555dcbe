"""Convolution ops over NCHW tensors: conv1d, conv2d, conv_transpose2d, and pad, with
torch.nn.functional's signatures and semantics. The backward computations are ops of their
own (conv2d_backward_input, conv2d_backward_weight, pad_backward) so that a traced training
step captures them; each is linear in its inputs, so its own gradient is again one of these
ops (conv2d and conv2d_backward_input are adjoints, as are pad and pad_backward).

Kernels: csrc/kernels/conv.cpp (im2col + OpenBLAS GEMM), csrc/kernels/resize.cpp (pad).
This module only normalizes arguments and checks shapes; it computes nothing itself.
conv1d is conv2d over a height-1 image (the tracer records the reshapes and one conv2d).
"""

from __future__ import annotations

from .. import dtypes as D
from ._common import arg
from .dispatch import dispatch
from .registry import Sample, defop

FLOAT = (D.float32, D.float64)


def _ntuple(v, n: int, name: str, op: str) -> tuple:
    """v as a tuple of n ints (an int is repeated), like torch's _pair."""
    if isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {v!r}")
    if isinstance(v, int) or hasattr(v, "__index__"):
        return (int(v),) * n
    try:
        t = tuple(int(x) for x in v)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {v!r}") from None
    if len(t) == 1:
        t = t * n
    if len(t) != n:
        raise RuntimeError(f"{op}: expected {name} to be a single integer value or a list of {n} values "
                           f"to match the convolution dimensions, but got {name}={list(t)}")
    return t


def _conv_pads(padding, kernel: tuple, stride: tuple, dilation: tuple, op: str) -> tuple:
    """Per spatial dim (lo, hi) padding for an int, a tuple, "valid" or "same"."""
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in kernel)
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    p = _ntuple(padding, len(kernel), "padding", op)
    return tuple((x, x) for x in p)


def _check_conv(op: str, xs: tuple, ws: tuple, bs, stride, pads, dilation, groups: int,
                transposed: bool = False) -> None:
    """Raises RuntimeError naming the op and the shapes for any inconsistent argument.
    xs/ws/bs: shapes of input (batched), weight, bias (or None); pads: (lo, hi) per dim."""
    nsp = len(ws) - 2
    if len(xs) != nsp + 2:
        raise RuntimeError(f"{op}: Expected {nsp + 1}D (unbatched) or {nsp + 2}D (batched) input to {op}, "
                           f"but got input of size: {list(xs)}")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}: non-positive stride is not supported, got stride={list(stride)}")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"{op}: dilation should be greater than zero, got dilation={list(dilation)}")
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise RuntimeError(f"{op}: negative padding is not supported, got padding={[list(p) for p in pads]}")
    if groups <= 0:
        raise RuntimeError(f"{op}: non-positive groups is not supported, got groups={groups}")
    if ws[0] % groups != 0:
        raise RuntimeError(f"{op}: Given groups={groups}, expected weight to be divisible by {groups} at "
                           f"dimension 0, but got weight of size {list(ws)} instead")
    channels = ws[0] if transposed else ws[1] * groups
    if xs[1] != channels:
        raise RuntimeError(f"{op}: Given groups={groups}, weight of size {list(ws)}, expected input{list(xs)} "
                           f"to have {channels} channels, but got {xs[1]} channels instead")
    out_ch = ws[1] * groups if transposed else ws[0]
    if bs is not None and tuple(bs) != (out_ch,):
        raise RuntimeError(f"{op}: Given weight of size {list(ws)}, expected bias to be 1-dimensional with "
                           f"{out_ch} elements, but got bias of size {list(bs)} instead")
    if transposed:
        return
    padded = [n + lo + hi for n, (lo, hi) in zip(xs[2:], pads)]
    eff = [d * (k - 1) + 1 for k, d in zip(ws[2:], dilation)]
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(f"{op}: Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, eff))}). Kernel size can't be greater than "
                           f"actual input size; input {list(xs)}, weight {list(ws)}")


def _conv_out(n, k, s, lo, hi, d):
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _check_rank(op: str, x, w, nsp: int) -> None:
    if w.ndim != nsp + 2:
        raise RuntimeError(f"{op}: weight should have {nsp + 2} dims, got weight of size {list(w.shape)}")
    if x.ndim not in (nsp + 1, nsp + 2):
        raise RuntimeError(f"{op}: Expected {nsp + 1}D (unbatched) or {nsp + 2}D (batched) input to {op}, "
                           f"but got input of size: {list(x.shape)}")


def _pads4(pads) -> tuple:
    """((top, bottom), (left, right)) -> the kernel's (top, left, bottom, right)."""
    (t, b), (l, r) = pads
    return (t, l, b, r)


def _pads2(p4) -> tuple:
    return ((p4[0], p4[2]), (p4[1], p4[3]))


# ---------------------------------------------------------------------------------------
# conv2d


def _conv2d_infer(x, w, b, stride, p4, dilation, groups):
    _check_conv("conv2d", tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape),
                stride, _pads2(p4), dilation, groups)
    N, _, H, W = x.shape
    Ho = _conv_out(H, w.shape[2], stride[0], p4[0], p4[2], dilation[0])
    Wo = _conv_out(W, w.shape[3], stride[1], p4[1], p4[3], dilation[1])
    return [((N, w.shape[0], Ho, Wo), x.dtype)]


def _conv2d_grad(c, g):
    x, w, b = c.inputs[0], c.inputs[1], c.inputs[2]
    stride, p4, dilation, groups = c.attrs
    gx = gw = gb = None
    if c.needs_input_grad[0]:
        gx = conv2d_backward_input(tuple(x.shape), w, g, stride, p4, dilation, groups)
    if c.needs_input_grad[1]:
        gw = conv2d_backward_weight(x, tuple(w.shape), g, stride, p4, dilation, groups)
    if b is not None and c.needs_input_grad[2]:
        gb = g.sum((0, 2, 3))
    return gx, gw, gb


def _conv2d_samples(dt):
    return [
        Sample((arg((2, 3, 6, 6), dt), arg((4, 3, 3, 3), dt), arg((4,), dt))),
        Sample((arg((2, 3, 7, 7), dt), arg((4, 3, 3, 3), dt)), {"stride": 2, "padding": 1}, note="stride2-pad1"),
        Sample((arg((2, 4, 7, 6), dt), arg((6, 2, 3, 2), dt), arg((6,), dt)),
               {"stride": (2, 1), "padding": (1, 0), "dilation": (2, 1), "groups": 2}, note="groups-dilation"),
        Sample((arg((2, 3, 5, 5), dt), arg((4, 3, 1, 1), dt), arg((4,), dt)), note="1x1"),
        Sample((arg((2, 3, 5, 6), dt), arg((2, 3, 4, 3), dt), arg((2,), dt)),
               {"padding": "same", "dilation": (1, 2)}, note="same-uneven"),
        Sample((arg((2, 3, 5, 5), dt), arg((2, 3, 2, 2), dt)), {"padding": "valid"}, note="valid"),
        Sample((arg((3, 5, 5), dt), arg((2, 3, 3, 3), dt), arg((2,), dt)), {"padding": 1}, note="unbatched"),
        Sample((arg((1, 4, 5, 5), dt), arg((4, 1, 3, 3), dt), arg((4,), dt)),
               {"padding": 1, "groups": 4}, note="depthwise"),
        Sample((arg((2, 3, 5, 10), dt)[..., ::2], arg((2, 3, 3, 3), dt)), note="strided-input"),
    ]


@defop(name="conv2d", inputs=("x", "weight", "bias?"), attrs=("stride", "padding", "dilation", "groups"),
       infer=_conv2d_infer, grad=_conv2d_grad, torch_ref="torch.nn.functional.conv2d",
       samples=_conv2d_samples, tags=("conv",))
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over an NCHW (or CHW) input."""
    _check_rank("conv2d", input, weight, 2)
    stride = _ntuple(stride, 2, "stride", "conv2d")
    dilation = _ntuple(dilation, 2, "dilation", "conv2d")
    pads = _conv_pads(padding, tuple(weight.shape[2:]), stride, dilation, "conv2d")
    p4 = _pads4(pads)
    if input.ndim == 3:
        return _conv2d(input.unsqueeze(0), weight, bias, stride, p4, dilation, int(groups)).squeeze(0)
    return _conv2d(input, weight, bias, stride, p4, dilation, int(groups))


def _conv2d(x, w, b, stride, p4, dilation, groups):
    return dispatch(conv2d.opdef, [x.contiguous(), w.contiguous(), b], (tuple(stride), tuple(p4),
                                                                        tuple(dilation), groups))


def _norm_p4(padding, op):
    """padding for the backward ops: an int, (ph, pw), or explicit (t, l, b, r)."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(int(p) for p in padding)
    ph, pw = _ntuple(padding, 2, "padding", op)
    return (ph, pw, ph, pw)


# ---------------------------------------------------------------------------------------
# conv2d backward ops (torch.nn.grad.conv2d_input / conv2d_weight)


def _bwd_input_infer(g, w, input_size, stride, p4, dilation, groups):
    op = "conv2d_backward_input"
    if len(input_size) != 4 or g.ndim != 4:
        raise RuntimeError(f"{op}: expected a 4-d input_size and grad_output, got input_size "
                           f"{list(input_size)} and grad_output {list(g.shape)}")
    _check_conv(op, tuple(input_size), tuple(w.shape), None, stride, _pads2(p4), dilation, groups)
    N, _, H, W = input_size
    expect = (N, w.shape[0], _conv_out(H, w.shape[2], stride[0], p4[0], p4[2], dilation[0]),
              _conv_out(W, w.shape[3], stride[1], p4[1], p4[3], dilation[1]))
    if tuple(g.shape) != expect:
        raise RuntimeError(f"{op}: grad_output of size {list(g.shape)} does not match the conv output "
                           f"{list(expect)} of input {list(input_size)} and weight {list(w.shape)}")
    return [(tuple(input_size), g.dtype)]


def _bwd_input_grad(c, h):
    g, w = c.inputs[0], c.inputs[1]
    input_size, stride, p4, dilation, groups = c.attrs
    gg = _conv2d(h, w, None, stride, p4, dilation, groups) if c.needs_input_grad[0] else None
    gw = conv2d_backward_weight(h, tuple(w.shape), g, stride, p4, dilation, groups) if c.needs_input_grad[1] else None
    return gg, gw


def _bwd_input_samples(dt):
    return [
        Sample(((2, 3, 6, 6), arg((4, 3, 3, 3), dt), arg((2, 4, 4, 4), dt))),
        Sample(((2, 3, 7, 7), arg((4, 3, 3, 3), dt), arg((2, 4, 4, 4), dt)), {"stride": 2, "padding": 1},
               note="stride2-pad1"),
        Sample(((1, 4, 6, 5), arg((6, 2, 2, 3), dt), arg((1, 6, 4, 3), dt)),
               {"dilation": (2, 1), "groups": 2}, note="groups-dilation"),
        Sample(((2, 3, 4, 4), arg((5, 3, 1, 1), dt), arg((2, 5, 4, 4), dt)), note="1x1"),
    ]


@defop(name="conv2d_backward_input", inputs=("grad_output", "weight"),
       attrs=("input_size", "stride", "padding", "dilation", "groups"), infer=_bwd_input_infer,
       grad=_bwd_input_grad, torch_ref="torch.nn.grad.conv2d_input", samples=_bwd_input_samples,
       tags=("conv", "backward"))
def conv2d_backward_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of conv2d with respect to its input (torch.nn.grad.conv2d_input)."""
    op = "conv2d_backward_input"
    attrs = (tuple(int(s) for s in input_size), _ntuple(stride, 2, "stride", op), _norm_p4(padding, op),
             _ntuple(dilation, 2, "dilation", op), int(groups))
    return dispatch(conv2d_backward_input.opdef, [grad_output.contiguous(), weight.contiguous()], attrs)


def _bwd_weight_infer(x, g, weight_size, stride, p4, dilation, groups):
    op = "conv2d_backward_weight"
    if len(weight_size) != 4 or g.ndim != 4:
        raise RuntimeError(f"{op}: expected a 4-d weight_size and grad_output, got weight_size "
                           f"{list(weight_size)} and grad_output {list(g.shape)}")
    _check_conv(op, tuple(x.shape), tuple(weight_size), None, stride, _pads2(p4), dilation, groups)
    N, _, H, W = x.shape
    expect = (N, weight_size[0], _conv_out(H, weight_size[2], stride[0], p4[0], p4[2], dilation[0]),
              _conv_out(W, weight_size[3], stride[1], p4[1], p4[3], dilation[1]))
    if tuple(g.shape) != expect:
        raise RuntimeError(f"{op}: grad_output of size {list(g.shape)} does not match the conv output "
                           f"{list(expect)} of input {list(x.shape)} and weight {list(weight_size)}")
    return [(tuple(weight_size), x.dtype)]


def _bwd_weight_grad(c, h):
    x, g = c.inputs[0], c.inputs[1]
    weight_size, stride, p4, dilation, groups = c.attrs
    gx = conv2d_backward_input(tuple(x.shape), h, g, stride, p4, dilation, groups) if c.needs_input_grad[0] else None
    gg = _conv2d(x, h, None, stride, p4, dilation, groups) if c.needs_input_grad[1] else None
    return gx, gg


def _bwd_weight_samples(dt):
    return [
        Sample((arg((2, 3, 6, 6), dt), (4, 3, 3, 3), arg((2, 4, 4, 4), dt))),
        Sample((arg((2, 3, 7, 7), dt), (4, 3, 3, 3), arg((2, 4, 4, 4), dt)), {"stride": 2, "padding": 1},
               note="stride2-pad1"),
        Sample((arg((1, 4, 6, 5), dt), (6, 2, 2, 3), arg((1, 6, 4, 3), dt)),
               {"dilation": (2, 1), "groups": 2}, note="groups-dilation"),
        Sample((arg((2, 3, 4, 4), dt), (5, 3, 1, 1), arg((2, 5, 4, 4), dt)), note="1x1"),
    ]


@defop(name="conv2d_backward_weight", inputs=("input", "grad_output"),
       attrs=("weight_size", "stride", "padding", "dilation", "groups"), infer=_bwd_weight_infer,
       grad=_bwd_weight_grad, torch_ref="torch.nn.grad.conv2d_weight", samples=_bwd_weight_samples,
       tags=("conv", "backward"))
def conv2d_backward_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of conv2d with respect to its weight (torch.nn.grad.conv2d_weight)."""
    op = "conv2d_backward_weight"
    attrs = (tuple(int(s) for s in weight_size), _ntuple(stride, 2, "stride", op), _norm_p4(padding, op),
             _ntuple(dilation, 2, "dilation", op), int(groups))
    return dispatch(conv2d_backward_weight.opdef, [input.contiguous(), grad_output.contiguous()], attrs)


# ---------------------------------------------------------------------------------------
# conv1d: conv2d over a height-1 image


def _conv1d_samples(dt):
    return [
        Sample((arg((2, 3, 7), dt), arg((4, 3, 3), dt), arg((4,), dt))),
        Sample((arg((2, 4, 9), dt), arg((6, 2, 3), dt), arg((6,), dt)),
               {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}, note="groups-dilation"),
        Sample((arg((2, 3, 6), dt), arg((2, 3, 4), dt)), {"padding": "same"}, note="same-uneven"),
        Sample((arg((3, 7), dt), arg((2, 3, 3), dt), arg((2,), dt)), note="unbatched"),
    ]


def _conv1d_composite(x, w, b, stride, pads, dilation, groups):
    """conv1d as conv2d over a height-1 image (x is 3-d here)."""
    (lo, hi), (s,), (d,) = pads, stride, dilation
    out = _conv2d(x.unsqueeze(-2), w.unsqueeze(2), b, (1, s), (0, lo, 0, hi), (1, d), groups)
    return out.squeeze(-2)


def _conv1d_infer(x, w, b, stride, pads, dilation, groups):
    _check_conv("conv1d", tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape), stride,
                (pads,), dilation, groups)
    L = _conv_out(x.shape[2], w.shape[2], stride[0], pads[0], pads[1], dilation[0])
    return [((x.shape[0], w.shape[0], L), x.dtype)]


@defop(name="conv1d", inputs=("x", "weight", "bias?"), attrs=("stride", "padding", "dilation", "groups"),
       infer=_conv1d_infer, kernel=None, composite=_conv1d_composite, torch_ref="torch.nn.functional.conv1d",
       samples=_conv1d_samples, tags=("conv",))
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over an NCL (or CL) input."""
    op = "conv1d"
    _check_rank(op, input, weight, 1)
    stride = _ntuple(stride, 1, "stride", op)
    dilation = _ntuple(dilation, 1, "dilation", op)
    (pads,) = _conv_pads(padding, tuple(weight.shape[2:]), stride, dilation, op)
    x = input if input.ndim == 3 else input.unsqueeze(0)
    _check_conv(op, tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape), stride,
                (pads,), dilation, int(groups))
    out = dispatch(conv1d.opdef, [x, weight, bias], (stride, pads, dilation, int(groups)))
    return out if input.ndim == 3 else out.squeeze(0)


# ---------------------------------------------------------------------------------------
# conv_transpose2d: conv2d_backward_input plus a bias


def _convt_out(n, k, s, p, op_, d):
    return (n - 1) * s - 2 * p + d * (k - 1) + op_ + 1


def _convt_infer(x, w, b, stride, p4, output_padding, groups, dilation):
    op = "conv_transpose2d"
    _check_conv(op, tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape), stride,
                _pads2(p4), dilation, groups, transposed=True)
    N, _, H, W = x.shape
    Ho = _convt_out(H, w.shape[2], stride[0], p4[0], output_padding[0], dilation[0])
    Wo = _convt_out(W, w.shape[3], stride[1], p4[1], output_padding[1], dilation[1])
    if Ho <= 0 or Wo <= 0:
        raise RuntimeError(f"{op}: calculated output size ({Ho} x {Wo}) is too small for input {list(x.shape)}, "
                           f"weight {list(w.shape)}")
    return [((N, w.shape[1] * groups, Ho, Wo), x.dtype)]


def _convt_grad(c, g):
    x, w, b = c.inputs[0], c.inputs[1], c.inputs[2]
    stride, p4, _, groups, dilation = c.attrs
    gx = gw = gb = None
    if c.needs_input_grad[0]:
        gx = _conv2d(g, w, None, stride, p4, dilation, groups)
    if c.needs_input_grad[1]:
        gw = conv2d_backward_weight(g, tuple(w.shape), x, stride, p4, dilation, groups)
    if b is not None and c.needs_input_grad[2]:
        gb = g.sum((0, 2, 3))
    return gx, gw, gb


def _convt_samples(dt):
    return [
        Sample((arg((2, 4, 4, 4), dt), arg((4, 3, 3, 3), dt), arg((3,), dt))),
        Sample((arg((2, 4, 4, 3), dt), arg((4, 3, 3, 3), dt), arg((3,), dt)),
               {"stride": 2, "padding": 1, "output_padding": 1}, note="stride2-outpad"),
        Sample((arg((2, 4, 3, 3), dt), arg((4, 2, 3, 2), dt)),
               {"stride": (2, 1), "groups": 2, "dilation": (1, 2)}, note="groups-dilation"),
        Sample((arg((2, 3, 3, 3), dt), arg((3, 2, 1, 1), dt), arg((2,), dt)), note="1x1"),
        Sample((arg((4, 3, 3), dt), arg((4, 2, 2, 2), dt), arg((2,), dt)), {"stride": 2}, note="unbatched"),
    ]


@defop(name="conv_transpose2d", inputs=("x", "weight", "bias?"),
       attrs=("stride", "padding", "output_padding", "groups", "dilation"), infer=_convt_infer,
       grad=_convt_grad, torch_ref="torch.nn.functional.conv_transpose2d", samples=_convt_samples,
       tags=("conv",))
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution (the gradient of conv2d w.r.t. its input, plus bias)."""
    op = "conv_transpose2d"
    _check_rank(op, input, weight, 2)
    if input.ndim == 3:
        return conv_transpose2d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    stride = _ntuple(stride, 2, "stride", op)
    dilation = _ntuple(dilation, 2, "dilation", op)
    ph, pw = _ntuple(padding, 2, "padding", op)
    opad = _ntuple(output_padding, 2, "output_padding", op)
    if any(o < 0 or o >= s for o, s in zip(opad, stride)):
        raise RuntimeError(f"{op}: output padding must be non-negative and smaller than stride, got "
                           f"output_padding={list(opad)}, stride={list(stride)}")
    return dispatch(conv_transpose2d.opdef, [input.contiguous(), weight.contiguous(), bias],
                    (stride, (ph, pw, ph, pw), opad, int(groups), dilation))


# ---------------------------------------------------------------------------------------
# pad


def _pad_out_shape(shape, pads):
    return tuple(n + pads[2 * d] + pads[2 * d + 1] for d, n in enumerate(shape))


def _pad_infer(x, pads, mode, value):
    return [(_pad_out_shape(tuple(x.shape), pads), x.dtype)]


def _pad_grad(c, g):
    pads, mode, _ = c.attrs
    return (pad_backward(g, pads, mode, tuple(c.inputs[0].shape)),)


def _pad_samples(dt):
    return [
        Sample((arg((2, 3, 4, 5), dt), (1, 2, 0, 1))),
        Sample((arg((2, 3, 4), dt), (1, 1, 2, 0, 1, 1)), {"value": 0.5 if dt.is_floating_point else 2},
               note="3-dims-value"),
        Sample((arg((5,), dt), (2, 3)), note="1-d"),
        Sample((arg((2, 3, 6), dt), (-1, 2)), note="negative"),
        Sample((arg((2, 3, 4, 5), dt), (2, 1, 1, 2)), {"mode": "reflect"}, note="reflect-2d"),
        Sample((arg((2, 3, 5), dt), (2, 1)), {"mode": "reflect"}, note="reflect-1d"),
        Sample((arg((2, 3, 4, 5), dt), (2, 1, 1, 3)), {"mode": "replicate"}, note="replicate-2d"),
        Sample((arg((1, 2, 3, 3, 2), dt), (1, 0, 1, 1, 0, 2)), {"mode": "replicate"}, note="replicate-3d"),
        Sample((arg((2, 3, 4, 10), dt)[..., ::2], (1, 1, 1, 1)), {"mode": "reflect"}, note="strided"),
    ]


@defop(name="pad", inputs=("x",), attrs=("pads", "mode", "value"), infer=_pad_infer, grad=_pad_grad,
       promote=None, dtypes=(D.float32, D.float64, D.int64), torch_ref="torch.nn.functional.pad",
       samples=_pad_samples, tags=("pad",))
def pad(input, pad, mode="constant", value=None):
    """Pads the last len(pad)//2 dims (pad lists (left, right) pairs from the last dim)."""
    shape = tuple(input.shape)
    pads = _normalize_pad(shape, pad, mode, value)
    if mode == "constant":
        v = 0.0 if value is None else value
        if isinstance(v, bool):
            v = int(v)
    else:
        v = 0.0
    if isinstance(v, float) and not input.dtype.is_floating_point and not float(v).is_integer():
        raise RuntimeError(f"pad: value {v} cannot be used to pad a {input.dtype.name} tensor")
    return dispatch(_PAD_OP, [input], (pads, mode, float(v)))  # NOTE: `pad` is the argument here


_PAD_OP = pad.opdef


def _normalize_pad(shape, pad, mode, value) -> tuple:
    """torch's pad list (last dim first) -> (lo, hi) for every dim in dim order, checked."""
    pad = tuple(int(p) for p in pad)
    nd = len(shape)
    if len(pad) % 2 != 0:
        raise RuntimeError(f"pad: Padding length must be divisible by 2, got pad={list(pad)}")
    n = len(pad) // 2
    if n > nd:
        raise RuntimeError(f"pad: Padding length too large: pad={list(pad)} pads {n} dims of an input of "
                           f"size {list(shape)}")
    if mode not in ("constant", "reflect", "replicate"):
        if mode == "circular":
            raise NotImplementedError("pad: mode 'circular' is not supported")
        raise NotImplementedError(f"pad: unsupported padding mode {mode!r}")
    if mode != "constant":
        if value is not None and value != 0:
            raise RuntimeError(f'pad: Padding mode "{mode}" doesn\'t take in value argument')
        if n not in (1, 2, 3) or nd not in (n + 1, n + 2):
            raise NotImplementedError(f"pad: {mode} padding of {n} dims needs a {n + 1}-D or {n + 2}-D input, "
                                      f"got input of size {list(shape)}")
    pads = [0] * (2 * nd)
    for i in range(n):
        d = nd - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        size = shape[d]
        if mode == "constant":
            if size + lo + hi < 0:
                raise RuntimeError(f"pad: The input size {size}, plus negative padding {lo} and {hi} resulted in "
                                   f"a negative output size, which is invalid. Check dimension {d} of your input "
                                   f"of size {list(shape)}")
        else:
            if lo < 0 or hi < 0:
                raise RuntimeError(f"pad: negative padding {list(pad)} needs mode 'constant'")
            if mode == "reflect" and (lo >= size or hi >= size):
                raise RuntimeError(f"pad: Padding size should be less than the corresponding input dimension, "
                                   f"but got: padding ({lo}, {hi}) at dimension {d} of input {list(shape)}")
            if mode == "replicate" and size == 0 and (lo or hi):
                raise RuntimeError(f"pad: cannot replicate-pad the empty dimension {d} of input {list(shape)}")
        pads[2 * d], pads[2 * d + 1] = lo, hi
    return tuple(pads)


def _pad_backward_infer(g, pads, mode, input_size):
    expect = _pad_out_shape(tuple(input_size), pads)
    if tuple(g.shape) != expect:
        raise RuntimeError(f"pad_backward: grad_output of size {list(g.shape)} does not match the padded size "
                           f"{list(expect)} of input {list(input_size)}")
    return [(tuple(input_size), g.dtype)]


def _pad_backward_grad(c, h):
    pads, mode, _ = c.attrs
    return (dispatch(_PAD_OP, [h], (pads, mode, 0.0)),)


@defop(name="pad_backward", inputs=("grad_output",), attrs=("pads", "mode", "input_size"),
       infer=_pad_backward_infer, grad=_pad_backward_grad, promote=None, tags=("pad", "backward"),
       samples=lambda dt: [Sample((arg((2, 3, 5, 6), dt), (0, 0, 0, 0, 1, 0, 1, 2), "reflect", (2, 3, 4, 3)))])
def pad_backward(grad_output, pads, mode, input_size):
    """Gradient of pad: sums the gradient of every copy back onto its source element.
    pads holds (lo, hi) for every dim in dim order (the pad op's attribute)."""
    return dispatch(pad_backward.opdef, [grad_output], (tuple(pads), mode, tuple(input_size)))


__all__ = ["conv1d", "conv2d", "conv_transpose2d", "pad"]
