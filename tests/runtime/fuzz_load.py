"""Subprocess body of the corrupted-file tests: loads and runs each model file given on the
command line. A clean error is fine; the process must never crash, hang or blow up memory.
Prints one line per file: "ok", or "error: <message>". With --harness first, each file is run
as the libFuzzer target does (csrc/fuzz/fuzz_model_file.cpp): fixed dims as stored, symbolic
dims 2, zero inputs, a 16 MiB memory limit."""

from __future__ import annotations

import sys

import numpy as np

from framework.jit import runtime as rt


def main(paths, harness=False):
    for path in paths:
        try:
            m = rt.load(path, max_memory=1 << 24 if harness else 1 << 26)
            if harness:
                shapes = [[2 if d < 0 else d for d in spec[1]] for spec in m.input_specs()]
                arrays = [np.zeros(s, dtype=spec[2].np) for s, spec in zip(shapes, m.input_specs())]
            else:
                shapes = [[3 if d < 0 else min(d, 64) for d in spec[1]] for spec in m.input_specs()]
                arrays = [np.ones(s, dtype=spec[2].np) for s, spec in zip(shapes, m.input_specs())]
            m.run(arrays)
            m.memory_plan(shapes)
            print("ok", flush=True)
        except (RuntimeError, ValueError, TypeError, KeyError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            print("error:", msg, flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main([a for a in args if a != "--harness"], harness="--harness" in args)
