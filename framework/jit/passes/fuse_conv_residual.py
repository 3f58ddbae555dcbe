"""Residual fusion: a conv2d (or a conv2d_act with no activation and no residual yet) whose
only user is `add(conv, r)` (alpha 1, r of the output's shape and dtype) becomes
conv2d_act(x, weight, bias, residual=r, activation="none"), which adds r while each output
tile is in registers. fuse_linear_activation then folds a following activation into the same
node, so a ResNet block's conv + batch-norm (folded) + add + relu runs as one kernel."""

from __future__ import annotations

from ..ir import Graph
from ._match import alpha_one, registered


def _fusable(conv) -> bool:
    if conv.target == "conv2d":
        return True
    return conv.attrs[4] == "none" and (len(conv.inputs) < 4 or conv.inputs[3] is None)


def fuse_conv_residual(graph: Graph) -> bool:
    """Folds conv + add(residual) pairs into conv2d_act; returns whether any was folded."""
    if not registered("conv2d_act"):
        return False
    changed = False
    for conv in graph.calls("conv2d") + graph.calls("conv2d_act"):
        if conv.graph is not graph or not _fusable(conv):
            continue
        out = conv.output
        if len(out.users) != 1:
            continue
        add = out.users[0]
        if add.op != "call" or add.target != "add" or not alpha_one(add) or len(add.inputs) != 2:
            continue
        a, b = add.inputs
        other = b if a is out else a
        if other is out or other is None or other.spec != out.spec or add.output.spec != out.spec:
            continue
        with graph.inserting_before(add):  # both the conv's inputs and r exist here
            new = graph.call("conv2d_act", list(conv.inputs[:3]) + [other], tuple(conv.attrs[:4]) + ("none",),
                             source=conv.source)
        graph.replace_all_uses(add.output, new.output)
        graph.erase(add)
        graph.erase(conv)
        changed = True
    return changed
