"""Graph mode: trace an eager model into a Graph (ir.py), optimize it (passes/), run it with
the reference interpreter (interpreter.py) or the C++ runtime (runtime.py)."""

from __future__ import annotations

from .ir import Graph, Node, TensorSpec, Value  # noqa: F401
from .symbolic import SymInt, sym_max, sym_min  # noqa: F401
