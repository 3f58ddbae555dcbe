"""Checkpoints: bit-exact save/load round trips of every supported type; pickles, torch zip
files and malformed or hostile files are refused with CheckpointError (never a crash, never
code execution); torch state dicts convert and torch checkpoint files import."""

from __future__ import annotations

import io
import math
import os
import pickle
import struct
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import framework as fw
from framework.serialization import CheckpointError


def roundtrip(obj, tmp_path=None):
    buf = io.BytesIO()
    fw.save(obj, buf)
    buf.seek(0)
    return fw.load(buf)


def same(a, b):
    assert type(a) is type(b), f"{type(a)} != {type(b)}"
    if isinstance(a, fw.Tensor):
        assert a.dtype is b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        assert a.detach().numpy().tobytes() == b.detach().numpy().tobytes()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_roundtrip_every_type_bit_exact(tmp_path):
    obj = {
        "f32": fw.randn(3, 4),
        "f64": fw.randn(2, dtype=fw.float64),
        "i32": fw.tensor([1, -2], dtype=fw.int32),
        "i64": fw.arange(5),
        "bool": fw.tensor([True, False]),
        "scalar": fw.tensor(3.5),
        "empty": fw.zeros(0, 3),
        "special": fw.tensor([float("nan"), float("inf"), -0.0, 1e-45]),
        "param": fw.nn.Parameter(fw.ones(2)),
        "grad": fw.ones(2).requires_grad_(),
        "strided": fw.arange(12, dtype=fw.float32).reshape(3, 4).t(),
        "nested": [1, 2.5, "s", None, True, (3, [4.0, {"k": (None,)}]), 2**70, -0.0, float("nan")],
        7: "int key",
        (1, 2): "tuple key",
        None: "none key",
        "od": OrderedDict([("b", 1), ("a", 2)]),
        "dtype": fw.float64,
    }
    got = roundtrip(obj)
    same(got, obj)
    assert isinstance(got["param"], fw.nn.Parameter)
    path = tmp_path / "x.fw"
    fw.save(obj, str(path))
    same(fw.load(path), obj)


def test_roundtrip_model_and_optimizer_state(tmp_path):
    m = fw.nn.Sequential(fw.nn.Linear(3, 4), fw.nn.BatchNorm1d(4))
    opt = fw.optim.Adam(m.parameters(), lr=1e-3)
    m(fw.randn(5, 3)).sum().backward()
    opt.step()
    ck = {"model": m.state_dict(), "opt": opt.state_dict(), "epoch": 3}
    fw.save(ck, tmp_path / "c.fw")
    got = fw.load(tmp_path / "c.fw")
    same(got, ck)
    assert got["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_shared_tensors_stay_shared():
    t = fw.randn(3)
    a, b = roundtrip([t, t])
    assert a is b


def test_save_rejects_unsupported_objects():
    with pytest.raises(TypeError, match="cannot save an object of type object at obj\\['x'\\]"):
        fw.save({"x": object()}, io.BytesIO())


def test_refuses_pickle_and_torch_files(tmp_path):
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="pickle"):
        fw.load(p)
    tp = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, tp)
    with pytest.raises(CheckpointError, match="load_torch_checkpoint"):
        fw.load(tp)


def test_pickle_payload_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.bin"
    p.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        fw.load(p)
    assert not marker.exists()


def _valid_bytes():
    buf = io.BytesIO()
    fw.save({"w": fw.arange(6, dtype=fw.float32).reshape(2, 3), "n": [1, 2.0, "x"]}, buf)
    return buf.getvalue()


def _with_header(header: bytes, data: bytes = b"") -> bytes:
    head = b"FWCKPT\x00\x01" + struct.pack("<Q", len(header)) + header
    return head + b"\x00" * ((-len(head)) % 64) + data


@pytest.mark.parametrize(
    "blob,match",
    [
        (b"", "too short"),
        (b"FWCKPT\x00\x01" + struct.pack("<Q", 1 << 40), "exceeds the file size"),
        (b"FWCKPT\x00\x09" + b"\x00" * 16, "unsupported framework checkpoint version"),
        (b"hello world, not a checkpoint", "not a framework checkpoint"),
        (_with_header(b"{not json"), "not valid UTF-8 JSON"),
        (
            _with_header(
                b'{"format":"framework-checkpoint","version":1,"root":{"$tensor":{"dtype":"float32",'
                b'"shape":[1000000000,1000000000],"offset":0,"nbytes":4000000000000000000}}}'
            ),
            "outside the data section",
        ),
        (
            _with_header(
                b'{"format":"framework-checkpoint","version":1,"root":{"$tensor":{"dtype":"float32",'
                b'"shape":[2],"offset":0,"nbytes":4}}}',
                b"\x00" * 8,
            ),
            "needs 8 bytes",
        ),
        (
            _with_header(
                b'{"format":"framework-checkpoint","version":1,"root":{"$tensor":{"dtype":"float32",'
                b'"shape":[-1],"offset":0,"nbytes":0}}}'
            ),
            "bad tensor shape",
        ),
        (
            _with_header(
                b'{"format":"framework-checkpoint","version":1,"root":{"$tensor":{"dtype":"object",'
                b'"shape":[1],"offset":0,"nbytes":8}}}'
            ),
            "unknown tensor dtype",
        ),
        (
            _with_header(
                b'{"format":"framework-checkpoint","version":1,"root":{"$eval":"__import__(\'os\')"}}'
            ),
            "unknown tag",
        ),
        (
            _with_header(
                b'{"format":"framework-checkpoint","version":1,"root":'
                + b"[" * 100000
                + b"]" * 100000
                + b"}"
            ),
            "nested|JSON",
        ),
        (
            _with_header(
                b'{"format":"framework-checkpoint","version":1,"root":{"$dict":[[["x"],null]]}}'
            ),
            "unhashable",
        ),
    ],
)
def test_malformed_files_get_clear_errors(blob, match):
    with pytest.raises(CheckpointError, match=match):
        fw.load(io.BytesIO(blob))


def test_truncated_files():
    good = _valid_bytes()
    for cut in (0, 8, 15, 16, 40, len(good) // 2, len(good) - 1):
        with pytest.raises(CheckpointError):
            fw.load(io.BytesIO(good[:cut]))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_byte_mutations_raise_checkpoint_error_or_load(data):
    blob = bytearray(_valid_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    try:
        fw.load(io.BytesIO(bytes(blob)))
    except CheckpointError:
        pass


def test_hostile_files_never_crash_the_process(tmp_path):
    """Loads many mutated files in a subprocess: it must exit normally (no segfault/abort)."""
    good = _valid_bytes()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(150):
        b = bytearray(good)
        for _ in range(rng.integers(1, 8)):
            b[rng.integers(0, len(b))] = rng.integers(0, 256)
        if i % 5 == 0:
            b = b[: rng.integers(0, len(b))]
        p = tmp_path / f"m{i}.fw"
        p.write_bytes(bytes(b))
        paths.append(str(p))
    code = (
        "import sys, framework as fw\nfrom framework.serialization import CheckpointError\n"
        "for p in sys.argv[1:]:\n    try:\n        fw.load(p)\n    except CheckpointError:\n        pass\n"
        "print('ok')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_from_torch_state_dict_and_load_torch_checkpoint(tmp_path):
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    sd = fw.utils.from_torch_state_dict(t.state_dict())
    assert list(sd) == list(t.state_dict())
    assert sd["1.num_batches_tracked"].dtype is fw.int64
    f = fw.nn.Sequential(fw.nn.Linear(3, 2), fw.nn.BatchNorm1d(2))
    f.load_state_dict(sd)
    np.testing.assert_array_equal(f[0].weight.detach().numpy(), t[0].weight.detach().numpy())
    npsd = {k: v.numpy() for k, v in t.state_dict().items()}
    assert fw.utils.from_torch_state_dict(npsd)["0.bias"].tolist() == t[0].bias.tolist()
    half = fw.utils.from_torch_state_dict({"h": torch.ones(2, dtype=torch.float16)})
    assert half["h"].dtype is fw.float32
    path = tmp_path / "t.pt"
    torch.save({"model": t.state_dict(), "step": 3}, path)
    ck = fw.load_torch_checkpoint(path)
    assert ck["step"] == 3 and isinstance(ck["model"]["0.weight"], fw.Tensor)


def test_bool_bytes_other_than_0_or_1_are_refused():
    buf = io.BytesIO()
    fw.save({"mask": fw.tensor([True, False, True, True])}, buf)
    blob = bytearray(buf.getvalue())
    good = fw.load(io.BytesIO(bytes(blob)))["mask"]
    assert good.tolist() == [True, False, True, True]
    # the tensor bytes 01 00 01 01 sit in the data section: make the second one 0xff
    at = bytes(blob).rfind(bytes([1, 0, 1, 1]))
    assert at > 0
    blob[at + 1] = 0xFF
    with pytest.raises(CheckpointError, match=r"holds byte 255 at data offset 1 \(a bool must be 0 or 1\)"):
        fw.load(io.BytesIO(bytes(blob)))
