"""Elementwise-chain fusion: a tree of float elementwise ops whose inner values have no
other users becomes one fused_elementwise node (framework/ops/fused.py) whose program the
C++ kernel evaluates in a single loop over the data (every input read once, the output
written once, no intermediate tensors).

Scalar constants are inlined into the program; at most 8 distinct tensor inputs per
group; groups of a single op are left alone."""

from __future__ import annotations

from ...ops import fused as F
from ..ir import Graph, infer_specs

_MAX_STACK = 16


def _fusible(node) -> bool:
    if node.op != "call" or len(node.outputs) != 1:
        return False
    t = node.target
    if t not in F.UNARY_OPCODES and t not in F.BINARY_OPCODES and t not in (
            "leaky_relu", "elu", "clamp", "softplus", "gelu"):
        return False
    dt = node.output.spec.dtype
    if not dt.is_floating_point:
        return False
    return all(v is None or v.spec.dtype is dt for v in node.inputs)


def _inlinable(v, ndim: int) -> bool:
    n = v.node
    return n.op == "const" and n.const.size == 1 and n.const.ndim <= ndim


class _Group:
    def __init__(self, root):
        self.root = root
        self.nodes = {id(root): root}
        self.ndim = root.output.spec.ndim

    def leaves(self, extra=None) -> list:
        """Distinct tensor values read from outside the group (constants inlined)."""
        nodes = dict(self.nodes)
        if extra is not None:
            nodes[id(extra)] = extra
        out, seen = [], set()
        for n in nodes.values():
            for v in n.inputs:
                if v is None or id(v.node) in nodes or _inlinable(v, self.ndim) or id(v) in seen:
                    continue
                seen.add(id(v))
                out.append(v)
        return out


def _grow(group: _Group, assigned: set) -> None:
    frontier = [group.root]
    while frontier:
        node = frontier.pop()
        for v in node.inputs:
            if v is None:
                continue
            p = v.node
            if id(p) in group.nodes or id(p) in assigned or not _fusible(p):
                continue
            if len(v.users) != 1 or v.users[0] is not node:
                continue
            if len(group.leaves(extra=p)) > F.MAX_FUSED_INPUTS:
                continue
            group.nodes[id(p)] = p
            frontier.append(p)


def _emit(group: _Group, v, leaves: list, prog: list, consts: list) -> None:
    node = v.node
    if id(node) not in group.nodes:
        if _inlinable(v, group.ndim) and not any(v is x for x in leaves):
            consts.append(float(node.const.reshape(-1)[0]))
            prog += [F.CONST, len(consts) - 1]
        else:
            prog += [F.LOAD, next(i for i, x in enumerate(leaves) if x is v)]
        return
    t, a = node.target, node.attrs
    for x in node.inputs:
        if x is not None:
            _emit(group, x, leaves, prog, consts)
    if t in ("add", "sub"):
        alpha = a[0] if a else 1
        if alpha is not None and alpha != 1:
            consts.append(float(alpha))
            prog += [F.CONST, len(consts) - 1, F.BINARY_OPCODES["mul"], 0]
        prog += [F.BINARY_OPCODES[t], 0]
    elif t in F.BINARY_OPCODES:
        prog += [F.BINARY_OPCODES[t], 0]
    elif t == "gelu":
        prog += [F.UNARY_OPCODES["gelu_tanh" if a and a[0] == "tanh" else "gelu"], 0]
    elif t in ("leaky_relu", "elu"):
        consts.append(float(a[0]))
        prog += [F.PARAM_OPCODES[t], len(consts) - 1]
    elif t == "softplus":
        consts += [float(a[0]), float(a[1])]
        prog += [F.PARAM_OPCODES["softplus"], len(consts) - 2]
    elif t == "clamp":
        for bound, code in ((a[0], "clamp_min"), (a[1], "clamp_max")):
            if bound is not None:
                consts.append(float(bound))
                prog += [F.PARAM_OPCODES[code], len(consts) - 1]
    else:
        prog += [F.UNARY_OPCODES[t], 0]


def _stack_depth(prog) -> int:
    depth = best = 0
    for pc in range(0, len(prog), 2):
        n = F._ARITY[prog[pc]]
        depth += 1 if n == 0 else (-1 if n == 2 else 0)
        best = max(best, depth)
    return best


def fuse_elementwise(graph: Graph) -> bool:
    """Fuses elementwise trees into fused_elementwise nodes; returns whether any was fused."""
    assigned: set = set()
    groups = []
    for node in reversed(graph.nodes):
        if id(node) in assigned or not _fusible(node):
            continue
        g = _Group(node)
        _grow(g, assigned)
        assigned |= set(g.nodes)
        if len(g.nodes) >= 2:
            groups.append(g)
    changed = False
    for g in groups:
        leaves = g.leaves()
        prog, consts = [], []
        _emit(g, g.root.output, leaves, prog, consts)
        if _stack_depth(prog) > _MAX_STACK or not leaves:
            continue
        ins = leaves + [None] * (F.MAX_FUSED_INPUTS - len(leaves))
        attrs = (tuple(prog), tuple(consts) or (0.0,))  # never empty: a float list
        try:
            specs = infer_specs("fused_elementwise", [None if v is None else v.spec for v in ins], attrs)
        except (TypeError, ValueError, RuntimeError):
            continue
        if specs != [g.root.output.spec]:
            continue
        with graph.inserting_before(g.root):
            new = graph.call("fused_elementwise", ins, attrs, specs=specs, source=g.root.source)
        new.meta["expr"] = F.format_program(prog, consts)
        graph.replace_all_uses(g.root.output, new.output)
        for n in sorted(g.nodes.values(), key=graph.nodes.index, reverse=True):
            graph.erase(n)
        changed = True
    return changed
