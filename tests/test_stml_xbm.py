"""``stml_xbm`` (STML + a cross-batch memory, an extension): the relaxed contrastive loss against memory rows
checked against a per-row loop (value and gradient); contextual targets over batch + memory with unfilled
slots; the FIFO queue; the method equals ``stml`` exactly before its memory is used or while it is empty;
a run killed mid-epoch with a partly filled memory resumes exactly; bad settings are refused before any
write."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from ssml_lib.data import build_transform, make_standin, open_dataset
from ssml_lib.engine import TIMING_KEYS, load_checkpoint, read_log
from ssml_lib.errors import ConfigError, SsmlError
from ssml_lib.losses import relaxed_contrastive_loss, stml_targets
from ssml_lib.methods import METHODS
from ssml_lib.methods.schedule import fit_method, method_config, train_config
from ssml_lib.mining import CrossBatchMemory
from ssml_lib.models import build_model

PX = 24
TRAIN_TF = build_transform("thesis", True, PX, 28)
TEST_TF = build_transform("thesis", False, PX, 28)
STML = {"num_neighbors": 4, "g_embedding_size": 24}


# ---------------------------------------------------------------- the loss against memory rows


def _reference_memory_rc(s, ref, w, mask, delta):
    """Per row: distances to the reference rows divided by the row's mean distance to the batch (diagonal
    included), pair terms summed over the pairs that count, divided by their number."""
    n, m = s.shape[0], ref.shape[0]
    total, count = torch.zeros((), dtype=s.dtype), 0
    for i in range(n):
        row_mean = sum((s[i] - s[j]).norm() if j != i else torch.zeros((), dtype=s.dtype) for j in range(n)) / n
        for j in range(m):
            if not mask[i, j]:
                continue
            d = (s[i] - ref[j]).norm() / row_mean
            total = total + w[i, j] * d ** 2 + (1 - w[i, j]) * torch.clamp(delta - d, min=0) ** 2
            count += 1
    return total / max(count, 1)


@pytest.mark.parametrize("delta", [1.0, 0.9, 2.0])
def test_memory_term_matches_reference_loop(delta):
    gen = torch.Generator().manual_seed(3)
    s = torch.randn(8, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    ref = torch.randn(7, 5, dtype=torch.float64, generator=gen) * 0.7
    w = torch.rand(8, 7, dtype=torch.float64, generator=gen) * (torch.rand(8, 7, generator=gen) > 0.5)  # soft + 0
    mask = torch.rand(8, 7, generator=gen) > 0.3
    ours = relaxed_contrastive_loss(s, w, delta, ref_emb=ref, ref_mask=mask)
    ref_loss = _reference_memory_rc(s, ref, w, mask, delta)
    torch.testing.assert_close(ours, ref_loss)
    torch.testing.assert_close(torch.autograd.grad(ours, s)[0], torch.autograd.grad(ref_loss, s)[0])


def test_memory_rows_get_no_gradient_and_negatives_push_only_inside_delta():
    s = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[0.1, 0.0], [30.0, 30.0]], dtype=torch.float64, requires_grad=True)
    loss = relaxed_contrastive_loss(s, torch.zeros(3, 2, dtype=torch.float64), 1.0, ref_emb=ref)
    loss.backward()
    assert ref.grad is None or not ref.grad.any()
    # far memory rows (d >> delta) add nothing; the near one pushes row 0 (its row mean is 4/3, d = 0.075)
    assert loss.item() == pytest.approx((1 - 0.1 / (4 / 3)) ** 2 / 6)


def test_an_empty_memory_adds_exactly_nothing():
    gen = torch.Generator().manual_seed(1)
    s = torch.randn(6, 4, generator=gen, requires_grad=True)
    w = stml_targets(torch.randn(6, 8, generator=gen), torch.arange(3).repeat(2), 2, 3.0)
    batch = relaxed_contrastive_loss(s, w)
    memory = relaxed_contrastive_loss(s, torch.zeros(6, 5), ref_emb=torch.randn(5, 4, generator=gen),
                                      ref_mask=torch.zeros(6, 5, dtype=torch.bool))
    assert memory.item() == 0.0
    (g_batch,) = torch.autograd.grad(batch, s, retain_graph=True)
    (g_both,) = torch.autograd.grad(batch + 1.0 * memory, s)
    assert (batch + 1.0 * memory).item() == batch.item() and torch.equal(g_batch, g_both)


def test_memory_term_refuses_bad_shapes():
    s = torch.randn(4, 3)
    with pytest.raises(SsmlError, match="weights has shape"):
        relaxed_contrastive_loss(s, torch.zeros(4, 4), ref_emb=torch.randn(5, 3))
    with pytest.raises(SsmlError, match="columns"):
        relaxed_contrastive_loss(s, torch.zeros(4, 5), ref_emb=torch.randn(5, 2))
    with pytest.raises(SsmlError, match="ref_mask"):
        relaxed_contrastive_loss(s, torch.zeros(4, 5), ref_emb=torch.randn(5, 3), ref_mask=torch.ones(4, 5))


def test_targets_over_batch_and_memory_ignore_unfilled_slots():
    gen = torch.Generator().manual_seed(4)
    batch, memory = torch.randn(8, 6, generator=gen, dtype=torch.float64), torch.randn(10, 6, generator=gen,
                                                                                     dtype=torch.float64)
    filled = torch.tensor([True] * 6 + [False] * 4)
    memory[~filled] = 0.0  # unfilled slots hold zeros and id -1
    valid = torch.cat([torch.ones(8, dtype=torch.bool), filled])
    # other images in memory: no tie among forced same-instance entries, so the lists are fully determined
    ids = torch.cat([torch.arange(4).repeat(2), torch.tensor([6, 7, 8, 9, 10, 11, -1, -1, -1, -1])])
    joint = stml_targets(torch.cat([batch, memory]), ids, 5, 3.0, valid)
    alone = stml_targets(torch.cat([batch, memory[filled]]), ids[valid], 5, 3.0)
    torch.testing.assert_close(joint[valid][:, valid], alone)
    # a memory row of a batch image is in that image's neighbour lists (same instance): a soft positive
    ids[8], ids[12] = 0, 2
    joint = stml_targets(torch.cat([batch, memory]), ids, 5, 3.0, valid)
    assert joint[0, 8] > 0.5 and joint[2, 12] > 0.5 and joint[1, 8] < 0.5
    with pytest.raises(SsmlError, match="valid must be a bool"):
        stml_targets(batch, torch.arange(4).repeat(2), 3, 3.0, torch.ones(8))


# ---------------------------------------------------------------- the queue


def test_queue_is_first_in_first_out_with_ids_and_wraps():
    mem = CrossBatchMemory(5, {"f": 3, "g": 2})
    assert not mem.valid.any() and mem.ids.tolist() == [-1] * 5
    rows = [torch.full((2, 3), float(i)) for i in range(3)]
    for i, r in enumerate(rows):
        mem.enqueue(torch.tensor([10 * i, 10 * i + 1]), gather=False, f=r, g=r[:, :2])
    assert mem.ids.tolist() == [21, 1, 10, 11, 20] and int(mem.ptr) == 1  # the oldest slot was overwritten
    assert mem.read("f")[:, 0].tolist() == [2.0, 0.0, 1.0, 1.0, 2.0]
    copy = mem.read("g")
    mem.enqueue(torch.tensor([5]), gather=False, f=torch.zeros(1, 3), g=torch.zeros(1, 2))
    assert copy[1, 0] == 0.0 and mem.read("g")[1, 0] == 0.0 and copy[2, 0] == 1.0  # reads are copies
    state = {k: v.clone() for k, v in mem.state_dict().items()}
    again = CrossBatchMemory(5, {"f": 3, "g": 2})
    again.load_state_dict(state)
    assert torch.equal(again.ids, mem.ids) and int(again.ptr) == int(mem.ptr) == 2


def test_queue_stores_half_precision_and_refuses_bad_writes():
    mem = CrossBatchMemory(4, {"f": 2}, dtype=torch.float16)
    x = torch.tensor([[1.0 / 3, 2.0]])
    mem.enqueue(torch.tensor([7]), gather=False, f=x)
    assert mem.bank_f.dtype == torch.float16 and mem.read("f").dtype == torch.float32
    assert abs(mem.read("f")[0, 0].item() - 1 / 3) < 1e-3
    with pytest.raises(SsmlError, match="exceeds the memory size"):
        mem.enqueue(torch.arange(5), gather=False, f=torch.zeros(5, 2))
    with pytest.raises(SsmlError, match="every bank"):
        mem.enqueue(torch.tensor([1]), gather=False, g=torch.zeros(1, 2))
    with pytest.raises(SsmlError, match="shape"):
        mem.enqueue(torch.tensor([1, 2]), gather=False, f=torch.zeros(1, 2))
    with pytest.raises(SsmlError, match="dtype"):
        CrossBatchMemory(4, {"f": 2}, dtype=torch.float64)


# ---------------------------------------------------------------- the method on the tiny CUB stand-in


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = make_standin("cub200", tmp_path_factory.mktemp("data"), "tiny")  # 48 images, 8 classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return open_dataset("cub200", root, "train")


def run(name, cub, out_dir, method_cfg, **train):
    torch.manual_seed(0)
    net = build_model("convnet4", pooling="avg", head="linear", embedding_size=16)
    tc = train_config(name, {"epochs": 1, "batch_size": 16, "log_every": 1, "device": "cpu", "deterministic": True,
                             **train})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_method(name, model=net, train_set=cub, method_cfg=method_cfg, train_cfg=tc, out_dir=out_dir,
                          train_transform=TRAIN_TF, test_transform=TEST_TF, progress=False)


def untimed(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


@pytest.mark.parametrize("memory", [dict(memory_use_step=100), dict(memory_use_step=0)],
                         ids=["before-warm-up", "empty-memory"])
def test_equals_stml_exactly_before_its_memory_is_used_or_while_empty(cub, tmp_path, memory):
    steps = 3 if memory["memory_use_step"] else 1  # from step 0 on, only the first step sees an empty memory
    plain = run("stml", cub, tmp_path / "stml", STML, max_steps=steps)
    xbm = run("stml_xbm", cub, tmp_path / "xbm", {**STML, "memory_size": 96, **memory}, max_steps=steps)
    for a, b in zip(plain.history, xbm.history):
        assert a["loss"] == b["loss"] and a["rc"] == b["rc"] and a["kl"] == b["kl"]
    assert xbm.history[-1]["rc_memory"] == 0.0 and xbm.history[-1]["memory_rows"] == 32 * steps
    a, b = plain.method.state_dict(), xbm.method.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # model, teacher, neighbour table, positive counts
    assert {k for k in b if k not in a} == {"memory.bank_f", "memory.bank_g", "memory.ids", "memory.ptr",
                                            "memory_counts"}


def test_memory_in_use_changes_training_and_logs_its_diagnostics(cub, tmp_path):
    plain = run("stml", cub, tmp_path / "stml", STML, max_steps=3)
    for terms in ("negatives", "negatives+positives"):
        cfg = {**STML, "memory_size": 64, "memory_use_step": 1, "memory_terms": terms, "memory_dtype": "float16"}
        xbm = run("stml_xbm", cub, tmp_path / terms, cfg, max_steps=3)
        (rec,) = read_log(xbm.stages[0].log_path)
        assert rec["loss"] != plain.history[0]["loss"] and rec["rc_memory"] > 0
        assert math.isclose(rec["loss"], rec["rc"] + rec["kl"] + rec["rc_memory"], rel_tol=1e-6)
        assert rec["memory_rows"] == 64 and xbm.method.memory.bank_f.dtype == torch.float16
        assert 0.0 <= rec["memory_negative_same_class"] <= 1.0
        if terms == "negatives":  # memory rows are never positives
            assert rec["memory_pos_precision"] is None and rec["pos_precision"] == rec["batch_pos_precision"]
        else:
            assert "t" in xbm.method.memory.names and rec["memory_pos_pairs_per_row"] > 0
            assert 0.0 <= rec["memory_pos_precision"] <= 1.0


class Killed(RuntimeError):
    pass


def test_killed_mid_epoch_with_a_partly_filled_memory_resumes_exactly(cub, tmp_path, monkeypatch):
    cfg = {**STML, "memory_size": 256, "memory_use_step": 1, "memory_dtype": "float16"}
    train = {"epochs": 2, "checkpoint_every_steps": 1}
    whole = run("stml_xbm", cub, tmp_path / "whole", cfg, **train)
    cls, calls = METHODS["stml_xbm"], {"n": 0}
    original = cls.training_step

    def dying_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # global step 4: inside epoch 1, 128 of 256 slots filled
            raise Killed("simulated kill")
        return original(self, batch)

    monkeypatch.setattr(cls, "training_step", dying_step)
    with pytest.raises(Killed):
        run("stml_xbm", cub, tmp_path / "killed", cfg, **train)
    monkeypatch.setattr(cls, "training_step", original)
    state = load_checkpoint(tmp_path / "killed" / "train" / "last.pt")["method"]
    assert int((state["memory.ids"] >= 0).sum()) == 128 and int(state["memory.ptr"]) == 128
    resumed = run("stml_xbm", cub, tmp_path / "killed", cfg, **train)
    assert untimed(resumed.history) == untimed(whole.history)
    a, b = whole.method.state_dict(), resumed.method.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("bad, match", [
    (dict(memory_size=0), "memory_size"), (dict(memory_use_step=-1), "memory_use_step"),
    (dict(memory_weight=-1.0), "memory_weight"), (dict(memory_terms="positives"), "memory_terms"),
    (dict(memory_dtype="float64"), "memory_dtype"), (dict(memory_sizes=8), "unknown parameter"),
])
def test_bad_settings_are_refused_with_the_fix(bad, match):
    with pytest.raises(ConfigError, match=match):
        method_config("stml_xbm", bad)


def test_a_memory_smaller_than_one_step_is_refused_before_anything_is_written(cub, tmp_path):
    with pytest.raises(ConfigError, match="memory_size=16 holds less than one step's 32 rows"):
        run("stml_xbm", cub, tmp_path / "bad", {**STML, "memory_size": 16})
    assert not (tmp_path / "bad").exists()


def test_config_extends_stml_and_stays_clear_of_run_and_train_names():
    from dataclasses import fields

    from ssml_lib.config import RunConfig, _routes
    from ssml_lib.engine import TrainConfig
    from ssml_lib.methods.schedule import method_config_class

    own = {f.name for f in fields(method_config_class("stml_xbm"))}
    assert {f.name for f in fields(method_config_class("stml"))} < own
    assert not (set(_routes(RunConfig)) | {f.name for f in fields(TrainConfig)}) & own
    assert METHODS["stml_xbm"].train_defaults == METHODS["stml"].train_defaults
