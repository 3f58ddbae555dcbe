"""Activation layout ops that the graph runtime inserts (never in traced graphs): registered
ops like any other, so eager dispatch, the interpreter and the C++ runtime run the same
kernel (csrc/kernels/layout.cpp).

- reorder_nchw16c(x, to_blocked): converts a 4-d float tensor between plain NCHW and the
  channel-blocked "nchw16c" layout, where element (n, c, h, w) is stored at flat index
  ((n * (C/16) + c/16) * H*W + h*W + w) * 16 + c % 16. Both sides keep the logical
  (N, C, H, W) shape and contiguous strides: only kernels told by their "layout" attribute
  read the bytes as blocked. As a function of logical tensors, to_blocked=True is torch's
  x.reshape(N, C//16, 16, H, W).permute(0, 1, 3, 4, 2).reshape(N, C, H, W); False is the
  inverse.

No compute here.
"""

from __future__ import annotations

from ._common import arg
from .dispatch import dispatch
from .registry import Sample, defop

BLOCK = 16


def _reorder_infer(x, to_blocked):
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[1] % BLOCK != 0:
        raise ValueError(f"reorder_nchw16c: expected a 4-d (N, C, H, W) tensor with C a multiple of {BLOCK}, "
                         f"got shape {list(shape)}")
    return [(shape, x.dtype)]


def _reorder_grad(c, g):
    # a permutation of the elements: its adjoint is the inverse permutation
    return (reorder_nchw16c(g, not c.attrs[0]),)


def _reorder_samples(dt):
    return [
        Sample((arg((2, 32, 3, 5), dt), True)),
        Sample((arg((1, 16, 7, 7), dt), False), note="from-blocked"),
        Sample((arg((2, 16, 1, 1), dt), True), note="1x1"),
        Sample((arg((1, 16, 5, 12), dt)[..., ::2], True), note="strided"),
        Sample((arg((1, 16, 5, 6), dt)[..., 1:5], True), note="strided-rows"),
    ]


@defop(name="reorder_nchw16c", inputs=("x",), attrs=("to_blocked",), infer=_reorder_infer, grad=_reorder_grad,
       promote=None, onnx_reason="runtime-internal layout op: inserted at model load, never in traced graphs",
       samples=_reorder_samples, tags=("layout",))
def reorder_nchw16c(input, to_blocked: bool = True):
    """Reorders a 4-d (N, C, H, W) tensor to the nchw16c channel-blocked layout or back."""
    return dispatch(reorder_nchw16c.opdef, [input], (bool(to_blocked),))


__all__ = ["reorder_nchw16c"]
