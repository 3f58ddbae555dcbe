"""Every registered op with samples, traced alone: the graph (interpreter, and the
optimized graph) gives what eager gives. Parametrized over the registry, so new ops are
covered with no new code."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework.jit import TracerWarning
from framework.ops.registry import REGISTRY

CASES = []
for _op in sorted(REGISTRY.values(), key=lambda o: o.name):
    if _op.samples is None or _op.fn is None:
        continue
    for _dt in _op.dtypes[:1]:
        for _i, _s in enumerate(_op.samples(_dt)):
            CASES.append(pytest.param(_op, _s, id=f"{_op.name}-{_dt.name}-{_i}"))


def _split(sample):
    """The sample's numpy arrays (become traced inputs) and a rebuild function."""
    arrays = []

    def mark(v):
        if isinstance(v, np.ndarray):
            arrays.append(v)
            return ("__t", len(arrays) - 1)
        if isinstance(v, (list, tuple)) and any(isinstance(x, np.ndarray) for x in v):
            return type(v)(mark(x) for x in v)
        return v

    args = [mark(a) for a in sample.args]
    kwargs = {k: mark(v) for k, v in sample.kwargs.items()}

    def rebuild(ts):
        def un(v):
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "__t":
                return ts[v[1]]
            if isinstance(v, (list, tuple)):
                return type(v)(un(x) for x in v)
            return v

        return [un(a) for a in args], {k: un(v) for k, v in kwargs.items()}

    return arrays, rebuild


def _np(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [np.array(o.numpy() if isinstance(o, fw.Tensor) else o) for o in outs]


@pytest.mark.parametrize("op,sample", CASES)
def test_op_traced_alone_matches_eager(op, sample):
    arrays, rebuild = _split(sample)
    random = "seed" in op.attrs or op.name == "dropout"

    def f(*ts):
        a, k = rebuild(list(ts))
        out = op.fn(*a, **k)
        return tuple(out) if isinstance(out, (tuple, list)) else out

    def fresh():  # ops may write into their inputs (optimizer updates): new copies each run
        return [fw.from_numpy(np.array(a)) for a in arrays]

    if random:
        fw.manual_seed(0)
    try:
        eager = f(*fresh())
    except Exception as e:  # noqa: BLE001 - samples meant to fail are not traceable
        pytest.skip(f"sample raises eagerly: {e}")
    if random:
        fw.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TracerWarning)
        # check_trace draws fresh random inputs: not for random ops, nor for ops that raise
        # outside their input domain (binary_cross_entropy), nor for ops whose shapes follow
        # an input's values, which the trace bakes in (repeat_interleave's tensor repeats)
        check = not random and not {"restricted_domain", "value_dependent"} & set(op.tags)
        traced = fw.jit.trace(f, fresh(), check_trace=check)
    traced.graph.lint()
    for mod in (traced, traced.optimize()):
        got = _np(mod(*fresh()))
        want = _np(eager)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
            if g.dtype.kind == "f":
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True)
            else:
                np.testing.assert_array_equal(g, w)
