"""Whole models (MLP, ResNet-style CNN, GPT block, LSTM) traced with fw.jit.trace, compiled
into the C++ runtime explicitly, match eager at the traced batch and other batches, before
and after the optimization passes, and through a saved model file."""

from __future__ import annotations

import numpy as np
import pytest

import framework as fw
from framework.jit import runtime as rt
from tests.jit.test_models import CNN, GPT, LSTMTagger

nn = pytest.importorskip("framework.nn")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 32), nn.Linear(32, 32), nn.Linear(32, 5)

    def forward(self, x):
        return self.fc3(fw.relu(self.fc2(fw.relu(self.fc1(x)))))


CASES = [
    pytest.param(MLP, lambda b: fw.randn(b, 12), id="mlp"),
    pytest.param(CNN, lambda b: fw.randn(b, 3, 6, 6), id="resnet_style_cnn"),
    pytest.param(GPT, lambda b: fw.randint(0, 11, (b, 6)), id="gpt"),
    pytest.param(LSTMTagger, lambda b: fw.randn(b, 5, 4), id="lstm"),
]


@pytest.mark.parametrize("cls,make", CASES)
def test_runtime_matches_eager_at_traced_and_other_batches(cls, make, tmp_path):
    fw.manual_seed(0)
    model = cls().eval()
    traced = fw.jit.trace(model, (make(4),))
    graphs = {"traced": traced.graph, "optimized": traced.optimize().graph}
    rt.save(graphs["optimized"], tmp_path / "m.fwm")
    runners = {k: rt.compile(g) for k, g in graphs.items()}
    runners["file"] = rt.load(tmp_path / "m.fwm")
    for b in (4, 1, 7):
        x = make(b)
        with fw.no_grad():
            want = model(x).numpy()
        for name, compiled in runners.items():
            got = compiled.run([x])[0].numpy()
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{name} at batch {b}")


def test_resnet_style_cnn_plan_reuses_memory():
    fw.manual_seed(0)
    traced = fw.jit.trace(CNN().eval(), (fw.randn(2, 3, 6, 6),))
    compiled = rt.compile(traced.graph)
    entries, peak = compiled.plan_entries([(8, 3, 6, 6)])
    total = sum(e["nbytes"] for e in entries if e["placement"] == "arena")
    assert peak <= 0.6 * total, compiled.memory_plan([(8, 3, 6, 6)])
