"""nn.init: in-place parameter initializers with torch's names, fan computation and gains.
Random draws come from framework's generator (registered "uniform"/"normal" ops), so values
differ from torch's for the same seed; distributions and bounds are the same."""

from __future__ import annotations

import math

from .. import autograd as AG
from ..creation import _normal_op, _uniform_op, default_generator
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    linear_fns = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    ]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _fill_from(tensor: Tensor, src: Tensor) -> Tensor:
    from ..ops.dispatch import _copy_into

    with AG.no_grad():
        _copy_into(tensor, src)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fills tensor with U(a, b) samples."""
    g = generator or default_generator
    return _fill_from(
        tensor,
        _uniform_op(tuple(tensor.shape), g.next_seed(), float(a), float(b), tensor.dtype.code),
    )


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fills tensor with N(mean, std^2) samples."""
    g = generator or default_generator
    return _fill_from(
        tensor,
        _normal_op(tuple(tensor.shape), g.next_seed(), float(mean), float(std), tensor.dtype.code),
    )


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator=None,
) -> Tensor:
    """Fills tensor with N(mean, std^2) samples redrawn until they lie in [a, b]."""
    from ..ops.elementwise import logical_or, where

    g = generator or default_generator
    shape, code = tuple(tensor.shape), tensor.dtype.code
    with AG.no_grad():
        out = _normal_op(shape, g.next_seed(), float(mean), float(std), code)
        for _ in range(1000):
            bad = logical_or(out < a, out > b)
            if not bool(bad.any()):
                break
            out = where(bad, _normal_op(shape, g.next_seed(), float(mean), float(std), code), out)
        else:
            raise ValueError(
                f"trunc_normal_: [{a}, {b}] holds too little mass of N({mean}, {std}^2)"
            )
    return _fill_from(tensor, out)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fills tensor with val."""
    with AG.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    """Fills tensor with 1."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fills tensor with 0."""
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fills a 2-D tensor with the identity matrix."""
    from ..creation import eye

    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill_from(tensor, eye(tensor.shape[0], tensor.shape[1], dtype=tensor.dtype))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fills a {3,4,5}-D conv weight with the Dirac delta (identity convolution)."""
    from ..creation import zeros

    nd = tensor.ndim
    if nd not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tuple(tensor.shape)
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    with AG.no_grad():
        z = zeros(sizes, dtype=tensor.dtype)
        for gi in range(groups):
            for d in range(min_dim):
                idx = (gi * out_per_group + d, d) + tuple(s // 2 for s in sizes[2:])
                z[idx] = 1.0
    return _fill_from(tensor, z)


def _calculate_fan_in_and_fan_out(tensor: Tensor):
    dimensions = tensor.ndim
    if dimensions < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    num_input_fmaps = tensor.shape[1]
    num_output_fmaps = tensor.shape[0]
    receptive_field_size = 1
    for s in tensor.shape[2:]:
        receptive_field_size *= s
    return num_input_fmaps * receptive_field_size, num_output_fmaps * receptive_field_size


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan)."""
    if 0 in tuple(tensor.shape):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    if 0 in tuple(tensor.shape):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix, scaled by gain: the Q of a QR factorization of normal
    samples with R's diagonal signs folded in (torch's construction)."""
    from ..ops.lapack import linalg_qr
    from ..ops.shape import reshape

    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    g = generator or default_generator
    with AG.no_grad():
        a = _normal_op((rows, cols), g.next_seed(), 0.0, 1.0, tensor.dtype.code)
        if rows < cols:
            a = a.t()
        q, r = linalg_qr(a)
        q = q * r.diagonal().sign()
        if rows < cols:
            q = q.t()
        out = reshape(q.contiguous() * gain, tuple(tensor.shape))
    return _fill_from(tensor, out)
