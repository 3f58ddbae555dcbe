"""Every layer against torch: weights copied from the torch layer, forward values, input and
parameter gradients, in train and eval mode (see parity.check_parity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw
from tests.nn.parity import check_parity, needs_op, rand

tnn, fnn = torch.nn, fw.nn


def both(name, *args, **kwargs):
    torch.manual_seed(0)
    return getattr(fnn, name)(*args, **kwargs), getattr(tnn, name)(*args, **kwargs)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(train, bias):
    check_parity(*both("Linear", 5, 3, bias=bias), rand(4, 5), train=train)
    check_parity(*both("Linear", 5, 3, bias=bias), rand(2, 3, 5), train=train)


def test_bilinear():
    check_parity(*both("Bilinear", 4, 3, 5), rand(6, 4), rand(6, 3, seed=1))


def test_identity():
    check_parity(*both("Identity", 3, foo=1), rand(2, 3))


ACTIVATIONS = [
    ("ReLU", ()),
    ("GELU", ()),
    ("GELU", ("tanh",)),
    ("SiLU", ()),
    ("Tanh", ()),
    ("Sigmoid", ()),
    ("LeakyReLU", (0.2,)),
    ("ELU", ()),
    ("Softplus", ()),
    ("Softmax", (1,)),
    ("LogSoftmax", (1,)),
    ("Softmax", (-1,)),
    ("LogSoftmax", (0,)),
    ("ReLU6", ()),
    ("Hardtanh", ()),
    ("Mish", ()),
    ("Hardswish", ()),
    ("Hardsigmoid", ()),
    ("LogSigmoid", ()),
    ("Softsign", ()),
]


@pytest.mark.parametrize("name,args", ACTIVATIONS, ids=[f"{n}{a}" for n, a in ACTIVATIONS])
def test_activation(name, args):
    check_parity(*both(name, *args), rand(3, 5, low=-3, high=3))


def test_flatten_unflatten():
    check_parity(*both("Flatten"), rand(2, 3, 4))
    check_parity(*both("Flatten", 0, 1), rand(2, 3, 4))
    check_parity(*both("Unflatten", 1, (3, 4)), rand(2, 12))


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm1d(train):
    f, t = both("BatchNorm1d", 4)
    with torch.no_grad():
        t.running_mean.uniform_(-1, 1)
        t.running_var.uniform_(0.5, 2)
        t.weight.uniform_(0.5, 1.5)
        t.bias.uniform_(-1, 1)
    check_parity(f, t, rand(8, 4), train=train)
    f, t = both("BatchNorm1d", 3, momentum=None)
    check_parity(f, t, rand(5, 3, 6), train=train)
    assert int(f.num_batches_tracked.item()) == int(t.num_batches_tracked.item())


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm2d(train):
    f, t = both("BatchNorm2d", 3, momentum=0.3)
    check_parity(f, t, rand(4, 3, 5, 5), train=train)
    f, t = both("BatchNorm2d", 3, affine=False, track_running_stats=False)
    check_parity(f, t, rand(4, 3, 2, 2), train=train)


def test_batchnorm_running_stats_over_steps():
    f, t = both("BatchNorm2d", 2)
    f.load_state_dict(t.state_dict())
    for i in range(3):
        x = rand(4, 2, 3, 3, seed=i)
        t(torch.from_numpy(x))
        f(fw.from_numpy(x))
    for k in ("running_mean", "running_var"):
        np.testing.assert_allclose(
            getattr(f, k).numpy(), getattr(t, k).numpy(), rtol=1e-5, atol=1e-6
        )
    assert f.num_batches_tracked.item() == 3


def test_batchnorm_rejects_wrong_rank():
    with pytest.raises(ValueError, match="expected 4D input"):
        fnn.BatchNorm2d(3)(fw.randn(2, 3))


def test_layernorm_groupnorm():
    f, t = both("LayerNorm", 6)
    with torch.no_grad():
        t.weight.uniform_(0.5, 1.5)
        t.bias.uniform_(-1, 1)
    check_parity(f, t, rand(3, 6))
    check_parity(*both("LayerNorm", (2, 3), elementwise_affine=False), rand(4, 2, 3))
    f, t = both("GroupNorm", 2, 4)
    with torch.no_grad():
        t.weight.uniform_(0.5, 1.5)
    check_parity(f, t, rand(3, 4, 5))
    check_parity(*both("GroupNorm", 3, 6, affine=False), rand(2, 6, 2, 2))


def test_dropout_eval_is_identity_and_train_masks():
    fw.manual_seed(0)
    d = fnn.Dropout(0.25)
    x = fw.ones(2000)
    d.eval()
    assert (d(x) == x).all()
    d.train()
    y = d(x).numpy()
    kept = y != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert repr(d) == repr(tnn.Dropout(0.25))


def test_embedding_padding_idx():
    f, t = both("Embedding", 7, 3, padding_idx=2)
    idx = np.array([[0, 2, 5], [2, 6, 1]], dtype=np.int64)
    check_parity(f, t, idx)
    assert np.all(f.weight.grad.numpy()[2] == 0)
    assert np.all(fnn.Embedding(5, 2, padding_idx=-1).weight.detach().numpy()[4] == 0)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_multihead_attention(batch_first, train):
    f, t = both("MultiheadAttention", 8, 2, batch_first=batch_first)
    q, k = rand(3, 2, 8), rand(4, 2, 8, seed=1)
    if batch_first:
        q, k = q.transpose(1, 0, 2).copy(), k.transpose(1, 0, 2).copy()
    check_parity(f, t, q, k, k, train=train)
    check_parity(f, t, q, q, q, train=train, kwargs=dict(need_weights=False))


def test_multihead_attention_masks():
    f, t = both("MultiheadAttention", 8, 2, batch_first=True)
    q = rand(2, 3, 8)
    bool_mask = np.triu(np.ones((3, 3), dtype=bool), 1)
    float_mask = np.where(bool_mask, -1e4, 0.0).astype(np.float32)
    kpm = np.array([[False, False, True], [False, False, False]])
    for kw in (
        dict(attn_mask=bool_mask),
        dict(attn_mask=float_mask),
        dict(key_padding_mask=kpm),
        dict(attn_mask=bool_mask, key_padding_mask=kpm, average_attn_weights=False),
    ):
        tk = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        fk = {k: fw.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        f.load_state_dict(t.state_dict())
        t_out = t(*(torch.from_numpy(q),) * 3, **tk)
        f_out = f(*(fw.from_numpy(q),) * 3, **fk)
        for a, b in zip(f_out, t_out):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_multihead_attention_kdim_vdim_keys():
    f, t = both("MultiheadAttention", 8, 2, kdim=5, vdim=6)
    assert list(f.state_dict()) == list(t.state_dict())
    check_parity(f, t, rand(3, 2, 8), rand(4, 2, 5), rand(4, 2, 6))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_transformer_encoder_layer(norm_first, train):
    kw = dict(dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first)
    f, t = both("TransformerEncoderLayer", 8, 2, **kw)
    check_parity(f, t, rand(2, 5, 8), train=train)
    f, t = both("TransformerEncoderLayer", 8, 2, dim_feedforward=16, dropout=0.0, activation="gelu")
    check_parity(f, t, rand(5, 2, 8), train=train)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer_inference_fuses_the_activation(activation):
    # Without autograd the feed-forward block runs linear_act (activation in the GEMM's
    # store) instead of linear + activation; with grad, or a hook on linear1, the plain path.
    f, t = both("TransformerEncoderLayer", 8, 2, dim_feedforward=16, dropout=0.0, batch_first=True,
                activation=activation)
    f.load_state_dict({k: fw.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    f.eval(), t.eval()
    x = rand(2, 5, 8)
    with torch.no_grad():
        want = t(torch.from_numpy(x)).numpy()

    def ops():
        with fw.profiler.profile() as p:
            got = f(fw.from_numpy(x))
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-5)
        return [e.name for e in p.events]

    with fw.no_grad():
        names = ops()
    assert "linear_act" in names and activation not in names, names
    assert "linear_act" not in ops()  # grad enabled, parameters require grad
    seen = []
    f.linear1.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with fw.no_grad():
        assert "linear_act" not in ops()
    assert seen == [(2, 5, 16)]


def test_transformer_encoder_and_mask():
    torch.manual_seed(0)
    tl = tnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    t = tnn.TransformerEncoder(tl, 2, norm=tnn.LayerNorm(8), enable_nested_tensor=False)
    fl = fnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    f = fnn.TransformerEncoder(fl, 2, norm=fnn.LayerNorm(8))
    assert list(f.state_dict()) == list(t.state_dict())
    mask = np.triu(np.ones((4, 4), dtype=bool), 1)
    check_parity(f, t, rand(2, 4, 8), mask, train=True)


def test_transformer_decoder_layer():
    f, t = both("TransformerDecoderLayer", 8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    tgt_mask = np.triu(np.ones((3, 3), dtype=bool), 1)
    check_parity(f, t, rand(2, 3, 8), rand(2, 4, 8, seed=2), tgt_mask)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize(
    "num_layers,batch_first,bidirectional", [(1, False, False), (2, True, False), (2, False, True)]
)
def test_rnn(cls, num_layers, batch_first, bidirectional):
    f, t = both(
        cls, 4, 5, num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional
    )
    x = rand(2, 3, 4)
    check_parity(f, t, x, what=cls)
    check_parity(f, t, rand(3, 4), what=cls + " unbatched")


def test_lstm_initial_state():
    f, t = both("LSTM", 3, 4, num_layers=2)
    h0, c0 = rand(2, 2, 4, seed=3), rand(2, 2, 4, seed=4)
    f.load_state_dict(t.state_dict())
    to, (th, tc) = t(torch.from_numpy(rand(5, 2, 3)), (torch.from_numpy(h0), torch.from_numpy(c0)))
    fo, (fh, fc) = f(fw.from_numpy(rand(5, 2, 3)), (fw.from_numpy(h0), fw.from_numpy(c0)))
    for a, b in ((fo, to), (fh, th), (fc, tc)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)


LOSSES = [
    ("MSELoss", {}),
    ("L1Loss", {}),
    ("MSELoss", {"reduction": "sum"}),
    ("L1Loss", {"reduction": "none"}),
    ("SmoothL1Loss", {}),
]


@pytest.mark.parametrize("name,kw", LOSSES, ids=[f"{n}-{k}" for n, k in LOSSES])
def test_regression_losses(name, kw):
    check_parity(*both(name, **kw), rand(4, 3), rand(4, 3, seed=5))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"ignore_index": 1},
        {"label_smoothing": 0.1},
        {"weight": np.array([1.0, 2.0, 0.5], np.float32)},
    ],
)
def test_cross_entropy_and_nll(kw):
    tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    fkw = {k: fw.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    target = np.array([0, 2, 1, 1], dtype=np.int64)
    check_parity(
        fnn.CrossEntropyLoss(**fkw), tnn.CrossEntropyLoss(**tkw), rand(4, 3, low=-3, high=3), target
    )
    check_parity(
        fnn.CrossEntropyLoss(**fkw),
        tnn.CrossEntropyLoss(**tkw),
        rand(2, 3, 4, low=-3, high=3),
        np.array([[0, 2, 1, 1], [1, 1, 0, 2]]),
    )
    if "label_smoothing" not in kw:
        logp = torch.log_softmax(torch.from_numpy(rand(4, 3)), 1).numpy()
        check_parity(fnn.NLLLoss(**fkw), tnn.NLLLoss(**tkw), logp, target)


def test_cross_entropy_probability_targets():
    p = np.random.default_rng(0).dirichlet(np.ones(3), 4).astype(np.float32)
    check_parity(fnn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), rand(4, 3), p)


@pytest.mark.parametrize("pos_weight", [None, np.array([2.0, 0.5, 1.0], np.float32)])
def test_bce_with_logits(pos_weight):
    kw_t = {} if pos_weight is None else {"pos_weight": torch.from_numpy(pos_weight)}
    kw_f = {} if pos_weight is None else {"pos_weight": fw.from_numpy(pos_weight)}
    target = (rand(4, 3, seed=9) > 0).astype(np.float32)
    check_parity(
        fnn.BCEWithLogitsLoss(**kw_f),
        tnn.BCEWithLogitsLoss(**kw_t),
        rand(4, 3, low=-20, high=20),
        target,
    )


# ---- layers whose ops come from the conv / pooling op families ---------------------------
@needs_op("conv2d")
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(stride=2, padding=1),
        dict(padding="same", bias=False),
        dict(groups=2, dilation=2),
    ],
)
def test_conv2d(kw):
    check_parity(*both("Conv2d", 4, 6, 3, **kw), rand(2, 4, 7, 7))


@needs_op("conv1d")
def test_conv1d():
    check_parity(*both("Conv1d", 3, 4, 3, stride=2, padding=1), rand(2, 3, 9))


@needs_op("conv_transpose2d")
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1)])
def test_conv_transpose2d(kw):
    check_parity(*both("ConvTranspose2d", 4, 3, 3, **kw), rand(2, 4, 5, 5))


@needs_op("max_pool2d")
def test_max_pool2d():
    check_parity(*both("MaxPool2d", 2), rand(2, 3, 6, 6))
    check_parity(*both("MaxPool2d", 3, 2, 1), rand(2, 3, 7, 7))


@needs_op("avg_pool2d")
def test_avg_pool2d():
    check_parity(*both("AvgPool2d", 2), rand(2, 3, 6, 6))


@needs_op("adaptive_avg_pool2d")
def test_adaptive_avg_pool2d():
    check_parity(*both("AdaptiveAvgPool2d", (1, 1)), rand(2, 3, 5, 5))
    check_parity(*both("AdaptiveAvgPool2d", 2), rand(2, 3, 6, 6))
