"""linear or conv2d followed by an activation -> one linear_act / conv2d_act node
(framework/ops/fused.py): the GEMM or convolution, then bias and activation in one pass
over the output.

Applies when the op's only user is relu, gelu (exact or tanh), silu, sigmoid or tanh."""

from __future__ import annotations

from ..ir import Graph

_ACTS = {"relu": "relu", "silu": "silu", "sigmoid": "sigmoid", "tanh": "tanh"}


def _activation(node):
    if node.op != "call":
        return None
    if node.target == "gelu":
        return "gelu_tanh" if node.attrs and node.attrs[0] == "tanh" else "gelu"
    return _ACTS.get(node.target)


def fuse_linear_activation(graph: Graph) -> bool:
    """Fuses linear/conv2d + activation pairs; returns whether any was fused."""
    changed = False
    for lin in graph.calls("linear") + graph.calls("conv2d"):
        out = lin.output
        if len(out.users) != 1:
            continue
        act_node = out.users[0]
        act = _activation(act_node)
        if act is None or act_node.output.spec != out.spec:
            continue
        with graph.inserting_before(act_node):
            new = graph.call(f"{lin.target}_act", list(lin.inputs), lin.attrs + (act,),
                             source=lin.source)
        graph.replace_all_uses(act_node.output, new.output)
        graph.erase(act_node)
        graph.erase(lin)
        changed = True
    return changed
