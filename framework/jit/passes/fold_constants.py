"""Constant folding: a call whose inputs are all constants (and whose attributes and output
shapes are static) is evaluated once, through eager dispatch, into a new constant. Ops with
no inputs (full, arange) fold too when their result is small. Random ops never fold.

A fold that would grow the constants a lot (expand of a scalar to a big shape) is skipped,
so folding never bloats the model file."""

from __future__ import annotations

import numpy as np

from ...ops.dispatch import dispatch
from ...tensor import Tensor
from .. import symbolic as S
from ..ir import Graph

_SMALL = 1 << 16  # bytes a fold may always produce


def _foldable(node) -> bool:
    if node.op != "call" or "seed" in node.opdef.attrs or S.is_symbolic(node.attrs):
        return False
    if any(v is not None and v.node.op != "const" for v in node.inputs):
        return False
    if not all(v.spec.is_static() for v in node.outputs):
        return False
    out_bytes = sum(int(np.prod(v.spec.shape, dtype=np.int64)) * v.spec.dtype.itemsize
                    for v in node.outputs)
    in_bytes = sum(v.node.const.nbytes for v in node.inputs if v is not None)
    return out_bytes <= max(_SMALL, in_bytes)


def fold_constants(graph: Graph) -> bool:
    """Replaces all-constant calls by their values; returns whether anything was folded."""
    changed = False
    for node in list(graph.nodes):
        if not _foldable(node):
            continue
        args = [None if v is None else Tensor._wrap(v.node.const) for v in node.inputs]
        out = dispatch(node.opdef, args, node.attrs)
        outs = out if isinstance(out, tuple) else (out,)
        with graph.inserting_before(node):
            for v, t in zip(node.outputs, outs):
                arr = np.array(t._data, copy=True, order="C")
                c = graph.add_const(arr, value_name=v.name)
                c.node.source = node.source
                graph.replace_all_uses(v, c)
        graph.erase(node)
        changed = True
    return changed
