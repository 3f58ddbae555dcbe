"""Training trajectories against torch: the same model (weights copied from torch), the same
batches, 20 optimizer steps; the loss sequences must agree within 1e-4 relative. Also
optimizer state_dict round trips and loading torch optimizer state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from tests.nn.parity import needs_op

STEPS = 20


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)
    )


def cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


def transformer(lib):
    nn = lib.nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 8)
            layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            kw = {"enable_nested_tensor": False} if lib is torch else {}
            self.enc = nn.TransformerEncoder(layer, 2, **kw)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.enc(self.emb(x)).mean(1))

    return Tiny()


def batches(kind, n=STEPS):
    rng = np.random.default_rng(42)
    out = []
    for _ in range(n):
        if kind == "mlp":
            x = rng.standard_normal((8, 10)).astype(np.float32)
        elif kind == "cnn":
            x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
        else:
            x = rng.integers(0, 11, (4, 5)).astype(np.int64)
        out.append((x, rng.integers(0, 3, (x.shape[0],)).astype(np.int64)))
    return out


OPTIMIZERS = {
    "sgd_momentum_wd": lambda lib, p: lib.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda lib, p: lib.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_dampening": lambda lib, p: lib.optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.3),
    "sgd_plain": lambda lib, p: lib.optim.SGD(p, lr=0.1),
    "adam": lambda lib, p: lib.optim.Adam(p, lr=1e-2),
    "adam_amsgrad_wd": lambda lib, p: lib.optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda lib, p: lib.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "adamw_amsgrad": lambda lib, p: lib.optim.AdamW(p, lr=1e-2, amsgrad=True, betas=(0.8, 0.99)),
    "rmsprop": lambda lib, p: lib.optim.RMSprop(p, lr=1e-2),
    "rmsprop_centered_momentum": lambda lib, p: lib.optim.RMSprop(
        p, lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3
    ),
    "adagrad": lambda lib, p: lib.optim.Adagrad(
        p, lr=0.1, lr_decay=1e-3, weight_decay=1e-3, initial_accumulator_value=0.1
    ),
    "sgd_maximize": lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9, maximize=True),
    "adam_maximize": lambda lib, p: lib.optim.Adam(p, lr=1e-3, maximize=True),
    "adamax_wd": lambda lib, p: lib.optim.Adamax(p, lr=1e-2, weight_decay=1e-2),
    "nadam": lambda lib, p: lib.optim.NAdam(p, lr=1e-2),
    "nadam_decoupled_wd": lambda lib, p: lib.optim.NAdam(p, lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
    "radam": lambda lib, p: lib.optim.RAdam(p, lr=1e-2),
    "radam_wd": lambda lib, p: lib.optim.RAdam(p, lr=1e-2, weight_decay=1e-2),
    "adadelta": lambda lib, p: lib.optim.Adadelta(p, lr=1.0, weight_decay=1e-3),
    "adadelta_maximize": lambda lib, p: lib.optim.Adadelta(p, lr=0.5, maximize=True),
}


def train(lib, model, opt, data, steps=None):
    losses = []
    for x, y in data[:steps]:
        xs = torch.from_numpy(x) if lib is torch else fw.from_numpy(x.copy())
        ys = torch.from_numpy(y) if lib is torch else fw.from_numpy(y.copy())
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(xs), ys)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def pair(build):
    torch.manual_seed(0)
    t = build(torch)
    f = build(fw)
    f.load_state_dict(t.state_dict())
    return f, t


def compare(build, kind, opt_name):
    f, t = pair(build)
    data = batches(kind)
    lt = train(torch, t, OPTIMIZERS[opt_name](torch, t.parameters()), data)
    lf = train(fw, f, OPTIMIZERS[opt_name](fw, f.parameters()), data)
    np.testing.assert_allclose(lf, lt, rtol=1e-4, err_msg=f"{kind} {opt_name} loss sequence")
    assert lt[-1] != lt[0]


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_mlp_trajectory(opt_name):
    compare(mlp, "mlp", opt_name)


@pytest.mark.parametrize("opt_name", ["sgd_momentum_wd", "adam", "adamw"])
def test_transformer_trajectory(opt_name):
    compare(transformer, "tokens", opt_name)


@needs_op("conv2d")
@needs_op("max_pool2d")
@needs_op("adaptive_avg_pool2d")
@pytest.mark.parametrize("opt_name", ["sgd_momentum_wd", "adam", "adamw"])
def test_cnn_batchnorm_trajectory(opt_name):
    compare(cnn, "cnn", opt_name)


def test_param_groups_and_state_dict_match_torch_layout():
    f, t = pair(mlp)
    groups = lambda m: [
        {"params": list(m[0].parameters()), "lr": 0.05},
        {"params": list(m[2].parameters()) + list(m[4].parameters())},
    ]
    ot = torch.optim.Adam(groups(t), lr=1e-2, amsgrad=True)
    of = fw.optim.Adam(groups(f), lr=1e-2, amsgrad=True)
    data = batches("mlp")
    np.testing.assert_allclose(train(fw, f, of, data), train(torch, t, ot, data), rtol=1e-4)
    sf, st = of.state_dict(), ot.state_dict()
    assert sf["param_groups"] == st["param_groups"]
    assert list(sf["state"]) == list(st["state"])
    for k in st["state"]:
        assert list(sf["state"][k]) == list(st["state"][k])
        for name, v in st["state"][k].items():
            np.testing.assert_allclose(
                sf["state"][k][name].numpy(), v.numpy(), rtol=1e-4, atol=1e-6
            )


@pytest.mark.parametrize(
    "opt_name", ["sgd_momentum_wd", "adam_amsgrad_wd", "rmsprop_centered_momentum", "adagrad"]
)
def test_resume_from_saved_state_equals_uninterrupted(tmp_path, opt_name):
    data = batches("mlp")
    f, t = pair(mlp)
    full = train(fw, f, OPTIMIZERS[opt_name](fw, f.parameters()), data)
    f2, _ = pair(mlp)
    o2 = OPTIMIZERS[opt_name](fw, f2.parameters())
    first = train(fw, f2, o2, data, 10)
    fw.save({"model": f2.state_dict(), "opt": o2.state_dict()}, tmp_path / "ckpt.fw")
    ck = fw.load(tmp_path / "ckpt.fw")
    f3 = mlp(fw)
    f3.load_state_dict(ck["model"])
    o3 = OPTIMIZERS[opt_name](fw, f3.parameters())
    o3.load_state_dict(ck["opt"])
    rest = train(fw, f3, o3, data[10:])
    assert first + rest == full


def test_load_torch_optimizer_state_and_continue():
    data = batches("mlp")
    f, t = pair(mlp)
    ot = torch.optim.AdamW(t.parameters(), lr=1e-2)
    train(torch, t, ot, data, 5)
    f.load_state_dict(t.state_dict())
    of = fw.optim.AdamW(f.parameters(), lr=1e-2)
    of.load_state_dict(ot.state_dict())
    np.testing.assert_allclose(train(fw, f, of, data[5:]), train(torch, t, ot, data[5:]), rtol=1e-4)


def test_optimizer_errors():
    p = fw.nn.Parameter(fw.zeros(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        fw.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        fw.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        fw.optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        fw.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    o = fw.optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        o.load_state_dict({"state": {}, "param_groups": []})


def test_update_kernels_write_in_place_and_bump_versions():
    p = fw.nn.Parameter(fw.ones(3))
    p.grad = fw.ones(3)
    ptr, ver = p.data_ptr(), p._version.value
    o = fw.optim.SGD([p], lr=0.5, momentum=0.9)
    o.step()
    assert p.data_ptr() == ptr and p._version.value == ver + 1
    np.testing.assert_allclose(p.detach().numpy(), [0.5, 0.5, 0.5])
    from framework.ops.dispatch import dispatch_into
    from framework.ops.optim import sgd_update

    with pytest.raises(RuntimeError, match="sgd_update"):
        dispatch_into(
            sgd_update.opdef, [p, fw.ones(4), None], [p, None], (0.1, 0.0, 0.0, 0.0, 0, 0, 0)
        )
    with pytest.raises(RuntimeError, match="like the parameter"):
        sgd_update(p, fw.ones(4), None, 0.1)
