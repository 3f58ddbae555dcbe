"""dtypes: framework's element types and torch's type-promotion rules.

Codes match csrc/core/dtype.h (and the model file); never renumber them.
This module must not import Tensor.
"""

from __future__ import annotations

import numpy as np


class dtype:
    """An element type, like torch.dtype (``fw.float32``, ``fw.int64``, ...)."""

    __slots__ = ("name", "code", "np", "is_floating_point", "itemsize", "_rank")

    def __init__(self, name: str, code: int, np_dtype, is_float: bool, rank: int):
        self.name = name
        self.code = code
        self.np = np.dtype(np_dtype)
        self.is_floating_point = is_float
        self.itemsize = self.np.itemsize
        self._rank = rank  # order within the promotion lattice

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))

    @property
    def is_signed(self) -> bool:
        return self.name != "bool"


float32 = dtype("float32", 0, np.float32, True, 4)
float64 = dtype("float64", 1, np.float64, True, 5)
int32 = dtype("int32", 2, np.int32, False, 2)
int64 = dtype("int64", 3, np.int64, False, 3)
bool_ = dtype("bool", 4, np.bool_, False, 0)

ALL = (float32, float64, int32, int64, bool_)
BY_CODE = {d.code: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}
FLOATING = (float32, float64)
INTEGRAL = (int32, int64)

_default_float = [float32]


def _by_name(name: str) -> dtype:
    return {d.name: d for d in ALL}[name]


def get_default_dtype() -> dtype:
    """The dtype of float tensors created from Python floats (float32 unless changed)."""
    return _default_float[0]


def set_default_dtype(d: dtype) -> None:
    """Sets the default floating dtype (float32 or float64)."""
    if d not in FLOATING:
        raise TypeError(f"only floating dtypes can be the default, got {d}")
    _default_float[0] = d


def from_numpy_dtype(npd) -> dtype:
    """Maps a numpy dtype to a framework dtype, raising TypeError for unsupported ones."""
    npd = np.dtype(npd)
    d = _BY_NP.get(npd)
    if d is not None:
        return d
    if npd.kind == "f" and npd.itemsize == 2:
        raise TypeError("float16 arrays are not supported (use float32)")
    if npd.kind in "iu":
        return int64
    raise TypeError(f"unsupported numpy dtype {npd} (supported: float32, float64, int32, int64, bool)")


def _category(d: dtype) -> int:
    return 2 if d.is_floating_point else (0 if d is bool_ else 1)


def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype both a and b convert to safely (torch.promote_types)."""
    if a is b:
        return a
    return a if a._rank > b._rank else b


def scalar_dtype(value) -> dtype:
    """The dtype a Python scalar has in type promotion."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    return get_default_dtype()


def result_type(tensor_dtypes, zero_dim_dtypes=(), scalar_values=()) -> dtype:
    """torch's promotion: dimensioned tensors > zero-dim tensors > Python scalars, where a
    lower tier only matters if its category (bool < int < float) is higher."""
    best = None
    for tier in (tensor_dtypes, zero_dim_dtypes, [scalar_dtype(v) for v in scalar_values]):
        tier_best = None
        for d in tier:
            tier_best = d if tier_best is None else promote_types(tier_best, d)
        if tier_best is None:
            continue
        if best is None:
            best = tier_best
        elif _category(tier_best) > _category(best):
            best = tier_best if tier is tensor_dtypes or tier is zero_dim_dtypes else (
                get_default_dtype() if tier_best.is_floating_point else tier_best
            )
    return best if best is not None else get_default_dtype()
