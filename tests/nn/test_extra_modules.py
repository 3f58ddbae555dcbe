"""The modules of nn/modules/extra.py against torch's: forward values and gradients
(inputs and parameters), float64, after copying torch's parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw

rng = np.random.default_rng(0)


def a(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape)


def sign(*shape):
    return np.where(rng.random(shape) > 0.5, 1.0, -1.0)


# name -> (constructor args, kwargs, inputs as arrays, indices of differentiable inputs)
CASES = {
    "PReLU": ((), {}, [a(2, 3, 4)], [0]),
    "PReLU-channels": ((3,), {}, [a(2, 3, 4)], [0]),
    "SELU": ((), {}, [a(3, 4)], [0]),
    "CELU": ((0.7,), {}, [a(3, 4)], [0]),
    "GLU": ((1,), {}, [a(3, 4)], [0]),
    "Softmin": ((1,), {}, [a(3, 4)], [0]),
    "Softmax2d": ((), {}, [a(2, 3, 2, 2)], [0]),
    "Threshold": ((0.3, -1.0), {}, [a(3, 4)], [0]),
    "Hardshrink": ((0.6,), {}, [a(3, 4)], [0]),
    "Softshrink": ((0.6,), {}, [a(3, 4)], [0]),
    "Tanhshrink": ((), {}, [a(3, 4)], [0]),
    "ZeroPad2d": (((1, 2, 0, 1),), {}, [a(1, 2, 3, 3)], [0]),
    "ConstantPad1d": ((2, 3.5), {}, [a(2, 3, 4)], [0]),
    "ReflectionPad2d": ((1,), {}, [a(1, 2, 3, 3)], [0]),
    "ReplicationPad1d": (((2, 1),), {}, [a(2, 3, 4)], [0]),
    "Upsample": ((), {"scale_factor": 2, "mode": "bilinear", "align_corners": False}, [a(1, 2, 3, 3)], [0]),
    "UpsamplingNearest2d": ((), {"scale_factor": 2}, [a(1, 2, 3, 3)], [0]),
    "InstanceNorm2d": ((3,), {"affine": True}, [a(2, 3, 4, 4)], [0]),
    "InstanceNorm1d": ((3,), {}, [a(2, 3, 5)], [0]),
    "RMSNorm": ((4,), {}, [a(2, 3, 4)], [0]),
    "RMSNorm-eps": (((3, 4),), {"eps": 1e-3}, [a(2, 3, 4)], [0]),
    "MarginRankingLoss": ((), {"margin": 0.3}, [a(5), a(5), sign(5)], [0, 1]),
    "HingeEmbeddingLoss": ((), {"margin": 0.8}, [a(5), sign(5)], [0]),
    "SoftMarginLoss": ((), {}, [a(5), sign(5)], [0]),
    "CosineEmbeddingLoss": ((), {"margin": 0.2}, [a(4, 3), a(4, 3), sign(4)], [0, 1]),
    "TripletMarginLoss": ((), {"margin": 0.5, "swap": True}, [a(4, 3), a(4, 3), a(4, 3)], [0, 1, 2]),
    "MultiLabelSoftMarginLoss": ((), {}, [a(3, 4), (a(3, 4) > 0).astype(float)], [0]),
    "GaussianNLLLoss": ((), {"full": True}, [a(4, 2), a(4, 2), a(4, 2, low=0.1, high=2.0)], [0, 2]),
    "PoissonNLLLoss": ((), {"full": True}, [a(5), a(5, low=0.0, high=4.0)], [0]),
    "PoissonNLLLoss-rate": ((), {"log_input": False}, [a(5, low=0.1, high=3.0), a(5, low=0.0, high=4.0)], [0]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_module_matches_torch(name):
    args, kw, inputs, diff = CASES[name]
    cls = name.split("-")[0]
    tm = getattr(torch.nn, cls)(*args, **kw).double()
    fm = getattr(fw.nn, cls)(*args, **kw)
    for (n, tp), (n2, fp) in zip(tm.named_parameters(), fm.named_parameters()):
        assert n == n2
        with torch.no_grad():
            tp.uniform_(0.5, 1.5)
        fp.data = fw.from_numpy(tp.detach().numpy().copy())
    ts = [torch.tensor(x, requires_grad=i in diff) for i, x in enumerate(inputs)]
    fs = [fw.tensor(x).requires_grad_(i in diff) for i, x in enumerate(inputs)]
    want, got = tm(*ts), fm(*fs)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.uniform(0.5, 1.5, tuple(want.shape))
    (want * torch.tensor(w)).sum().backward()
    (got * fw.tensor(w)).sum().backward()
    for i in diff:
        np.testing.assert_allclose(fs[i].grad.numpy(), ts[i].grad.numpy(), rtol=1e-7, atol=1e-10)
    for tp, fp in zip(tm.parameters(), fm.parameters()):
        np.testing.assert_allclose(fp.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_channel_dropout_and_gumbel_softmax():
    fw.manual_seed(0)
    x = fw.ones(64, 8, 3, 3)
    y = fw.nn.Dropout2d(0.25)(x).numpy()
    per_channel = y.reshape(64, 8, 9)
    assert np.all((per_channel == 0).all(-1) | (np.abs(per_channel - 1 / 0.75) < 1e-6).all(-1))
    assert 0.15 < (per_channel == 0).all(-1).mean() < 0.35
    m = fw.nn.Dropout1d(0.5).eval()
    assert m(fw.ones(2, 3, 4)).tolist() == fw.ones(2, 3, 4).tolist()
    with pytest.raises(RuntimeError, match="3D or 4D"):
        fw.nn.functional.dropout2d(fw.ones(2, 3), 0.5)
    logits = fw.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    soft = fw.nn.functional.gumbel_softmax(logits, tau=0.5)
    assert abs(float(soft.sum()) - 1.0) < 1e-6
    hard = fw.nn.functional.gumbel_softmax(logits, hard=True)
    assert sorted(hard.detach().tolist()[0]) == [0.0, 0.0, 1.0]
    (hard * fw.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


@pytest.mark.parametrize("name,kw", [("RNN", {"num_layers": 2, "bidirectional": True}),
                                     ("RNN", {"nonlinearity": "relu", "batch_first": True}),
                                     ("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                     ("LSTMCell", {}), ("GRUCell", {"bias": False})])
def test_rnn_and_cells_match_torch(name, kw):
    tm = getattr(torch.nn, name)(4, 5, **kw).double()
    fm = getattr(fw.nn, name)(4, 5, **kw).double()
    assert [n for n, _ in tm.named_parameters()] == [n for n, _ in fm.named_parameters()]
    fm.load_state_dict({k: fw.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    cell = name.endswith("Cell")
    x = a(3, 4) if cell else a(3, 2, 4)
    tx, fx = torch.tensor(x, requires_grad=True), fw.tensor(x).requires_grad_(True)
    if name == "LSTMCell":
        h, c = a(3, 5), a(3, 5)
        want = tm(tx, (torch.tensor(h), torch.tensor(c)))
        got = fm(fx, (fw.tensor(h), fw.tensor(c)))
        want, got = want[0] + 2 * want[1], got[0] + 2 * got[1]
    else:
        want, got = tm(tx), fm(fx)
        if not cell:
            want, got = want[0] * 1 + want[1].sum() * 0.5, got[0] * 1 + got[1].sum() * 0.5
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    want.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    for (n, tp), (_, fp) in zip(tm.named_parameters(), fm.named_parameters()):
        np.testing.assert_allclose(fp.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=n)
    out = fm(fw.tensor(x[0]))  # unbatched
    out = out[0] if name == "LSTMCell" or not cell else out
    assert tuple(out.shape) == ((5,) if cell else (2, 10 if kw.get("bidirectional") else 5))
