"""Optimiser builders against hand-computed single steps, schedules against their formulas and torch's own
schedulers, and TrainConfig's refusals."""
from __future__ import annotations

import math
import sys

import pytest
import torch
from torch import nn

from ssml_lib.config import load_config
from ssml_lib.engine import LrSchedule, TrainConfig, build_optimizer
from ssml_lib.engine.optim import torch_param_groups
from ssml_lib.errors import ConfigError

LR, WD, B1, B2, EPS = 0.1, 0.5, 0.9, 0.999, 1e-8


def one_step(optimizer: str, w0, b0, gw, gb, **kw):
    """One optimiser step on a weight w and a bias b whose gradients are set to gw, gb (float64)."""
    w = nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    b = nn.Parameter(torch.tensor(b0, dtype=torch.float64))
    cfg = TrainConfig(optimizer=optimizer, lr=LR, weight_decay=WD, betas=(B1, B2), **kw)
    opt, _ = build_optimizer([{"params": [("layer.weight", w), ("layer.bias", b)]}], cfg)
    w.grad, b.grad = torch.tensor(gw, dtype=torch.float64), torch.tensor(gb, dtype=torch.float64)
    opt.step()
    return w.detach(), b.detach()


def adam_first_step(g):
    # m1 = (1-b1) g, v1 = (1-b2) g^2; bias-corrected: m̂ = g, v̂ = g^2 -> update g / (|g| + eps)
    return [x / (abs(x) + EPS) for x in g]


def test_adam_coupled_decay_on_weights_none_on_biases():
    w0, gw = [1.0, -2.0], [0.2, 0.3]
    w, b = one_step("adam", w0, [3.0], gw, [0.0])
    coupled = [g + WD * x for g, x in zip(gw, w0)]  # [0.7, -0.7]: decay flips the second sign
    expected = [x - LR * u for x, u in zip(w0, adam_first_step(coupled))]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))
    assert torch.equal(b, torch.tensor([3.0], dtype=torch.float64))  # zero grad, zero decay: bias unchanged


def test_adamw_decoupled_decay_differs_from_coupled():
    w0, gw = [1.0, -2.0], [0.2, 0.3]
    w, b = one_step("adamw", w0, [3.0], gw, [0.0])
    expected = [x * (1 - LR * WD) - LR * u for x, u in zip(w0, adam_first_step(gw))]  # [0.85, -2.0]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([3.0 * (1 - LR * WD)], dtype=torch.float64))  # decay on all
    coupled, _ = one_step("adam", w0, [3.0], gw, [0.0])
    assert (w - coupled).abs().max() > 0.05


def test_sgd_l2_on_every_parameter():
    w, b = one_step("sgd", [1.0, -2.0], [3.0], [0.2, 0.3], [0.0], momentum=0.9)
    torch.testing.assert_close(w, torch.tensor([1.0 - LR * (0.2 + WD * 1.0), -2.0 - LR * (0.3 - WD * 2.0)],
                                               dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([3.0 - LR * WD * 3.0], dtype=torch.float64))


def test_adamp_first_step_nesterov_and_decoupled_decay():
    w, b = one_step("adamp", [1.0, -2.0], [3.0], [0.2, 0.3], [0.0])
    # 1-D tensors are never projected. First step: m = (1-b1) g, denominator |g| + eps, step lr / (1-b1);
    # nesterov uses b1 m + (1-b1) g, so the step is (1 + b1) times Adam's. Decay is decoupled, on all.
    expected = [x * (1 - LR * WD) - LR * (1 + B1) * g / (abs(g) + EPS) for x, g in zip([1.0, -2.0], [0.2, 0.3])]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([3.0 * (1 - LR * WD)], dtype=torch.float64))


def test_adamp_projects_updates_of_scale_invariant_weights():
    # rows of w are unit vectors; the gradient is nearly orthogonal to each (cosine .01 < delta / sqrt(2)),
    # so AdamP removes the radial part of the update and decays 10x less
    w = nn.Parameter(torch.eye(2, dtype=torch.float64))
    opt, _ = build_optimizer([{"params": [("layer.weight", w)]}],
                             TrainConfig(optimizer="adamp", lr=LR, weight_decay=WD, betas=(B1, B2)))
    w.grad = torch.tensor([[0.01, 1.0], [1.0, 0.01]], dtype=torch.float64)
    opt.step()
    off = -LR * (1 + B1) / (1 + EPS)  # the tangential part moves as Adam with nesterov would
    torch.testing.assert_close(w.detach(), torch.tensor([[1 - 0.1 * LR * WD, off], [off, 1 - 0.1 * LR * WD]],
                                                        dtype=torch.float64))


def test_stml_defaults_build_adamp_with_nesterov():
    from adamp import AdamP

    from ssml_lib.methods import METHODS
    from ssml_lib.methods.schedule import train_config
    from ssml_lib.models import build_model

    cfg = train_config("stml")
    assert cfg.optimizer == "adamp"
    method = METHODS["stml"](build_model("convnet4", embedding_size=16, head="linear"), METHODS["stml"].Config(),
                             train_transform=lambda x: x, test_transform=lambda x: x)
    opt, desc = build_optimizer(method.param_groups(cfg), cfg)  # as the training loop builds it
    assert type(opt) is AdamP and desc.startswith("AdamP(")
    assert opt.defaults["nesterov"] is True and all(g["nesterov"] is True for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-2, 1e-2]


def test_adamp_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "adamp", None)  # import adamp now fails
    with pytest.raises(ImportError, match="pip install adamp"):
        one_step("adamp", [1.0], [0.0], [0.1], [0.0])


def test_param_groups_lr_scale_absolute_lr_and_frozen():
    a, b, frozen = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)
    frozen.requires_grad_(False)
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, weight_decay=0.01)
    groups = torch_param_groups([{"name": "backbone", "params": a.named_parameters()},
                                 {"name": "head", "params": list(b.parameters()) + list(frozen.parameters()),
                                  "lr": 1e-4, "weight_decay": 0.0}], cfg)
    assert [(g["name"], g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [
        ("backbone", 1e-3, 0.01, 2), ("head", 1e-4, 0.0, 2)]
    scaled = torch_param_groups([{"params": a.parameters(), "lr_scale": 10.0}], cfg)
    assert scaled[0]["lr"] == pytest.approx(1e-2)
    with pytest.raises(ConfigError, match="two param groups"):
        torch_param_groups([{"params": a.parameters()}, {"params": a.parameters()}], cfg)
    with pytest.raises(ConfigError, match="unknown keys"):
        torch_param_groups([{"params": a.parameters(), "momentum": 0.5}], cfg)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        torch_param_groups([{"params": frozen.parameters()}], cfg)


def factors(cfg: TrainConfig, steps_per_epoch: int = 1):
    s = LrSchedule(cfg)
    return [s.factor(e, e * steps_per_epoch + i) for e in range(cfg.epochs) for i in range(steps_per_epoch)]


def test_multistep_per_epoch_matches_spreading_recipe():
    cfg = TrainConfig(epochs=60, schedule="multistep", milestones=(20, 40), gamma=0.1)
    f = factors(cfg)
    assert f[:20] == [1.0] * 20 and f[20:40] == pytest.approx([0.1] * 20) and f[40:] == pytest.approx([0.01] * 20)


def test_multistep_per_step_and_warmup():
    cfg = TrainConfig(epochs=2, schedule="multistep", schedule_unit="step", milestones=(3, 6), gamma=0.5, warmup=2)
    assert factors(cfg, steps_per_epoch=4) == pytest.approx([0.5, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_cosine_per_epoch_matches_torch_cosine_annealing():
    cfg = TrainConfig(epochs=7, schedule="cosine", lr=0.3)
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7)
    ours = LrSchedule(cfg)
    for epoch in range(7):
        assert ours.factor(epoch, epoch * 10) * 0.3 == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        sched.step()


def test_cosine_per_step_needs_max_steps_and_follows_formula():
    with pytest.raises(ConfigError, match="max_steps"):
        TrainConfig(schedule="cosine", schedule_unit="step")
    cfg = TrainConfig(schedule="cosine", schedule_unit="step", max_steps=8)
    s = LrSchedule(cfg)
    assert [s.factor(0, i) for i in (0, 4, 8)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)
    assert s.factor(0, 2) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_schedule_drives_each_groups_lr_in_fit(tmp_path):
    from torch.utils.data import TensorDataset

    from ssml_lib.engine import fit
    from ssml_lib.methods.base import Method

    class Tiny(Method):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 1), nn.Linear(3, 1)

        def training_step(self, batch):
            x, = batch
            return {"loss": (self.a(x) + self.b(x)).pow(2).mean()}

        def param_groups(self, cfg):
            return [{"name": "a", "params": self.a.named_parameters()},
                    {"name": "b", "params": self.b.named_parameters(), "lr_scale": 0.1}]

    cfg = TrainConfig(epochs=4, batch_size=4, lr=1.0, schedule="multistep", milestones=(2,), gamma=0.5,
                      optimizer="sgd", momentum=0.0)
    res = fit(Tiny(), TensorDataset(torch.randn(8, 3)), cfg, tmp_path)
    assert [r["lr"] for r in res.history] == [1.0, 1.0, 0.5, 0.5]
    assert [r["lr_groups"]["b"] for r in res.history] == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_train_config_refuses_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="Did you mean 'lr'"):
        load_config(TrainConfig, overrides={"lrr": 0.1})
    with pytest.raises(ConfigError, match="TrainConfig.epochs expects int"):
        TrainConfig(epochs=2.5)
    with pytest.raises(ConfigError, match="must be one of"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(ConfigError, match="milestone"):
        TrainConfig(schedule="multistep")
    with pytest.raises(ConfigError, match="strictly increasing"):
        TrainConfig(schedule="multistep", milestones=(40, 20))
    assert load_config(TrainConfig, overrides={"lr": "1e-3", "milestones": [20, 40]}).milestones == (20, 40)
    with pytest.raises(Exception):
        TrainConfig().lr = 1.0  # frozen
