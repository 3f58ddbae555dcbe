"""Graph mode: trace an eager model into a Graph (ir.py), optimize it (passes/), run it with
the reference interpreter (interpreter.py) or the C++ runtime (runtime.py).

    traced = fw.jit.trace(model, (x,))     # TracedModule; traced.graph is the IR
    fast = traced.optimize()               # the passes, to a fixed point
    fw.jit.verify(model, (x,))             # eager vs graph vs optimized graph, node by node
"""

from __future__ import annotations

from .interpreter import Interpreter  # noqa: F401
from .ir import Graph, Node, TensorSpec, Value  # noqa: F401
from .module import LoadedModule, TracedModule, TracingCheckError, load, trace  # noqa: F401
from .symbolic import SymInt, sym_max, sym_min  # noqa: F401
from .tracer import TracerWarning  # noqa: F401
from .verify import VerifyReport, verify  # noqa: F401
