"""Dead-code elimination: erases call and const nodes none of whose outputs are used.

Graph values are immutable and ops have no side effects in the IR (random ops included:
an unused random draw is simply not drawn), so any unused node can go."""

from __future__ import annotations

from ..ir import Graph


def eliminate_dead_code(graph: Graph) -> bool:
    """Removes unused call/const nodes; returns whether anything was removed."""
    changed = False
    for node in reversed(list(graph.nodes)):
        if node.op in ("call", "const") and all(not v.users for v in node.outputs):
            graph.erase(node)
            changed = True
    return changed
