"""Attention fusion: attention written from primitives

  s = (q @ k^T) [* c | / c]  [masked_fill(s, M, -inf) | s + mask]  p = softmax(s, -1)  p @ v

becomes one scaled_dot_product_attention node (no (L, S) score tensor in memory between
ops). A constant boolean M equal to the strict upper triangle becomes is_causal; another
constant M becomes the boolean mask ~M; an additive mask is passed as is. Runs after
recognize_softmax; does nothing while the ops are not registered."""

from __future__ import annotations

import numpy as np

from ..ir import Graph
from ._match import alpha_one, const_scalar, producer, registered, single_use

_SDPA = "scaled_dot_product_attention"


def _transposed_key(kt):
    """k if kt = k.transpose(-2, -1), else None."""
    p = producer(kt, "permute")
    if p is None or not single_use(kt):
        return None
    dims = tuple(p.attrs[0])
    n = len(dims)
    if n < 2 or dims != tuple(range(n - 2)) + (n - 1, n - 2):
        return None
    return p.inputs[0]


def _scores(s):
    """(q, k, scale, dead nodes) for s = (q @ k^T) * c (or / c, or no scale)."""
    scale, dead, node = 1.0, [], s.node
    if node.op == "call" and node.target in ("mul", "div") and single_use(s):
        c = const_scalar(node.inputs[1])
        if c is None or c == 0:
            return None
        scale = c if node.target == "mul" else 1.0 / c
        dead.append(node)
        s = node.inputs[0]
    mm = producer(s, "matmul")
    if mm is None or not single_use(s):
        return None
    k = _transposed_key(mm.inputs[1])
    if k is None:
        return None
    return mm.inputs[0], k, scale, dead + [mm, mm.inputs[1].node]


def _mask(graph, s):
    """(scores value, mask value or None, is_causal, dead nodes, new mask array)."""
    node = s.node
    if node.op != "call" or not single_use(s):
        return s, None, False, [], None
    if node.target == "masked_fill" and node.attrs[0] == float("-inf"):
        m = node.inputs[1]
        if m.node.op != "const":
            return None
        arr = m.node.const
        if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and \
                np.array_equal(arr, np.triu(np.ones(arr.shape, bool), 1)):
            return node.inputs[0], None, True, [node], None
        return node.inputs[0], None, False, [node], np.logical_not(arr)
    if node.target == "add" and alpha_one(node) and node.inputs[1].spec.dtype is s.spec.dtype:
        return node.inputs[0], node.inputs[1], False, [node], None
    return s, None, False, [], None


def fuse_attention(graph: Graph) -> bool:
    """Fuses primitive attention into scaled_dot_product_attention; returns whether it did."""
    if not (registered(_SDPA) and registered("softmax")):
        return False
    changed = False
    for out in graph.calls("matmul"):
        if out.graph is not graph:
            continue
        p, v = out.inputs
        sm = producer(p, "softmax")
        if sm is None or not single_use(p) or sm.attrs[0] not in (-1, p.spec.ndim - 1):
            continue
        masked = _mask(graph, sm.inputs[0])
        if masked is None:
            continue
        s, mask, causal, dead_mask, new_mask = masked
        sc = _scores(s)
        if sc is None:
            continue
        q, k, scale, dead_scores = sc
        if not (q.spec.ndim == k.spec.ndim == v.spec.ndim >= 2) or q.spec.dtype is not v.spec.dtype \
                or not q.spec.dtype.is_floating_point:
            continue
        if not (q.spec.shape[:-2] == k.spec.shape[:-2] == v.spec.shape[:-2]):
            continue
        with graph.inserting_before(out):
            if new_mask is not None:
                mask = graph.add_const(new_mask, value_name="attn_mask")
            try:
                new = graph.call(_SDPA, [q, k, v, mask], (bool(causal), float(scale), 0.0, 0),
                                 source=out.source)
            except (RuntimeError, ValueError, TypeError):
                continue
        if new.outputs[0].spec != out.output.spec:
            graph.erase(new)
            continue
        graph.replace_all_uses(out.output, new.outputs[0])
        for n in [out, sm] + dead_mask + dead_scores:
            if n.graph is graph and not any(x.users for x in n.outputs):
                graph.erase(n)
        changed = True
    return changed
