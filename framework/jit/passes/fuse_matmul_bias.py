"""matmul/addmm with a constant 2-D weight (+ a constant bias) -> linear.

  matmul(x, W) with W a constant (K, N)         -> linear(x, W^T)
  add(linear(x, w, None), b) with b a constant (N,) (or any shape with N elements that
      broadcasts only along the last dim)        -> linear(x, w, b)
  addmm(b, x, W) with beta = alpha = 1          -> linear(x, W^T, b)

so that fuse_linear_activation sees one form. The transposed weight is a new constant."""

from __future__ import annotations

import numpy as np

from ..ir import Graph


def _const(v):
    return v is not None and v.node.op == "const"


def _bias_ok(b, n: int, out_ndim: int) -> bool:
    if not _const(b):
        return False
    shape = b.spec.shape
    return len(shape) <= out_ndim and shape[-1:] == (n,) and all(d == 1 for d in shape[:-1])


def _weight_t(graph: Graph, w):
    arr = np.ascontiguousarray(w.node.const.T)
    name = f"{w.node.name}.T" if w.node.name else None
    return graph.add_const(arr, name, value_name=f"{w.name}_t")


def fuse_matmul_bias(graph: Graph) -> bool:
    """Rewrites matmul/addmm with constant weights, and linear + bias add, as linear."""
    changed = False
    for node in list(graph.nodes):
        if node.graph is not graph or node.op != "call":
            continue
        if node.target == "matmul":
            x, w = node.inputs
            if _const(w) and w.spec.ndim == 2 and x.spec.ndim >= 1 and x.spec.dtype.is_floating_point:
                with graph.inserting_before(node):
                    wt = _weight_t(graph, w)
                    new = graph.call("linear", [x, wt, None], (), source=node.source)
                graph.replace_all_uses(node.output, new.output)
                graph.erase(node)
                changed = True
        elif node.target == "addmm":
            b, x, w = node.inputs
            if node.attrs in ((1, 1), (1.0, 1.0)) and _const(w) and _bias_ok(b, w.spec.shape[1], 2) \
                    and x.spec.ndim == 2:
                with graph.inserting_before(node):
                    wt = _weight_t(graph, w)
                    bias = graph.add_const(np.ascontiguousarray(b.node.const.reshape(-1)),
                                           b.node.name, value_name=b.name)
                    new = graph.call("linear", [x, wt, bias], (), source=node.source)
                graph.replace_all_uses(node.output, new.output)
                graph.erase(node)
                changed = True
        elif node.target == "add" and node.attrs in ((1,), (1.0,)):
            lin, b = node.inputs
            p = lin.node
            if p.op == "call" and p.target == "linear" and p.inputs[2] is None \
                    and len(lin.users) == 1 and _const(p.inputs[1]) \
                    and _bias_ok(b, p.inputs[1].spec.shape[0], lin.spec.ndim) \
                    and node.output.spec == lin.spec:
                with graph.inserting_before(node):
                    bias = graph.add_const(np.ascontiguousarray(b.node.const.reshape(-1)),
                                           b.node.name, value_name=b.name)
                    new = graph.call("linear", [p.inputs[0], p.inputs[1], bias], (), source=p.source)
                graph.replace_all_uses(node.output, new.output)
                graph.erase(node)
                graph.erase(p)
                changed = True
    return changed
