"""Property tests for every elementwise op in the registry: hypothesis draws broadcastable
shapes (including empty dims) and values (including 0, -0.0, NaN, +-inf), and the result must
equal torch's — shape, then dtype, then values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import framework as fw
from framework.ops.registry import REGISTRY
from tests.oracle import assert_close, resolve

EDGE = [0.0, -0.0, 1.0, -1.0, 0.5, float("nan"), float("inf"), float("-inf"), 1e-30, 3.0]
# Ops where torch's answer at +-inf is an artifact of its vectorized code, not the limit:
# torch.nn.functional.gelu(inf) is NaN; we return inf (the limit). Infinities are not drawn.
NO_INF = {"gelu"}


def _ops(arity):
    out = []
    for op in sorted(REGISTRY.values(), key=lambda o: o.name):
        if "elementwise" in op.tags and op.torch_ref and len(op.inputs) == arity and op.fn:
            if not op.attrs or op.name in ("add", "sub", "gelu", "leaky_relu", "elu", "softplus"):
                out.append(op)
    return out


def _values(dtype, shape, finite=False):
    if dtype.is_floating_point:
        edge = [e for e in EDGE if not (finite and np.isinf(e))]
        elems = st.one_of(st.sampled_from(edge), st.floats(-10, 10, width=32))
        return hnp.arrays(dtype.np, shape, elements=elems)
    if dtype is fw.bool:
        return hnp.arrays(np.bool_, shape)
    return hnp.arrays(dtype.np, shape, elements=st.integers(-20, 20))


def _run(op, arrays):
    f_args = [fw.from_numpy(a.copy()) for a in arrays]
    t_args = [torch.from_numpy(a.copy()) for a in arrays]
    try:
        expected = resolve(op.torch_ref)(*t_args)
    except RuntimeError:
        # torch refuses this input (e.g. an integer dtype it has no kernel for): so must we
        with pytest.raises((RuntimeError, TypeError)):
            op.fn(*f_args)
        return
    got = op.fn(*f_args)
    assert_close(got, expected, what=op.name)


@pytest.mark.parametrize("op", _ops(1), ids=lambda o: o.name)
@given(data=st.data())
def test_unary_matches_torch(op, data):
    dtype = data.draw(st.sampled_from(op.dtypes))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    x = data.draw(_values(dtype, shape, finite=op.name in NO_INF))
    _run(op, [x])


@pytest.mark.parametrize("op", _ops(2), ids=lambda o: o.name)
@given(data=st.data())
def test_binary_broadcasting_matches_torch(op, data):
    dtype = data.draw(st.sampled_from(op.dtypes))
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                         min_side=0, max_side=4))
    a = data.draw(_values(dtype, shapes.input_shapes[0]))
    b = data.draw(_values(dtype, shapes.input_shapes[1]))
    if op.name == "pow" and not dtype.is_floating_point:
        b = np.asarray(np.abs(b) % 4, dtype=b.dtype)  # torch refuses negative integer powers
    _run(op, [a, b])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_add_sub_mul_wrap_around_like_torch(dtype):
    """Signed overflow wraps (two's complement) as in torch, instead of undefined behaviour
    (found by the model-file fuzzer)."""
    info = np.iinfo(dtype)
    a = np.array([info.max, info.min, 7, info.max // 2 + 3], dtype=dtype)
    b = np.array([1, -1, 3, 4], dtype=dtype)
    fa, fb, ta, tb = fw.tensor(a), fw.tensor(b), torch.from_numpy(a), torch.from_numpy(b)
    for f, t in ((fw.add, torch.add), (fw.sub, torch.sub), (fw.mul, torch.mul)):
        np.testing.assert_array_equal(f(fa, fb).numpy(), t(ta, tb).numpy())
    np.testing.assert_array_equal(fw.add(fa, fb, alpha=3).numpy(), torch.add(ta, tb, alpha=3).numpy())
