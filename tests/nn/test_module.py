"""nn.Module behaviour against torch: registration, traversal, state_dict keys and errors,
train/eval, zero_grad, hooks, dtype conversion and repr."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import framework as fw


def build(lib):
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.norm = nn.BatchNorm1d(4)
            self.register_buffer("steps", lib.zeros(1))
            self.register_buffer("scratch", lib.zeros(2), persistent=False)
            self.scale = nn.Parameter(lib.ones(4))

        def forward(self, x):
            return self.norm(self.fc(x)) * self.scale

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(), Block()])
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(4, 2, bias=False))
            self.table = nn.ModuleDict({"emb": nn.Embedding(5, 4)})
            self.tied = self.head[1]

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return self.head(x)

    return Net()


def test_names_match_torch():
    f, t = build(fw), build(torch)
    assert [n for n, _ in f.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in f.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in f.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in f.named_children()] == [n for n, _ in t.named_children()]
    assert list(f.state_dict()) == list(t.state_dict())
    assert "blocks.0.scratch" not in f.state_dict()
    assert len(list(f.parameters())) == len(list(t.parameters()))
    assert [n for n, _ in f.named_parameters(remove_duplicate=False)] == [
        n for n, _ in t.named_parameters(remove_duplicate=False)
    ]


def test_repr_matches_torch():
    assert repr(build(fw)) == repr(build(torch))
    for name, args in [
        ("Conv2d", (3, 8, 3)),
        ("Conv2d", (3, 8, (3, 5), 2, 1, 1, 1, False)),
        ("LSTM", (3, 4, 2)),
        ("GRU", (3, 4)),
        ("LayerNorm", (5,)),
        ("GroupNorm", (2, 4)),
        ("MultiheadAttention", (8, 2)),
        ("MaxPool2d", (2,)),
        ("Embedding", (4, 3, 1)),
        ("LeakyReLU", (0.2,)),
        ("GELU", ()),
        ("Softmax", (1,)),
        ("Flatten", ()),
        ("TransformerEncoderLayer", (8, 2, 16)),
    ]:
        assert repr(getattr(fw.nn, name)(*args)) == repr(getattr(torch.nn, name)(*args)), name


def test_load_state_dict_from_torch_and_errors():
    f, t = build(fw), build(torch)
    res = f.load_state_dict(t.state_dict())
    assert repr(res) == "<All keys matched successfully>"
    np.testing.assert_array_equal(
        f.blocks[1].fc.weight.detach().numpy(), t.blocks[1].fc.weight.detach().numpy()
    )
    sd = dict(t.state_dict())
    del sd["head.1.weight"]
    sd["extra.weight"] = torch.zeros(1)
    sd["blocks.0.fc.bias"] = torch.zeros(3)
    with pytest.raises(RuntimeError) as e_fw:
        f.load_state_dict(sd)
    with pytest.raises(RuntimeError) as e_t:
        t.load_state_dict(sd)
    ours, theirs = str(e_fw.value), str(e_t.value)
    assert ours.split("\n")[0] == theirs.split("\n")[0] == "Error(s) in loading state_dict for Net:"
    for line_f, line_t in zip(ours.split("\n")[1:], theirs.split("\n")[1:]):
        assert line_f.replace("framework.Size", "torch.Size") == line_t
    res = f.load_state_dict({k: v for k, v in sd.items() if k != "blocks.0.fc.bias"}, strict=False)
    assert (
        res.missing_keys
        == t.load_state_dict(
            {k: v for k, v in sd.items() if k != "blocks.0.fc.bias"}, strict=False
        ).missing_keys
    )


def test_train_eval_zero_grad_requires_grad_apply():
    f = build(fw)
    f.eval()
    assert all(not m.training for m in f.modules())
    f.train()
    assert all(m.training for m in f.modules())
    f.requires_grad_(False)
    assert all(not p.requires_grad for p in f.parameters())
    f.requires_grad_(True)
    f(fw.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in f.parameters() if p is not f.table.emb.weight)
    f.zero_grad(set_to_none=False)
    assert all(p.grad is None or not p.grad.numpy().any() for p in f.parameters())
    f.zero_grad()
    assert all(p.grad is None for p in f.parameters())
    seen = []
    f.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 4


def test_to_dtype_and_deepcopy():
    f = build(fw).to(fw.float64)
    assert all(p.dtype is fw.float64 for p in f.parameters())
    assert f.blocks[0].norm.num_batches_tracked.dtype is fw.int64
    assert isinstance(f.blocks[0].fc.weight, fw.nn.Parameter)
    g = copy.deepcopy(f)
    assert g.blocks[0].fc.weight is not f.blocks[0].fc.weight
    np.testing.assert_array_equal(
        g.blocks[0].fc.weight.detach().numpy(), f.blocks[0].fc.weight.detach().numpy()
    )
    assert g.tied is g.head[1]
    with pytest.raises(TypeError):
        f.to(fw.int64)


def test_forward_hooks():
    m = fw.nn.Linear(3, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    y = m(fw.randn(4, 3))
    np.testing.assert_allclose(
        y.detach().numpy(), (m.bias.detach().numpy() + 1)[None].repeat(4, 0), rtol=1e-6
    )
    assert calls == [fw.Size([4, 2])]
    h1.remove()
    h2.remove()
    x = fw.randn(4, 3)
    np.testing.assert_allclose(
        m(x).detach().numpy(), fw.nn.functional.linear(x, m.weight, m.bias).detach().numpy()
    )


def test_registration_errors():
    m = fw.nn.Module()
    with pytest.raises(KeyError):
        m.register_buffer("a.b", fw.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("w", fw.zeros(1))
    m.w = fw.nn.Parameter(fw.zeros(2))
    with pytest.raises(TypeError):
        m.w = fw.zeros(2)
    del m.w
    assert list(m.parameters()) == []
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope
    with pytest.raises(NotImplementedError):
        m(1)


def test_sequential_and_containers():
    s = fw.nn.Sequential(fw.nn.Linear(2, 3), fw.nn.ReLU(), fw.nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[-1], fw.nn.Linear)
    assert isinstance(s[:2], fw.nn.Sequential) and len(s[:2]) == 2
    s.append(fw.nn.Sigmoid())
    assert list(s.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    ml = fw.nn.ModuleList([fw.nn.ReLU()])
    ml += [fw.nn.Tanh()]
    assert len(ml) == 2
    md = fw.nn.ModuleDict({"a": fw.nn.ReLU()})
    assert "a" in md and list(md.keys()) == ["a"]


def test_init_functions_bounds_and_fan():
    w = fw.empty(64, 32, 3, 3)
    fw.nn.init.kaiming_uniform_(w, a=5**0.5)
    tw = torch.empty(64, 32, 3, 3)
    fan_in = torch.nn.init._calculate_fan_in_and_fan_out(tw)[0]
    assert fw.nn.init._calculate_fan_in_and_fan_out(
        w
    ) == torch.nn.init._calculate_fan_in_and_fan_out(tw)
    bound = (6 / ((1 + 5) * fan_in)) ** 0.5
    assert w.abs().max().item() <= bound + 1e-7
    assert w.abs().max().item() > 0.9 * bound
    for nl in ("relu", "tanh", "leaky_relu", "linear", "selu"):
        assert fw.nn.init.calculate_gain(nl) == torch.nn.init.calculate_gain(nl)
    x = fw.empty(1000, 50)
    fw.nn.init.xavier_normal_(x)
    assert abs(x.std().item() - (2 / 1050) ** 0.5) < 0.01 * (2 / 1050) ** 0.5 * 10
    t = fw.empty(5000)
    fw.nn.init.trunc_normal_(t, std=1.0, a=-1.0, b=1.5)
    assert t.min().item() >= -1.0 and t.max().item() <= 1.5
    q = fw.empty(6, 4)
    fw.nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.t().matmul(q).numpy(), np.eye(4), atol=1e-5)
    fw.nn.init.constant_(q, 0.5)
    assert (q == 0.5).all()


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5,))]
    for max_norm, p in ((0.5, 2.0), (100.0, 2.0), (0.3, float("inf")), (1.0, 1.0)):
        fps = [fw.nn.Parameter(fw.zeros(*g.shape)) for g in gs]
        tps = [torch.nn.Parameter(torch.zeros(*g.shape)) for g in gs]
        for fp, tp, g in zip(fps, tps, gs):
            fp.grad = fw.from_numpy(g.copy())
            tp.grad = torch.from_numpy(g.copy())
        n_f = fw.nn.utils.clip_grad_norm_(fps, max_norm, p)
        n_t = torch.nn.utils.clip_grad_norm_(tps, max_norm, p)
        np.testing.assert_allclose(n_f.item(), n_t.item(), rtol=1e-6)
        for fp, tp in zip(fps, tps):
            np.testing.assert_allclose(fp.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_hooks_with_kwargs_prepend_and_device_objects():
    m = fw.nn.Linear(3, 2)
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("second"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a, kw: (a, kw), with_kwargs=True)
    m.register_forward_hook(lambda mod, a, kw, o: o * 0, with_kwargs=True)
    out = m(fw.randn(1, 3))
    assert order == ["first", "second"] and not out.detach().numpy().any()
    assert m.to(fw.device("cpu")) is m and m.to("cpu:0") is m
    with pytest.raises(RuntimeError, match="not available"):
        m.to("cuda")


def test_functional_exposes_registered_ops_by_name():
    F = fw.nn.functional
    assert F.conv2d is not None and F.linear is fw.linear
    with pytest.raises(AttributeError, match="no attribute 'definitely_not_an_op'"):
        F.definitely_not_an_op
