"""Softmax / log-softmax recognition: the forms a model writes from primitives become the
registered softmax / log_softmax ops (one kernel, no intermediate tensors):

  exp(x - logsumexp(x, d, keepdim=True))                -> softmax(x, d)
  e = exp(x - amax(x, d, keepdim=True)); e / sum(e, d, keepdim=True) -> softmax(x, d)
  x - logsumexp(x, d, keepdim=True)                     -> log_softmax(x, d)

Applies over one dim, float dtypes, when the intermediate values have no other users.
Does nothing while the target op is not registered."""

from __future__ import annotations

from ..ir import Graph
from ._match import alpha_one, erase_unused, producer, registered, single_use


def _reduced_dim(node, x):
    """The one dim a keepdim reduction over x reduces, else None."""
    if node is None or node.inputs[0] is not x:
        return None
    dims, keepdim = node.attrs[0], node.attrs[-1]
    if not keepdim or not isinstance(dims, tuple) or len(dims) != 1:
        return None
    return dims[0]


def _sub_of_reduction(sub, reduction: str):
    """(x, d) if sub = x - <reduction>(x, d, keepdim) with alpha 1, else None."""
    if sub is None or not alpha_one(sub):
        return None
    x, r = sub.inputs
    red = producer(r, reduction)
    d = _reduced_dim(red, x)
    if d is None or not single_use(r) or not x.spec.dtype.is_floating_point:
        return None
    return x, d


def _replace(graph: Graph, old_node, target: str, x, d, dead: list) -> None:
    with graph.inserting_before(old_node):
        new = graph.call(target, [x], (d,), source=old_node.source)
    graph.replace_all_uses(old_node.output, new.output)
    erase_unused(graph, [old_node] + dead)


def recognize_softmax(graph: Graph) -> bool:
    """Rewrites primitive softmax/log_softmax forms as the ops; returns whether it did."""
    changed = False
    if registered("softmax"):
        for e in graph.calls("exp"):
            if e.graph is not graph:
                continue
            sub = producer(e.inputs[0], "sub")
            m = _sub_of_reduction(sub, "logsumexp") if single_use(e.inputs[0]) else None
            if m is not None:
                r = sub.inputs[1].node
                _replace(graph, e, "softmax", m[0], m[1], [sub, r])
                changed = True
                continue
            m = _sub_of_reduction(sub, "amax") if single_use(e.inputs[0]) else None
            if m is None or len(e.output.users) != 2:
                continue
            div = next((u for u in e.output.users if u.target == "div" and u.inputs[0] is e.output), None)
            s = next((u for u in e.output.users if u.target == "sum"), None)
            if div is None or s is None or div.inputs[1] is not s.output or not single_use(s.output):
                continue
            if _reduced_dim(s, e.output) != m[1]:
                continue
            r = sub.inputs[1].node
            _replace(graph, div, "softmax", m[0], m[1], [s, e, sub, r])
            changed = True
    if registered("log_softmax"):
        for sub in graph.calls("sub"):
            if sub.graph is not graph:
                continue
            m = _sub_of_reduction(sub, "logsumexp")
            if m is None:
                continue
            r = sub.inputs[1].node
            _replace(graph, sub, "log_softmax", m[0], m[1], [r])
            changed = True
    return changed
