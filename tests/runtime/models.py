"""Small models for the runtime tests, as recorded graphs (tests/runtime/graphs.py), with the
batch made symbolic where the test needs other batch sizes."""

from __future__ import annotations

import numpy as np

import framework as fw
from framework.jit.ir import Graph, TensorSpec as Spec
from framework.jit.symbolic import SymInt
from tests.runtime.graphs import record


def mlp_graph(batch_sym: bool = True, seed: int = 0):
    """x[N,16] -> linear(32) -> relu -> linear(32) -> tanh -> reshape(N, 4, 8) -> sum(-1) -> [N,4]."""
    rng = np.random.default_rng(seed)
    g = Graph()
    n = SymInt.input_dim(0, 0) if batch_sym else 3
    x = g.add_input("x", Spec((n, 16), fw.float32))
    w1 = g.add_const(rng.standard_normal((32, 16)).astype(np.float32))
    b1 = g.add_const(rng.standard_normal(32).astype(np.float32))
    w2 = g.add_const(rng.standard_normal((32, 32)).astype(np.float32) * 0.2)
    h = g.call("linear", [x, w1, b1], (), specs=[Spec((n, 32), fw.float32)]).output
    h = g.call("relu", [h], (), specs=[Spec((n, 32), fw.float32)]).output
    h = g.call("linear", [h, w2, None], (), specs=[Spec((n, 32), fw.float32)]).output
    h = g.call("tanh", [h], (), specs=[Spec((n, 32), fw.float32)]).output
    h = g.call("reshape", [h], ((n, 4, 8),), specs=[Spec((n, 4, 8), fw.float32)]).output
    y = g.call("sum", [h], ((2,), False), specs=[Spec((n, 4), fw.float32)]).output
    g.set_output([y])
    return g


def mlp_eager(g, x: np.ndarray) -> np.ndarray:
    """The same computation as mlp_graph, eagerly (weights read from the graph's constants)."""
    c = [n.const for n in g.nodes if n.op == "const"]
    t = fw.from_numpy(x)
    h = fw.relu(fw.linear(t, fw.from_numpy(c[0]), fw.from_numpy(c[1])))
    h = fw.tanh(fw.linear(h, fw.from_numpy(c[2])))
    return h.reshape(x.shape[0], 4, 8).sum(2).numpy()


def chain_graph(batch: int = 2, width: int = 64, depth: int = 8, seed: int = 0):
    """A CNN-like chain: each block is linear -> relu -> add(residual) over [batch, width*k]."""
    rng = np.random.default_rng(seed)

    def fn(x):
        h = x
        for _ in range(depth):
            w = fw.from_numpy((rng.standard_normal((width, width)) * 0.1).astype(np.float32))
            y = fw.relu(fw.linear(h, w))
            h = y + h
        return h * 0.5

    return record(fn, [rng.standard_normal((batch, width)).astype(np.float32)])


def cnn_graph(batch: int = 2, channels: int = 8, size: int = 16, blocks: int = 3, seed: int = 0):
    """A ResNet-style CNN: conv stem, `blocks` residual blocks (conv-relu-conv + skip, relu),
    max pool, global average pool, flatten, linear head."""
    rng = np.random.default_rng(seed)

    def param(*shape):
        return fw.from_numpy((rng.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32))

    def fn(x):
        h = fw.relu(fw.conv2d(x, param(channels, 3, 3, 3), param(channels)[0:channels] * 0.0, padding=1))
        for _ in range(blocks):
            y = fw.relu(fw.conv2d(h, param(channels, channels, 3, 3), padding=1))
            y = fw.conv2d(y, param(channels, channels, 3, 3), padding=1)
            h = fw.relu(y + h)
        h = fw.max_pool2d(h, 2)
        h = fw.adaptive_avg_pool2d(h, 1)
        h = h.reshape(h.shape[0], channels)
        return fw.linear(h, param(10, channels), param(10))

    return record(fn, [rng.standard_normal((batch, 3, size, size)).astype(np.float32)])
