"""Layer-norm recognition: the primitive form

  (x - mean(x, D, keepdim)) * rsqrt(var(x, D, correction=0, keepdim) + eps) [* w] [+ b]

with D the trailing k dims becomes the registered layer_norm op (one kernel, one pass for
the statistics). w and b must have the normalized shape. Does nothing while layer_norm is
not a registered op."""

from __future__ import annotations

from ..ir import Graph
from ._match import alpha_one, const_scalar, erase_unused, producer, registered, single_use


def _trailing(dims, ndim: int):
    """k if dims are the last k dims of an ndim tensor, else None."""
    if not isinstance(dims, tuple) or not dims:
        return None
    k = len(dims)
    return k if tuple(dims) == tuple(range(ndim - k, ndim)) else None


def _match_core(mul):
    """(x, k, eps, dead nodes) for mul = (x - mean) * rsqrt(var + eps), else None."""
    a, b = mul.inputs
    sub, rs = producer(a, "sub"), producer(b, "rsqrt")
    if sub is None or rs is None or not alpha_one(sub) or not single_use(a) or not single_use(b):
        return None
    x, m = sub.inputs
    mean = producer(m, "mean")
    if mean is None or mean.inputs[0] is not x or not mean.attrs[1]:
        return None
    k = _trailing(mean.attrs[0], x.spec.ndim)
    add = producer(rs.inputs[0], "add")
    if k is None or add is None or not alpha_one(add) or not single_use(rs.inputs[0]):
        return None
    var = producer(add.inputs[0], "var")
    eps = const_scalar(add.inputs[1])
    if var is None or eps is None or var.inputs[0] is not x or not single_use(add.inputs[0]):
        return None
    dims, correction, keepdim = var.attrs
    if dims != mean.attrs[0] or correction not in (0, 0.0) or not keepdim:
        return None
    if len(m.users) != 1:
        return None
    return x, k, eps, [sub, rs, add, var, mean]


def _affine(y, target: str, norm_shape):
    """The node y -> y <target> p with p of the normalized shape, and p; else (None, None)."""
    if len(y.users) != 1:
        return None, None
    u = y.users[0]
    if u.op != "call" or u.target != target or u.inputs[0] is not y:
        return None, None
    if target == "add" and not alpha_one(u):
        return None, None
    p = u.inputs[1]
    if tuple(p.spec.shape) != tuple(norm_shape) or p.spec.dtype is not y.spec.dtype:
        return None, None
    return u, p


def recognize_layer_norm(graph: Graph) -> bool:
    """Rewrites the primitive layer-norm form as layer_norm; returns whether it did."""
    if not registered("layer_norm"):
        return False
    changed = False
    for mul in graph.calls("mul"):
        if mul.graph is not graph:
            continue
        m = _match_core(mul)
        if m is None:
            continue
        x, k, eps, dead = m
        if not x.spec.dtype.is_floating_point:
            continue
        norm_shape = x.spec.shape[x.spec.ndim - k:]
        last, w, b = mul, None, None
        wn, wv = _affine(last.output, "mul", norm_shape)
        if wn is not None:
            last, w = wn, wv
            dead.insert(0, mul)
        bn, bv = _affine(last.output, "add", norm_shape)
        if bn is not None:
            dead.insert(0, last)
            last, b = bn, bv
        with graph.inserting_before(last):
            new = graph.call("layer_norm", [x, w, b], (k, float(eps)), source=mul.source)
        graph.replace_all_uses(last.output, new.outputs[0])
        erase_unused(graph, [last] + [d for d in dead if d is not last])
        changed = True
    return changed
