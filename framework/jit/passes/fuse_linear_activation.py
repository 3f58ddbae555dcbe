"""linear or conv2d followed by an activation -> one linear_act / conv2d_act node
(framework/ops/fused.py): the GEMM or convolution, then bias and activation in one pass
over the output.

Applies when the op's only user is relu, gelu (exact or tanh), silu, sigmoid or tanh; also to
a conv2d_act without activation (a conv with a fused residual add)."""

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
    convs_without_act = [n for n in graph.calls("conv2d_act") if n.attrs[4] == "none"]
    for lin in graph.calls("linear") + graph.calls("conv2d") + convs_without_act:
        out = lin.output
        if len(out.users) != 1:
            continue
        act_node = out.users[0]
        act = _activation(act_node)
        if act is None or act_node.output.spec != out.spec:
            continue
        if lin.target == "conv2d_act":  # a conv with a fused residual (fuse_conv_residual)
            inputs, attrs = list(lin.inputs), tuple(lin.attrs[:4]) + (act,)
        elif lin.target == "conv2d":
            inputs, attrs = list(lin.inputs) + [None], tuple(lin.attrs) + (act,)
        else:
            inputs, attrs = list(lin.inputs), tuple(lin.attrs) + (act,)
        with graph.inserting_before(act_node):
            new = graph.call(f"{lin.target.removesuffix('_act')}_act", inputs, attrs,
                             source=lin.source)
        graph.replace_all_uses(act_node.output, new.output)
        graph.erase(act_node)
        graph.erase(lin)
        changed = True
    return changed
