"""torch-style repr of tensors: tensor([...], dtype=..., requires_grad=True)."""

from __future__ import annotations

import numpy as np


def _format_array(a: np.ndarray, indent: int) -> str:
    if a.dtype == np.bool_:
        return np.array2string(a, separator=", ", prefix=" " * indent,
                               formatter={"bool": lambda v: "True" if v else "False"})
    if a.dtype.kind == "f":
        finite = a[np.isfinite(a)] if a.size else a
        if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
            fmt = lambda v: (f"{v:.0f}." if np.isfinite(v) else str(v).replace("inf", "inf"))  # noqa: E731
        else:
            big = finite.size and (np.abs(finite).max() >= 1e8 or
                                   (np.abs(finite[finite != 0]).min() < 1e-4 if np.any(finite != 0) else False))
            fmt = (lambda v: f"{v:.4e}") if big else (lambda v: f"{v:.4f}")
        return np.array2string(a, separator=", ", prefix=" " * indent,
                               formatter={"float_kind": fmt}, threshold=1000, edgeitems=3)
    return np.array2string(a, separator=", ", prefix=" " * indent, threshold=1000, edgeitems=3)


def tensor_repr(t) -> str:
    a = t._data
    body = _format_array(a, len("tensor("))
    if a.size == 0:
        body = "[]" if a.ndim == 1 else body
    extras = []
    name = t.dtype.name
    if name not in ("float32", "int64", "bool") or (a.size == 0 and name != "float32"):
        extras.append(f"dtype=framework.{name}")
    if a.size == 0 and a.ndim != 1:
        extras.insert(0, f"size={tuple(a.shape)}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
