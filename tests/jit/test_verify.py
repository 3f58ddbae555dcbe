"""verify(): agrees on sound pipelines, and finds the first diverging node and the pass
that introduced it when a pass is wrong."""

import numpy as np

import framework as fw
from framework.jit import passes as P
from tests.jit.models import MLP, ReshapeNet, gelu_tanh_mlp


def _x(*shape):
    return fw.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def test_verify_ok_on_models():
    for model, ins in [(MLP(), (_x(4, 8),)), (ReshapeNet(), (_x(3, 3, 4),)),
                       (gelu_tanh_mlp, (_x(4, 6), _x(8, 6), _x(8), _x(2, 8)))]:
        report = fw.jit.verify(model, ins)
        assert report.ok, str(report)
        assert report.compared > 0 and report.float64_error < 1e-5


def wrong_tanh(graph):
    """A deliberately broken pass: rewrites tanh as sigmoid."""
    for n in graph.calls("tanh"):
        with graph.inserting_before(n):
            m = graph.call("sigmoid", [n.inputs[0]], source=n.source)
        graph.replace_all_uses(n.output, m.output)
        graph.erase(n)
        return True
    return False


def test_verify_finds_the_broken_pass_and_node():
    report = fw.jit.verify(ReshapeNet(), (_x(3, 3, 4),),
                           passes=[P.fold_constants, P.remove_noops, wrong_tanh, P.fuse_elementwise])
    assert not report.ok
    d = report.divergence
    assert d.stage == "after pass wrong_tanh"
    assert d.pass_name == "wrong_tanh" and "sigmoid" in d.node
    import inspect

    from tests.jit import models

    lines, start = inspect.getsourcelines(models.ReshapeNet.forward)
    tanh_line = start + next(i for i, t in enumerate(lines) if "fw.tanh" in t)
    assert d.source.endswith(f"models.py:{tanh_line}")  # the user's line with the tanh
    assert "compared with %tanh" in d.detail
    assert "wrong_tanh" in str(report)


def test_verify_finds_a_wrong_fusion():
    def bad_fusion(graph):
        changed = P.fuse_linear_activation(graph)
        for n in graph.calls("linear_act"):
            n.attrs = ("tanh",)  # the wrong activation
        return changed

    report = fw.jit.verify(MLP(), (_x(4, 8),), passes=[bad_fusion])
    assert not report.ok
    assert "linear_act" in report.divergence.node
    assert report.divergence.pass_name == "bad_fusion"
    assert "compared with %relu" in report.divergence.detail
