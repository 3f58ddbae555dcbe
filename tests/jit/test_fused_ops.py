"""The fused ops the passes create, against torch compositions (the oracle), plus their
error messages."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import framework as fw
from framework.ops import fused as F

rng = np.random.default_rng(0)
TORCH_ACT = {"none": lambda t: t, "relu": torch.relu, "gelu": TF.gelu,
             "gelu_tanh": lambda t: TF.gelu(t, approximate="tanh"), "silu": TF.silu,
             "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def _a(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", F.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_act_matches_torch(act, bias, dtype):
    x, w, b = _a(2, 5, 7, dtype=dtype), _a(4, 7, dtype=dtype), _a(4, dtype=dtype)
    got = F.linear_act(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b) if bias else None, act)
    want = TORCH_ACT[act](TF.linear(torch.from_numpy(x), torch.from_numpy(w),
                                    torch.from_numpy(b) if bias else None))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol)


def test_linear_act_strided_input_and_errors():
    x = _a(3, 8)[:, ::2]
    w = _a(5, 4)
    got = F.linear_act(fw.from_numpy(x), fw.from_numpy(w), None, "relu")
    np.testing.assert_allclose(got.numpy(), np.maximum(x @ w.T, 0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        F.linear_act(fw.from_numpy(x), fw.from_numpy(w), None, "swish")
    with pytest.raises(RuntimeError, match="linear"):
        F.linear_act(fw.from_numpy(_a(3, 5)), fw.from_numpy(w), None, "relu")


def _program(expr_ops):
    return expr_ops


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_elementwise_matches_torch_with_broadcasting(dtype):
    u, b, p = F.UNARY_OPCODES, F.BINARY_OPCODES, F.PARAM_OPCODES
    x, y, z = _a(2, 3, 4, dtype=dtype), _a(4, dtype=dtype), _a(3, 1, dtype=dtype)
    # leaky_relu(gelu(x) * sigmoid(y) - z / 2.0, 0.1) + clamp(exp(x), max=3) ** 2
    prog = (F.LOAD, 0, u["gelu"], 0, F.LOAD, 1, u["sigmoid"], 0, b["mul"], 0,
            F.LOAD, 2, F.CONST, 0, b["div"], 0, b["sub"], 0, p["leaky_relu"], 1,
            F.LOAD, 0, u["exp"], 0, p["clamp_max"], 2, F.CONST, 3, b["pow"], 0, b["add"], 0)
    consts = (2.0, 0.1, 3.0, 2.0)
    got = F.fused_elementwise(fw.from_numpy(x), fw.from_numpy(y), fw.from_numpy(z),
                              program=prog, consts=consts)
    tx, ty, tz = map(torch.from_numpy, (x, y, z))
    want = TF.leaky_relu(TF.gelu(tx) * torch.sigmoid(ty) - tz / 2.0, 0.1) + \
        torch.clamp(torch.exp(tx), max=3.0) ** 2
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol)
    assert F.format_program(prog, consts).startswith("add(leaky_relu(")


def test_fused_elementwise_strided_and_large_inputs():
    x = _a(70, 300)[:, ::3]  # strided, more elements than one block
    prog = (F.LOAD, 0, F.UNARY_OPCODES["tanh"], 0, F.LOAD, 0, F.BINARY_OPCODES["mul"], 0)
    got = F.fused_elementwise(fw.from_numpy(x), program=prog)
    np.testing.assert_allclose(got.numpy(), np.tanh(x) * x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prog,msg", [
    ((F.LOAD, 0, F.BINARY_OPCODES["add"], 0), "underflow"),
    ((F.LOAD, 0, F.LOAD, 0), "leaves 2 values"),
    ((F.LOAD, 3), "missing input x3"),
    ((99, 0), "unknown opcode 99"),
    ((F.CONST, 5), "constant #5 missing"),
    ((F.LOAD,), "pairs"),
])
def test_fused_elementwise_rejects_bad_programs(prog, msg):
    with pytest.raises(ValueError, match=msg):
        F.fused_elementwise(fw.ones(2, 2), program=prog, consts=(1.0,))


def test_fused_elementwise_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="one float dtype"):
        F.fused_elementwise(fw.ones(2), fw.ones(2, dtype=fw.float64),
                            program=(F.LOAD, 0, F.LOAD, 1, F.BINARY_OPCODES["add"], 0))


@pytest.mark.parametrize("act", F.ACTIVATIONS)
def test_conv2d_act_matches_torch(act):
    x, w, b = _a(2, 4, 6, 5), _a(6, 2, 3, 3), _a(6)
    got = F.conv2d_act(fw.from_numpy(x), fw.from_numpy(w), fw.from_numpy(b), stride=(2, 1),
                       padding=(1, 1, 1, 1), groups=2, activation=act)
    want = TORCH_ACT[act](TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                    stride=(2, 1), padding=1, groups=2))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown activation"):
        F.conv2d_act(fw.from_numpy(x), fw.from_numpy(w), None, activation="swish")
