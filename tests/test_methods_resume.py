"""Killed-and-resumed runs of InsCLR (inside its impr stage: banks, pool, counters), ISL (inside a round, after
its mining) and MOM (inside an epoch, after re-mining) end with the same logs and state as uninterrupted runs;
InsCLR's impr stage runs with its own length, batch and milestones; a method ends a stage early through
``on_epoch_end``'s ``stop_training`` (toy method and ISL's GAN stop rule), and a resumed fit trains no further."""
from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import ssml_lib.methods.isl as isl_module
from ssml_lib.data import build_transform, make_standin, open_dataset
from ssml_lib.engine import TIMING_KEYS, TrainConfig, fit, load_checkpoint, read_log
from ssml_lib.errors import ConfigError
from ssml_lib.methods import METHODS
from ssml_lib.methods.base import Method
from ssml_lib.methods.schedule import fit_method, method_stages, train_config
from ssml_lib.models import build_model

PX = 24  # convnet4 keeps a 1x1 map at 24 px; small images keep the file fast on a shared CPU


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions run ~30x faster on one thread than on two contended ones (shared CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = make_standin("cub200", tmp_path_factory.mktemp("data"), "tiny")  # 48 images, 8 classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stand-in counts differ from the real dataset's
        return open_dataset("cub200", root, "train")


def run(name, cub, out, method_cfg, head="linear", **train):
    train = {"epochs": 1, "batch_size": 8, "deterministic": True, "log_every": 1, "device": "cpu",
             "checkpoint_every_steps": 1, **train}
    preset = "insclr" if name == "insclr" else "thesis"
    tr = build_transform(preset, True, size=PX, resize=PX + 4, normalize="resnet")
    te = build_transform("noaug", False, size=PX, normalize="resnet")
    torch.manual_seed(0)
    net = build_model("convnet4", embedding_size=16, head=head)
    return fit_method(name, model=net, train_set=cub, method_cfg=method_cfg, train_cfg=train_config(name, train),
                      out_dir=out, train_transform=tr, test_transform=te, progress=False)


def untimed(history) -> str:
    """The records without timings, as text (NaN, logged before anything is mined, equals itself there)."""
    return json.dumps([{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history], sort_keys=True)


class Killed(RuntimeError):
    pass


def kill_and_resume(name, cub, tmp_path, monkeypatch, method_cfg, kill_at_call, **train):
    """The uninterrupted run, and a run killed inside training step number ``kill_at_call`` (1-based, counted
    over all stages) then resumed by calling fit_method again."""
    whole = run(name, cub, tmp_path / "whole", method_cfg, **train)
    cls = METHODS[name]
    original, calls = cls.training_step, {"n": 0}

    def dying_step(self, batch):
        calls["n"] += 1
        if calls["n"] == kill_at_call:
            raise Killed("simulated kill")
        return original(self, batch)

    monkeypatch.setattr(cls, "training_step", dying_step)
    with pytest.raises(Killed):
        run(name, cub, tmp_path / "killed", method_cfg, **train)
    monkeypatch.setattr(cls, "training_step", original)
    resumed = run(name, cub, tmp_path / "killed", method_cfg, **train)
    assert [s.name for s in resumed.stages] == [s.name for s in whole.stages]
    assert untimed(resumed.history) == untimed(whole.history)
    a, b = whole.method.state_dict(), resumed.method.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, equal_nan=True, msg=k)
        else:  # extra state (dicts of tensors and numbers)
            assert repr(a[k]) == repr(b[k]), k
    return whole, resumed


# ---------------------------------------------------------------- InsCLR

INSCLR = dict(insclr_stages=["base", "impr"], pool_size=10, memory_start_step=0, memory_use_step=1,
              memory_draw=20, impr_mode="b+i_tr2_avg0.60_k03", base_selection_threshold=0.5,
              impr_selection_threshold=0.5, impr_positive_threshold=0.9, impr_negative_threshold=0.3)
IMPR = dict(impr_max_steps=3, impr_batch_size=4, impr_milestones=[1])


def test_insclr_impr_overrides_reach_its_stage_only():
    cfg = METHODS["insclr"].Config(**INSCLR)
    assert [s.train for s in method_stages("insclr", cfg)] == [{}, {}]  # None: as the base stages
    base, impr = method_stages("insclr", METHODS["insclr"].Config(**INSCLR, **IMPR))
    assert base.train == {}
    assert impr.train == dict(max_steps=3, batch_size=4, schedule="multistep", schedule_unit="step",
                              milestones=(1,))
    const = method_stages("insclr", METHODS["insclr"].Config(**INSCLR, impr_milestones=[]))[1]
    assert const.train == dict(schedule="constant", milestones=())
    for bad in (dict(impr_batch_size=6), dict(impr_max_steps=0), dict(impr_milestones=[5, 2])):
        with pytest.raises(ConfigError, match="impr_"):
            METHODS["insclr"].Config(**INSCLR, **bad)


def test_insclr_killed_in_impr_stage_resumes_exactly_with_its_own_schedule(cub, tmp_path, monkeypatch):
    # base: 2 steps of 2 anchors x 4; impr: 3 steps of 1 x 4, lr x0.1 from its step 1; killed at impr step 1
    whole, resumed = kill_and_resume("insclr", cub, tmp_path, monkeypatch, {**INSCLR, **IMPR}, kill_at_call=4,
                                     max_steps=2, head="norm_linear_norm")
    base_dir, impr_dir = (s.out_dir for s in whole.stages)
    base_rec, impr_rec = (json.loads((d / "stage.json").read_text()) for d in (base_dir, impr_dir))
    assert (base_rec["train_config"]["max_steps"], base_rec["train_config"]["batch_size"]) == (2, 8)
    assert (impr_rec["train_config"]["max_steps"], impr_rec["train_config"]["batch_size"]) == (3, 4)
    assert impr_rec["train_config"]["milestones"] == [1] and impr_rec["global_step"] == 3
    (last,) = read_log(impr_dir / "log.jsonl")
    assert last["lr"] == pytest.approx(1e-4 * 0.3 * 0.1)  # lr x impr_lr_scale, decayed at its own milestone
    assert read_log(base_dir / "log.jsonl")[-1]["lr"] == pytest.approx(1e-4)
    # the resumed impr stage restored both banks and reused the stage's candidate pool file
    state = load_checkpoint(tmp_path / "killed" / impr_dir.name / "last.pt")["method"]
    assert bool(state["memory.noaug.written"].all()) and "loss_memory" in last
    assert (tmp_path / "killed" / impr_dir.name / "candidate_pool.npz").is_file()
    assert resumed.stages[0].skipped and not resumed.stages[1].skipped


# ---------------------------------------------------------------- ISL and MOM

ISL = dict(isl_rounds=2, isl_gan_epochs=1, isl_num_candidates=16, isl_top_k=5, isl_gate=0.0, isl_radius=0.0,
           isl_mining_max_epochs=2)


def test_isl_killed_inside_a_round_after_mining_resumes_exactly(cub, tmp_path, monkeypatch):
    # stages of 3 steps each: round0_backbone, round0_gan, round1_backbone (mines first); killed at its step 1
    whole, _ = kill_and_resume("isl", cub, tmp_path, monkeypatch, ISL, kill_at_call=8, max_steps=3)
    last = whole.history[-1]
    assert last["stage"] == "round1_backbone" and last["mining_new_links"] > 0  # mining stats survive the kill


def test_mom_killed_inside_an_epoch_after_re_mining_resumes_exactly(cub, tmp_path, monkeypatch):
    cfg = dict(mom_k=8, mom_graph_k=6, mom_num_anchors=12, mom_triplets_per_anchor=2)
    # batches of 2 triplets; killed at the 2nd step of epoch 1 (its triplets were re-mined at its start)
    first = run("mom", cub, tmp_path / "probe", cfg, batch_size=6, epochs=1)
    steps0 = first.history[0]["step"]
    assert steps0 >= 2
    whole, _ = kill_and_resume("mom", cub, tmp_path, monkeypatch, cfg, kill_at_call=steps0 + 2, batch_size=6,
                               epochs=2)
    assert [r["epoch"] for r in whole.history] == [0, 1] and "num_triplets" in whole.history[1]


# ---------------------------------------------------------------- early stop

class StopsAfterTwoEpochs(Method):
    """Asks to stop at the end of epoch 1 (0-based); counts the epochs it was asked to start."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(3, 2)
        self.starts = 0

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch):
        x, y = batch
        return {"loss": nn.functional.cross_entropy(self(x), y)}

    def on_epoch_start(self, epoch, ctx):
        self.starts += 1

    def on_epoch_end(self, epoch, ctx):
        return {"stop_training": torch.tensor(epoch >= 1), "seen": epoch}


def toy_data():
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    return TensorDataset(x, (x[:, 0] > 0).long())


def test_stop_training_ends_the_fit_after_that_epoch_and_resume_trains_no_more(tmp_path):
    cfg = TrainConfig(epochs=5, batch_size=4, device="cpu", deterministic=True, log_every=1)
    torch.manual_seed(0)
    method = StopsAfterTwoEpochs()
    result = fit(method, toy_data(), cfg, tmp_path)
    assert result.completed and result.global_step == 8 and method.starts == 2
    assert [r["epoch"] for r in result.history] == [0, 1] and [r["seen"] for r in result.history] == [0, 1]
    assert "stopped_early" not in result.history[0] and result.history[1]["stopped_early"] is True
    assert all("stop_training" not in r for r in result.history)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["progress"]["stopped"] is True and ckpt["progress"]["epoch"] == 2
    weights = {k: v.clone() for k, v in method.state_dict().items()}
    # resuming (even with more epochs allowed) trains nothing further and reports the stage complete
    again = StopsAfterTwoEpochs()
    res2 = fit(again, toy_data(), dataclasses.replace(cfg, epochs=9), tmp_path)
    assert res2.completed and res2.global_step == 8 and again.starts == 0
    assert untimed(res2.history) == untimed(result.history)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in weights.items())
    assert len(read_log(tmp_path / "log.jsonl")) == 2


def test_isl_gan_stage_ends_by_its_stop_rule_and_the_schedule_goes_on(cub, tmp_path, monkeypatch):
    seen = []

    def stop_after_two(history, round_index, *, max_epochs):
        seen.append((len(history), round_index, max_epochs))
        return len(history) >= 2  # stands in for the official rule, which needs >= 10 epochs in round 0

    monkeypatch.setattr(isl_module, "gan_should_stop", stop_after_two)
    cfg = {**ISL, "isl_gan_epochs": 6}
    result = run("isl", cub, tmp_path / "on", cfg, batch_size=16, checkpoint_every_steps=None)
    gan = result.stages[1]
    records = read_log(gan.log_path)
    assert [r["gan_stop_rule_met"] for r in records] == [False, True] and records[-1]["stopped_early"] is True
    assert seen == [(1, 0, 6), (2, 0, 6)]
    assert json.loads((gan.out_dir / "stage.json").read_text())["global_step"] == 2 * 3  # 2 epochs of 48 / 16
    # the next round mined with the GAN as the stopped stage checkpointed it
    assert "mining_epochs" in result.stages[2].history[-1]
    g_stopped, g_next = (load_checkpoint(s.out_dir / "last.pt")["method"] for s in result.stages[1:])
    assert all(torch.equal(v, g_next[k]) for k, v in g_stopped.items() if k.startswith("generator."))
    # rule off: the GAN stage runs all its epochs, the rule still logged
    off = run("isl", cub, tmp_path / "off", {**ISL, "isl_gan_epochs": 3, "isl_gan_early_stop": False},
              batch_size=16, checkpoint_every_steps=None)
    records = read_log(off.stages[1].log_path)
    assert [r["gan_stop_rule_met"] for r in records] == [False, True, True]  # the last: max epochs reached
    assert all("stopped_early" not in r for r in records)
