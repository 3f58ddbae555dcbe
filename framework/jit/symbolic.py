"""Symbolic integers: shape dims that are expressions over the graph inputs' dims.

A traced graph keeps the batch (and any other dynamic dim) as a `SymInt`, e.g. `N` for
input 0's dim 0, `N*12` for a flattened (N, 3, 4) tensor. Shapes in the IR and integer
attributes (reshape targets) may hold SymInts; `evaluate(input_shapes)` turns one into an int
for concrete input shapes, `to_program()` into a postfix program the C++ runtime evaluates.

This module is pure Python and imports nothing from framework, so tensor.py, the op
registry and the C++ runtime bindings can all use it. Turning a SymInt into a Python int
(`int()`, `range()`, `if`) is refused outside tracing; while tracing, the tracer installs
`CONCRETIZE_HOOK`, which bakes the traced value in, warns and records a guard.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

# Program opcodes shared with the C++ runtime (csrc/runtime): never renumber.
OP_CONST, OP_DIM, OP_ADD, OP_SUB, OP_MUL, OP_FLOORDIV, OP_MOD, OP_MAX, OP_MIN = range(9)
_BINARY = {"add": OP_ADD, "sub": OP_SUB, "mul": OP_MUL, "floordiv": OP_FLOORDIV, "mod": OP_MOD,
           "max": OP_MAX, "min": OP_MIN}
_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//", "mod": "%"}
_PREC = {"add": 1, "sub": 1, "mul": 2, "floordiv": 2, "mod": 2}

# Set by the tracer while it runs: hook(sym, why) -> int. It returns the traced value of
# `sym`, warns that it was baked in and records a guard. None outside tracing.
CONCRETIZE_HOOK: Optional[Callable[["SymInt", str], int]] = None
# Set by the tracer: hook(a, op, b) -> bool decides a comparison from the traced values and
# records a guard that it still holds at call time. None outside tracing.
COMPARE_HOOK: Optional[Callable[[object, str, object], bool]] = None


def _floordiv(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("symbolic shape expression divides by zero")
    return a // b


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("symbolic shape expression takes a modulus by zero")
    return a % b


_EVAL = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
         "floordiv": _floordiv, "mod": _mod, "max": max, "min": min}


def dim_name(input_index: int, axis: int) -> str:
    """The printed name of input `input_index`'s dim `axis`: N for the batch of input 0."""
    if axis == 0:
        return "N" if input_index == 0 else f"N{input_index}"
    return f"d{input_index}_{axis}"


class SymInt:
    """An integer expression over graph-input dims (immutable; compared structurally).

    Build leaves with `SymInt.input_dim(i, axis)` and combine them with + - * // % and
    `sym_max`/`sym_min`. Operations on plain ints stay plain ints, and results that simplify
    to a constant are returned as ints, so a SymInt always depends on at least one dim.
    """

    __slots__ = ("_expr", "_hash")

    def __init__(self, expr: tuple):
        # expr: ("dim", i, axis) | (binop, a, b) where a, b are int or SymInt
        self._expr = expr
        self._hash = hash(expr)

    # ---- construction ------------------------------------------------------------
    @staticmethod
    def input_dim(input_index: int, axis: int) -> "SymInt":
        """The size of dim `axis` of graph input `input_index`."""
        return SymInt(("dim", int(input_index), int(axis)))

    @property
    def expr(self) -> tuple:
        return self._expr

    def is_leaf(self) -> bool:
        return self._expr[0] == "dim"

    def leaves(self) -> set:
        """The (input_index, axis) pairs this expression depends on."""
        e = self._expr
        if e[0] == "dim":
            return {(e[1], e[2])}
        out = set()
        for x in e[1:]:
            if isinstance(x, SymInt):
                out |= x.leaves()
        return out

    # ---- evaluation --------------------------------------------------------------
    def evaluate(self, input_shapes: Sequence[Sequence[int]]) -> int:
        """The value for concrete graph-input shapes (a list with one shape per input)."""
        e = self._expr
        if e[0] == "dim":
            i, axis = e[1], e[2]
            if i >= len(input_shapes) or axis >= len(input_shapes[i]):
                raise IndexError(f"symbolic dim {self} refers to input {i} dim {axis}, but the "
                                 f"inputs have shapes {[list(s) for s in input_shapes]}")
            return int(input_shapes[i][axis])
        return _EVAL[e[0]](evaluate(e[1], input_shapes), evaluate(e[2], input_shapes))

    def to_program(self) -> list:
        """Postfix program: 0 CONST k | 1 DIM i axis | 2 ADD .. 8 MIN (binary: pop 2, push 1)."""
        e = self._expr
        if e[0] == "dim":
            return [OP_DIM, e[1], e[2]]
        return to_program(e[1]) + to_program(e[2]) + [_BINARY[e[0]]]

    # ---- arithmetic --------------------------------------------------------------
    def __add__(self, o):
        return _binop("add", self, o)

    def __radd__(self, o):
        return _binop("add", o, self)

    def __sub__(self, o):
        return _binop("sub", self, o)

    def __rsub__(self, o):
        return _binop("sub", o, self)

    def __mul__(self, o):
        return _binop("mul", self, o)

    def __rmul__(self, o):
        return _binop("mul", o, self)

    def __floordiv__(self, o):
        return _binop("floordiv", self, o)

    def __rfloordiv__(self, o):
        return _binop("floordiv", o, self)

    def __mod__(self, o):
        return _binop("mod", self, o)

    def __rmod__(self, o):
        return _binop("mod", o, self)

    def __truediv__(self, o):
        return _float_op("truediv", self, float(o)) if isinstance(o, (int, float, SymInt)) \
            and not isinstance(o, SymInt) else _float_op("truediv", self, o)

    def __rtruediv__(self, o):
        return _float_op("truediv", o, self)

    def __neg__(self):
        return _binop("sub", 0, self)

    def __pos__(self):
        return self

    # ---- comparison --------------------------------------------------------------
    def __eq__(self, o):
        # Structurally equal expressions are equal. Otherwise the answer is unknown until
        # the graph runs: while tracing, COMPARE_HOOK decides it from the traced shapes and
        # guards it; outside tracing it is False. Symbolic dims are assumed to be >= 2 (the
        # tracer keeps dims of size 0 and 1 static), so comparing with 0 or 1 is False
        # without a guard -- that keeps broadcasting checks from pinning the batch.
        if isinstance(o, SymInt):
            if self._expr == o._expr:
                return True
        elif isinstance(o, int):
            if o in (0, 1) and _at_least_two(self):
                return False
        else:
            return NotImplemented
        if COMPARE_HOOK is not None:
            return COMPARE_HOOK(self, "==", o)
        return False

    def __ne__(self, o):
        r = self.__eq__(o)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return self._hash

    def _compare(self, op: str, o):
        if not isinstance(o, (int, SymInt)):
            return NotImplemented
        if COMPARE_HOOK is not None:
            return COMPARE_HOOK(self, op, o)
        raise TypeError(f"cannot decide {self} {op} {o}: the value of a symbolic dim is only "
                        "known when the graph runs")

    def __lt__(self, o):
        return self._compare("<", o)

    def __le__(self, o):
        return self._compare("<=", o)

    def __gt__(self, o):
        return self._compare(">", o)

    def __ge__(self, o):
        return self._compare(">=", o)

    # ---- conversion to Python ints -----------------------------------------------
    def _concrete(self, why: str) -> int:
        if CONCRETIZE_HOOK is not None:
            return CONCRETIZE_HOOK(self, why)
        raise TypeError(f"symbolic dim {self} has no concrete value ({why}): it is only known "
                        "when the graph runs; keep it symbolic (use it in shape arithmetic and "
                        "view/reshape arguments) instead of converting it to a Python int")

    def __index__(self):
        return self._concrete("used as an index")

    def __int__(self):
        return self._concrete("int()")

    def __bool__(self):
        return bool(self._concrete("bool()"))

    def __float__(self):
        return float(self._concrete("float()"))

    # ---- printing ----------------------------------------------------------------
    def __str__(self):
        return _fmt(self, 0)

    def __repr__(self):
        return f"SymInt({self})"

    def __reduce__(self):
        return (SymInt, (self._expr,))


def _fmt(x, parent_prec: int) -> str:
    if not isinstance(x, SymInt):
        return str(x)
    e = x._expr
    if e[0] == "dim":
        return dim_name(e[1], e[2])
    if e[0] in ("max", "min"):
        return f"{e[0]}({_fmt(e[1], 0)}, {_fmt(e[2], 0)})"
    p = _PREC[e[0]]
    s = f"{_fmt(e[1], p)}{_SYMBOL[e[0]]}{_fmt(e[2], p + 1)}"
    return f"({s})" if p < parent_prec else s


def _const(x):
    return x if isinstance(x, int) and not isinstance(x, SymInt) else None


def _binop(op: str, a, b):
    """a <op> b for ints and SymInts, simplified; NotImplemented for other types. With a
    float operand the SymInt is turned into its traced value (guarded) while tracing."""
    if isinstance(a, float) or isinstance(b, float):
        return _float_op(op, a, b)
    for x in (a, b):
        if not isinstance(x, (int, SymInt)) or isinstance(x, bool):
            if isinstance(x, bool):
                continue
            return NotImplemented
    a = int(a) if isinstance(a, bool) else a
    b = int(b) if isinstance(b, bool) else b
    ca, cb = _const(a), _const(b)
    if ca is not None and cb is not None:
        return _EVAL[op](ca, cb)
    return _simplify(op, a, b, ca, cb)


def _float_op(op: str, a, b):
    if CONCRETIZE_HOOK is None:
        return NotImplemented
    a = a._concrete("used in float arithmetic") if isinstance(a, SymInt) else a
    b = b._concrete("used in float arithmetic") if isinstance(b, SymInt) else b
    if op == "truediv":
        return a / b
    return {"add": a + b, "sub": a - b, "mul": a * b}[op] if op in ("add", "sub", "mul") \
        else _EVAL[op](a, b)


def _simplify(op, a, b, ca, cb):
    # Canonical order for commutative ops: the constant goes right.
    if op in ("add", "mul", "max", "min") and ca is not None:
        a, b, ca, cb = b, a, cb, ca
    if op == "add":
        if cb == 0:
            return a
        if cb is not None and _is(a, "add") and _const(a._expr[2]) is not None:
            return _binop("add", a._expr[1], a._expr[2] + cb)
        if cb is not None and _is(a, "sub") and _const(a._expr[2]) is not None:
            return _binop("add", a._expr[1], cb - a._expr[2])
    elif op == "sub":
        if cb == 0:
            return a
        if _same(a, b):
            return 0
        if cb is not None:
            return _binop("add", a, -cb)
        if _is(a, "add") and _same(a._expr[1], b):  # (x + k) - x
            return a._expr[2]
    elif op == "mul":
        if cb == 0:
            return 0
        if cb == 1:
            return a
        if cb is not None and _is(a, "mul") and _const(a._expr[2]) is not None:
            return _binop("mul", a._expr[1], a._expr[2] * cb)
    elif op == "floordiv":
        if cb == 1:
            return a
        ra = _ratio(a, b)
        if ra is not None:  # (x*ka) // (x*kb) with kb | ka
            return ra
        if cb is not None and cb > 0 and _is(a, "mul") and _const(a._expr[2]) is not None:
            k = a._expr[2]
            if k % cb == 0:  # (x*k) // c = x*(k/c)
                return _binop("mul", a._expr[1], k // cb)
            if k > 0 and cb % k == 0:  # (x*k) // c = x // (c/k)
                return _binop("floordiv", a._expr[1], cb // k)
        if _same(a, b):
            return 1
        if _is(a, "mul") and _same(a._expr[1], b):  # (x*k) // x
            return a._expr[2]
    elif op == "mod":
        if cb == 1:
            return 0
        if _ratio(a, b) is not None:
            return 0
        if cb is not None and cb > 0 and _is(a, "mul") and _const(a._expr[2]) is not None \
                and a._expr[2] % cb == 0:
            return 0
    elif op in ("max", "min"):
        if _same(a, b):
            return a
    return SymInt((op, a, b))


def _split(x):
    """x as (symbolic factor, constant factor): N*8 -> (N, 8), N -> (N, 1)."""
    if _is(x, "mul") and _const(x._expr[2]) is not None:
        return x._expr[1], x._expr[2]
    return x, 1


def _ratio(a, b):
    """a // b when both are the same symbolic factor times constants and b's divides a's."""
    if not (isinstance(a, SymInt) and isinstance(b, SymInt)):
        return None
    (sa, ka), (sb, kb) = _split(a), _split(b)
    if _same(sa, sb) and kb > 0 and ka % kb == 0:
        return ka // kb
    return None


def _at_least_two(x) -> bool:
    """True if x is >= 2 whenever every dim it uses is >= 2 (sums and products of dims)."""
    if isinstance(x, int):
        return x >= 2
    e = x._expr
    if e[0] == "dim":
        return True
    if e[0] in ("add", "mul", "max"):
        a, b = e[1], e[2]
        ok_a = _at_least_two(a) or (isinstance(a, int) and a >= 1)
        ok_b = _at_least_two(b) or (isinstance(b, int) and b >= 1)
        return (ok_a and ok_b) or (e[0] == "add" and (
            (_at_least_two(a) and isinstance(b, int) and b >= 0)
            or (_at_least_two(b) and isinstance(a, int) and a >= 0)))
    return False


def _same(a, b) -> bool:
    """Structural equality of two SymInts (never consults the tracer)."""
    return isinstance(a, SymInt) and isinstance(b, SymInt) and a._expr == b._expr


def _is(x, op: str) -> bool:
    return isinstance(x, SymInt) and x._expr[0] == op


def sym_max(a, b):
    """max(a, b) for ints and SymInts."""
    return _binop("max", a, b)


def sym_min(a, b):
    """min(a, b) for ints and SymInts."""
    return _binop("min", a, b)


def is_symbolic(x) -> bool:
    """True for a SymInt, or a tuple/list holding one (at any depth)."""
    if isinstance(x, SymInt):
        return True
    if isinstance(x, (tuple, list)):
        return any(is_symbolic(v) for v in x)
    return False


def evaluate(x, input_shapes):
    """x with every SymInt evaluated (ints, None, strings and nested tuples pass through)."""
    if isinstance(x, SymInt):
        return x.evaluate(input_shapes)
    if isinstance(x, tuple):
        return tuple(evaluate(v, input_shapes) for v in x)
    if isinstance(x, list):
        return [evaluate(v, input_shapes) for v in x]
    return x


def to_program(x) -> list:
    """The postfix program of an int or SymInt."""
    if isinstance(x, SymInt):
        return x.to_program()
    return [OP_CONST, int(x)]


def run_program(prog: Sequence[int], input_shapes) -> int:
    """Evaluates a postfix program (the reference for the C++ runtime's evaluator)."""
    stack, i = [], 0
    ops = {OP_ADD: "add", OP_SUB: "sub", OP_MUL: "mul", OP_FLOORDIV: "floordiv",
           OP_MOD: "mod", OP_MAX: "max", OP_MIN: "min"}
    while i < len(prog):
        code = prog[i]
        if code == OP_CONST:
            stack.append(prog[i + 1])
            i += 2
        elif code == OP_DIM:
            stack.append(int(input_shapes[prog[i + 1]][prog[i + 2]]))
            i += 3
        elif code in ops:
            b, a = stack.pop(), stack.pop()
            stack.append(_EVAL[ops[code]](a, b))
            i += 1
        else:
            raise ValueError(f"bad shape-program opcode {code} at {i}")
    if len(stack) != 1:
        raise ValueError("malformed shape program")
    return stack[0]


__all__ = ["SymInt", "sym_max", "sym_min", "is_symbolic", "evaluate", "to_program",
           "run_program", "dim_name"]
