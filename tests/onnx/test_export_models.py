"""Whole framework models traced with fw.jit.trace (symbolic batch), optionally optimized by
the graph passes (fused ops), exported to ONNX and run in onnxruntime at the traced batch
and another batch size: outputs must match framework eager."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from tests.onnx.helpers import assert_close, check_model, run_ort


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

    def forward(self, x):
        y = self.pool(fw.relu(self.bn(self.c1(x))))
        return self.head(fw.relu(self.c2(y)) + y)


class GPTBlock(nn.Module):
    """A pre-norm decoder block with causal self-attention and a GELU MLP."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        B, T, C = x.shape
        h = self.qkv(self.ln1(x))
        q, k, v = h[:, :, :C], h[:, :, C:2 * C], h[:, :, 2 * C:]
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))


class RNNHead(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def _init_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(fw.tensor(np.linspace(-0.3, 0.3, m.num_features).astype(np.float32)))
            m.running_var.copy_(fw.tensor(np.linspace(0.5, 1.5, m.num_features).astype(np.float32)))
    return model


MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.GELU(),
                                  nn.Linear(16, 3), nn.Softmax(-1)), (6,)),
    "cnn": (lambda: _init_bn(CNN()), (3, 8, 8)),
    "gpt": (GPTBlock, (5, 16)),
    "lstm": (lambda: RNNHead(nn.LSTM), (4, 6)),
    "gru": (lambda: RNNHead(nn.GRU), (4, 6)),
}


@pytest.mark.parametrize("optimize", [False, True], ids=["traced", "optimized"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_export_matches_eager(name, optimize, tmp_path):
    make, shape = MODELS[name]
    fw.manual_seed(0)
    try:
        model = make().eval()
    except (AttributeError, KeyError, NotImplementedError) as e:
        pytest.skip(f"model not buildable yet: {e}")
    rng = np.random.default_rng(0)
    x = fw.tensor(rng.standard_normal((2, *shape)).astype(np.float32))
    with fw.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = fw.jit.trace(model, (x,))
        if optimize:
            traced = traced.optimize()
    path = tmp_path / f"{name}.onnx"
    fw.onnx.export(traced, (x,), path, input_names=["x"], output_names=["y"])
    check_model(path)
    for batch in (2, 3):
        xb = rng.standard_normal((batch, *shape)).astype(np.float32)
        with fw.no_grad():
            expected = model(fw.tensor(xb)).numpy()
        (got,) = run_ort(path, {"x": xb})
        assert_close(got, expected, what=f"{name} batch {batch}", tol=(1e-4, 1e-5))


def test_export_traces_a_plain_model(tmp_path):
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh()).eval()
    x = fw.randn(3, 4)
    path = tmp_path / "m.onnx"
    fw.onnx.export(model, (x,), path)
    check_model(path)
    xs = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    (got,) = run_ort(path, {"x": xs} if "x" in _input_names(path) else {_input_names(path)[0]: xs})
    with fw.no_grad():
        assert_close(got, model(fw.tensor(xs)).numpy(), what="plain model")


def _input_names(path):
    import onnx

    return [i.name for i in onnx.load(str(path)).graph.input]
