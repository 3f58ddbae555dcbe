"""Whole models built with framework.nn, traced in eval mode: the traced graph and the
optimized graph match eager at the traced batch and at batch 1 and 7, and verify() agrees
node by node."""

import warnings

import numpy as np
import pytest

import framework as fw

nn = pytest.importorskip("framework.nn")


class CNN(nn.Module):
    """ResNet-style: conv-bn-relu, a residual conv-bn block, pooling, a linear head."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 5)

    def forward(self, x):
        h = fw.relu(self.b1(self.c1(x)))
        h = fw.relu(self.b2(self.c2(h)) + h)
        return self.fc(self.pool(h).flatten(1))


class GPT(nn.Module):
    """One pre-norm transformer block with causal attention, GPT-style."""

    def __init__(self, d=16, heads=2, T=6, vocab=11):
        super().__init__()
        self.d, self.heads = d, heads
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(fw.randn(T, d) * 0.1)
        self.ln1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln2, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        B, T = idx.shape
        x = self.emb(idx) + self.pos[:T]
        qkv = self.qkv(self.ln1(x))
        hd = self.d // self.heads
        q, k, v = (qkv.narrow(-1, i * self.d, self.d).reshape(B, T, self.heads, hd).transpose(1, 2)
                   for i in range(3))
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, -1))
        x = x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))
        return self.head(x)


class LSTMTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.out = nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.out(y)


def _cases():
    fw.manual_seed(0)
    return [
        pytest.param(CNN, lambda b: fw.randn(b, 3, 6, 6), id="cnn"),
        pytest.param(GPT, lambda b: fw.randint(0, 11, (b, 6)), id="gpt"),
        pytest.param(LSTMTagger, lambda b: fw.randn(b, 5, 4), id="lstm"),
    ]


@pytest.mark.parametrize("cls,make", _cases())
def test_model_traced_matches_eager(cls, make):
    fw.manual_seed(0)
    model = cls().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", fw.jit.TracerWarning)  # a sound trace: no warnings
        traced = fw.jit.trace(model, (make(4),))
    opt = traced.optimize()
    assert len(opt.graph.calls()) < len(traced.graph.calls())
    for b in (4, 1, 7):
        x = make(b)
        with fw.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(traced(x).numpy(), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(opt(x).numpy(), want, rtol=1e-4, atol=1e-5)
    report = fw.jit.verify(model, (make(3),))
    assert report.ok, str(report)


def test_cnn_batch_norm_is_folded_into_the_convs():
    fw.manual_seed(0)
    model = CNN().eval()
    x = fw.randn(2, 3, 6, 6)
    opt = fw.jit.trace(model, (x,)).optimize()
    with fw.no_grad():
        np.testing.assert_allclose(opt(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    targets = [n.target for n in opt.graph.calls()]
    assert targets.count("conv2d") + targets.count("conv2d_act") == 2
    assert "batch_norm" not in targets and "rsqrt" not in targets
    assert not [t for t in targets if t in ("sub", "mul", "add")]
    # the first conv: batch norm folded into its weights, relu fused into the kernel
    assert targets[0] == "conv2d_act" and opt.graph.calls()[0].attrs[-1] == "relu"


def test_train_mode_batch_norm_warns():
    model = CNN().train()
    with pytest.warns(fw.jit.TracerWarning):
        fw.jit.trace(model, (fw.randn(2, 3, 6, 6),), check_trace=False)
