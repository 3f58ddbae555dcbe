"""Small helpers for pattern-matching passes (not a pass itself)."""

from __future__ import annotations

from typing import Optional

from ...ops.registry import REGISTRY


def producer(v, target: str):
    """v's producing call node if it is a call of `target`, else None."""
    if v is None or v.node.op != "call" or v.node.target != target:
        return None
    return v.node


def single_use(v) -> bool:
    return v is not None and len(v.users) == 1


def const_scalar(v) -> Optional[float]:
    """The value of a one-element constant, else None."""
    if v is None or v.node.op != "const" or v.node.const.size != 1:
        return None
    return float(v.node.const.reshape(-1)[0])


def alpha_one(node) -> bool:
    return node.attrs in ((), (1,), (1.0,), (None,))


def registered(name: str) -> bool:
    op = REGISTRY.get(name)
    return op is not None and op.kernel is not None


def erase_unused(graph, nodes) -> None:
    """Erases, in the order given (users before producers), the nodes of `graph` whose outputs
    nothing reads any more: what a rewrite left behind."""
    for n in nodes:
        if n.graph is graph and not any(v.users for v in n.outputs):
            graph.erase(n)
