"""fit on a toy problem: loss falls, checkpoints are atomic and weights_only-loadable, a killed run resumes to
bit-identical parameters and metrics, the NaN guard keeps the last good checkpoint, and bad input is refused
before anything is written."""
from __future__ import annotations


import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from ssml_lib.engine import TIMING_KEYS, TrainConfig, fit, load_checkpoint, read_log
from ssml_lib.engine import checkpoint as checkpoint_module
from ssml_lib.errors import ConfigError, NonFiniteLossError
from ssml_lib.methods.base import Method


class ToyData(Dataset):
    """64 random vectors, two classes; each access adds noise from the global RNG (an 'augmentation', which
    the engine seeds per item from (seed, epoch, position))."""

    def __init__(self, n: int = 64, dim: int = 8):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, dim, generator=g)
        self.y = (self.x[:, 0] + self.x[:, 1] > 0).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] + 0.1 * torch.randn(self.x.shape[1]), self.y[i], i


class Killed(RuntimeError):
    pass


class ToyMethod(Method):
    """Linear classifier with dropout; can crash at a chosen global step or turn its loss into NaN."""

    def __init__(self, crash_at: int | None = None, nan_from: int | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
        self.crash_at, self.nan_from, self.ctx = crash_at, nan_from, None
        self.register_buffer("seen", torch.zeros(64))  # a "bank": per-item visit counts, must be checkpointed

    def forward(self, x):
        return self.net(x)

    def on_fit_start(self, ctx):
        self.ctx = ctx

    def training_step(self, batch):
        x, y, idx = batch
        if self.crash_at is not None and self.ctx.step == self.crash_at:
            raise Killed(f"simulated kill at step {self.ctx.step}")
        self.seen[idx] += 1
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        if self.nan_from is not None and self.ctx.step >= self.nan_from:
            loss = loss * float("nan")
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean()}


def make_method(**kw) -> ToyMethod:
    torch.manual_seed(0)
    return ToyMethod(**kw)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=8, lr=0.05, optimizer="adam", weight_decay=1e-3, schedule="multistep",
                schedule_unit="step", milestones=(10, 18), grad_clip=5.0, deterministic=True, log_every=4)
    base.update(kw)
    return TrainConfig(**base)


def untimed(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


def test_loss_falls(tmp_path):
    res = fit(make_method(), ToyData(), cfg(epochs=6, optimizer="sgd", lr=0.1, schedule="constant"), tmp_path)
    losses = [r["loss"] for r in res.history]
    assert len(losses) == 6 and res.completed and res.global_step == 48
    assert losses[-1] < 0.6 * losses[0], losses
    assert res.history[-1]["acc"] > 0.85
    assert untimed(read_log(tmp_path / "log.jsonl")) == untimed(res.history)


def test_run_prints_and_stores_provenance(tmp_path, capsys):
    import json

    fit(make_method(), ToyData(), cfg(epochs=1), tmp_path, standin=True)
    printed = capsys.readouterr().out
    record = json.loads((tmp_path / "provenance.json").read_text())
    assert f"git: {record['git']['commit']}" in printed and "\nlr: 0.05\n" in printed and "optimizer: Adam" in printed
    assert record["params"]["train"]["lr"] == 0.05 and record["params"]["method"] == "ToyMethod"
    assert record["data"]["standin"] is True and record["wall_time_s"] > 0 and record["global_step"] == 8
    assert '"epoch": 0' in printed  # the epoch's JSON line is echoed


def test_corrupt_checkpoint_is_refused_with_a_fix(tmp_path):
    torch.save({"x": torch.zeros(100)}, tmp_path / "whole.pt")
    (tmp_path / "last.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:200])  # a zip cut short
    with pytest.raises(checkpoint_module.CheckpointError, match="truncated or corrupt; delete it"):
        fit(make_method(), ToyData(), cfg(epochs=1), tmp_path)


@pytest.mark.parametrize("content", [b"step 100 loss 0.5\n", b"hello", b""])
def test_a_text_file_as_last_pt_is_named_with_the_fix(tmp_path, content):
    # torch.load itself fails with IndexError / KeyError / EOFError on these
    (tmp_path / "last.pt").write_bytes(content)
    with pytest.raises(checkpoint_module.CheckpointError) as info:
        fit(make_method(), ToyData(), cfg(epochs=1), tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'last.pt'} is not a training checkpoint" in message
    assert ("text file" if content else "empty") in message and f"Fix: delete {tmp_path / 'last.pt'}" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # nothing else written


def test_checkpoint_loads_weights_only_and_holds_everything(tmp_path):
    method = make_method()
    fit(method, ToyData(), cfg(epochs=1), tmp_path)
    raw = torch.load(tmp_path / "last.pt", weights_only=True)  # raises if anything but tensors/containers
    for key in ("method", "optimizer", "scheduler", "sampler", "progress", "rng", "history", "config"):
        assert key in raw
    assert torch.equal(raw["method"]["seen"], method.seen.cpu()) and raw["method"]["seen"].sum() == 64
    assert raw["progress"]["global_step"] == 8 and raw["sampler"] == {"epoch": 1, "batches_done": 0}
    assert set(raw["rng"][0]) == {"python", "numpy", "torch", "cuda"}
    assert raw["config"]["batch_size"] == 8
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    fit(make_method(), ToyData(), cfg(epochs=1), tmp_path)
    before = (tmp_path / "last.pt").read_bytes()
    real_save = torch.save

    def torn_save(obj, f, *a, **k):  # writes half a file, then "the machine dies"
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh:
            fh.truncate(100)
        raise Killed("power cut during checkpoint write")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(Killed):
        fit(make_method(), ToyData(), cfg(epochs=2), tmp_path)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert load_checkpoint(tmp_path / "last.pt")["progress"]["global_step"] == 8


def test_checkpoint_with_foreign_object_is_refused(tmp_path):
    torch.save({"format": checkpoint_module.FORMAT, "evil": Killed("x")}, tmp_path / "last.pt")
    with pytest.raises(checkpoint_module.CheckpointError, match="holds .*Killed, not only tensors"):
        load_checkpoint(tmp_path / "last.pt")


@pytest.mark.parametrize("every", [None, 3])
def test_kill_and_resume_is_bit_exact(tmp_path, every):
    data = ToyData()
    ref_method = make_method()
    ref = fit(ref_method, data, cfg(checkpoint_every_steps=every), tmp_path / "ref")

    crashed = make_method(crash_at=13)  # epoch 1, 6th step
    with pytest.raises(Killed):
        fit(crashed, data, cfg(checkpoint_every_steps=every), tmp_path / "run")
    torch.manual_seed(999)  # the resumed process starts from a different RNG state and fresh weights
    resumed_method = ToyMethod()
    res = fit(resumed_method, data, cfg(checkpoint_every_steps=every), tmp_path / "run")

    assert res.resumed_from_step == (12 if every else 8)
    for (name, a), (_, b) in zip(ref_method.state_dict().items(), resumed_method.state_dict().items()):
        assert torch.equal(a, b), name
    assert untimed(res.history) == untimed(ref.history)
    assert untimed(read_log(tmp_path / "run" / "log.jsonl")) == untimed(ref.history)
    ref_ckpt, run_ckpt = load_checkpoint(tmp_path / "ref" / "last.pt"), load_checkpoint(tmp_path / "run" / "last.pt")
    assert ref_ckpt["optimizer"]["state"][0]["exp_avg"].equal(run_ckpt["optimizer"]["state"][0]["exp_avg"])


def test_workers_change_nothing_and_resume_exactly(tmp_path):
    data = ToyData()
    ref_method = make_method()
    ref = fit(ref_method, data, cfg(epochs=2), tmp_path / "main_process")
    with pytest.raises(Killed):
        fit(make_method(crash_at=11), data, cfg(epochs=2, num_workers=2, checkpoint_every_steps=3), tmp_path / "w")
    method = ToyMethod()
    res = fit(method, data, cfg(epochs=2, num_workers=2, checkpoint_every_steps=3), tmp_path / "w")
    assert res.resumed_from_step == 9 and untimed(res.history) == untimed(ref.history)
    for name, value in ref_method.state_dict().items():
        assert torch.equal(method.state_dict()[name], value), name


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = ToyData()
    good = make_method()
    fit(good, data, cfg(max_steps=8), tmp_path / "good")  # the state a correct guard must leave on disk

    saved = []
    real = checkpoint_module.atomic_torch_save
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint_module, "atomic_torch_save", lambda obj, p: (saved.append(obj["progress"]["global_step"]), real(obj, p))[1])
        with pytest.raises(NonFiniteLossError, match=r"global step 10 \(epoch 1\).*lower lr") as err:
            fit(make_method(nan_from=10), data, cfg(checkpoint_every_steps=4, log_every=3), tmp_path / "bad")
    assert saved == [4, 8]  # the step-12 checkpoint was refused: steps 10-11 had NaN losses
    assert "global step 8" in str(err.value) and "resume=True" in str(err.value)
    on_disk = load_checkpoint(tmp_path / "bad" / "last.pt")
    assert on_disk["progress"]["global_step"] == 8
    for name, value in good.state_dict().items():
        assert torch.equal(on_disk["method"][name], value), name


def test_after_nan_stop_a_lower_lr_resumes_from_the_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError):
        fit(make_method(nan_from=10), ToyData(), cfg(), tmp_path)
    res = fit(ToyMethod(), ToyData(), cfg(lr=0.01), tmp_path)
    assert res.resumed_from_step == 8 and res.completed
    assert [r["lr"] for r in res.history] == pytest.approx([0.05, 0.001, 0.0001])  # milestones 10, 18 per step


def test_lr_changed_by_a_hook_survives_resumption(tmp_path):
    class Plateau(ToyMethod):
        def on_epoch_end(self, epoch, ctx):
            for g in ctx.optimizer.param_groups:
                g["base_lr"] *= 0.5
            return {}

    def run(out, crash_at=None):
        torch.manual_seed(0)
        return fit(Plateau(crash_at=crash_at), ToyData(), cfg(schedule="constant", epochs=3), out)

    ref = run(tmp_path / "ref")
    with pytest.raises(Killed):
        run(tmp_path / "run", crash_at=20)
    res = run(tmp_path / "run")
    assert [r["lr"] for r in res.history] == [0.05, 0.025, 0.0125] and untimed(res.history) == untimed(ref.history)


def test_nan_guard_catches_nan_at_epoch_end_without_step_checks(tmp_path):
    with pytest.raises(NonFiniteLossError, match="global step 6"):
        fit(make_method(nan_from=6), ToyData(), cfg(log_every=1000), tmp_path)
    assert not (tmp_path / "last.pt").exists()  # the first epoch never completed cleanly


def test_finished_run_is_not_retrained(tmp_path):
    first = fit(make_method(), ToyData(), cfg(epochs=2), tmp_path)
    method = make_method()
    again = fit(method, ToyData(), cfg(epochs=2), tmp_path)
    assert again.resumed_from_step == 16 and untimed(again.history) == untimed(first.history)
    assert method.seen.sum() == 2 * 64  # state restored, no further step taken


def test_max_steps_then_continue_matches_full_run(tmp_path):
    full_method = make_method()
    full = fit(full_method, ToyData(), cfg(epochs=2), tmp_path / "full")
    part = fit(make_method(), ToyData(), cfg(epochs=2, max_steps=11), tmp_path / "part")
    assert part.history[-1]["partial"] and part.global_step == 11
    method = ToyMethod()
    rest = fit(method, ToyData(), cfg(epochs=2), tmp_path / "part")  # max_steps lifted
    assert untimed(rest.history) == untimed(full.history)
    assert torch.equal(method.net[0].weight, full_method.net[0].weight)


def test_custom_epoch_batches_and_hooks(tmp_path):
    class Ordered(ToyMethod):
        def __init__(self):
            super().__init__()
            self.events, self.batches = [], []

        def epoch_batches(self, epoch, ctx):
            return torch.arange(32).view(4, 8) + 32 * (epoch % 2)

        def on_epoch_start(self, epoch, ctx):
            self.events.append(("start", epoch))

        def training_step(self, batch):
            self.batches.append(batch[2].tolist())
            return super().training_step(batch)

        def on_epoch_end(self, epoch, ctx):
            self.events.append(("end", epoch))
            return {"visited": self.seen.sum()}

    m = Ordered()
    torch.manual_seed(0)
    res = fit(m, ToyData(), cfg(epochs=2, optimizer="sgd"), tmp_path,
              eval_fn=lambda method, ctx: {"n_embedded": ctx.embed(ctx.train_set).shape[0]})
    assert m.batches[0] == list(range(8)) and m.batches[4] == list(range(32, 40)) and len(m.batches) == 8
    assert m.events == [("start", 0), ("end", 0), ("start", 1), ("end", 1)]
    assert res.history[0]["visited"] == 32.0 and res.history[1]["n_embedded"] == 64


def test_embed_matches_direct_forward_and_keeps_mode(tmp_path):
    m = make_method()
    data = ToyData()
    clean = torch.utils.data.TensorDataset(data.x, data.y)  # no noise: items are deterministic
    from ssml_lib.engine.context import FitContext

    ctx = FitContext(cfg=cfg(), method=m, device=torch.device("cpu"), out_dir=tmp_path, train_set=None)
    m.train()
    rng = torch.get_rng_state()
    emb = ctx.embed(clean, batch_size=7)
    assert m.training and torch.equal(torch.get_rng_state(), rng)  # mode restored, global RNG untouched
    m.eval()
    torch.testing.assert_close(emb, m(data.x))  # eval mode: dropout off


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match="fewer than batch_size"):
        fit(make_method(), ToyData(n=4), cfg(), out)
    with pytest.raises(ConfigError, match="Method"):
        fit(nn.Linear(2, 2), ToyData(), cfg(), out)
    with pytest.raises(ConfigError, match="TrainConfig"):
        fit(make_method(), ToyData(), {"epochs": 1}, out)
    assert not out.exists()

    class NoLoss(ToyMethod):
        def training_step(self, batch):
            return {"acc": torch.tensor(1.0)}

    with pytest.raises(ConfigError, match="'loss' a scalar tensor"):
        fit(NoLoss(), ToyData(), cfg(), tmp_path / "noloss")


def test_compile_is_ignored_on_cpu_with_a_note_and_changes_nothing(tmp_path, capsys):
    plain = fit(make_method(), ToyData(), cfg(epochs=1), tmp_path / "plain")
    capsys.readouterr()
    compiled = fit(make_method(), ToyData(), cfg(epochs=1, compile=True), tmp_path / "compiled")
    out = capsys.readouterr()
    assert "compile=True is for CUDA" in out.out + out.err
    assert untimed(compiled.history) == untimed(plain.history)  # the CPU run stayed eager: bit-identical


def test_stml_compiles_its_teacher_too():
    from ssml_lib.methods import METHODS
    from ssml_lib.methods.schedule import method_config
    from ssml_lib.models import build_model

    model = build_model("convnet4", pooling="avg", head="linear", embedding_size=16)
    stml = METHODS["stml"](model, method_config("stml", {"g_embedding_size": 16}), train_transform=None,
                           test_transform=None)
    assert stml.compiled_modules() == [stml.model, stml.teacher]
