"""Per-channel affine folding: conv2d or linear (constant weight, constant or no bias)
followed by add/sub/mul/div with a constant that is per-output-channel (or a scalar) is
folded into the weight and bias. This is batch-norm folding for models whose batch norm is
written from primitives (after constant folding it is exactly (y - m) * s * g + b):

  y + c -> bias + c      y - c -> bias - c      y * c -> W * c, bias * c      y / c -> ...

The new constants are computed with the framework's own ops."""

from __future__ import annotations

import numpy as np

from ...ops.elementwise import add, div, mul, sub
from ...tensor import Tensor
from ..ir import Graph

_OPS = {"add": add, "sub": sub, "mul": mul, "div": div}


def _channel_const(v, channels: int, out_ndim: int, channel_dim: int):
    """The constant as a (channels,) array if it only varies along the channel dim."""
    if v is None or v.node.op != "const":
        return None
    c = v.node.const
    if c.size == 1 and c.ndim <= out_ndim:
        return np.full(channels, c.reshape(-1)[0], dtype=c.dtype)
    if c.size != channels or c.ndim > out_ndim:
        return None
    shape = (1,) * (out_ndim - c.ndim) + c.shape  # right-aligned broadcast
    if shape[channel_dim] != channels:
        return None
    return c.reshape(-1)


def _fold_one(graph: Graph, node) -> bool:
    y = node.output
    if len(y.users) != 1 or len(node.outputs) != 1:
        return False
    user = y.users[0]
    if user.op != "call" or user.target not in _OPS or user.output.spec != y.spec:
        return False
    if user.target in ("add", "sub") and user.attrs not in ((1,), (1.0,)):
        return False
    other_pos = 1 if user.inputs[0] is y else 0
    if user.inputs[1 - other_pos] is not y or (other_pos == 0 and user.target in ("sub", "div")):
        return False
    w, b = node.inputs[1], node.inputs[2]
    if w.node.op != "const" or (b is not None and b.node.op != "const"):
        return False
    channels = w.spec.shape[0]
    channel_dim = 1 if node.target == "conv2d" else y.spec.ndim - 1
    c = _channel_const(user.inputs[other_pos], channels, y.spec.ndim, channel_dim)
    if c is None or c.dtype != w.node.const.dtype:
        return False
    W = Tensor._wrap(w.node.const)
    B = Tensor._wrap(b.node.const if b is not None else np.zeros(channels, w.node.const.dtype))
    C = Tensor._wrap(np.ascontiguousarray(c))
    fn = _OPS[user.target]
    if user.target in ("mul", "div"):
        W = fn(W, C.reshape((channels,) + (1,) * (w.spec.ndim - 1)))
        B = fn(B, C)
    else:
        B = fn(B, C)
    with graph.inserting_before(node):
        wv = graph.add_const(np.ascontiguousarray(W.numpy()), w.node.name, value_name=w.name)
        bv = graph.add_const(np.ascontiguousarray(B.numpy()), b.node.name if b is not None else None,
                             value_name=b.name if b is not None else f"{w.name}_bias")
    graph.set_input(node, 1, wv)
    graph.set_input(node, 2, bv)
    graph.replace_all_uses(user.output, y)
    graph.erase(user)
    return True


def fold_affine_into_conv(graph: Graph) -> bool:
    """Folds per-channel constant add/sub/mul/div into conv2d/linear; returns whether it did."""
    changed = False
    for node in list(graph.nodes):
        if node.graph is graph and node.op == "call" and node.target in ("conv2d", "linear"):
            while _fold_one(graph, node):
                changed = True
    return changed
