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


def _assert_bad_inputs_raise(traced, x):
    """A wrong dim, dtype or input count raises, whatever the fast paths remember."""
    with pytest.raises(ValueError, match="dim 1 must be 4"):
        traced(fw.zeros(3, 5))
    with pytest.raises(TypeError, match="must be float32"):
        traced(fw.zeros(3, 4, dtype=fw.float64))
    with pytest.raises(TypeError, match="takes 1 inputs"):
        traced(x, x)


def test_bad_shape_and_dtype_still_raise_after_fast_calls():
    traced, _, x = _traced()
    traced(x)
    traced(x)
    _assert_bad_inputs_raise(traced, x)


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


def _traced_one_output():
    rng = np.random.default_rng(2)
    w = fw.from_numpy(rng.standard_normal((5, 4)).astype(np.float32))

    def fn(x):
        return fw.relu(fw.linear(x, w))

    x = fw.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
    return fw.jit.trace(fn, (x,)).optimize(), fn, x


def test_one_input_one_output_path_checks_every_other_input():
    # the leanest path remembers one checked (shape, dtype); anything else takes the full checks
    traced, fn, x = _traced_one_output()
    for _ in range(3):
        np.testing.assert_allclose(traced(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-6)
    assert traced._fast is not None
    _assert_bad_inputs_raise(traced, x)
    big = fw.from_numpy(np.random.default_rng(3).standard_normal((3, 9)).astype(np.float32))
    xs = big[:, ::2][:, :4]  # same shape and dtype, strided: the runtime copies it
    for _ in range(2):
        np.testing.assert_allclose(traced(xs).numpy(), fn(xs).numpy(), rtol=1e-5, atol=1e-6)
    x7 = fw.randn(7, 4)  # another batch, then the first one again
    np.testing.assert_allclose(traced(x7).numpy(), fn(x7).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traced(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traced(x.numpy()).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-6)


def test_profiler_sees_calls_after_the_fast_path_was_set():
    traced, _, x = _traced_one_output()
    traced(x)
    traced(x)
    with fw.profiler.profile() as p:
        traced(x)
    assert any(e.name == "linear_act" for e in p.events), [e.name for e in p.events]
