"""Learning-rate schedulers: the lr sequence over 30 steps equals torch's exactly (the
recursive update rules are the same), including several param groups and state_dict."""

from __future__ import annotations

import math

import pytest
import torch

import framework as fw

SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=1e-4),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.2, total_iters=9),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 1.0 / (1 + e) ** 0.5),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.97),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=31),
    "OneCycleLR_linear_3phase": lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, total_steps=31, anneal_strategy="linear", three_phase=True
    ),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=12, power=2.0),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=0.01),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=12),
            m.StepLR(o, step_size=3, gamma=0.5)], milestones=[5, 17]
    ),
}


def run(lib, make, opt_cls):
    ps = [lib.nn.Parameter(lib.zeros(2)), lib.nn.Parameter(lib.zeros(3))]
    opt = getattr(lib.optim, opt_cls)([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.3}], lr=0.1)
    sched = make(lib.optim.lr_scheduler, opt)
    seq = [sched.get_last_lr()]
    moms = []
    for _ in range(30):
        opt.step()
        sched.step()
        seq.append(sched.get_last_lr())
        g = opt.param_groups[0]
        moms.append(g.get("momentum", g.get("betas", (None,))[0]))
    return seq, moms


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("opt_cls", ["SGD", "Adam"])
def test_lr_sequence_equals_torch(name, opt_cls):
    if name.startswith("OneCycleLR") and opt_cls == "SGD":
        opt_cls = "SGD"
    f_seq, f_mom = run(fw, SCHEDULERS[name], opt_cls)
    t_seq, t_mom = run(torch, SCHEDULERS[name], opt_cls)
    assert f_seq == t_seq
    if name.startswith("OneCycleLR"):
        assert f_mom == t_mom


def test_scheduler_state_dict_and_closed_form():
    p = fw.nn.Parameter(fw.zeros(1))
    opt = fw.optim.SGD([p], lr=1.0)
    s = fw.optim.lr_scheduler.StepLR(opt, 2, 0.1)
    for _ in range(5):
        s.step()
    sd = s.state_dict()
    assert sd["last_epoch"] == 5 and "optimizer" not in sd
    s2 = fw.optim.lr_scheduler.StepLR(fw.optim.SGD([p], lr=1.0), 2, 0.1)
    s2.load_state_dict(sd)
    assert s2.last_epoch == 5
    c = fw.optim.lr_scheduler.CosineAnnealingLR(fw.optim.SGD([p], lr=1.0), T_max=4)
    assert math.isclose(c._get_closed_form_lr()[0], 1.0)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        fw.optim.lr_scheduler.StepLR(object(), 1)


def test_reduce_lr_on_plateau_equals_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.79999, 0.7] + [0.7] * 16

    def run(lib, **kw):
        ps = [lib.nn.Parameter(lib.zeros(2)), lib.nn.Parameter(lib.zeros(3))]
        opt = lib.optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.3}], lr=0.1)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        seq = []
        for m in metrics:
            opt.step()
            sched.step(lib.tensor(m) if lib is fw else m)
            seq.append(sched.get_last_lr())
        return seq

    for kw in [dict(patience=2), dict(patience=1, cooldown=2, factor=0.5, min_lr=[0.02, 0.05]),
               dict(mode="max", patience=0, threshold_mode="abs", threshold=0.01)]:
        assert run(fw, **kw) == run(torch, **kw), kw
    with pytest.raises(ValueError, match="Factor"):
        fw.optim.lr_scheduler.ReduceLROnPlateau(fw.optim.SGD([fw.nn.Parameter(fw.zeros(1))], lr=1.0), factor=1.0)


def test_cosine_warm_restarts_fractional_epochs_equal_torch():
    def run(lib):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(1))], lr=0.5)
        s = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.05)
        out = []
        for e in [0.5, 1.25, 2.9, 3.0, 7.5, 20.0, 4.0]:
            s.step(e)
            out.append(s.get_last_lr())
        return out

    assert run(fw) == run(torch)
