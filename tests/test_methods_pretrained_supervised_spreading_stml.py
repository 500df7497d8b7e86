"""Methods pretrained, supervised, spreading, stml and the glue (views, fit_method) on the tiny CUB stand-in:
smoke fits that checkpoint and log mined-positive precision, exact resumption after a kill, stage skipping,
and refusals before anything is written."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from ssml_lib.config import Config
from ssml_lib.data import build_transform, make_standin, open_dataset
from ssml_lib.engine import TIMING_KEYS, load_checkpoint, read_log
from ssml_lib.errors import ConfigError
from ssml_lib.methods import METHODS
from ssml_lib.methods.schedule import Stage, fit_method, method_config, method_config_class, train_config
from ssml_lib.methods.supervised import m_per_class_batches
from ssml_lib.methods.views import NeighbourTuples, Transformed, TwoViews
from ssml_lib.models import build_model

OWNED = ("pretrained", "supervised", "spreading", "stml")
PX = 24  # convnet4 still has a 1x1 map at 24 px; small images keep the file fast on a shared 2-core CPU
TRAIN_TF = build_transform("thesis", True, PX, 28)
TEST_TF = build_transform("thesis", False, PX, 28)


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = make_standin("cub200", tmp_path_factory.mktemp("data"), "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stand-in counts differ from the real ones
        return open_dataset("cub200", root, "train")


def model():
    torch.manual_seed(0)
    return build_model("convnet4", pooling="avg", head="linear", embedding_size=16)


def run(name, cub, out_dir, method_cfg=None, **train):
    tc = train_config(name, {"epochs": 1, "max_steps": 2, "batch_size": 16, "log_every": 1, "device": "cpu", **train})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keep the tiny runs quiet
        return fit_method(name, model=model(), train_set=cub, method_cfg=method_cfg, train_cfg=tc, out_dir=out_dir,
                          train_transform=TRAIN_TF, test_transform=TEST_TF, progress=False)


def untimed(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


# ---------------------------------------------------------------- registry and configs

def test_registry_resolves_owned_names_and_refuses_unknown():
    for name in OWNED:
        cls = METHODS[name]
        assert cls.__module__ == f"ssml_lib.methods.{name}"
        assert issubclass(method_config_class(name), Config)
        method_config(name)  # defaults are valid
    with pytest.raises(ConfigError, match="unknown method 'simclr'"):
        METHODS["simclr"]
    with pytest.raises(ConfigError, match="unknown method"):
        method_config_class("simclr")


def test_method_configs_refuse_unknown_keys_and_stay_clear_of_run_and_train_names():
    with pytest.raises(ConfigError, match="unknown parameter 'sigmaa'"):
        method_config("stml", {"sigmaa": 3})
    with pytest.raises(ConfigError, match="nn_positive_prob"):
        method_config("spreading", {"nn_positive_prob": 1.5})
    from dataclasses import fields

    from ssml_lib.config import RunConfig, _routes
    from ssml_lib.engine import TrainConfig

    taken = set(_routes(RunConfig)) | {f.name for f in fields(TrainConfig)}
    for name in OWNED:
        assert not taken & {f.name for f in fields(method_config_class(name))}, name


def test_train_config_lays_overrides_over_the_official_recipe():
    tc = train_config("spreading", {"epochs": 3})
    assert (tc.optimizer, tc.lr, tc.momentum, tc.weight_decay, tc.milestones, tc.epochs) == ("sgd", 0.001, 0.9, 5e-4,
                                                                                              (20, 40), 3)
    assert train_config("stml").schedule == "cosine" and train_config("stml").weight_decay == 1e-2


# ---------------------------------------------------------------- views and batch tables

def test_views_wrap_untransformed_items_and_refuse_transformed_bases(cub):
    (v1, v2), label, index = TwoViews(cub, TRAIN_TF)[3]
    assert v1.shape == (3, PX, PX) and (label, index) == (int(cub.labels[3]), 3)
    paired = TwoViews(cub, TEST_TF, partner=torch.arange(len(cub)).roll(1))  # view 2 from item i - 1
    assert torch.equal(paired[5][0][1], Transformed(cub, TEST_TF)[4][0])
    views, labels, indices = NeighbourTuples(cub, TEST_TF, torch.arange(len(cub))[:, None].repeat(1, 2).roll(1, 0))[2]
    assert views.shape == (3, 3, PX, PX) and indices.tolist() == [2, 1, 1]
    assert labels.tolist() == [int(cub.labels[i]) for i in (2, 1, 1)]
    cub.transform = TEST_TF
    try:
        with pytest.raises(ConfigError, match="transform=None"):
            Transformed(cub, TEST_TF)
    finally:
        cub.transform = None


def test_m_per_class_batches_hold_m_items_of_distinct_classes():
    labels = torch.tensor([0] * 5 + [1] * 2 + [2] * 7 + [3] * 4 + [4] * 6)
    table = m_per_class_batches(labels, 8, 4, seed=1, epoch=0)
    assert table.shape == (3, 8)
    lab = labels[table].view(3, 2, 4)
    assert (lab == lab[..., :1]).all() and (lab[:, 0, 0] != lab[:, 1, 0]).all()
    big = table.view(3, 2, 4)[lab[..., 0] != 1]  # classes with >= 4 items: no repeats within the class
    assert all(len(set(row.tolist())) == 4 for row in big)
    assert not torch.equal(table, m_per_class_batches(labels, 8, 4, seed=1, epoch=1))


# ---------------------------------------------------------------- smoke fits

def test_pretrained_trains_nothing_and_writes_nothing(cub, tmp_path):
    net = model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = fit_method("pretrained", model=net, train_set=cub, out_dir=tmp_path / "p", train_transform=TRAIN_TF,
                        test_transform=TEST_TF, progress=False)
    assert result.stages == [] and result.history == [] and result.model is net
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert not (tmp_path / "p").exists()
    assert result.method(torch.zeros(2, 3, PX, PX)).shape == (2, 16)


@pytest.mark.parametrize("name, cfg, extra", [
    ("spreading", {"nn_positive_prob": 0.5}, ("nn_partner_fraction",)),
    ("supervised", {"supervised_loss": "contrastive"}, ()),
])
def test_smoke_fit_checkpoints_and_logs_positive_precision(cub, tmp_path, name, cfg, extra):
    result = run(name, cub, tmp_path / name, cfg)
    (stage,) = result.stages
    ckpt = load_checkpoint(stage.checkpoint)
    assert ckpt["progress"]["global_step"] == 2
    (record,) = read_log(stage.log_path)
    assert math.isfinite(record["loss"])
    assert 0.0 <= record["pos_precision"] <= 1.0
    for key in extra:
        assert key in record
    assert result.method(torch.zeros(2, 3, PX, PX)).shape == (2, 16)
    if name == "supervised":
        assert record["pos_precision"] == 1.0


def test_stml_fit_heads_teacher_param_groups_and_precision(cub, tmp_path):
    result = run("stml", cub, tmp_path / "s", {"num_neighbors": 4, "g_embedding_size": 24, "embedding_lr": 0.01})
    (record,) = read_log(result.stages[0].log_path)
    assert math.isfinite(record["loss"]) and record["loss"] == pytest.approx(record["rc"] + record["kl"])
    assert 0.0 <= record["nn_precision"] <= 1.0 and record["pos_pairs_per_row"] >= 0.0
    assert record["pos_precision"] is None or 0.0 <= record["pos_precision"] <= 1.0
    assert load_checkpoint(result.stages[0].checkpoint)["progress"]["global_step"] == 2
    method = result.method
    g, f = method.model(torch.zeros(2, 3, PX, PX))
    assert g.shape == (2, 24) and f.shape == (2, 16) and not method.model.normalize_output
    assert not method.teacher.training and not any(p.requires_grad for p in method.teacher.parameters())
    assert record["lr_groups"]["embedding"] == 0.01 and record["lr_groups"]["backbone"] == record["lr"]
    # the teacher moved towards the student (EMA), but not onto it
    t, s = method.teacher.backbone.blocks[0][0].weight, method.model.backbone.blocks[0][0].weight
    assert not torch.equal(t, s)


# ---------------------------------------------------------------- resumption and stages

class Killed(RuntimeError):
    pass


@pytest.mark.parametrize("name, cfg", [("stml", {"num_neighbors": 4}), ("spreading", {"nn_positive_prob": 0.5})])
def test_killed_run_resumes_to_the_same_metrics(cub, tmp_path, monkeypatch, name, cfg):
    train = {"epochs": 2, "max_steps": None, "checkpoint_every_steps": 1, "deterministic": True}
    whole = run(name, cub, tmp_path / "whole", cfg, **train)
    cls = METHODS[name]
    original, calls = cls.training_step, {"n": 0}

    def dying_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # global step 4: inside epoch 1, after its neighbour/partner mining
            raise Killed("simulated kill")
        return original(self, batch)

    monkeypatch.setattr(cls, "training_step", dying_step)
    with pytest.raises(Killed):
        run(name, cub, tmp_path / "killed", cfg, **train)
    monkeypatch.setattr(cls, "training_step", original)
    resumed = run(name, cub, tmp_path / "killed", cfg, **train)
    assert load_checkpoint(resumed.stages[0].checkpoint)["progress"]["global_step"] == 6
    assert untimed(resumed.history) == untimed(whole.history)
    a, b = whole.method.state_dict(), resumed.method.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_multi_stage_schedule_runs_each_stage_once_and_skips_finished_ones(cub, tmp_path, monkeypatch):
    cls = METHODS["spreading"]
    seen = []
    monkeypatch.setattr(cls, "stages", classmethod(lambda c, cfg: [Stage("cycle0"), Stage("cycle1", {"lr": 0.002})]),
                        raising=False)
    original = cls.on_fit_start

    def record_stage(self, ctx):
        seen.append((self.stage_info.name, [p.name for p in self.stage_info.previous_dirs], ctx.cfg.lr))
        original(self, ctx)

    monkeypatch.setattr(cls, "on_fit_start", record_stage)
    first = run("spreading", cub, tmp_path / "m")
    assert seen == [("cycle0", [], 0.001), ("cycle1", ["cycle0"], 0.002)]
    assert [s.name for s in first.stages] == ["cycle0", "cycle1"] and len(first.log_paths) == 2
    assert [r["stage"] for r in first.history] == ["cycle0", "cycle1"]
    second = run("spreading", cub, tmp_path / "m")
    assert len(seen) == 2 and all(s.skipped for s in second.stages)  # nothing trained again
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_settings_are_refused_before_anything_is_written(cub, tmp_path):
    with pytest.raises(ConfigError, match="multiple of num_neighbors"):
        run("stml", cub, tmp_path / "bad", {"num_neighbors": 5})  # batch 16
    with pytest.raises(ConfigError, match="unknown method"):
        run("simclr", cub, tmp_path / "bad")
    with pytest.raises(ConfigError, match="unknown parameter"):
        run("spreading", cub, tmp_path / "bad", {"temprature": 0.1})
    assert not (tmp_path / "bad").exists()
