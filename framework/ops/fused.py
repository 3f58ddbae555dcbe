"""Fused ops that the graph passes create (framework/jit/passes): registered ops like any
other, so eager dispatch, the interpreter and the C++ runtime run the same kernels
(csrc/kernels/fused.cpp).

- linear_act(x, weight, bias?, activation): act(x @ weight^T + bias), the GEMM followed by
  bias and activation in one pass over the output.
- conv2d_act(x, weight, bias?, residual?, stride, padding, dilation, groups, activation):
  activation(conv2d(...) + residual), with the residual add and a relu applied while each
  output tile is hot (a ResNet block's conv + add + relu is one node).
- conv2d_act_maxpool(x, weight, bias?, residual?, stride, padding, dilation, groups, activation,
  kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode): max_pool2d of conv2d_act
  (activation none or relu), each sample's conv map pooled while it is in cache, so the full
  conv output is never written (a small CNN's conv + relu + pool is one node).
- fused_elementwise(x0, ..., x7?, program, consts): a postfix expression program over up to
  8 broadcast inputs of one float dtype, evaluated in one loop over the data.

They are inference ops (no gradient rule): passes only create them in frozen graphs.
"""

from __future__ import annotations

from ._common import arg, broadcast_shapes
from .dispatch import dispatch
from .registry import Sample, defop

ACTIVATIONS = ("none", "relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh")
MAX_FUSED_INPUTS = 8

# Opcodes of the fused_elementwise program (shared with csrc/kernels/fused.cpp).
LOAD, CONST = 0, 1
UNARY_OPCODES = {
    "neg": 10, "abs": 11, "exp": 12, "log": 13, "log1p": 14, "sqrt": 15, "rsqrt": 16, "sin": 17,
    "cos": 18, "tanh": 19, "sigmoid": 20, "relu": 21, "silu": 22, "erf": 23, "reciprocal": 24,
    "gelu": 25, "gelu_tanh": 26, "floor": 27, "ceil": 28, "round": 29, "sign": 30,
}
# Unary ops with parameters read from consts[operand] (softplus: beta, threshold).
PARAM_OPCODES = {"leaky_relu": 40, "elu": 41, "clamp_min": 42, "clamp_max": 43, "softplus": 44}
BINARY_OPCODES = {"add": 60, "sub": 61, "mul": 62, "div": 63, "pow": 64, "maximum": 65,
                  "minimum": 66}
_ARITY = {LOAD: 0, CONST: 0, **{c: 1 for c in UNARY_OPCODES.values()},
          **{c: 1 for c in PARAM_OPCODES.values()}, **{c: 2 for c in BINARY_OPCODES.values()}}
_NAMES = {v: k for k, v in {**UNARY_OPCODES, **PARAM_OPCODES, **BINARY_OPCODES}.items()}


def _linear_act_infer(x, w, b, activation):
    from .linalg import _linear_infer

    if activation not in ACTIVATIONS:
        raise ValueError(f"linear_act: unknown activation {activation!r} (expected one of {ACTIVATIONS})")
    return _linear_infer(x, w, b)


def _linear_act_samples(dt):
    return [Sample((arg((4, 3), dt), arg((5, 3), dt), arg((5,), dt), a)) for a in ACTIVATIONS] + [
        Sample((arg((2, 4, 3), dt), arg((5, 3), dt), None, "gelu"), note="3-D, no bias"),
        Sample((arg((3, 6), dt)[:, ::2], arg((5, 3), dt), arg((5,), dt), "silu"), note="strided"),
    ]


@defop(name="linear_act", inputs=("x", "weight", "bias?"), attrs=("activation",),
       infer=_linear_act_infer, differentiable=False, tags=("fused", "linalg"),
       samples=_linear_act_samples)
def linear_act(input, weight, bias=None, activation: str = "relu"):
    """activation(linear(input, weight, bias)) in one kernel (created by fuse_linear_activation)."""
    return dispatch(linear_act.opdef, [input, weight, bias], (str(activation),))


def _conv2d_act_infer(x, w, b, r, stride, padding, dilation, groups, activation):
    from .registry import get

    if activation not in ACTIVATIONS:
        raise ValueError(f"conv2d_act: unknown activation {activation!r} (expected one of {ACTIVATIONS})")
    specs = get("conv2d").infer(x, w, b, stride, padding, dilation, groups)
    if r is not None and (tuple(r.shape) != tuple(specs[0][0]) or r.dtype is not specs[0][1]):
        raise ValueError(f"conv2d_act: residual {r.dtype.name}{list(r.shape)} must match the output "
                         f"{specs[0][1].name}{list(specs[0][0])}")
    return specs


def _conv2d_act_samples(dt):
    return [Sample((arg((2, 3, 5, 5), dt), arg((4, 3, 3, 3), dt), arg((4,), dt)),
                   {"padding": (1, 1, 1, 1), "activation": a}) for a in ACTIVATIONS] + [
        Sample((arg((1, 4, 6, 6), dt), arg((4, 2, 3, 3), dt), None),
               {"stride": (2, 2), "groups": 2, "activation": "silu"}, note="groups, stride, no bias"),
        # (the residual is positional: samples' tensors are the positional args)
        Sample((arg((2, 3, 5, 5), dt), arg((4, 3, 3, 3), dt), arg((4,), dt), (1, 1), (1, 1, 1, 1), (1, 1), 1,
                "relu", arg((2, 4, 5, 5), dt)), note="residual"),
        Sample((arg((1, 4, 6, 6), dt), arg((4, 2, 3, 3), dt), None, (1, 1), (0, 0, 0, 0), (1, 1), 2, "tanh",
                arg((1, 4, 4, 4), dt)), note="residual, groups")]


@defop(name="conv2d_act", inputs=("x", "weight", "bias?", "residual?"),
       attrs=("stride", "padding", "dilation", "groups", "activation"), infer=_conv2d_act_infer,
       differentiable=False, tags=("fused", "conv"), samples=_conv2d_act_samples)
def conv2d_act(input, weight, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
               groups=1, activation: str = "relu", residual=None):
    """activation(conv2d(...) + residual) in one kernel (attrs as conv2d's: padding is 4 ints)."""
    return dispatch(conv2d_act.opdef, [input.contiguous(), weight.contiguous(), bias,
                                       None if residual is None else residual.contiguous()],
                    (tuple(stride), tuple(padding), tuple(dilation), int(groups), str(activation)))


def _conv2d_act_maxpool_infer(x, w, b, r, stride, padding, dilation, groups, activation, kernel_size,
                              pool_stride, pool_padding, pool_dilation, ceil_mode):
    from .pool import _pool_shape, check_pool_padding

    op = "conv2d_act_maxpool"
    if activation not in ("none", "relu"):
        raise ValueError(f"{op}: activation must be 'none' or 'relu', got {activation!r}")
    (shape, dt), = _conv2d_act_infer(x, w, b, r, stride, padding, dilation, groups, activation)
    k, s, p, d = (tuple(int(v) for v in a) for a in (kernel_size, pool_stride, pool_padding, pool_dilation))
    if len(k + s + p + d) != 8 or min(k + s + d) <= 0 or min(p) < 0:
        raise ValueError(f"{op}: pool kernel/stride/dilation need 2 positive ints and padding 2 "
                         f"non-negative ints, got {k}, {s}, {p}, {d}")
    check_pool_padding(op, k, p, ValueError)
    return [(_pool_shape(op, tuple(shape), k, s, p, d, bool(ceil_mode)), dt)]


def _conv2d_act_maxpool_samples(dt):
    x, w, b = arg((2, 3, 8, 8), dt), arg((4, 3, 3, 3), dt), arg((4,), dt)
    return [
        Sample((x, w, b), {"padding": (1, 1, 1, 1)}, note="2x2 pool"),
        Sample((arg((2, 3, 9, 7), dt), w, None), {"activation": "none", "kernel_size": (3, 3),
                                                     "pool_stride": (2, 2), "pool_padding": (1, 1)},
               note="3x3 s2 p1 pool, no bias"),
        Sample((arg((1, 4, 9, 9), dt), arg((6, 4, 3, 3), dt), arg((6,), dt)),
               {"stride": (2, 2), "kernel_size": (2, 2), "ceil_mode": True}, note="strided conv, ceil"),
        Sample((x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, "relu", (2, 2), None, (0, 0), (1, 1), False,
                arg((2, 4, 8, 8), dt)), note="residual"),
    ]


@defop(name="conv2d_act_maxpool", inputs=("x", "weight", "bias?", "residual?"),
       attrs=("stride", "padding", "dilation", "groups", "activation", "kernel_size", "pool_stride",
              "pool_padding", "pool_dilation", "ceil_mode"),
       infer=_conv2d_act_maxpool_infer, differentiable=False, tags=("fused", "conv", "pool"),
       samples=_conv2d_act_maxpool_samples)
def conv2d_act_maxpool(input, weight, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
                       groups=1, activation: str = "relu", kernel_size=(2, 2), pool_stride=None,
                       pool_padding=(0, 0), pool_dilation=(1, 1), ceil_mode=False, residual=None):
    """max_pool2d(activation(conv2d(...) + residual), kernel_size, pool_stride (default: the
    kernel), pool_padding, pool_dilation, ceil_mode) in one kernel (activation none or relu;
    conv attrs as conv2d's: padding is 4 ints). Created by fuse_conv_pool."""
    k = tuple(kernel_size)
    return dispatch(conv2d_act_maxpool.opdef, [input.contiguous(), weight.contiguous(), bias,
                                               None if residual is None else residual.contiguous()],
                    (tuple(stride), tuple(padding), tuple(dilation), int(groups), str(activation), k,
                     k if pool_stride is None else tuple(pool_stride), tuple(pool_padding),
                     tuple(pool_dilation), bool(ceil_mode)))


def check_program(program, consts, present) -> None:
    """Raises ValueError if the program is not a well-formed expression over the inputs."""
    if len(program) % 2 or not program:
        raise ValueError(f"fused_elementwise: program must be (opcode, operand) pairs, got {program}")
    depth = 0
    for pc in range(0, len(program), 2):
        op, a = program[pc], program[pc + 1]
        n = _ARITY.get(op)
        if n is None:
            raise ValueError(f"fused_elementwise: unknown opcode {op} at instruction {pc // 2}")
        if op == LOAD and not (0 <= a < len(present) and present[a]):
            raise ValueError(f"fused_elementwise: LOAD of missing input x{a}")
        if (op == CONST or op in PARAM_OPCODES.values()) and not 0 <= a < len(consts):
            raise ValueError(f"fused_elementwise: constant #{a} missing")
        if depth < n:
            raise ValueError(f"fused_elementwise: stack underflow at instruction {pc // 2}")
        depth += 1 if n == 0 else (-1 if n == 2 else 0)
    if depth != 1:
        raise ValueError(f"fused_elementwise: the program leaves {depth} values, expected 1")


def format_program(program, consts) -> str:
    """The program as an expression, e.g. relu((x0*x1)+1.0)."""
    stack = []
    for pc in range(0, len(program), 2):
        op, a = program[pc], program[pc + 1]
        if op == LOAD:
            stack.append(f"x{a}")
        elif op == CONST:
            stack.append(repr(consts[a]))
        elif _ARITY[op] == 1:
            stack.append(f"{_NAMES[op]}({stack.pop()})")
        else:
            b = stack.pop()
            stack.append(f"{_NAMES[op]}({stack.pop()}, {b})")
    return stack[0] if stack else ""


def _fused_infer(*args):
    inputs, (program, consts) = args[:MAX_FUSED_INPUTS], args[MAX_FUSED_INPUTS:]
    present = [x for x in inputs if x is not None]
    if not present or inputs[0] is None:
        raise ValueError("fused_elementwise: needs input x0")
    dt = present[0].dtype
    if not dt.is_floating_point or any(x.dtype is not dt for x in present):
        raise TypeError(f"fused_elementwise: inputs must share one float dtype, got "
                        f"{[x.dtype.name for x in present]}")
    check_program(program, consts, [x is not None for x in inputs])
    return [(broadcast_shapes(*[tuple(x.shape) for x in present]), dt)]


def _fused_samples(dt):
    u, b, m = UNARY_OPCODES, BINARY_OPCODES, PARAM_OPCODES
    prog1 = (LOAD, 0, LOAD, 1, b["mul"], 0, CONST, 0, b["add"], 0, u["relu"], 0)
    prog2 = (LOAD, 0, u["tanh"], 0, LOAD, 1, u["sigmoid"], 0, b["maximum"], 0, LOAD, 2,
             b["sub"], 0, m["leaky_relu"], 1, u["gelu"], 0)
    return [
        Sample((arg((3, 4), dt), arg((3, 4), dt)), {"program": prog1, "consts": (1.5,)}),
        Sample((arg((2, 3, 4), dt), arg((4,), dt), arg((3, 1), dt)),
               {"program": prog2, "consts": (0.0, 0.1)}, note="broadcast"),
        Sample((arg((3, 4), dt).T,), {"program": (LOAD, 0, m["softplus"], 0), "consts": (1.0, 20.0)},
               note="strided"),
    ]


@defop(name="fused_elementwise", inputs=tuple(f"x{i}" + ("?" if i else "") for i in range(MAX_FUSED_INPUTS)),
       attrs=("program", "consts"), infer=_fused_infer, differentiable=False, promote=None,
       tags=("fused", "elementwise"), samples=_fused_samples)
def fused_elementwise(*inputs, program, consts=()):
    """Evaluates a postfix elementwise program over broadcast inputs in one pass (see module doc)."""
    if not 1 <= len(inputs) <= MAX_FUSED_INPUTS:
        raise ValueError(f"fused_elementwise: takes 1 to {MAX_FUSED_INPUTS} inputs, got {len(inputs)}")
    padded = list(inputs) + [None] * (MAX_FUSED_INPUTS - len(inputs))
    return dispatch(fused_elementwise.opdef, padded,
                    (tuple(int(p) for p in program), tuple(float(c) for c in consts) or (0.0,)))


__all__ = ["linear_act", "conv2d_act", "conv2d_act_maxpool", "fused_elementwise"]
