"""torch.nn.functional names over framework's registered ops.

Ops with their own OpDef (softmax, norms, conv, pooling, losses, ...) come from whichever
framework.ops family module defines them (looked up by name in the modules' __all__, so this
file does not depend on how the op families are split). Where an op family has not landed,
some functions fall back to a composite of registered ops (still traceable, still C++
compute); the rest raise NotImplementedError naming the missing op. No compute here.
"""

from __future__ import annotations

import math
import sys

from .. import autograd as AG
from .. import dtypes as D
from ..creation import arange, rand
from ..ops import elementwise as E
from ..ops import linalg as L
from ..ops import reduce as R
from ..ops import shape as S

_OWN = {"framework.ops.optim"}  # internal ops, never torch.nn.functional names
_CACHE: dict = {}


def _op(name: str):
    """The public function `name` from an op family module (None when none defines it)."""
    fn = _CACHE.get(name, 0)
    if fn != 0:
        return fn
    fn = None
    for mod_name, mod in sorted(sys.modules.items()):
        if mod is None or not mod_name.startswith("framework.ops.") or mod_name in _OWN:
            continue
        if name in getattr(mod, "__all__", ()):
            fn = getattr(mod, name)
            break
    _CACHE[name] = fn
    return fn


def _need(name: str):
    fn = _op(name)
    if fn is None:
        raise NotImplementedError(
            f"nn.functional.{name}: the {name!r} op is not registered yet "
            "(its op family has not been merged)"
        )
    return fn


# ---- linear layers -----------------------------------------------------------------------
linear = L.linear


def bilinear(input1, input2, weight, bias=None):
    """y = x1^T A x2 + b with weight A of shape (out, in1, in2)."""
    fn = _op("bilinear")
    if fn is not None:
        return fn(input1, input2, weight, bias)
    out_f, in1, in2 = weight.shape
    lead = tuple(input1.shape[:-1])
    x1 = S.reshape(input1, (-1, in1))
    x2 = S.reshape(input2, (-1, in2))
    w = S.reshape(S.permute(weight, (1, 0, 2)), (in1, out_f * in2))
    t = S.reshape(L.matmul(x1, w), (-1, out_f, in2))
    y = R.sum(t * S.unsqueeze(x2, 1), -1)
    if bias is not None:
        y = y + bias
    return S.reshape(y, lead + (out_f,))


# ---- activations -------------------------------------------------------------------------
tanh = E.tanh
sigmoid = E.sigmoid
softplus = E.softplus


def relu(input, inplace: bool = False):
    """max(0, x)."""
    return E.relu(input)


def gelu(input, approximate: str = "none"):
    """Gaussian error linear unit (approximate="tanh" for the tanh form)."""
    return E.gelu(input, approximate)


def silu(input, inplace: bool = False):
    """x * sigmoid(x)."""
    return E.silu(input)


def elu(input, alpha: float = 1.0, inplace: bool = False):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return E.elu(input, alpha)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """max(0, x) + negative_slope * min(0, x)."""
    return E.leaky_relu(input, negative_slope)


def relu6(input, inplace: bool = False):
    """min(max(0, x), 6)."""
    return E.clamp(input, 0.0, 6.0)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    """clamp(x, min_val, max_val)."""
    return E.clamp(input, min_val, max_val)


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x)."""
    return -E.softplus(-input)


def mish(input, inplace: bool = False):
    """x * tanh(softplus(x))."""
    return input * E.tanh(E.softplus(input))


def softsign(input):
    """x / (1 + |x|)."""
    return input / (E.abs(input) + 1)


def hardsigmoid(input, inplace: bool = False):
    """clamp(x / 6 + 1/2, 0, 1)."""
    return E.clamp(input / 6.0 + 0.5, 0.0, 1.0)


def hardswish(input, inplace: bool = False):
    """x * hardsigmoid(x)."""
    return input * hardsigmoid(input)


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """exp(x) / sum(exp(x)) along dim."""
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1
    fn = _op("softmax")
    if fn is not None:
        return fn(input, dim)
    return E.exp(input - R.logsumexp(input, dim, keepdim=True))


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """log(softmax(x)) along dim, computed stably."""
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1
    fn = _op("log_softmax")
    if fn is not None:
        return fn(input, dim)
    return input - R.logsumexp(input, dim, keepdim=True)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):
    """x / max(||x||_p, eps) along dim."""
    n = R.norm(input, p, dim, keepdim=True)
    return input / E.clamp(n, min=eps)


# ---- dropout -----------------------------------------------------------------------------
def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zeroes elements with probability p and scales the rest by 1/(1-p) (training only)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    fn = _op("dropout")
    if fn is not None:
        return fn(input, p, training)
    if p == 1.0:
        return input * 0.0
    keep = rand(tuple(input.shape), dtype=input.dtype) >= p
    return E.where(keep, input * (1.0 / (1.0 - p)), 0.0)


# ---- normalization -----------------------------------------------------------------------
def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalizes over the trailing dims `normalized_shape`, then scales and shifts."""
    fn = _op("layer_norm")
    if fn is not None:  # the op checks the shapes
        return fn(input, normalized_shape, weight, bias, eps)
    normalized_shape = (
        (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    )
    if tuple(input.shape[input.ndim - len(normalized_shape) :]) != normalized_shape:
        raise RuntimeError(
            f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in normalized_shape)}], but got input of size{list(input.shape)}"
        )
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    mean = R.mean(input, dims, keepdim=True)
    var = R.var(input, dims, keepdim=True, correction=0)
    y = (input - mean) * E.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalizes over groups of channels (dim 1), then scales and shifts per channel."""
    n, c = input.shape[0], input.shape[1]
    if c % num_groups != 0:
        raise RuntimeError(
            f"Expected number of channels in input to be divisible by num_groups, "
            f"but got input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    fn = _op("group_norm")
    if fn is not None:
        return fn(input, num_groups, weight, bias, eps)
    x = S.reshape(input, (n, num_groups, -1))
    mean = R.mean(x, -1, keepdim=True)
    var = R.var(x, -1, keepdim=True, correction=0)
    y = S.reshape((x - mean) * E.rsqrt(var + eps), tuple(input.shape))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = y * S.reshape(weight, shape)
    if bias is not None:
        y = y + S.reshape(bias, shape)
    return y


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Batch normalization over dim 1; in training, updates running stats in place."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2D input (got {input.ndim}D input)")
    fn = _op("batch_norm")
    if fn is not None:
        return fn(input, running_mean, running_var, weight, bias, training, momentum, eps)
    c = input.shape[1]
    dims = (0,) + tuple(range(2, input.ndim))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        n = input.numel() // c
        if n <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {list(input.shape)}"
            )
        mean = R.mean(input, dims)
        var = R.var(input, dims, correction=0)
        if running_mean is not None:
            with AG.no_grad():
                running_mean.mul_(1.0 - momentum).add_(mean.detach() * momentum)
                running_var.mul_(1.0 - momentum).add_(var.detach() * (momentum * n / (n - 1)))
    else:
        mean, var = running_mean, running_var
    y = (input - S.reshape(mean, shape)) * S.reshape(E.rsqrt(var + eps), shape)
    if weight is not None:
        y = y * S.reshape(weight, shape)
    if bias is not None:
        y = y + S.reshape(bias, shape)
    return y


# ---- embeddings --------------------------------------------------------------------------
def one_hot(tensor, num_classes: int = -1):
    """int64 one-hot encoding with a new last dim of size num_classes."""
    fn = _op("one_hot")
    if fn is not None:
        return fn(tensor, num_classes)
    if num_classes < 0:
        num_classes = int(R.max(tensor).item()) + 1
    return E.eq(S.unsqueeze(tensor, -1), arange(num_classes)).to(D.int64)


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
):
    """Rows of weight picked by the integer input (no gradient into row padding_idx)."""
    fn = _op("embedding")
    if fn is not None:
        return fn(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported"
        )
    if input.dtype.is_floating_point:
        raise RuntimeError(
            f"Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {input.dtype.name} instead (while checking arguments for embedding)"
        )
    num = weight.shape[0]
    if padding_idx is not None and padding_idx < 0:
        padding_idx += num
    fn = _op("embedding")
    if fn is not None:
        return fn(input, weight, padding_idx)
    hot = E.eq(S.unsqueeze(input, -1), arange(num))
    if padding_idx is not None:
        # NOTE: torch gives row padding_idx no gradient; the row's value is still returned.
        hot_grad = E.logical_and(hot, S.unsqueeze(E.ne(input, padding_idx), -1))
        pad_rows = E.where(
            S.unsqueeze(E.eq(input, padding_idx), -1), weight[padding_idx].detach(), 0.0
        )
        return L.matmul(hot_grad.to(weight.dtype), weight) + pad_rows
    return L.matmul(hot.to(weight.dtype), weight)


# ---- losses ------------------------------------------------------------------------------
def _reduce(loss, reduction: str):
    if reduction == "mean":
        return R.mean(loss)
    if reduction == "sum":
        return R.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """Mean squared error."""
    fn = _op("mse_loss")
    if fn is not None:
        return fn(input, target, reduction=reduction)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """Mean absolute error."""
    fn = _op("l1_loss")
    if fn is not None:
        return fn(input, target, reduction=reduction)
    return _reduce(E.abs(input - target), reduction)


def smooth_l1_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0
):
    """Huber-like loss: 0.5 d^2 / beta below beta, |d| - 0.5 beta above."""
    fn = _op("smooth_l1_loss")
    if fn is not None:
        return fn(input, target, reduction=reduction, beta=beta)
    d = E.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(E.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
):
    """Sigmoid + binary cross entropy in one stable expression."""
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"Target size ({list(target.shape)}) must be the same as input size ({list(input.shape)})"
        )
    fn = _op("binary_cross_entropy_with_logits")
    if fn is not None:
        return fn(input, target, weight, reduction=reduction, pos_weight=pos_weight)
    log_sig_neg = E.log1p(E.exp(-E.abs(input))) + E.relu(-input)  # -log(sigmoid(x))
    if pos_weight is not None:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * log_sig_neg
    else:
        loss = (1 - target) * input + log_sig_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"
):
    """-(t log x + (1 - t) log(1 - x)) with logs clamped at -100 like torch."""
    fn = _op("binary_cross_entropy")
    if fn is not None:
        return fn(input, target, weight, reduction=reduction)
    loss = -(
        target * E.clamp(E.log(input), min=-100.0)
        + (1 - target) * E.clamp(E.log(1 - input), min=-100.0)
    )
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _class_mask(target, c, dtype):
    """(N, C, ...) float mask with a 1 at each target class (moved to dim 1)."""
    hot = E.eq(S.unsqueeze(target, 1), S.reshape(arange(c), (1, c) + (1,) * (target.ndim - 1)))
    return hot.to(dtype)


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
):
    """Negative log likelihood of log-probabilities `input` (N, C, ...) at integer targets."""
    if input.ndim < 1 or (
        input.ndim >= 2 and tuple(target.shape) != (input.shape[0],) + tuple(input.shape[2:])
    ):
        raise ValueError(
            f"Expected target size {[input.shape[0]] + list(input.shape[2:])}, got {list(target.shape)}"
        )
    fn = _op("nll_loss")
    if fn is not None:
        return fn(input, target, weight, ignore_index=ignore_index, reduction=reduction)
    if input.ndim == 1:
        input, target = S.unsqueeze(input, 0), S.unsqueeze(target, 0)
    c = input.shape[1]
    mask = _class_mask(target, c, input.dtype)
    valid = E.ne(target, ignore_index).to(input.dtype)
    w = (
        valid
        if weight is None
        else R.sum(mask * S.reshape(weight, (1, c) + (1,) * (input.ndim - 2)), 1) * valid
    )
    loss = -R.sum(input * mask, 1) * w
    if reduction == "mean":
        return R.sum(loss) / R.sum(w)
    return _reduce(loss, reduction)


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """log_softmax over dim 1 followed by nll_loss (class-index or probability targets)."""
    fn = _op("cross_entropy")
    if fn is not None:
        return fn(
            input,
            target,
            weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    cdim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, cdim)
    if target.dtype.is_floating_point:  # class probabilities
        if weight is not None:
            logp = logp * S.reshape(weight, (-1,) + (1,) * (input.ndim - cdim - 1))
        t = (
            target
            if label_smoothing == 0
            else target * (1 - label_smoothing) + label_smoothing / input.shape[cdim]
        )
        loss = -R.sum(logp * t, cdim)
        return (
            _reduce(loss, reduction) if reduction != "mean" else R.sum(loss) / (loss.numel() or 1)
        )
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return nll
    if weight is not None:
        raise NotImplementedError(
            "cross_entropy: label_smoothing with class weights is not supported"
        )
    c = input.shape[cdim]
    valid = E.ne(target, ignore_index).to(input.dtype)
    smooth = -R.sum(logp, cdim) * valid
    smooth = R.sum(smooth) / R.sum(valid) if reduction == "mean" else _reduce(smooth, reduction)
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / c)


# ---- attention ---------------------------------------------------------------------------
def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale=None,
    enable_gqa: bool = False,
):
    """softmax(q k^T * scale + mask) v; boolean masks mark positions that may attend."""
    fn = _op("scaled_dot_product_attention")
    if fn is not None:
        return fn(
            query,
            key,
            value,
            attn_mask=attn_mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            scale=scale,
        )
    L_, S_ = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = L.matmul(query, S.transpose(key, -2, -1)) * scale
    if is_causal:
        causal = E.ge(S.unsqueeze(arange(L_), 1), S.unsqueeze(arange(S_), 0))
        scores = E.masked_fill(scores, E.logical_not(causal), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype is D.bool_:
            scores = E.masked_fill(scores, E.logical_not(attn_mask), float("-inf"))
        else:
            scores = scores + attn_mask
    attn = softmax(scores, -1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return L.matmul(attn, value)


# ---- more activations, normalizations, dropout and losses (torch.nn.functional names) ------
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def prelu(input, weight):
    """max(0, x) + weight * min(0, x); a weight of several values runs along dim 1 (dim 0 of
    a 1-D input)."""
    w = weight
    if weight.numel() > 1:
        ch = 1 if input.ndim >= 2 else 0
        if input.shape[ch] != weight.numel():
            raise RuntimeError(f"prelu: the number of weights ({weight.numel()}) does not match the channels "
                               f"({input.shape[ch]})")
        w = S.reshape(weight, (-1,) + (1,) * (input.ndim - ch - 1))
    pos = E.relu(input)
    return pos + w * (input - pos)


def selu(input, inplace: bool = False):
    """scale * elu(x, alpha) with SELU's constants."""
    return E.elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input, alpha: float = 1.0, inplace: bool = False):
    """x if x > 0 else alpha * (exp(x / alpha) - 1)."""
    return E.where(input > 0, input, E.expm1(input / alpha) * alpha)


def glu(input, dim: int = -1):
    """a * sigmoid(b) for the two halves a, b of dim."""
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {dim % input.ndim} is size {n}")
    a, b = input.split(n // 2, dim)
    return a * E.sigmoid(b)


def softmin(input, dim=None, _stacklevel: int = 3, dtype=None):
    """softmax(-x) over dim."""
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return softmax(-input, dim, dtype=dtype)


def threshold(input, threshold: float, value: float, inplace: bool = False):
    """x where x > threshold, else value."""
    return E.where(input > threshold, input, value)


def hardshrink(input, lambd: float = 0.5):
    """x where |x| > lambd, else 0."""
    return E.where(E.abs(input) > lambd, input, 0.0)


def softshrink(input, lambd: float = 0.5):
    """x - lambd where x > lambd, x + lambd where x < -lambd, else 0."""
    return E.where(input > lambd, input - lambd, E.where(input < -lambd, input + lambd, 0.0))


def tanhshrink(input):
    """x - tanh(x)."""
    return input - E.tanh(input)


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1):
    """softmax((logits + Gumbel noise) / tau); hard=True returns one-hot samples whose
    gradient is the soft sample's (straight-through)."""
    u = rand(*logits.shape, dtype=logits.dtype)
    gumbels = -E.log(-E.log(E.clamp(u, 1e-20, 1.0 - 1e-7)))
    y = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y
    from ..creation import zeros_like
    from ..ops.gather import scatter

    index = R.argmax(y, dim, keepdim=True)
    y_hard = scatter(zeros_like(logits), dim, index, 1.0)
    return y_hard - y.detach() + y


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5):
    """Normalizes each (sample, channel) over its spatial dims (group_norm with a group per
    channel); running statistics are not supported."""
    if running_mean is not None or running_var is not None or not use_input_stats:
        raise NotImplementedError("instance_norm: running statistics are not supported")
    if input.ndim < 3:
        return S.squeeze(instance_norm(S.unsqueeze(input, 0), weight=weight, bias=bias, eps=eps), 0)
    return group_norm(input, input.shape[1], weight, bias, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2 over the last dims) + eps) * weight (eps: the dtype's epsilon when None)."""
    import numpy as _np

    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    n = len(shape)
    if tuple(input.shape[-n:]) != shape:
        raise RuntimeError(f"rms_norm: input shape {list(input.shape)} does not end with normalized_shape "
                           f"{list(shape)}")
    eps = float(_np.finfo(input.dtype.np).eps) if eps is None else eps
    dims = tuple(range(input.ndim - n, input.ndim))
    y = input * E.rsqrt(R.mean(input * input, dims, keepdim=True) + eps)
    return y * weight if weight is not None else y


def _channel_dropout(input, p: float, training: bool, spatial: int, name: str):
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"{name}: Expected {spatial + 1}D or {spatial + 2}D input, but received a {input.ndim}D "
                           "input")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    lead = tuple(input.shape[:input.ndim - spatial])
    keep = (rand(*lead, dtype=input.dtype) >= p).to(input.dtype)
    return input * S.reshape(keep, lead + (1,) * spatial) / (1 - p)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zeroes whole channels of (N, C, L) or (C, L) with probability p (scaled by 1 / (1 - p))."""
    return _channel_dropout(input, p, training, 1, "dropout1d")


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zeroes whole channels of (N, C, H, W) or (C, H, W) with probability p."""
    return _channel_dropout(input, p, training, 2, "dropout2d")


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                        reduction: str = "mean"):
    """max(0, -target * (input1 - input2) + margin)."""
    return _reduce(E.relu(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean"):
    """input where target is 1, max(0, margin - input) where it is -1."""
    out = E.where(target != 1, E.relu(margin - input), 0.0) + E.where(target != -1, input, 0.0)
    return _reduce(out, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """log(1 + exp(-target * input))."""
    return _reduce(E.softplus(-target * input), reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                          reduction: str = "mean"):
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1 (cos over
    the last dim, torch's 1e-12 in the norms)."""
    d = input1.ndim - 1
    prod = R.sum(input1 * input2, d)
    denom = E.sqrt((R.sum(input1 * input1, d) + 1e-12) * (R.sum(input2 * input2, d) + 1e-12))
    cos = prod / denom
    out = E.where(target == 1, 1 - cos, 0.0) + E.where(target == -1, E.relu(cos - margin), 0.0)
    return _reduce(out, reduction)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """The p-norm of x1 - x2 + eps over the last dim."""
    return R.norm(x1 - x2 + eps, p, -1, keepdim)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None, reduction: str = "mean"):
    """max(d(anchor, positive) - d(anchor, negative) + margin, 0), d the p-norm distance."""
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = E.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(E.relu(margin + d_pos - d_neg), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean"):
    """The mean over classes of -(t log sigmoid(x) + (1 - t) log sigmoid(-x)), per sample."""
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(R.sum(loss, input.ndim - 1) / input.shape[-1], reduction)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
    """0.5 * (log(var) + (input - target)^2 / var) (+ 0.5 log(2 pi) when full), var clamped
    at eps without stopping its gradient (as torch)."""
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = S.unsqueeze(var, -1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    v = var.detach()
    var = var + (E.clamp(v, eps, None) - v)
    loss = 0.5 * (E.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False, size_average=None, eps: float = 1e-8,
                     reduce=None, reduction: str = "mean"):
    """exp(input) - target * input (log_input) or input - target * log(input + eps), plus
    Stirling's term for target > 1 when full."""
    loss = E.exp(input) - target * input if log_input else input - target * E.log(input + eps)
    if full:
        t = E.where(target > 1, target, 1.0)
        stirling = t * E.log(t) - t + 0.5 * E.log(2 * math.pi * t)
        loss = loss + E.where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction)


# ---- ops provided by the conv / pooling families ---------------------------------------
def _forward(name):
    def fn(*args, **kwargs):
        return _need(name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"torch.nn.functional.{name} (the registered {name!r} op)."
    return fn


conv1d = _forward("conv1d")
conv2d = _forward("conv2d")
conv_transpose2d = _forward("conv_transpose2d")
max_pool2d = _forward("max_pool2d")
avg_pool2d = _forward("avg_pool2d")
adaptive_avg_pool2d = _forward("adaptive_avg_pool2d")
pad = _forward("pad")
interpolate = _forward("interpolate")

# composites of registered ops (framework/ops/composites.py)
from ..ops.composites import (avg_pool1d, cosine_similarity, embedding_bag, fold, huber_loss,  # noqa: E402,F401
                              kl_div, max_pool1d, pixel_shuffle, pixel_unshuffle, unfold)


def __getattr__(name: str):
    """Any other torch.nn.functional name that an op family registers (PEP 562)."""
    fn = _op(name) if not name.startswith("__") else None
    if fn is None:
        raise AttributeError(f"module 'framework.nn.functional' has no attribute '{name}'")
    return fn
