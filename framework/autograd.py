"""Reverse-mode autograd: nodes on a tape, an iterative engine, grad modes, Function.

Each dispatched op with a gradient records a Node holding its OpDef's grad rule and a
context (saved inputs/outputs, attributes). The engine only sorts nodes (iteratively, so
100,000-op chains work) and accumulates; the math lives in the OpDefs' grad rules, written
with registered ops so that backward can itself be differentiated or traced.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Callable, Optional, Sequence

import numpy as np

from . import dtypes as D

class _GradState(threading.local):
    grad = True  # a class default: reading an unset threading.local attribute raises inside


_state = _GradState()


def is_grad_enabled() -> bool:
    """True when ops record autograd history (torch.is_grad_enabled)."""
    return _state.grad


def set_grad_enabled(mode: bool) -> None:
    _state.grad = bool(mode)


class _GradMode:
    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        self.prev = is_grad_enabled()
        set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self.prev)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.__class__():
                return fn(*a, **k)

        return wrapper


class no_grad(_GradMode):
    """Context manager / decorator: ops inside record no history."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    """Context manager / decorator: re-enables history inside no_grad."""

    def __init__(self):
        super().__init__(True)


class inference_mode(_GradMode):
    """Like no_grad (framework has no separate inference tensors)."""

    def __init__(self, mode: bool = True):
        super().__init__(not mode)


class set_grad_enabled_ctx(_GradMode):
    pass


class SavedTensors:
    """Tensors a grad rule may read; each is checked against in-place edits when read."""

    __slots__ = ("_tensors", "_versions", "_op")

    def __init__(self, tensors, op_name: str):
        self._tensors = tensors
        self._versions = [t._version.value if t is not None else 0 for t in tensors]
        self._op = op_name

    def __getitem__(self, i):
        t = self._tensors[i]
        if t is not None and t._version.value != self._versions[i]:
            v = self._versions[i]
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{t.dtype.name} tensor of shape {list(t.shape)}], input of "
                f"{self._op}, is at version {t._version.value}; expected version {v} instead."
            )
        return t

    def __len__(self):
        return len(self._tensors)

    def __iter__(self):
        return (self[i] for i in range(len(self._tensors)))


class Context:
    """What a grad rule sees: ctx.inputs[i], ctx.outputs[i] (checked against in-place edits),
    ctx.shapes[i] (input shapes, unchecked), ctx.attrs, ctx.needs_input_grad."""

    __slots__ = ("inputs", "outputs", "attrs", "needs_input_grad", "extra", "shapes")

    def __init__(self, inputs, outputs, attrs, needs_input_grad, op_name):
        # Shapes are metadata: reading them never trips the in-place check.
        self.shapes = tuple([t._data.shape if t is not None else None for t in inputs])
        self.inputs = SavedTensors(inputs, op_name)
        self.outputs = SavedTensors(outputs, op_name) if outputs is not None else None
        self.attrs = attrs
        self.needs_input_grad = needs_input_grad
        self.extra = None


class Node:
    """One recorded op: its grad rule, context, and edges to the nodes of its inputs."""

    __slots__ = ("name", "apply_fn", "ctx", "next_edges", "num_outputs", "pre_hooks",
                 "output_meta", "__weakref__")

    def __init__(self, name, apply_fn, ctx, next_edges, num_outputs, output_meta):
        self.name = name
        self.apply_fn = apply_fn
        self.ctx = ctx
        self.next_edges = next_edges  # list of (Node, output_nr) or None per input
        self.num_outputs = num_outputs
        self.pre_hooks = None  # {output_nr: [hook]}
        self.output_meta = output_meta  # [(shape, numpy dtype)] to materialize missing grads

    def name_(self):
        return self.name

    def __repr__(self):
        return f"<{self.name} object>"

    def apply(self, grads):
        ctx = self.ctx
        if ctx is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (in {self.name}); "
                "specify retain_graph=True the first time."
            )
        if ctx.outputs is not None and is_grad_enabled():
            # create_graph: the saved outputs take part in the new graph as this node's outputs
            for i, t in enumerate(ctx.outputs._tensors):
                if t._data.dtype.kind == "f":
                    t.requires_grad = True
                    t.grad_fn = self
                    t._output_nr = i
        return self.apply_fn(ctx, *grads)

    def register_hook(self, output_nr, hook):
        if self.pre_hooks is None:
            self.pre_hooks = {}
        self.pre_hooks.setdefault(output_nr, []).append(hook)


class AccumulateGrad(Node):
    """Sink node of a leaf tensor: adds the incoming gradient to leaf.grad."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        super().__init__("AccumulateGrad", None, None, [], 1, [(variable._data.shape, variable._data.dtype)])
        self.variable = variable

    def apply(self, grads):
        g = grads[0]
        v = self.variable
        if g is None:
            return ()
        if v.grad is None:
            if not is_grad_enabled() and _sole_owner(grads, v):
                # The engine's buffer holds the only reference to a fresh gradient: take it
                # (torch's AccumulateGrad steals it the same way) instead of copying.
                grads[0] = None
                v.grad = g
                return ()
            # NOTE: otherwise copy: g may be shared with another leaf's grad or a user tensor,
            # and later accumulation writes into .grad in place.
            v.grad = g.clone() if is_grad_enabled() else g.detach().clone()
        elif is_grad_enabled():
            v.grad = v.grad + g
        else:
            v.grad.add_(g)
        return ()


def _sole_owner(grads, v) -> bool:
    """True when grads[0] is a gradient nobody else references (only the engine's buffer
    list `grads`) over its own contiguous, writable, unshared storage of v's shape and dtype,
    so v.grad may take it over."""
    g = grads[0]
    a = g._data
    # NOTE: references to g: the list, AccumulateGrad.apply's g, the local g, getrefcount's
    # argument. Any other holder
    # (a user tensor, a hook, another leaf's buffer) raises the count and forces a copy.
    # References to a: g's slot, the local a, getrefcount's argument (a view of a would be a
    # fourth, through its .base).
    return (sys.getrefcount(g) == 4 and g._base is None and g.grad_fn is None
            and sys.getrefcount(a) == 3 and not isinstance(a.base, np.ndarray)
            and a.flags.c_contiguous and a.flags.writeable
            and a.shape == v._data.shape and a.dtype == v._data.dtype)


def _edge_of(t):
    """The (node, output_nr) that gradients for tensor t flow into."""
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    if t.requires_grad:
        acc = t._grad_accumulator
        if acc is None:
            acc = AccumulateGrad(t)
            t._grad_accumulator = acc
        return (acc, 0)
    return None


def _alias(t):
    """A tensor sharing t's storage, view base and version counter, without autograd history."""
    a = object.__new__(type(t))
    a._data = t._data
    a._version = t._version
    if t._base is not None:
        a._base = t._base
    return a


def record(name: str, grad_fn: Callable, inputs, outputs, attrs, save_outputs=True):
    """Links differentiable outputs to a new Node whose inputs are `inputs`."""
    # NOTE: inputs that are Python numbers never reach here: dispatch casts them to tensors.
    edges = []
    for t in inputs:
        if t is None or not t.requires_grad:
            edges.append(None)
        elif t.grad_fn is not None:
            edges.append((t.grad_fn, t._output_nr))
        else:
            edges.append(_edge_of(t))
    needs = tuple([e is not None for e in edges])
    # NOTE: outputs are saved as aliases without grad_fn (same storage and version counter):
    # saving the outputs themselves would make a cycle output -> node -> ctx -> output that
    # only the cyclic garbage collector frees (slow, and memory stays until it runs).
    ctx = Context(inputs, [_alias(o) for o in outputs] if save_outputs else None, attrs, needs, name)
    node = Node(name, grad_fn, ctx, edges, len(outputs), [(o._data.shape, o._data.dtype) for o in outputs])
    for i, o in enumerate(outputs):
        if o._data.dtype.kind == "f":
            o.requires_grad = True
            o.grad_fn = node
            o._output_nr = i
    return node


def _topo_dependencies(roots):
    """Counts, for every node reachable from roots, how many edges point at it (iteratively)."""
    deps = {}
    seen = set()
    stack = [n for n in roots if n is not None]
    for n in stack:
        seen.add(n)
    while stack:
        node = stack.pop()
        for e in node.next_edges:
            if e is None:
                continue
            nxt = e[0]
            deps[nxt] = deps.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return deps


def _run_engine(roots, root_grads, retain_graph, create_graph, capture=None):
    """Propagates gradients from (node, output_nr) roots. With `capture` (a dict of
    (node, output_nr) -> None), records the gradient arriving at those edges and skips
    leaf accumulation (autograd.grad)."""
    from .tensor import Tensor

    root_nodes = []
    buffers = {}
    for (node, nr), g in zip(roots, root_grads):
        buf = buffers.setdefault(node, [None] * node.num_outputs)
        buf[nr] = g if buf[nr] is None else buf[nr] + g
        if node not in root_nodes:
            root_nodes.append(node)
    deps = _topo_dependencies(root_nodes)
    ready = deque(n for n in root_nodes if deps.get(n, 0) == 0)
    prev = is_grad_enabled()
    set_grad_enabled(create_graph)
    try:
        while ready:
            node = ready.popleft()
            grads = buffers.pop(node, [None] * node.num_outputs)
            if node.pre_hooks:
                for nr, hooks in node.pre_hooks.items():
                    for h in hooks:
                        if grads[nr] is not None:
                            r = h(grads[nr])
                            if r is not None:
                                grads[nr] = r
            if capture is not None:
                for nr in range(node.num_outputs):
                    if (node, nr) in capture and grads[nr] is not None:
                        cur = capture[(node, nr)]
                        capture[(node, nr)] = grads[nr] if cur is None else cur + grads[nr]
            if isinstance(node, AccumulateGrad):
                if capture is None:
                    node.apply(grads)
                continue
            if all(g is None for g in grads):
                in_grads = [None] * len(node.next_edges)
            else:
                for i, g in enumerate(grads):
                    if g is None:
                        shape, npdt = node.output_meta[i]
                        if npdt.kind == "f":
                            grads[i] = Tensor._wrap_zeros(shape, D._BY_NP[npdt])
                in_grads = node.apply(grads)
                if not isinstance(in_grads, (tuple, list)):
                    in_grads = (in_grads,)
                if not retain_graph:
                    node.ctx = None
            for e, g in zip(node.next_edges, in_grads):
                if e is None:
                    continue
                nxt, nr = e
                if g is not None:
                    buf = buffers.setdefault(nxt, [None] * nxt.num_outputs)
                    buf[nr] = g if buf[nr] is None else buf[nr] + g
                deps[nxt] -= 1
                if deps[nxt] == 0:
                    ready.append(nxt)
            # NOTE: drop this iteration's references so a later AccumulateGrad sees its
            # gradient held only by the buffer (see _sole_owner).
            in_grads = grads = g = None
    finally:
        set_grad_enabled(prev)


def _make_grads(outputs, grad_outputs):
    from .tensor import Tensor

    result = []
    for o, g in zip(outputs, grad_outputs):
        if g is None:
            if o.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (got shape {list(o.shape)})"
                )
            g = Tensor._wrap_full(o.shape, 1.0, o.dtype)
        elif not isinstance(g, Tensor):
            g = Tensor._wrap_full(o.shape, float(g), o.dtype)
        elif tuple(g.shape) != tuple(o.shape):
            raise RuntimeError(
                f"Mismatch in shape: grad_output has shape {list(g.shape)} and output has shape {list(o.shape)}"
            )
        result.append(g)
    return result


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Computes gradients of `tensors` and accumulates them into the leaves' .grad."""
    from .tensor import Tensor

    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    if retain_graph is None:
        retain_graph = create_graph
    for t in tensors:
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    grads = _make_grads(tensors, grad_tensors)
    roots = [_edge_of(t) for t in tensors]
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        got = grad(tensors, inputs, grads, retain_graph=retain_graph, create_graph=create_graph,
                   allow_unused=True)
        for t, g in zip(inputs, got):
            if g is not None:
                t.grad = g if t.grad is None else t.grad + g
        return
    _run_engine(roots, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Returns d(outputs)/d(inputs) without touching any .grad (torch.autograd.grad)."""
    from .tensor import Tensor

    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if retain_graph is None:
        retain_graph = create_graph
    for o in outputs:
        if not o.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    edges = [_edge_of(t) for t in inputs]
    capture = {e: None for e in edges}
    _run_engine([_edge_of(o) for o in outputs], _make_grads(outputs, grad_outputs), retain_graph,
                create_graph, capture)
    result = []
    for t, e in zip(inputs, edges):
        g = capture[e]
        if g is None and not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        result.append(g)
    return tuple(result)


class FunctionCtx:
    """ctx of a user-defined autograd.Function."""

    def __init__(self):
        self.saved_tensors = ()
        self.needs_input_grad = ()
        self._saved = None

    def save_for_backward(self, *tensors):
        self._saved = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_diff = tensors


class Function:
    """User-defined differentiable op: subclass with static forward(ctx, ...) and
    backward(ctx, *grads); call with .apply(...)."""

    @classmethod
    def apply(cls, *args):
        from .tensor import Tensor

        ctx = FunctionCtx()
        tensor_args = [a for a in args if isinstance(a, Tensor)]
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args)
        outs = out if isinstance(out, tuple) else (out,)
        if ctx._saved is not None:
            saved = SavedTensors(ctx._saved, cls.__name__)
        else:
            saved = None
        if is_grad_enabled() and any(t.requires_grad for t in tensor_args):
            outs = tuple(o.detach() if isinstance(o, Tensor) else o for o in outs)
            positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]

            def grad_fn(_c, *grads):
                if saved is not None:
                    ctx.saved_tensors = tuple(saved)
                res = cls.backward(ctx, *grads)
                res = res if isinstance(res, tuple) else (res,)
                return tuple(res[p] if p < len(res) else None for p in positions)

            record(cls.__name__ + "Backward", grad_fn, tensor_args,
                   [o for o in outs if isinstance(o, Tensor)], (), save_outputs=False)
        elif saved is not None:
            ctx.saved_tensors = tuple(saved)
        return outs if isinstance(out, tuple) else outs[0]

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError
