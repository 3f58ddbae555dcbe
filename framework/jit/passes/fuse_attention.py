"""Attention fusion: attention written from primitives

  s = (q @ k^T) [* c | / c]  [masked_fill(s, M, -inf) | s + mask]  p = softmax(s, -1)  p @ v

(also with q and k^T each scaled by a constant before the product, as torch's ONNX export
writes it: (q * c1) @ (k^T * c2), scale c1 * c2)

becomes one scaled_dot_product_attention node (no (L, S) score tensor in memory between
ops). A constant boolean M equal to the strict upper triangle becomes is_causal; another
constant M becomes the boolean mask ~M; an additive mask is passed as is. Runs after
recognize_softmax; does nothing while the ops are not registered."""

from __future__ import annotations

import numpy as np

from ..ir import Graph
from ._match import alpha_one, const_scalar, erase_unused, producer, registered, single_use

_SDPA = "scaled_dot_product_attention"


def _transposed_key(kt):
    """(x, dims) when kt = k.transpose(-2, -1) is one permute of x: k = x.permute(dims), or
    k = x when dims is None; else None."""
    p = producer(kt, "permute")
    if p is None or not single_use(kt):
        return None
    dims = tuple(p.attrs[0])
    n = len(dims)
    if n < 2:
        return None
    kd = dims[:-2] + (dims[-1], dims[-2])
    return p.inputs[0], (None if kd == tuple(range(n)) else kd)


def _scaled(v):
    """(x, c, the mul node) for v = x * c or c * x with c a one-element constant used only
    there, else (v, 1.0, None)."""
    node = v.node
    if node.op == "call" and node.target == "mul" and single_use(v):
        for i in (1, 0):
            c = const_scalar(node.inputs[i])
            if c is not None and node.inputs[1 - i].spec.shape == v.spec.shape:
                return node.inputs[1 - i], c, node
    return v, 1.0, None


def _scores(s):
    """(q, (x, dims) of k as _transposed_key gives it, scale, dead nodes) for s = (q @ k^T) * c
    (or / c, or no scale); q and k^T may each be scaled by a constant first."""
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
    q, cq, mul_q = _scaled(mm.inputs[0])
    kt, ck, mul_k = _scaled(mm.inputs[1])
    k = _transposed_key(kt)
    if k is None:
        return None
    muls = [n for n in (mul_q, mul_k) if n is not None]
    return q, k, scale * cq * ck, dead + [mm] + muls + [kt.node]


def _causal_shape(arr, scores) -> bool:
    """Whether arr could be a causal mask of these scores: square, 2-D and the scores' last
    two dims (a (1, 1) mask broadcasts: it masks nothing)."""
    return arr.ndim == 2 and arr.shape[0] == arr.shape[1] and tuple(arr.shape) == tuple(scores.spec.shape[-2:])


def _triu(n: int) -> np.ndarray:
    """The (n, n) boolean strict upper triangle: what a causal mask hides."""
    return np.triu(np.ones((n, n), bool), 1)


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
        if _causal_shape(arr, s) and np.array_equal(arr, _triu(arr.shape[0])):
            return node.inputs[0], None, True, [node], None
        return node.inputs[0], None, False, [node], np.logical_not(arr)
    if node.target == "add" and alpha_one(node) and node.inputs[1].spec.dtype is s.spec.dtype:
        m = node.inputs[1]
        if m.node.op == "const" and _causal_shape(m.node.const, s) and \
                np.array_equal(m.node.const, np.where(_triu(m.node.const.shape[0]), -np.inf, 0)):
            return node.inputs[0], None, True, [node], None  # 0, -inf above the diagonal: causal
        return node.inputs[0], m, False, [node], None
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
        q, (kx, kdims), scale, dead_scores = sc
        k_shape = tuple(kx.spec.shape) if kdims is None else tuple(kx.spec.shape[d] for d in kdims)
        if not (q.spec.ndim == len(k_shape) == v.spec.ndim >= 2) or q.spec.dtype is not v.spec.dtype \
                or not q.spec.dtype.is_floating_point:
            continue
        if not (tuple(q.spec.shape[:-2]) == k_shape[:-2] == tuple(v.spec.shape[:-2])):
            continue
        added, new = [], None
        with graph.inserting_before(out):
            try:
                k = kx
                if kdims is not None:  # the key's own permute, where k^T was one permute of x
                    added.append(graph.call("permute", [kx], (kdims,), source=out.source))
                    k = added[-1].outputs[0]
                if new_mask is not None:
                    mask = graph.add_const(new_mask, value_name="attn_mask")
                new = graph.call(_SDPA, [q, k, v, mask], (bool(causal), float(scale), 0.0, 0), source=out.source)
                added.append(new)
            except (RuntimeError, ValueError, TypeError):
                pass
        if new is None or new.outputs[0].spec != out.output.spec:  # undo what this match added
            for n in reversed(added):
                graph.erase(n)
            continue
        graph.replace_all_uses(out.output, new.outputs[0])
        erase_unused(graph, [out, sm] + dead_mask + dead_scores)
        changed = True
    return changed
