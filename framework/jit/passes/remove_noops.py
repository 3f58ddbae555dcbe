"""No-op removal: ops that return their input unchanged are replaced by it, and chains of
reshapes or permutes collapse into one.

  reshape/expand to the same shape, permute by the identity, slice of the whole dim, `to`
  the same dtype, clone of a non-view result, add/sub of a zero constant, mul/div
  by a constant one (when the result has the input's spec) -> the input;
  reshape(reshape(x)) -> reshape(x); permute(permute(x, p), q) -> permute(x, p o q).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph


def _const_equal(v, value) -> bool:
    if v is None or v.node.op != "const":
        return False
    c = v.node.const
    return c.size > 0 and bool(np.all(c == value))


def _is_identity(node) -> bool:
    t, ins, out = node.target, node.inputs, node.outputs[0]
    x = ins[0] if ins else None
    if x is None or len(node.outputs) != 1:
        return False
    same_spec = x.spec == out.spec
    if t in ("reshape", "expand", "to") and same_spec:
        return True
    if t == "clone" and x.node.op == "call" and "view" not in x.node.opdef.tags:
        # NOTE: clone also makes strided views contiguous for kernels that need it (in the
        # interpreter a view op's output is a strided view); only a non-view result is safe.
        return True
    if t == "permute" and tuple(node.attrs[0]) == tuple(range(len(node.attrs[0]))):
        return True
    if t == "slice" and same_spec and node.attrs[1] in (0, None) and node.attrs[3] in (1, None):
        return True
    if t in ("add", "sub") and same_spec and _const_equal(ins[1], 0):
        return True
    if t in ("mul", "div") and same_spec and _const_equal(ins[1], 1):
        return True
    return False


def _collapse(graph: Graph, node) -> bool:
    """Makes node read the input of a producer of the same kind; True if it did."""
    x = node.inputs[0]
    prod = x.node
    if prod.op != "call" or prod.target != node.target:
        return False
    if node.target == "reshape":
        graph.set_input(node, 0, prod.inputs[0])
        return True
    if node.target == "permute":
        p, q = tuple(prod.attrs[0]), tuple(node.attrs[0])
        if len(p) != len(q):
            return False
        node.attrs = (tuple(p[i] for i in q),)
        graph.set_input(node, 0, prod.inputs[0])
        return True
    return False


def remove_noops(graph: Graph) -> bool:
    """Removes identity ops and collapses reshape/permute chains; returns whether it changed."""
    changed = False
    for node in list(graph.nodes):
        if node.op != "call" or node.graph is not graph:
            continue
        if node.target in ("reshape", "permute") and _collapse(graph, node):
            changed = True
        if _is_identity(node):
            graph.replace_all_uses(node.outputs[0], node.inputs[0])
            graph.erase(node)
            changed = True
    return changed
