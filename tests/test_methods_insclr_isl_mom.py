"""InsCLR, ISL and MOM fit a few steps on the tiny CUB stand-in through ``fit_method``: a checkpoint per stage,
finite losses, mined-positive precision in every log line, InsCLR's stages chained through their candidate
pools, a re-run that skips finished stages, ISL's GAN stage leaving the backbone alone and its mining growing
the affinity sets, MOM's triplets checkpointed; bad settings refused before anything is written."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from ssml_lib.data import build_transform, make_standin, open_dataset
from ssml_lib.engine import load_checkpoint, read_log
from ssml_lib.errors import ConfigError
from ssml_lib.methods import METHODS
from ssml_lib.methods.schedule import fit_method, train_config
from ssml_lib.mining import candidate_pool, load_candidate_pool
from ssml_lib.models import build_model

PX = 32


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = make_standin("cub200", tmp_path_factory.mktemp("data"), "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stand-in counts differ from the real dataset's
        return open_dataset("cub200", root, "train")


def transforms(preset="thesis"):
    return (build_transform(preset, True, size=PX, resize=PX + 4, normalize="resnet"),
            build_transform("noaug", False, size=PX, normalize="resnet"))


def model(head="linear"):
    torch.manual_seed(0)
    return build_model("convnet4", embedding_size=16, head=head)


def run(name, cub, out, method_cfg, *, head="linear", progress=False, **train):
    train = {"epochs": 1, "max_steps": 2, "batch_size": 8, "deterministic": True, "log_every": 1,
             "device": "cpu", **train}
    tr, te = transforms("insclr" if name == "insclr" else "thesis")
    net = model(head)
    result = fit_method(name, model=net, train_set=cub, method_cfg=method_cfg, train_cfg=train_config(name, train),
                        out_dir=out, train_transform=tr, test_transform=te, progress=progress)
    return net, result


def check_stage_logs(result, names):
    assert [s.name for s in result.stages] == names
    for stage in result.stages:
        assert (stage.out_dir / "last.pt").is_file() and (stage.out_dir / "stage.json").is_file()
        records = read_log(stage.log_path)
        assert records, stage.name
        for r in records:
            assert math.isfinite(r["loss"]), (stage.name, r)
            assert "pos_precision" in r
            p = float(r["pos_precision"])  # NaN (nothing mined yet) is logged as the string "nan"
            assert math.isnan(p) or 0.0 <= p <= 1.0, (stage.name, p)


INSCLR = dict(insclr_stages=["base", "impr"], pool_size=10, memory_start_step=0, memory_use_step=1,
              memory_draw=20, impr_mode="b+i_tr2_avg0.60_k03", base_selection_threshold=0.5,
              impr_selection_threshold=0.5, impr_positive_threshold=0.9, impr_negative_threshold=0.3)


def test_insclr_stages_chain_through_pools_and_rerun_skips(cub, tmp_path):
    net, result = run("insclr", cub, tmp_path, INSCLR, head="norm_linear_norm")
    check_stage_logs(result, ["cycle1_base", "cycle2_impr"])
    s1, s2 = (s.out_dir for s in result.stages)
    logs = [read_log(s.log_path)[-1] for s in result.stages]
    assert [r["stage_kind"] for r in logs] == ["base", "impr"]
    assert "loss_memory" in logs[0] and "loss_memory" in logs[1]  # v1 from step 1, v2 from step 0
    assert 0.0 <= logs[1]["memory_pos_precision"] <= 1.0 and logs[1]["memory_positives_per_step"] > 0
    # banks are checkpointed state: v1 (one augmented bank), v2 (augmented + no-aug)
    assert "memory.features" in load_checkpoint(s1 / "last.pt")["method"]
    state2 = load_checkpoint(s2 / "last.pt")["method"]
    assert {"memory.aug.features", "memory.noaug.features"} <= set(state2)
    assert bool(state2["memory.noaug.written"].all())  # filled by the init pass

    # stage 2's pool = exact top-P of the embeddings of stage 1's final model (no-aug view)
    fresh = METHODS["insclr"](model(head="norm_linear_norm"), METHODS["insclr"].Config(**INSCLR),
                              train_transform=transforms()[0], test_transform=transforms()[1])
    fresh.load_state_dict({k: v for k, v in load_checkpoint(s1 / "last.pt")["method"].items()
                           if k.startswith("model.")}, strict=False)
    fresh.eval()
    noaug = [transforms("insclr")[1](cub[i][0]) for i in range(len(cub))]
    with torch.no_grad():
        emb = fresh(torch.stack(noaug))
    idx2, sims2 = load_candidate_pool(s2 / "candidate_pool.npz", num_items=len(cub))
    idx1, _ = load_candidate_pool(s1 / "candidate_pool.npz", num_items=len(cub))
    ref_idx, ref_sims = candidate_pool(emb, 10)
    assert torch.allclose(sims2, ref_sims, atol=1e-5)
    assert (idx2 == ref_idx).float().mean() > 0.95  # near-ties may swap
    assert not torch.equal(idx1, idx2)  # stage 1 used the pooled GeM vector of the initial model

    # a re-run skips both finished stages and leaves the model as stage 2 ended
    net2, again = run("insclr", cub, tmp_path, INSCLR, head="norm_linear_norm")
    assert all(s.skipped for s in again.stages)
    final = load_checkpoint(s2 / "last.pt")["method"]
    assert all(torch.equal(v, final[f"model.{k}"]) for k, v in net2.state_dict().items())


@pytest.mark.parametrize("rule", ["official", "exclusive"])
def test_insclr_impr_memory_sets_reach_the_miner_in_order(cub, tmp_path, monkeypatch, rule):
    from ssml_lib.methods.insclr import InsCLR
    from ssml_lib.mining import QueryExpansionMemory

    events = []
    write, mine = InsCLR._write_impr, QueryExpansionMemory.mine
    monkeypatch.setattr(InsCLR, "_write_impr", lambda self, *a: (events.append("write"), write(self, *a))[1])
    monkeypatch.setattr(QueryExpansionMemory, "mine",
                        lambda self, *a, **kw: (events.append(kw["sets"]), mine(self, *a, **kw))[1])
    cfg = {**INSCLR, "insclr_stages": ["impr"], "impr_memory_sets": rule}
    run("insclr", cub, tmp_path, cfg, head="norm_linear_norm")
    # the official trainer enqueues the batch before mining; the exclusive rule mines first
    step = ["write", rule] if rule == "official" else [rule, "write"]
    assert events == step * 2


def test_insclr_refuses_bad_settings(cub, tmp_path):
    with pytest.raises(ConfigError):
        METHODS["insclr"].Config(margin=2.0)
    with pytest.raises(ConfigError):
        METHODS["insclr"].Config(impr_mode="tr4_k5")
    with pytest.raises(ConfigError):
        METHODS["insclr"].Config(impr_memory_sets="shared")
    with pytest.raises(ConfigError, match="groups of 1 \\+ num_neighbors"):
        run("insclr", cub, tmp_path / "b", INSCLR, batch_size=6)
    assert not (tmp_path / "b" / "cycle1_base" / "last.pt").exists()


ISL = dict(isl_rounds=2, isl_gan_epochs=1, isl_num_candidates=16, isl_top_k=5, isl_gate=0.0, isl_radius=0.0,
           isl_mining_max_epochs=2)


def test_isl_rounds_gan_keeps_backbone_and_mining_grows_sets(cub, tmp_path):
    _, result = run("isl", cub, tmp_path, ISL)
    check_stage_logs(result, ["round0_backbone", "round0_gan", "round1_backbone"])
    b0, gan, b1 = (load_checkpoint(s.out_dir / "last.pt")["method"] for s in result.stages)
    # the GAN stage trains G and D only; the backbone and the bank pass through unchanged
    assert all(torch.equal(b0[k], gan[k]) for k in b0 if k.startswith("model.") and "running" not in k)
    assert torch.equal(b0["memory.features"], gan["memory.features"])
    assert not torch.equal(b0["generator.net.0.weight"], gan["generator.net.0.weight"])
    # round 0 is pure instance discrimination; round 1 starts by mining with round 0's GAN
    assert int(b0["affinity.count"].sum()) == 0 and int(b1["affinity.count"].sum()) > 0
    logs = [read_log(s.log_path)[-1] for s in result.stages]
    assert math.isnan(float(logs[0]["pos_precision"])) and 0.0 <= logs[2]["pos_precision"] <= 1.0
    assert logs[2]["mining_new_links"] > 0 and "gan_stop_rule_met" in logs[1]
    assert math.isfinite(logs[1]["loss_g"]) and math.isfinite(logs[1]["loss_d"])
    # momentum updates keep the touched bank rows unit-length
    touched = b0["memory.features"].norm(dim=1)
    assert ((touched - 1).abs() < 1e-4).sum() >= 8


def test_mom_triplets_from_pools_checkpointed(cub, tmp_path):
    cfg = dict(mom_k=8, mom_graph_k=6, mom_num_anchors=20, mom_triplets_per_anchor=2)
    _, result = run("mom", cub, tmp_path, cfg, batch_size=12, epochs=2, max_steps=3)
    check_stage_logs(result, ["train"])
    state = load_checkpoint(result.stages[0].out_dir / "last.pt")["method"]
    triplets = state["_extra_state"]["triplets"]
    assert triplets.dim() == 2 and triplets.shape[1] == 3 and triplets.shape[0] > 0
    assert bool((triplets[:, 0] != triplets[:, 1]).all() & (triplets[:, 0] != triplets[:, 2]).all())
    last = read_log(result.stages[0].log_path)[-1]
    assert 0.0 <= last["neg_false_rate"] <= 1.0 and last["num_triplets"] == triplets.shape[0]
    with pytest.raises(ConfigError, match="divisible by 3"):
        run("mom", cub, tmp_path / "b", cfg, batch_size=8)
