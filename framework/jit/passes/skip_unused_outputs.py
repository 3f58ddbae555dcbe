"""Unused-output skipping: an op that declares OpDef.output_switches computes some outputs
only while a bool attribute is on (max_pool2d's argmax indices). When such an output has no
users, the node is re-created with the attribute off, so the kernel neither computes nor
writes it (the output becomes an empty tensor).

The node's other outputs keep their values; only the unused one changes."""

from __future__ import annotations

from ..ir import Graph


def skip_unused_outputs(graph: Graph) -> bool:
    """Turns off the switch of every unused switchable output; returns whether any was."""
    changed = False
    for node in list(graph.calls()):
        switches = node.opdef.output_switches
        if not switches:
            continue
        attrs = list(node.attrs)  # a missing switch attribute (an older graph) means on
        off = [a for o, a in switches.items()
               if not node.outputs[o].users and (a >= len(attrs) or attrs[a])]
        if not off:
            continue
        attrs += [True] * (max(off) + 1 - len(attrs))
        for a in off:
            attrs[a] = False
        with graph.inserting_before(node):
            new = graph.call(node.target, list(node.inputs), tuple(attrs), source=node.source)
        for old_v, new_v in zip(node.outputs, new.outputs):
            if old_v.users:
                graph.replace_all_uses(old_v, new_v)
        graph.erase(node)
        changed = True
    return changed
