"""Batch-norm folding: an eval-mode batch_norm (training false, constant running stats,
weight and bias) right after a conv2d or a 2-D linear with a constant weight is folded into
that op's weight and bias:

  scale = gamma / sqrt(running_var + eps)
  W' = W * scale (per output channel)      b' = (b - running_mean) * scale + beta

The new constants are computed with the framework's own ops, in float64, then cast back.
The pass does nothing while batch_norm is not a registered op."""

from __future__ import annotations

import numpy as np

from ...ops.registry import REGISTRY
from ...tensor import Tensor
from ..ir import Graph


def _const(v):
    return v is not None and v.node.op == "const"


def _folded(w: np.ndarray, b, gamma, beta, mean, var, eps: float):
    from ... import ops  # noqa: F401  (registers the ops used below)
    from ...ops.elementwise import add, mul, rsqrt, sub

    def t(a):
        return Tensor._wrap(np.asarray(a, dtype=np.float64))

    c = w.shape[0]
    g = t(gamma) if gamma is not None else t(np.ones(c))
    be = t(beta) if beta is not None else t(np.zeros(c))
    scale = mul(g, rsqrt(add(t(var), eps)))
    # NOTE: as (c, rest) rows: one scale per row is the kernel's fast broadcast (a 4-D
    # (c, 1, 1, 1) broadcast is several times slower on ResNet-sized weights).
    w2 = mul(t(w).reshape(c, -1), scale.reshape(c, 1)).reshape(w.shape)
    b0 = t(b) if b is not None else t(np.zeros(c))
    b2 = add(mul(sub(b0, t(mean)), scale), be)
    return (np.ascontiguousarray(w2.numpy(), dtype=w.dtype),
            np.ascontiguousarray(b2.numpy(), dtype=w.dtype))


def fold_batch_norm(graph: Graph) -> bool:
    """Folds eval batch_norm into a preceding conv2d/linear; returns whether any was folded."""
    if "batch_norm" not in REGISTRY:
        return False
    changed = False
    for bn in graph.calls("batch_norm"):
        x, gamma, beta, mean, var = bn.inputs
        training, _momentum, eps = bn.attrs
        if training or any(v.users for v in bn.outputs[1:]):
            continue
        if not all(v is None or _const(v) for v in (gamma, beta)) or not (_const(mean) and _const(var)):
            continue
        p = x.node
        if p.op != "call" or p.target not in ("conv2d", "linear") or len(x.users) != 1:
            continue
        w, b = p.inputs[1], p.inputs[2]
        if not _const(w) or (b is not None and not _const(b)):
            continue
        if p.target == "linear" and x.spec.ndim != 2:
            continue
        arrays = [None if v is None else v.node.const for v in (gamma, beta, mean, var)]
        w2, b2 = _folded(w.node.const, None if b is None else b.node.const, *arrays, float(eps))
        with graph.inserting_before(p):
            wv = graph.add_const(w2, f"{w.node.name}+bn" if w.node.name else None, value_name=w.name)
            bv = graph.add_const(b2, f"{b.node.name}+bn" if b is not None and b.node.name else None,
                                 value_name=(b.name if b is not None else f"{w.name}_bias"))
        graph.set_input(p, 1, wv)
        graph.set_input(p, 2, bv)
        graph.replace_all_uses(bn.outputs[0], x)
        graph.erase(bn)
        changed = True
    return changed
