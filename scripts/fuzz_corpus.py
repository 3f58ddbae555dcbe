"""Writes the seed corpus of the model-file fuzzer (scripts/fuzz.sh): small real model files.

Whole models traced with fw.jit.trace (MLP, ResNet-style CNN, GPT block, LSTM; traced and
optimized, symbolic batch), the runtime tests' recorded graphs, and one graph per registered
op sample (so that every kernel the runtime can reach is in the corpus). Files larger than
--max-bytes are skipped (the fuzzer mutates structure, not megabytes of weights).

usage: python scripts/fuzz_corpus.py OUT_DIR [--max-bytes N]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import framework as fw  # noqa: E402
from framework.jit import runtime as rt  # noqa: E402


def model_graphs():
    """(name, graph) of small traced models, traced and optimized."""
    from tests.jit.test_models import CNN, GPT, LSTMTagger
    from tests.runtime.test_models import MLP

    cases = [("mlp", MLP, lambda b: fw.randn(b, 12)), ("cnn", CNN, lambda b: fw.randn(b, 3, 6, 6)),
             ("gpt", GPT, lambda b: fw.randint(0, 11, (b, 6))), ("lstm", LSTMTagger, lambda b: fw.randn(b, 5, 4))]
    for name, cls, make in cases:
        fw.manual_seed(0)
        traced = fw.jit.trace(cls().eval(), (make(2),))
        yield f"model-{name}", traced.graph
        yield f"model-{name}-opt", traced.optimize().graph


class BlockedCNN(fw.nn.Module):
    """16-channel convs, pools, a residual and a flatten: the runtime keeps its activations
    channel-blocked (csrc/runtime/layout.h), so the fuzzer reaches that pass and its kernels."""

    def __init__(self):
        super().__init__()
        self.c1 = fw.nn.Conv2d(3, 16, 3, padding=1)
        self.pool = fw.nn.MaxPool2d(2)
        self.c2 = fw.nn.Conv2d(16, 16, 3, padding=1)
        self.c3 = fw.nn.Conv2d(16, 16, 1, stride=2)
        self.fc = fw.nn.Linear(16 * 2 * 2, 4)

    def forward(self, x):
        a = self.pool(fw.relu(self.c1(x)))
        b = fw.relu(self.c2(a) + a)
        return self.fc(fw.flatten(self.c3(b), 1)) + fw.nn.functional.adaptive_avg_pool2d(b, 1).sum()


def blocked_graphs():
    """(name, graph) of a model whose load takes the blocked-layout path."""
    fw.manual_seed(0)
    traced = fw.jit.trace(BlockedCNN().eval(), (fw.randn(2, 3, 8, 8),), dynamic_dims={0: [0]})
    yield "model-blocked-cnn-opt", traced.optimize().graph


def runtime_test_graphs():
    """(name, graph) of the runtime tests' recorded models."""
    from tests.runtime.models import chain_graph, cnn_graph, mlp_graph

    yield "rt-mlp", mlp_graph()
    yield "rt-chain", chain_graph(width=8, depth=2)[0]
    yield "rt-cnn", cnn_graph(channels=4, size=6, blocks=1)[0]


def op_graphs():
    """(name, graph): each registered op's samples, recorded as a one-op graph."""
    from framework.ops.registry import REGISTRY
    from tests.runtime.graphs import record

    for op in sorted(REGISTRY.values(), key=lambda o: o.name):
        if op.samples is None or "inplace" in op.tags:
            continue
        for dt in op.dtypes:
            for i, s in enumerate(op.samples(dt)):
                try:
                    g = record(op.fn, s.args, s.kwargs)[0]
                except Exception as e:  # a sample the recorder cannot take: not a seed
                    print(f"skip {op.name}-{dt.name}-{i}: {type(e).__name__}: {e}", file=sys.stderr)
                    continue
                yield f"op-{op.name}-{dt.name}-{i}", g


def main(argv=None) -> int:
    """Writes the corpus; prints how many files and bytes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--max-bytes", type=int, default=1 << 16)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seen, total = set(), 0
    warnings.simplefilter("ignore")
    for source in (model_graphs, blocked_graphs, runtime_test_graphs, op_graphs):
        for name, graph in source():
            try:
                data = rt.serialize(graph)
            except Exception as e:
                print(f"skip {name}: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            digest = hashlib.sha1(data).hexdigest()
            if len(data) > args.max_bytes or digest in seen:
                continue
            seen.add(digest)
            (out / f"{name}.fwm").write_bytes(data)
            total += len(data)
    print(f"fuzz corpus: {len(seen)} model files, {total} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
