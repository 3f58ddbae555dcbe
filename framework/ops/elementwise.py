"""Elementwise ops: unary math and activations, binary arithmetic, comparisons, logic,
where/masked_fill, and dtype conversion. Kernels: csrc/kernels/elementwise.cpp."""

from __future__ import annotations

import math

from .. import dtypes as D
from ._common import (arg, binary_infer, binary_samples, compare_infer, same_infer, sum_to,
                      unary_samples)
from .dispatch import dispatch
from .registry import Sample, defop

FLOAT = (D.float32, D.float64)
NUMERIC = (D.float32, D.float64, D.int32, D.int64)

# ---------------------------------------------------------------------------------------
# dtype conversion and copies


def _to_infer(x, dtype_code):
    return [(tuple(x.shape), D.BY_CODE[dtype_code])]


def _to_grad(ctx, g):
    x = ctx.inputs[0]
    return (to(g, x.dtype),) if x.dtype.is_floating_point else (None,)


@defop(name="to", inputs=("x",), attrs=("dtype",), infer=_to_infer, grad=_to_grad, kernel="copy",
       promote=None, dtypes=(D.float32, D.float64, D.int64, D.bool_), torch_ref="torch.Tensor.to",
       samples=lambda dt: [Sample((arg((3, 4), dt), D.float64)), Sample((arg((2, 3), dt), D.int32), grad=False)])
def to(x, dtype):
    """x converted to `dtype` (a copy; x itself if it already has that dtype)."""
    if isinstance(dtype, int):
        dtype = D.BY_CODE[dtype]
    if x.dtype is dtype:
        return x
    return dispatch(to.opdef, [x], (dtype.code,))


def _clone_grad(ctx, g):
    return (g,)


@defop(name="clone", inputs=("x",), infer=same_infer, grad=_clone_grad, kernel="copy", promote=None,
       methods=("clone",), dtypes=(D.float32, D.int64), torch_ref="torch.clone",
       onnx_reason="identity: dropped by the exporter", samples=unary_samples())
def clone(x, memory_format=None):
    """A contiguous copy of x that is part of the autograd graph."""
    return dispatch(clone.opdef, [x], ())


# ---------------------------------------------------------------------------------------
# unary ops without attributes


def _unary(name, grad, *, low=-2.0, high=2.0, ints=False, float_compute=True, onnx_reason=None,
           methods=None, inplace=None, torch_ref=None, tags=("elementwise",)):
    def fn(x):
        return dispatch(fn.opdef, [x], ())

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name} (torch.{name})."
    return defop(name=name, inputs=("x",), infer=same_infer, grad=grad,
                 float_compute=float_compute and not ints, dtypes=NUMERIC if ints else FLOAT,
                 methods=(name,) if methods is None else methods,
                 inplace=(name + "_",) if inplace is None else inplace,
                 torch_ref=torch_ref or f"torch.{name}", samples=unary_samples(low, high),
                 onnx_reason=onnx_reason, tags=tags)(fn)


def _zero_grad(ctx, g):
    return (g * 0,)


neg = _unary("neg", lambda c, g: (-g,), ints=True)
abs = _unary("abs", lambda c, g: (g * sign(c.inputs[0]),), ints=True)
exp = _unary("exp", lambda c, g: (g * c.outputs[0],))
log = _unary("log", lambda c, g: (g / c.inputs[0],), low=0.1, high=3.0)
log1p = _unary("log1p", lambda c, g: (g / (c.inputs[0] + 1),), low=-0.5, high=3.0)
sqrt = _unary("sqrt", lambda c, g: (g / (c.outputs[0] * 2),), low=0.1, high=3.0)
rsqrt = _unary("rsqrt", lambda c, g: (g * c.outputs[0] ** 3 * -0.5,), low=0.1, high=3.0)
sin = _unary("sin", lambda c, g: (g * cos(c.inputs[0]),))
cos = _unary("cos", lambda c, g: (-(g * sin(c.inputs[0])),))
tanh = _unary("tanh", lambda c, g: (g * (1 - c.outputs[0] * c.outputs[0]),))
sigmoid = _unary("sigmoid", lambda c, g: (g * c.outputs[0] * (1 - c.outputs[0]),))
relu = _unary("relu", lambda c, g: (threshold_backward(g, c.outputs[0], 0.0),), ints=True)
erf = _unary("erf", lambda c, g: (g * exp(-(c.inputs[0] * c.inputs[0])) * (2 / math.sqrt(math.pi)),))
reciprocal = _unary("reciprocal", lambda c, g: (-(g * c.outputs[0] * c.outputs[0]),), low=0.5, high=2.0)
tan = _unary("tan", lambda c, g: (g * (1 + c.outputs[0] * c.outputs[0]),), low=-1.2, high=1.2)
asin = _unary("asin", lambda c, g: (g * rsqrt(1 - c.inputs[0] * c.inputs[0]),), low=-0.9, high=0.9)
acos = _unary("acos", lambda c, g: (-(g * rsqrt(1 - c.inputs[0] * c.inputs[0])),), low=-0.9, high=0.9)
atan = _unary("atan", lambda c, g: (g / (1 + c.inputs[0] * c.inputs[0]),))
sinh = _unary("sinh", lambda c, g: (g * cosh(c.inputs[0]),))
cosh = _unary("cosh", lambda c, g: (g * sinh(c.inputs[0]),))
expm1 = _unary("expm1", lambda c, g: (g * (c.outputs[0] + 1),), onnx_reason="no ONNX operator (exp(x) - 1 loses it)")
sign = _unary("sign", _zero_grad, ints=True)
floor = _unary("floor", _zero_grad, float_compute=False)
ceil = _unary("ceil", _zero_grad, float_compute=False)
round = _unary("round", _zero_grad, float_compute=False)


def _threshold_backward_grad(c, gg):
    from ..creation import zeros

    gg_x = zeros(c.shapes[1], dtype=gg.dtype) if c.needs_input_grad[1] else None  # piecewise constant
    return sum_to(threshold_backward(gg, c.inputs[1], c.attrs[0]), c.shapes[0]), gg_x


@defop(name="threshold_backward", inputs=("grad_output", "x"), attrs=("threshold",),
       infer=binary_infer, grad=_threshold_backward_grad, dtypes=FLOAT, tags=("elementwise", "backward"),
       torch_ref="torch.ops.aten.threshold_backward",
       samples=lambda dt: [Sample((arg((3, 4), dt), arg((3, 4), dt), 0.0)),
                           Sample((arg((2, 3), dt), arg((3,), dt), 0.5), note="broadcast")])
def threshold_backward(grad_output, input, threshold: float):
    """Gradient of threshold/relu: 0 where input <= threshold, else grad_output."""
    return dispatch(threshold_backward.opdef, [grad_output, input], (float(threshold),))


def _silu_grad(c, g):
    x = c.inputs[0]
    s = sigmoid(x)
    return (g * s * (1 + x * (1 - s)),)


silu = _unary("silu", _silu_grad, methods=(), inplace=(), torch_ref="torch.nn.functional.silu")


# ---------------------------------------------------------------------------------------
# unary ops with attributes


def _gelu_grad(c, g):
    x = c.inputs[0]
    if c.attrs[0] == "tanh":
        k, a = math.sqrt(2 / math.pi), 0.044715
        inner = (x + x * x * x * a) * k
        t = tanh(inner)
        dinner = (x * x * (3 * a) + 1) * k
        return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner),)
    cdf = (erf(x * (1 / math.sqrt(2))) + 1) * 0.5
    pdf = exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
    return (g * (cdf + x * pdf),)


@defop(name="gelu", inputs=("x",), attrs=("approximate",), infer=same_infer, grad=_gelu_grad,
       float_compute=True, torch_ref="torch.nn.functional.gelu", tags=("elementwise",),
       samples=lambda dt: unary_samples()(dt) + [Sample((arg((3, 4), dt),), {"approximate": "tanh"})])
def gelu(input, approximate: str = "none"):
    """GELU activation; approximate="tanh" uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return dispatch(gelu.opdef, [input], (approximate,))


@defop(name="leaky_relu", inputs=("x",), attrs=("negative_slope",), infer=same_infer,
       grad=lambda c, g: (where(c.inputs[0] > 0, g, g * c.attrs[0]),), float_compute=True,
       torch_ref="torch.nn.functional.leaky_relu", tags=("elementwise",),
       samples=lambda dt: unary_samples()(dt) + [Sample((arg((3, 4), dt), 0.2))])
def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """max(0, x) + negative_slope * min(0, x)."""
    return dispatch(leaky_relu.opdef, [input], (float(negative_slope),))


@defop(name="elu", inputs=("x",), attrs=("alpha",), infer=same_infer,
       grad=lambda c, g: (where(c.inputs[0] > 0, g, g * (c.outputs[0] + c.attrs[0])),),
       float_compute=True, torch_ref="torch.nn.functional.elu", tags=("elementwise",),
       samples=lambda dt: unary_samples()(dt) + [Sample((arg((3, 4), dt), 0.5))])
def elu(input, alpha: float = 1.0, inplace: bool = False):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return dispatch(elu.opdef, [input], (float(alpha),))


def _softplus_grad(c, g):
    x = c.inputs[0]
    beta, threshold = c.attrs
    return (where(x * beta > threshold, g, g * sigmoid(x * beta)),)


@defop(name="softplus", inputs=("x",), attrs=("beta", "threshold"), infer=same_infer,
       grad=_softplus_grad, float_compute=True, torch_ref="torch.nn.functional.softplus",
       tags=("elementwise",),
       samples=lambda dt: unary_samples(-30, 30)(dt) + [Sample((arg((3, 4), dt), 2.0, 5.0))])
def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + exp(beta * x)) / beta, linear above threshold."""
    return dispatch(softplus.opdef, [input], (float(beta), float(threshold)))


def _clamp_grad(c, g):
    x = c.inputs[0]
    lo, hi = c.attrs
    keep = None
    if lo is not None:
        keep = x >= lo
    if hi is not None:
        keep = (x <= hi) if keep is None else logical_and(keep, x <= hi)
    return (g if keep is None else where(keep, g, 0.0),)


@defop(name="clamp", inputs=("x",), attrs=("min", "max"), infer=same_infer, grad=_clamp_grad,
       dtypes=NUMERIC, methods=("clamp", "clip"), inplace=("clamp_", "clip_"), torch_ref="torch.clamp",
       tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt),), {"min": -0.5, "max": 0.5}),
                           Sample((arg((3, 4), dt),), {"min": -0.5}),
                           Sample((arg((5,), dt),), {"max": 0.25})])
def clamp(input, min=None, max=None):
    """Clamps values into [min, max] (either bound may be None)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if hasattr(min, "item"):
        min = min.item()
    if hasattr(max, "item"):
        max = max.item()
    if not input.dtype.is_floating_point and (isinstance(min, float) or isinstance(max, float)):
        input = to(input, D.get_default_dtype())
    return dispatch(clamp.opdef, [input], (min, max))


clip = clamp


# ---------------------------------------------------------------------------------------
# binary arithmetic


def _add_grad(c, g):
    sa, sb = c.shapes
    alpha = c.attrs[0]
    gb = g if alpha == 1 else g * alpha
    return (sum_to(g, sa) if c.needs_input_grad[0] else None,
            sum_to(gb, sb) if c.needs_input_grad[1] else None)


def _sub_grad(c, g):
    sa, sb = c.shapes
    alpha = c.attrs[0]
    return (sum_to(g, sa) if c.needs_input_grad[0] else None,
            sum_to(-g if alpha == 1 else g * -alpha, sb) if c.needs_input_grad[1] else None)


def _mul_grad(c, g):
    a, b = c.inputs[0], c.inputs[1]
    return (sum_to(g * b, a.shape) if c.needs_input_grad[0] else None,
            sum_to(g * a, b.shape) if c.needs_input_grad[1] else None)


def _div_grad(c, g):
    a, b = c.inputs[0], c.inputs[1]
    return (sum_to(g / b, a.shape) if c.needs_input_grad[0] else None,
            sum_to(-(g * c.outputs[0]) / b, b.shape) if c.needs_input_grad[1] else None)


def _pow_grad(c, g):
    a, b = c.inputs[0], c.inputs[1]
    ga = gb = None
    if c.needs_input_grad[0]:
        ga = sum_to(where(b == 0, 0.0, g * b * a ** (b - 1)), a.shape)
    if c.needs_input_grad[1]:
        gb = sum_to(where(logical_and(a == 0, b >= 0), 0.0, g * c.outputs[0] * log(a)), b.shape)
    return ga, gb


def _maxmin_grad(c, g, greater):
    a, b = c.inputs[0], c.inputs[1]
    win_a = (a > b) if greater else (a < b)
    tie = a == b
    half = g * 0.5
    ga = where(win_a, g, where(tie, half, 0.0))
    gb = where(win_a, 0.0, where(tie, half, g))
    return (sum_to(ga, a.shape) if c.needs_input_grad[0] else None,
            sum_to(gb, b.shape) if c.needs_input_grad[1] else None)


_BIN_TAGS = ("elementwise", "binary")


@defop(name="add", inputs=("a", "b"), attrs=("alpha",), infer=binary_infer, grad=_add_grad,
       dtypes=NUMERIC, methods=("add",), inplace=("add_",), torch_ref="torch.add", tags=_BIN_TAGS,
       samples=lambda dt: binary_samples()(dt) + [Sample((arg((3,), dt), arg((3,), dt)), {"alpha": 2})])
def add(input, other, alpha=1):
    """input + alpha * other, with broadcasting."""
    return dispatch(add.opdef, [input, other], (alpha,))


@defop(name="sub", inputs=("a", "b"), attrs=("alpha",), infer=binary_infer, grad=_sub_grad,
       dtypes=NUMERIC, methods=("sub", "subtract"), inplace=("sub_",), torch_ref="torch.sub",
       tags=_BIN_TAGS, samples=binary_samples())
def sub(input, other, alpha=1):
    """input - alpha * other, with broadcasting."""
    return dispatch(sub.opdef, [input, other], (alpha,))


@defop(name="mul", inputs=("a", "b"), infer=binary_infer, grad=_mul_grad, dtypes=NUMERIC,
       methods=("mul", "multiply"), inplace=("mul_",), torch_ref="torch.mul", tags=_BIN_TAGS,
       samples=binary_samples())
def mul(input, other):
    """input * other, with broadcasting."""
    return dispatch(mul.opdef, [input, other], ())


@defop(name="div", inputs=("a", "b"), infer=binary_infer, grad=_div_grad, float_compute=True,
       methods=("div", "divide", "true_divide"), inplace=("div_",), torch_ref="torch.div",
       tags=_BIN_TAGS, samples=binary_samples(low_b=0.5, high_b=2.0))
def div(input, other, rounding_mode=None):
    """input / other (true division), with broadcasting."""
    out = dispatch(div.opdef, [input, other], ())
    if rounding_mode == "floor":
        return floor(out)
    if rounding_mode == "trunc":
        return where(out >= 0, floor(out), ceil(out))
    return out


@defop(name="pow", inputs=("a", "b"), infer=binary_infer, grad=_pow_grad, dtypes=NUMERIC,
       methods=("pow",), inplace=("pow_",), torch_ref="torch.pow", tags=_BIN_TAGS,
       samples=lambda dt: binary_samples(0.5, 2.0, -2.0, 2.0)(dt) if dt.is_floating_point
       else binary_samples(0, 4, 0, 3)(dt))
def pow(input, exponent):
    """input ** exponent, with broadcasting."""
    return dispatch(pow.opdef, [input, exponent], ())


def _atan2_grad(c, g):
    y, x = c.inputs
    r = x * x + y * y
    return (sum_to(g * x / r, c.shapes[0]) if c.needs_input_grad[0] else None,
            sum_to(-(g * y) / r, c.shapes[1]) if c.needs_input_grad[1] else None)


@defop(name="atan2", inputs=("input", "other"), infer=binary_infer, grad=_atan2_grad, float_compute=True,
       methods=("atan2", "arctan2"), inplace=("atan2_",), torch_ref="torch.atan2", tags=_BIN_TAGS,
       onnx_reason="no ONNX operator", samples=binary_samples())
def atan2(input, other):
    """The angle of (other, input) in (-pi, pi], elementwise with broadcasting."""
    return dispatch(atan2.opdef, [input, other], ())


arctan2 = atan2


@defop(name="maximum", inputs=("a", "b"), infer=binary_infer,
       grad=lambda c, g: _maxmin_grad(c, g, True), dtypes=NUMERIC, methods=("maximum",),
       torch_ref="torch.maximum", tags=_BIN_TAGS, samples=binary_samples())
def maximum(input, other):
    """Elementwise max (NaN propagates)."""
    return dispatch(maximum.opdef, [input, other], ())


@defop(name="minimum", inputs=("a", "b"), infer=binary_infer,
       grad=lambda c, g: _maxmin_grad(c, g, False), dtypes=NUMERIC, methods=("minimum",),
       torch_ref="torch.minimum", tags=_BIN_TAGS, samples=binary_samples())
def minimum(input, other):
    """Elementwise min (NaN propagates)."""
    return dispatch(minimum.opdef, [input, other], ())


# ---------------------------------------------------------------------------------------
# comparisons and logic (not differentiable)


def _compare(name):
    def fn(input, other):
        return dispatch(fn.opdef, [input, other], ())

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name} comparison, returning a bool tensor."
    return defop(name=name, inputs=("a", "b"), infer=compare_infer, differentiable=False,
                 dtypes=NUMERIC + (D.bool_,) if name in ("eq", "ne") else NUMERIC, methods=(name,),
                 torch_ref=f"torch.{name}", tags=_BIN_TAGS, samples=binary_samples())(fn)


eq = _compare("eq")
ne = _compare("ne")
lt = _compare("lt")
le = _compare("le")
gt = _compare("gt")
ge = _compare("ge")
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def _logical(name, n):
    def fn(*args):
        return dispatch(fn.opdef, [to(a, D.bool_) if not isinstance(a, (bool, int, float)) else bool(a)
                                   for a in args], ())

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name} on truth values, returning a bool tensor."
    infer = same_infer if n == 1 else compare_infer
    samples = (lambda dt: [Sample((arg((3, 4), dt),))]) if n == 1 else binary_samples()
    return defop(name=name, inputs=("a", "b")[:n], infer=lambda *a: [(s, D.bool_) for s, _ in infer(*a)],
                 promote=None, differentiable=False, dtypes=(D.bool_, D.float32),
                 kernel_dtypes=(D.bool_,), methods=(name,),
                 torch_ref=f"torch.{name}", tags=("elementwise",), samples=samples)(fn)


logical_and = _logical("logical_and", 2)
logical_or = _logical("logical_or", 2)
logical_not = _logical("logical_not", 1)


def _where_infer(cond, x, y):
    from ._common import broadcast_shapes

    return [(broadcast_shapes(tuple(cond.shape), tuple(x.shape), tuple(y.shape)), x.dtype)]


def _where_grad(c, g):
    cond, x, y = c.inputs[0], c.inputs[1], c.inputs[2]
    return (None,
            sum_to(where(cond, g, 0.0), x.shape) if c.needs_input_grad[1] else None,
            sum_to(where(cond, 0.0, g), y.shape) if c.needs_input_grad[2] else None)


@defop(name="where", inputs=("condition", "x", "y"), infer=_where_infer, grad=_where_grad,
       promote=(1, 2), dispatch_input=1, dtypes=NUMERIC, torch_ref="torch.where",
       tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), D.bool_), arg((3, 4), dt), arg((3, 4), dt))),
                           Sample((arg((3, 1), D.bool_), arg((4,), dt), arg((3, 4), dt)), note="broadcast")])
def where(condition, input=None, other=None):
    """Selects input where condition is true, else other (broadcasting)."""
    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    if not hasattr(condition, "_data"):
        from ..creation import tensor

        condition = tensor(condition, dtype=D.bool_)
    if condition.dtype is not D.bool_:
        condition = to(condition, D.bool_)
    return dispatch(where.opdef, [condition, input, other], ())


def _masked_fill_grad(c, g):
    return (where(c.inputs[1], 0.0, g), None)


def _masked_fill_infer(x, mask, value):
    from ._common import broadcast_shapes

    shape = broadcast_shapes(tuple(x.shape), tuple(mask.shape))
    if shape != tuple(x.shape):
        raise RuntimeError(f"masked_fill: mask of shape {list(mask.shape)} does not broadcast to "
                           f"input of shape {list(x.shape)}")
    return [(tuple(x.shape), x.dtype)]


@defop(name="masked_fill", inputs=("x", "mask"), attrs=("value",), infer=_masked_fill_infer,
       grad=_masked_fill_grad, promote=None, dtypes=NUMERIC, methods=("masked_fill",),
       inplace=("masked_fill_",), torch_ref="torch.masked_fill", tags=("elementwise",),
       samples=lambda dt: [Sample((arg((3, 4), dt), arg((3, 4), D.bool_), -1.5 if dt.is_floating_point else -1)),
                           Sample((arg((2, 3, 4), dt), arg((4,), D.bool_), 0.0 if dt.is_floating_point else 0))])
def masked_fill(input, mask, value):
    """input with positions where mask is true set to value."""
    if hasattr(value, "item"):
        value = value.item()
    if mask.dtype is not D.bool_:
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype {mask.dtype.name}")
    return dispatch(masked_fill.opdef, [input, mask], (value,))

__all__ = ["to", "clone", "neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos",
           "tanh", "sigmoid", "relu", "erf", "reciprocal", "sign", "floor", "ceil", "round",
           "silu", "gelu", "threshold_backward", "leaky_relu", "elu", "softplus", "clamp", "clip", "add", "sub", "mul",
           "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "greater",
           "less", "greater_equal", "less_equal", "not_equal", "logical_and", "logical_or",
           "logical_not", "where", "masked_fill", "tan", "asin", "acos", "atan", "sinh", "cosh", "expm1",
           "atan2", "arctan2"]
negative, multiply, subtract, divide, true_divide, absolute = neg, mul, sub, div, div, abs
arcsin, arccos, arctan = asin, acos, atan
__all__ += ["negative", "multiply", "subtract", "divide", "true_divide", "absolute", "arcsin", "arccos", "arctan"]
