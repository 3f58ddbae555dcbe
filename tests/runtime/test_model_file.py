"""The model file: round trip, refused versions, and hostile files (truncated, corrupted,
crafted) that must give a clear error and never crash the process that loads them."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.jit import runtime as rt
from tests.runtime.models import mlp_eager, mlp_graph

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_bytes():
    return rt.serialize(mlp_graph())


def _fix_crc(data: bytes) -> bytes:
    """data with the header's graph checksum recomputed (a crafted, not a corrupted, file)."""
    if len(data) < 64:
        return data
    gsize = struct.unpack_from("<Q", data, 32)[0]
    if 64 + gsize > len(data):
        return data
    b = bytearray(data)
    struct.pack_into("<I", b, 56, zlib.crc32(bytes(b[64:64 + gsize]), zlib.crc32(bytes(b[:56]))))
    return bytes(b)


def _load_bytes(data: bytes):
    import framework._C as C

    return rt.CompiledGraph(C.RuntimeModel.from_bytes(data))


def test_round_trip_through_a_file_gives_the_same_outputs(tmp_path):
    graph = mlp_graph()
    rt.save(graph, tmp_path / "m.fwm")
    loaded = rt.load(tmp_path / "m.fwm")
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    np.testing.assert_allclose(loaded.run([x])[0].numpy(), mlp_eager(graph, x), rtol=1e-5, atol=1e-5)
    loaded.save(tmp_path / "again.fwm")
    assert (tmp_path / "again.fwm").read_bytes() == (tmp_path / "m.fwm").read_bytes()


def test_header_layout(model_bytes):
    assert model_bytes[:8] == b"FWMODEL\0"
    version, endian = struct.unpack_from("<IB", model_bytes, 8)
    size, goff, gsize, doff, dsize = struct.unpack_from("<5Q", model_bytes, 16)
    assert (version, endian) == (rt.FORMAT_VERSION, 1)
    assert size == len(model_bytes) and goff == 64 and doff % 64 == 0 and doff + dsize == size
    assert goff + gsize <= doff


@pytest.mark.parametrize("version,word", [(0, "older"), (2, "newer"), (99, "newer")])
def test_other_format_versions_are_refused_naming_both(model_bytes, version, word):
    data = bytearray(model_bytes)
    struct.pack_into("<I", data, 8, version)
    with pytest.raises(RuntimeError, match=rf"format version {version} .*reads format version 1.*{word}"):
        _load_bytes(bytes(data))


def test_bad_magic_endianness_and_truncation(model_bytes):
    with pytest.raises(RuntimeError, match="bad magic"):
        _load_bytes(b"PK\x03\x04" + model_bytes[4:])
    data = bytearray(model_bytes)
    data[12] = 2
    with pytest.raises(RuntimeError, match="endianness"):
        _load_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="truncated"):
        _load_bytes(model_bytes[:-10])
    with pytest.raises(RuntimeError, match="too small"):
        _load_bytes(model_bytes[:20])


def test_unknown_kernel_is_refused_by_name(model_bytes):
    data = model_bytes.replace(b"\x04\x00\x00\x00relu\x04\x00\x00\x00relu", b"\x04\x00\x00\x00relu\x04\x00\x00\x00rely")
    assert data != model_bytes
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        _load_bytes(data)
    with pytest.raises(RuntimeError, match="no kernel 'rely'"):
        _load_bytes(_fix_crc(data))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(RuntimeError, match="nope.fwm"):
        rt.load(tmp_path / "nope.fwm")


def _run_fuzz(tmp_path, files):
    paths = []
    for i, data in enumerate(files):
        p = tmp_path / f"m{i}.fwm"
        p.write_bytes(data)
        paths.append(str(p))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "tests/runtime/fuzz_load.py"), *paths],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, (f"loader crashed (exit {proc.returncode}) on {paths[len(lines)]}\n"
                                  f"{proc.stderr[-2000:]}")
    assert len(lines) == len(paths)
    return lines


_mutation = st.tuples(st.sampled_from(["set", "flip", "cut", "insert", "delete", "word"]),
                      st.floats(0, 1), st.integers(0, 255))


def _mutate(data: bytes, muts, graph_end: int) -> bytes:
    b = bytearray(data)
    for kind, where, val in muts:
        # mostly in the header and graph section, where the structure is
        pos = int(where * (graph_end if val % 4 else len(b) - 1)) if b else 0
        pos = min(pos, max(len(b) - 1, 0))
        if kind == "set" and b:
            b[pos] = val
        elif kind == "flip" and b:
            b[pos] ^= 1 << (val % 8)
        elif kind == "cut":
            b = b[:pos]
        elif kind == "insert":
            b[pos:pos] = bytes([val]) * (1 + val % 9)
        elif kind == "delete":
            del b[pos:pos + 1 + val % 9]
        elif kind == "word" and len(b) >= pos + 4:
            b[pos:pos + 4] = struct.pack("<I", [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 64, 8][val % 6])
    return bytes(b)


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(st.lists(st.lists(_mutation, min_size=1, max_size=4), min_size=150, max_size=150))
def test_hundreds_of_mutated_files_fail_cleanly(tmp_path_factory, model_bytes, mutations):
    tmp = tmp_path_factory.mktemp("fuzz")
    graph_end = 64 + struct.unpack_from("<Q", model_bytes, 32)[0]
    # two of three files get their checksum fixed, so the parser and kernels see them
    files = [_mutate(model_bytes, m, graph_end) for m in mutations]
    files = [_fix_crc(f) if i % 3 else f for i, f in enumerate(files)]
    lines = _run_fuzz(tmp, files)
    assert any(line.startswith("error:") for line in lines)


def test_crafted_files_fail_cleanly(tmp_path, model_bytes):
    crafted = []
    for off in range(64, min(len(model_bytes), 64 + struct.unpack_from("<Q", model_bytes, 32)[0]), 4):
        for word in (0xFFFFFFFF, 0x7FFFFFFF, 1 << 20):
            d = bytearray(model_bytes)
            d[off:off + 4] = struct.pack("<I", word)
            crafted.append(_fix_crc(bytes(d)))
    lines = _run_fuzz(tmp_path, crafted[::3])
    assert all(line == "ok" or line.startswith("error:") for line in lines)
