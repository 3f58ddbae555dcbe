"""Common-subexpression elimination: a call with the same target, the same input values and
equal attributes as an earlier call is replaced by it; equal small constants are merged.

Random ops (those with a "seed" attribute) are never merged."""

from __future__ import annotations

from ..ir import Graph

_MAX_CONST_BYTES = 1 << 16  # larger constants are not hashed (weights are rarely duplicated)


def _attr_key(a):
    if isinstance(a, float) and a != a:
        return ("nan",)
    if isinstance(a, tuple):
        return tuple(_attr_key(x) for x in a)
    return (type(a).__name__, a)


def _key(node):
    if node.op == "const":
        c = node.const
        if c.nbytes > _MAX_CONST_BYTES:
            return None
        return ("const", c.dtype.str, c.shape, c.tobytes())
    if node.op != "call" or "seed" in node.opdef.attrs:
        return None
    return ("call", node.target, tuple(None if v is None else id(v) for v in node.inputs),
            _attr_key(node.attrs))


def eliminate_common_subexpressions(graph: Graph) -> bool:
    """Merges duplicate calls and constants; returns whether anything changed."""
    seen: dict = {}
    changed = False
    for node in list(graph.nodes):
        key = _key(node)
        if key is None:
            continue
        first = seen.get(key)
        if first is None:
            seen[key] = node
            continue
        for old, new in zip(node.outputs, first.outputs):
            graph.replace_all_uses(old, new)
        graph.erase(node)
        changed = True
    return changed
