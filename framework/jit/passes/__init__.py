"""Graph passes and the pass manager. Each pass is a function `pass(graph) -> changed` in
a file of the same name that edits the graph in place; its meaning is "the interpreter
gives the same outputs before and after".

`run_passes` applies a list of passes in rounds until none changes the graph (a fixed
point) or `limit` pass applications have run (framework.config.pass_limit, env
FW_PASS_LIMIT): lowering the limit one at a time bisects a bad pass. Nodes a pass creates
get meta["pass"] = its name, so verify() can say which pass introduced a node.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from ... import config
from ..ir import Graph
from .eliminate_common_subexpressions import eliminate_common_subexpressions
from .eliminate_dead_code import eliminate_dead_code
from .fold_affine_into_conv import fold_affine_into_conv
from .fold_batch_norm import fold_batch_norm
from .fold_constants import fold_constants
from .fuse_attention import fuse_attention
from .fuse_conv_pool import fuse_conv_pool
from .fuse_conv_residual import fuse_conv_residual
from .fuse_elementwise import fuse_elementwise
from .fuse_linear_activation import fuse_linear_activation
from .fuse_matmul_bias import fuse_matmul_bias
from .recognize_gelu import recognize_gelu
from .recognize_layer_norm import recognize_layer_norm
from .recognize_softmax import recognize_softmax
from .remove_dropout import remove_dropout
from .remove_noops import remove_noops
from .skip_unused_outputs import skip_unused_outputs

DEFAULT_PASSES: list = [
    remove_dropout,
    fold_constants,
    remove_noops,
    eliminate_common_subexpressions,
    fold_batch_norm,
    fold_affine_into_conv,
    recognize_softmax,
    recognize_layer_norm,
    recognize_gelu,
    fuse_attention,
    fuse_matmul_bias,
    fuse_conv_residual,
    fuse_linear_activation,
    fuse_conv_pool,
    fuse_elementwise,
    eliminate_dead_code,
    skip_unused_outputs,
]

MAX_ROUNDS = 10


def run_passes(graph: Graph, passes: Optional[Sequence[Callable]] = None,
               limit: Optional[int] = None, check: bool = True,
               on_pass: Optional[Callable] = None) -> list:
    """Runs passes on graph in place to a fixed point; returns [(pass name, changed), ...].

    limit: the most pass applications (default framework.config.pass_limit). check: lint
    after every pass that changed the graph, naming the pass if it broke an invariant.
    on_pass(name, graph) is called after every application that changed the graph.
    """
    passes = list(DEFAULT_PASSES if passes is None else passes)
    limit = config.pass_limit if limit is None else limit
    log: list = []
    for _ in range(MAX_ROUNDS):
        any_changed = False
        for p in passes:
            if limit is not None and len(log) >= limit:
                return log
            name = getattr(p, "__name__", repr(p))
            before = {id(n) for n in graph.nodes}
            changed = bool(p(graph))
            log.append((name, changed))
            if not changed:
                continue
            any_changed = True
            for n in graph.nodes:
                if id(n) not in before:
                    n.meta["pass"] = name
            if check:
                try:
                    graph.lint()
                except ValueError as e:
                    raise ValueError(f"pass {name} broke the graph: {e}") from e
            if config.jit_verbose:
                print(f"[fw.jit] {name} changed the graph ({len(graph.nodes)} nodes)")
            if on_pass is not None:
                on_pass(name, graph)
        if not any_changed:
            break
    return log


def optimize(graph: Graph, passes: Optional[Sequence[Callable]] = None,
             limit: Optional[int] = None) -> Graph:
    """An optimized copy of graph (the input graph is not modified)."""
    g = graph.copy()
    run_passes(g, passes, limit)
    return g


__all__ = ["DEFAULT_PASSES", "run_passes", "optimize"] + [p.__name__ for p in DEFAULT_PASSES]
