"""Pool fusion: a conv2d, or a conv2d_act with activation none or relu, whose only user is a
max_pool2d whose indices nobody reads becomes one conv2d_act_maxpool (framework/ops/fused.py).
Its kernel pools each sample's conv map as soon as it is computed, while the map is in cache,
so the conv's full output is never written to memory and read back: a small CNN's conv +
relu + 2x2 pool runs as one node. Runs after fuse_conv_residual and fuse_linear_activation,
which fold a residual add and the relu into the conv first."""

from __future__ import annotations

from ..ir import Graph
from ._match import registered


def _conv_parts(conv):
    """(inputs, conv attrs with the activation) of a fusable conv, else None."""
    if conv.target == "conv2d":
        return list(conv.inputs[:3]) + [None], tuple(conv.attrs[:4]) + ("none",)
    if conv.target == "conv2d_act" and conv.attrs[4] in ("none", "relu"):
        inputs = list(conv.inputs) + [None] * (4 - len(conv.inputs))
        return inputs[:4], tuple(conv.attrs[:5])
    return None


def fuse_conv_pool(graph: Graph) -> bool:
    """Folds conv + max_pool2d pairs into conv2d_act_maxpool; returns whether any was folded."""
    if not registered("conv2d_act_maxpool"):
        return False
    changed = False
    for conv in graph.calls("conv2d") + graph.calls("conv2d_act"):
        if conv.graph is not graph:
            continue
        parts = _conv_parts(conv)
        out = conv.output
        if parts is None or len(out.users) != 1 or out.spec.ndim != 4:
            continue
        pool = out.users[0]
        if pool.op != "call" or pool.target != "max_pool2d" or pool.inputs[0] is not out:
            continue
        if len(pool.outputs) > 1 and pool.outputs[1].users:  # the indices are read
            continue
        inputs, attrs = parts
        k, s, p, d, ceil_mode = pool.attrs[:5]
        with graph.inserting_before(pool):
            new = graph.call("conv2d_act_maxpool", inputs,
                             attrs + (tuple(k), tuple(s), tuple(p), tuple(d), bool(ceil_mode)), source=conv.source)
        graph.replace_all_uses(pool.outputs[0], new.output)
        graph.erase(pool)
        graph.erase(conv)
        changed = True
    return changed
