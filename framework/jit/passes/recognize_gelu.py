"""GELU recognition: the exact (erf) GELU written from primitives, as torch's ONNX export of
nn.GELU writes it,

  x * (erf(x / sqrt(2)) + 1) * 0.5        (or x * 0.5 * (1 + erf(x * (1 / sqrt(2)))), ...)

becomes one gelu node, which fuse_linear_activation then folds into a preceding linear or
conv. The constants must be sqrt(2) (or its inverse), 1 and 0.5 to float32 precision, every
intermediate value used only here, and the dtype floating point. Does nothing while gelu is
not registered."""

from __future__ import annotations

import math

from ..ir import Graph
from ._match import alpha_one, const_scalar, erase_unused, registered, single_use


def _close(c, want: float) -> bool:
    return c is not None and abs(c - want) <= 1e-6 * abs(want)


def _const_operand(node, want: float):
    """The other operand of a binary node whose one operand is the constant `want`, else None."""
    a, b = node.inputs
    if _close(const_scalar(b), want):
        return a
    if node.target in ("mul", "add") and _close(const_scalar(a), want):
        return b
    return None


def _call(v, target: str):
    """v's producer if it is a `target` call whose output only v's one user reads."""
    node = v.node
    if node.op == "call" and node.target == target and single_use(v):
        return node
    return None


def _erf_input(erf):
    """x when erf's input is x / sqrt(2) or x * (1 / sqrt(2)), else None (and the node)."""
    v = erf.inputs[0]
    d = _call(v, "div")
    if d is not None:
        x = _const_operand(d, math.sqrt(2.0))  # x / c only: div's constant is its divisor
        if x is not None:
            return x, d
    m = _call(v, "mul")
    if m is not None:
        x = _const_operand(m, 1.0 / math.sqrt(2.0))
        if x is not None:
            return x, m
    return None, None


def recognize_gelu(graph: Graph) -> bool:
    """Rewrites the primitive exact GELU as the gelu op; returns whether it did."""
    if not registered("gelu"):
        return False
    changed = False
    for erf in graph.calls("erf"):
        if erf.graph is not graph or not single_use(erf.output):
            continue
        x, scaled = _erf_input(erf)
        if x is None or not x.spec.dtype.is_floating_point:
            continue
        one = erf.output.users[0]  # erf(...) + 1
        if one.target != "add" or not alpha_one(one) or _const_operand(one, 1.0) is not erf.output \
                or not single_use(one.output):
            continue
        prod = one.output.users[0]  # x * (...) or (x * 0.5) * (...)
        if prod.target != "mul":
            continue
        other = prod.inputs[1] if prod.inputs[0] is one.output else prod.inputs[0]
        dead = [prod, one, erf, scaled]
        if other is x:  # x * (1 + erf) then * 0.5
            if not single_use(prod.output) or prod.output.users[0].target != "mul":
                continue
            last = prod.output.users[0]
            if _const_operand(last, 0.5) is not prod.output:
                continue
            dead.insert(0, last)
        else:  # (x * 0.5) * (1 + erf)
            half = _call(other, "mul")
            if half is None or _const_operand(half, 0.5) is not x:
                continue
            last = prod
            dead.append(half)
        if last.output.spec != x.spec:
            continue
        with graph.inserting_before(last):
            new = graph.call("gelu", [x], ("none",), source=last.source)
        graph.replace_all_uses(last.output, new.output)
        erase_unused(graph, dead)
        changed = True
    return changed
