"""Op families. Importing this package registers every op (one module per family, found
automatically) and binds Tensor methods, in-place variants and operators from the OpDefs."""

from __future__ import annotations

import importlib
import pkgutil

from . import dispatch as _dispatch
from .registry import REGISTRY, OpDef, Sample, defop, get, register  # noqa: F401

_SKIP = {"registry", "dispatch", "_common", "indexing"}
for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name not in _SKIP:
        importlib.import_module(f"{__name__}.{_m.name}")


def _bind_methods():
    from ..tensor import Tensor

    for op in REGISTRY.values():
        if op.fn is None:
            continue
        for name in op.methods:
            if not hasattr(Tensor, name):
                setattr(Tensor, name, op.fn)
        for name in op.inplace:
            if not hasattr(Tensor, name):
                setattr(Tensor, name, _make_inplace(op, name))


def _make_inplace(op: OpDef, name: str):
    """self.<op>_(*args): runs the op's public function (which normalizes the arguments);
    its dispatch of `op` then writes into self instead of a new tensor."""

    def method(self, *args, **kwargs):
        prev = _dispatch.INPLACE.target
        _dispatch.INPLACE.target = (op, self)
        try:
            out = op.fn(self, *args, **kwargs)
        finally:
            _dispatch.INPLACE.target = prev
        if out is not self:
            raise RuntimeError(f"{name}: could not run in place")
        return self

    method.__name__ = name
    method.__doc__ = f"In-place version of {op.name}."
    return method
