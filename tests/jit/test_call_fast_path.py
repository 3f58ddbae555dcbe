"""TracedModule's per-call fast path: inputs whose shapes and dtypes were checked once skip
the Python checks, but every other input is still checked, and results do not change."""

from __future__ import annotations

import numpy as np
import pytest

import framework as fw


def _traced():
    rng = np.random.default_rng(0)
    w = fw.from_numpy(rng.standard_normal((6, 4)).astype(np.float32))
    b = fw.from_numpy(rng.standard_normal(6).astype(np.float32))

    def fn(x):
        return fw.relu(fw.linear(x, w, b)), x.sum()

    x = fw.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
    return fw.jit.trace(fn, (x,)).optimize(), fn, x


def test_repeated_calls_match_eager_and_keep_output_structure():
    traced, fn, x = _traced()
    for _ in range(3):
        y, s = traced(x)
        ey, es = fn(x)
        np.testing.assert_allclose(y.numpy(), ey.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.numpy(), es.numpy(), rtol=1e-5, atol=1e-5)
    assert traced.executor == "runtime"


def test_bad_shape_and_dtype_still_raise_after_fast_calls():
    traced, _, x = _traced()
    traced(x)
    traced(x)
    with pytest.raises(ValueError, match="dim 1 must be 4"):
        traced(fw.zeros(3, 5))
    with pytest.raises(TypeError, match="must be float32"):
        traced(fw.zeros(3, 4, dtype=fw.float64))
    with pytest.raises(TypeError, match="takes 1 inputs"):
        traced(x, x)


def test_other_batch_and_non_contiguous_input():
    traced, fn, x = _traced()
    traced(x)
    big = fw.from_numpy(np.random.default_rng(1).standard_normal((4, 10)).astype(np.float32))
    xt = big[:, ::2][:, :4]  # a strided view
    assert not xt.numpy().flags.c_contiguous
    for _ in range(2):
        y, _ = traced(xt)
        np.testing.assert_allclose(y.numpy(), fn(xt)[0].numpy(), rtol=1e-5, atol=1e-6)


def test_compile_loads_and_plans_before_the_first_call():
    traced, fn, x = _traced()
    assert traced.compile(x) is traced
    assert traced.executor == "runtime" and traced._compiled.cached_plans == 1
    np.testing.assert_allclose(traced(x)[0].numpy(), fn(x)[0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dim 1 must be 4"):
        traced.compile(fw.zeros(2, 3))
