"""Import of models written in torch and exported with torch.onnx.export (the TorchScript
exporter, dynamic batch): the imported framework module must match onnxruntime on the same
file at two batch sizes, and re-exporting the imported graph must give an ONNX file that
onnxruntime runs to the same outputs (framework -> ONNX -> framework round trip)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import framework as fw
from framework.ops.registry import REGISTRY
from tests.onnx.helpers import assert_close, check_model, run_ort

torch.manual_seed(0)


def _export_torch(model, x, path, opset=17):
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                          opset_version=opset)


def _needs(*ops):
    missing = [o for o in ops if o not in REGISTRY]
    if missing:
        pytest.skip(f"framework ops {missing} are not available yet")


class Block(nn.Module):
    """A ResNet basic block (conv-bn-relu-conv-bn + identity or 1x1 projection)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNetish(nn.Module):
    """ResNet-18's structure at toy width: stem, two stages of basic blocks, pool, fc."""

    def __init__(self):
        super().__init__()
        self.norm_in = nn.BatchNorm2d(3)  # a BatchNormalization that no conv absorbs
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layers = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        y = self.layers(self.stem(self.norm_in(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class UpsampleNet(nn.Module):
    """Encoder-decoder with nn.Upsample (nearest and bilinear), padding and average pooling."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.dec = nn.Conv2d(6, 2, 3)

    def forward(self, x):
        y = self.up1(self.enc(x))
        y = nn.functional.pad(y, (1, 1, 1, 1), mode="reflect")
        return torch.sigmoid(self.up2(self.dec(y)))


class Conv1dNet(nn.Module):
    """1-d convs and pooling, a view on the dynamic batch, log-softmax."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(4, 6, 3, padding=1)
        self.p = nn.MaxPool1d(2)
        self.fc = nn.Linear(6 * 5, 3)

    def forward(self, x):
        y = self.p(torch.relu(self.c(x)))
        return torch.log_softmax(self.fc(y.view(y.size(0), -1)), dim=-1)


class DeconvNet(nn.Module):
    """Transposed convolution, leaky ReLU, bilinear upsampling with align_corners, clamp."""

    def __init__(self):
        super().__init__()
        self.d = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
        self.up = nn.Upsample(size=(20, 20), mode="bilinear", align_corners=True)

    def forward(self, x):
        return torch.clamp(self.up(nn.functional.leaky_relu(self.d(x), 0.2)), -1.0, 1.0)


def _randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                                  nn.Linear(16, 3)), (6,), ()),
    "resnet": (lambda: _randomize_bn(ResNetish()), (3, 12, 12), ("conv2d", "batch_norm", "max_pool2d")),
    "upsample": (UpsampleNet, (3, 8, 8), ("conv2d", "avg_pool2d", "interpolate", "pad")),
    "conv1d": (Conv1dNet, (4, 10), ("conv2d", "max_pool2d", "log_softmax")),
    "deconv": (DeconvNet, (3, 5, 5), ("conv_transpose2d", "interpolate", "leaky_relu", "clamp")),
    "transformer": (lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True), 2,
        enable_nested_tensor=False), (5, 16), ("softmax", "layer_norm")),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_torch_model_imports_and_matches_onnxruntime(name, tmp_path):
    make, shape, ops = MODELS[name]
    _needs(*ops)
    path = tmp_path / f"{name}.onnx"
    _export_torch(make(), torch.randn(2, *shape), path)
    module = fw.onnx.load(path)
    optimized = fw.onnx.load(path, optimize=True)
    graph = fw.onnx.to_graph(path)
    assert str(graph.inputs[0].spec.shape[0]) == "N", "the batch must stay symbolic"
    rng = np.random.default_rng(0)
    for batch in (2, 3):
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        (expected,) = run_ort(path, {"x": x})
        assert_close(module(x), expected, what=f"{name} batch {batch}", tol=(1e-4, 1e-5))
        assert_close(optimized(x), expected, what=f"{name} optimized, batch {batch}", tol=(1e-4, 1e-5))


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_framework_onnx_framework(name, tmp_path):
    make, shape, ops = MODELS[name]
    _needs(*ops)
    src, dst = tmp_path / "torch.onnx", tmp_path / "framework.onnx"
    _export_torch(make(), torch.randn(2, *shape), src)
    graph = fw.onnx.to_graph(src)
    fw.onnx.export(graph, None, dst, input_names=["x"], output_names=["y"])
    check_model(dst)
    again = fw.onnx.load(dst)
    rng = np.random.default_rng(1)
    for batch in (1, 4):
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        (expected,) = run_ort(src, {"x": x})
        (got,) = run_ort(dst, {"x": x})
        assert_close(got, expected, what=f"{name} re-exported, batch {batch}", tol=(1e-4, 1e-5))
        assert_close(again(x), expected, what=f"{name} re-imported, batch {batch}", tol=(1e-4, 1e-5))


@pytest.mark.parametrize("opset", [13, 18])
def test_mlp_imports_at_other_opsets(opset, tmp_path):
    path = tmp_path / "mlp.onnx"
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 2), nn.Softmax(-1))
    needs = ["erf"] + (["layer_norm", "softmax"])
    _needs(*needs)
    _export_torch(model, torch.randn(2, 4), path, opset=opset)
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    (expected,) = run_ort(path, {"x": x})
    assert_close(fw.onnx.load(path)(x), expected, what=f"opset {opset}", tol=(1e-4, 1e-5))


def test_shape_subgraphs_fold_into_symbolic_reshape(tmp_path):
    """x.view(x.size(0), -1) exports as Shape->Gather->Unsqueeze->Concat->Reshape; the import
    must fold it into one reshape with the symbolic target (N, 12)."""

    class Flat(nn.Module):
        def forward(self, x):
            return torch.relu(x.view(x.size(0), -1))

    path = tmp_path / "flat.onnx"
    _export_torch(Flat(), torch.randn(2, 3, 4), path)
    graph = fw.onnx.to_graph(path)
    calls = [n.target for n in graph.nodes if n.op == "call"]
    assert calls == ["reshape", "relu"], str(graph)
    assert [str(d) for d in graph.calls("reshape")[0].attrs[0]] == ["N", "12"]
    assert not [n for n in graph.nodes if n.op == "const"], str(graph)
    x = np.random.default_rng(3).standard_normal((5, 3, 4)).astype(np.float32)
    assert_close(fw.onnx.load(path)(x), np.maximum(x.reshape(5, 12), 0), what="flat")


class TinyGPT(nn.Module):
    """Token embedding, pre-norm causal self-attention written out (triu mask, masked_fill)."""

    def __init__(self, d=16, heads=2, vocab=50):
        super().__init__()
        self.heads = heads
        self.emb, self.ln = nn.Embedding(vocab, d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, idx):
        x = self.emb(idx)
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / (C // self.heads) ** 0.5
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        y = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return x + self.out(y.transpose(1, 2).reshape(B, T, C))


def test_gpt_with_dynamic_batch_and_sequence(tmp_path):
    _needs("embedding", "layer_norm", "softmax", "triu")
    path = tmp_path / "gpt.onnx"
    model = TinyGPT().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randint(0, 50, (2, 7)),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch", 1: "seq"}}, opset_version=17)
    module = fw.onnx.load(path)
    rng = np.random.default_rng(4)
    for batch, seq in ((2, 7), (3, 4)):
        x = rng.integers(0, 50, (batch, seq)).astype(np.int64)
        (expected,) = run_ort(path, {"x": x})
        assert_close(module(x), expected, what=f"gpt {batch}x{seq}", tol=(1e-4, 1e-5))


def test_imported_model_saves_to_the_framework_model_file(tmp_path):
    try:
        from framework.jit import runtime  # noqa: F401
    except ImportError:
        pytest.skip("the C++ runtime is not built")
    make, shape, ops = MODELS["upsample"]
    _needs(*ops)
    src, dst = tmp_path / "m.onnx", tmp_path / "m.fwm"
    _export_torch(make(), torch.randn(2, *shape), src)
    fw.onnx.load(src).save(dst)
    loaded = fw.jit.load(dst)
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
        (expected,) = run_ort(src, {"x": x})
        out = loaded(fw.from_numpy(x))
        assert_close(out[0] if isinstance(out, (list, tuple)) else out, expected,
                     what=f"saved model, batch {batch}", tol=(1e-4, 1e-5))
