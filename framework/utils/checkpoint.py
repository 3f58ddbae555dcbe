"""Activation checkpointing (torch.utils.checkpoint): run a piece of a model without
keeping its intermediate tensors, and run it again during backward to get them, trading
compute for memory.

The forward runs under no_grad while a dispatch hook notes every tensor that requires grad
and enters an op (the module's parameters, tensors the function closes over, the inputs).
One autograd node links the outputs to all of them, so parameters get gradients even when
no input requires grad (torch's non-reentrant checkpoint). Its backward restores the random
streams as they were (dropout draws the same masks), reruns the function with grad on, and
takes autograd.grad of the outputs with respect to those tensors.
"""

from __future__ import annotations

from .. import autograd as AG
from ..creation import default_generator
from ..ops.registry import DISPATCH_HOOKS
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs) whose intermediate activations are recomputed in backward
    instead of kept. use_reentrant is accepted for torch compatibility: both settings run
    the non-reentrant scheme above."""
    if not AG.is_grad_enabled():
        return function(*args, **kwargs)
    rng = (default_generator._seed, default_generator._counter) if preserve_rng_state else None
    needs_grad = []  # tensors requiring grad that the function's ops read, first use first
    seen = set()

    def note(op, inputs, attrs, outs):
        for t in inputs:
            if isinstance(t, Tensor) and t.requires_grad and id(t) not in seen:
                seen.add(id(t))
                needs_grad.append(t)

    for a in list(args) + list(kwargs.values()):  # inputs first, even if no op reads them
        note(None, [a], None, None)
    DISPATCH_HOOKS.append(note)
    try:
        with AG.no_grad():
            out = function(*args, **kwargs)
    finally:
        DISPATCH_HOOKS.remove(note)
    outs = out if isinstance(out, tuple) else (out,)
    tensor_outs = [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]
    if not needs_grad or not tensor_outs:
        return out

    def grad_fn(_ctx, *grads):
        detached = {id(t): t.detach().requires_grad_(True) for t in args if isinstance(t, Tensor)
                    and t.requires_grad}
        wrt = [detached.get(id(t), t) for t in needs_grad]
        a2 = [detached.get(id(a), a) if isinstance(a, Tensor) else a for a in args]
        k2 = {k: detached.get(id(v), v) if isinstance(v, Tensor) else v for k, v in kwargs.items()}
        now = (default_generator._seed, default_generator._counter)
        if rng is not None:
            default_generator._seed, default_generator._counter = rng
        try:
            with AG.enable_grad():
                again = function(*a2, **k2)
        finally:
            if rng is not None:
                default_generator._seed, default_generator._counter = now
        again = again if isinstance(again, tuple) else (again,)
        pairs = [(o, g) for o, g in zip([o for o in again if isinstance(o, Tensor) and o.dtype.is_floating_point],
                                        grads) if g is not None and o.requires_grad]
        if not pairs:
            return tuple(None for _ in needs_grad)
        # retain_graph: a tensor closed over may be a non-leaf of the graph outside this node
        return AG.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], retain_graph=True, allow_unused=True)

    fresh = [o.detach() for o in tensor_outs]
    AG.record("CheckpointFunctionBackward", grad_fn, needs_grad, fresh, (), save_outputs=False)
    it = iter(fresh)
    new = tuple(next(it) if isinstance(o, Tensor) and o.dtype.is_floating_point else o for o in outs)
    return new if isinstance(out, tuple) else new[0]


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Runs a Sequential (or a list of modules) as `segments` checkpointed chunks, the last
    chunk kept as usual."""
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)
    size = max(1, len(functions) // segments)

    def run(start, end):
        def f(x):
            for fn in functions[start:end]:
                x = fn(x)
            return x
        return f

    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end + 1), input, **kwargs)
    return run(end + 1, len(functions))(input)
