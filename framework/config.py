"""Debug knobs, all in one place (read once from the environment at import; tests and
tools may also assign the attributes directly).

  FW_PASS_LIMIT    int: the pass manager stops after this many pass applications
                   (counting every pass run, changed or not) -- bisect a bad pass by
                   lowering it until the output is right. Default: unlimited.
  FW_JIT_EXECUTOR  "auto" | "interpreter" | "runtime": what runs a traced module. "auto"
                   uses the C++ runtime (framework.jit.runtime) when it is available and
                   the reference interpreter otherwise.
  FW_JIT_VERBOSE   1: the pass manager prints each pass that changed the graph.
"""

from __future__ import annotations

import os


def _int_env(name: str, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


pass_limit = _int_env("FW_PASS_LIMIT", None)
jit_executor = os.environ.get("FW_JIT_EXECUTOR", "auto")
jit_verbose = bool(_int_env("FW_JIT_VERBOSE", 0))
