"""Dropout removal: in a graph traced from a module in eval mode (graph.meta["training"]
is False) every dropout is the identity; with p == 0 it is the identity in any mode. The node is replaced by its input
when its mask output is unused."""

from __future__ import annotations

from ..ir import Graph


def remove_dropout(graph: Graph) -> bool:
    """Drops identity dropouts; returns whether any was removed."""
    changed = False
    eval_mode = graph.meta.get("training") is False
    for node in graph.calls("dropout"):
        p = node.attrs[0] if node.attrs else None
        if not eval_mode and p != 0:
            continue
        if any(v.users for v in node.outputs[1:]):
            continue
        graph.replace_all_uses(node.outputs[0], node.inputs[0])
        graph.erase(node)
        changed = True
    return changed
