"""Tracing: golden IR, symbolic batch, guards, TracerWarnings, check_trace, outputs."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework.jit import TracerWarning, TracingCheckError
from tests.jit.models import MLP, ReshapeNet


def _x(*shape, seed=0):
    return fw.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_mlp_golden_ir():
    traced = fw.jit.trace(MLP(), (_x(4, 8),))
    assert str(traced.graph) == (
        "graph(%x: f32[N,8]):\n"
        "  %fc1_weight = const[fc1.weight] : f32[16,8]\n"
        "  %fc1_bias = const[fc1.bias] : f32[16]\n"
        "  %linear = linear(%x, %fc1_weight, %fc1_bias) : f32[N,16]\n"
        "  %relu = relu(%linear) : f32[N,16]\n"
        "  %fc2_weight = const[fc2.weight] : f32[4,16]\n"
        "  %fc2_bias = const[fc2.bias] : f32[4]\n"
        "  %linear_1 = linear(%relu, %fc2_weight, %fc2_bias) : f32[N,4]\n"
        "  return %linear_1"
    )


def test_optimized_mlp_golden_ir():
    opt = fw.jit.trace(MLP(), (_x(4, 8),)).optimize()
    assert str(opt.graph) == (
        "graph(%x: f32[N,8]):\n"
        "  %fc1_weight = const[fc1.weight] : f32[16,8]\n"
        "  %fc1_bias = const[fc1.bias] : f32[16]\n"
        "  %linear_act = linear_act(%x, %fc1_weight, %fc1_bias, activation='relu') : f32[N,16]\n"
        "  %fc2_weight = const[fc2.weight] : f32[4,16]\n"
        "  %fc2_bias = const[fc2.bias] : f32[4]\n"
        "  %linear_1 = linear(%linear_act, %fc2_weight, %fc2_bias) : f32[N,4]\n"
        "  return %linear_1"
    )


@pytest.mark.parametrize("model,shape", [(MLP(), (4, 8)), (ReshapeNet(), (4, 3, 4))])
@pytest.mark.parametrize("batch", [4, 1, 7])
def test_traced_model_matches_eager_at_other_batches(model, shape, batch):
    traced = fw.jit.trace(model, (_x(*shape),))
    opt = traced.optimize()
    x = _x(batch, *shape[1:], seed=batch)
    want = model(x).numpy()
    np.testing.assert_allclose(traced(x).numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt(x).numpy(), want, rtol=1e-5, atol=1e-6)


def test_shape_arithmetic_is_recorded_symbolically():
    traced = fw.jit.trace(ReshapeNet(), (_x(4, 3, 4),))
    text = str(traced.graph)
    assert "shape=(N, 12)" in text and "shape=(N, 3, 4)" in text
    assert traced.guards == []


def test_static_dim_mismatch_names_the_dim():
    traced = fw.jit.trace(MLP(), (_x(4, 8),))
    with pytest.raises(ValueError, match=r"input 0 \(%x\) dim 1 must be 8"):
        traced(_x(4, 9))
    with pytest.raises(TypeError, match="must be float32"):
        traced(fw.zeros(4, 8, dtype=fw.float64))


def test_baked_batch_warns_and_is_guarded():
    def f(x):
        n = int(x.shape[0])  # baked in
        return x + fw.zeros(n, 3)

    with pytest.warns(TracerWarning, match=r"test_trace.py:\d+.*symbolic dim N"):
        traced = fw.jit.trace(f, (_x(4, 3),), check_trace=False)
    np.testing.assert_allclose(traced(_x(4, 3, seed=1)).numpy(), _x(4, 3, seed=1).numpy())
    with pytest.raises(ValueError, match=r"N == 4.*N = input 0 dim 0.*N = 5"):
        traced(_x(5, 3))


def test_symbolic_creation_ops_follow_the_batch():
    def f(x):
        return x + fw.ones(x.shape[0], 3)

    traced = fw.jit.trace(f, (_x(4, 3),))
    x = _x(6, 3)
    np.testing.assert_allclose(traced(x).numpy(), x.numpy() + 1)


@pytest.mark.parametrize("what", ["item", "bool", "tolist", "iter"])
def test_reading_values_warns_with_the_user_line(what):
    def f(x):
        s = x.sum()
        if what == "item":
            k = s.item()
        elif what == "bool":
            k = 1.0 if s > 0 else -1.0
        elif what == "tolist":
            k = float(len(s.reshape(1).tolist()))
        else:
            k = float(sum(1 for _ in x))
        return x * k

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fw.jit.trace(f, (_x(4, 3),), check_trace=False)
    msgs = [w for w in rec if issubclass(w.category, TracerWarning)]
    assert msgs, "expected a TracerWarning"
    assert msgs[0].filename.endswith("test_trace.py")
    assert "baked into the graph" in str(msgs[0].message)


def test_check_trace_reports_data_dependent_control_flow():
    def f(x):
        if x.sum() > 0:  # baked in: the branch taken at trace time
            return fw.relu(x)
        return fw.tanh(x)

    x = fw.ones(4, 3)
    with pytest.raises(TracingCheckError, match="relu"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TracerWarning)
            fw.jit.trace(f, (x,), check_inputs=[(fw.ones(4, 3) * -1,)])


def test_check_trace_passes_for_sound_models():
    fw.jit.trace(ReshapeNet(), (_x(4, 3, 4),), check_inputs=[(_x(2, 3, 4),), (_x(9, 3, 4),)])


def test_keep_params_as_inputs():
    model = MLP()
    traced = fw.jit.trace(model, (_x(4, 8),), keep_params_as_inputs=True)
    names = [v.name for v in traced.graph.inputs]
    assert names == ["x", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    assert not [n for n in traced.graph.nodes if n.op == "const"]
    x = _x(3, 8)
    np.testing.assert_allclose(traced(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_structured_outputs_and_several_inputs():
    def f(x, y):
        return {"sum": x + y, "pair": (x * y, fw.relu(y))}

    traced = fw.jit.trace(f, (_x(4, 3), _x(4, 3, seed=1)))
    assert [v.spec.shape[0] for v in traced.graph.inputs] == [traced.graph.inputs[0].spec.shape[0]] * 2
    x, y = _x(2, 3, seed=5), _x(2, 3, seed=6)
    out = traced(x, y)
    np.testing.assert_allclose(out["sum"].numpy(), (x + y).numpy())
    np.testing.assert_allclose(out["pair"][1].numpy(), fw.relu(y).numpy())
    with pytest.raises(ValueError, match="input 1"):
        traced(_x(2, 3), _x(3, 3))


def test_dynamic_dims_option():
    def f(x):
        return x.sum(1)

    traced = fw.jit.trace(f, (_x(4, 5),), dynamic_dims={0: (0, 1)})
    assert str(traced.graph.inputs[0].spec) == "f32[N,d0_1]"
    np.testing.assert_allclose(traced(_x(2, 9)).numpy(), _x(2, 9).numpy().sum(1), rtol=1e-5)
    static = fw.jit.trace(f, (_x(4, 5),), dynamic_dims={})
    assert static.graph.inputs[0].spec.is_static()


def test_trace_leaves_no_recording_state_behind():
    x = _x(4, 8)
    traced = fw.jit.trace(MLP(), (x,))
    out = traced(x)
    assert out._trace is None and x._trace is None
    assert isinstance(x.shape[0], int)
    from framework.ops.registry import DISPATCH_HOOKS, TRACE

    assert not DISPATCH_HOOKS and TRACE.tracer is None


def test_train_mode_dropout_warns():
    from framework.ops.registry import REGISTRY

    if "dropout" not in REGISTRY:
        pytest.skip("dropout op not registered yet")

    def f(x):
        return REGISTRY["dropout"].fn(x, 0.5, True)

    with pytest.warns(TracerWarning, match="dropout"):
        fw.jit.trace(f, (_x(4, 3),), check_trace=False)


def test_save_without_runtime_is_explicit(tmp_path):
    traced = fw.jit.trace(MLP(), (_x(4, 8),))
    try:
        from framework.jit import runtime  # noqa: F401
    except ImportError:
        with pytest.raises(NotImplementedError, match="runtime"):
            traced.save(tmp_path / "m.fw")
        return
    traced.save(tmp_path / "m.fw")
    loaded = fw.jit.load(tmp_path / "m.fw")
    x = _x(3, 8)
    np.testing.assert_allclose(loaded(x).numpy(), traced(x).numpy(), rtol=1e-5, atol=1e-6)


def test_copies_that_bypass_dispatch_warn():
    from framework.ops.dispatch import _copy_into

    def f(x):
        out = fw.zeros(x.shape[0], 3)
        _copy_into(out, x)  # not a recorded op
        return out + 1

    with pytest.warns(TracerWarning, match="bypassed the recorded ops"):
        fw.jit.trace(f, (_x(4, 3),), check_trace=False)


def test_len_of_a_symbolic_dim_is_guarded():
    def f(x):
        return x * float(len(x))

    with pytest.warns(TracerWarning, match="symbolic dim N"):
        traced = fw.jit.trace(f, (_x(4, 3),), check_trace=False)
    with pytest.raises(ValueError, match="N == 4"):
        traced(_x(5, 3))
