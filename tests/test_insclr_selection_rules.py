"""InsCLR's ``selection_rule`` (the paper's Figure 4 rules) and ``precision_log_every`` change only what they
name: hand-computed relative selection, the features each rule hands the selection on one base stage of the tiny
stand-in (the training features and the loss input are unchanged), and the precision trace's counts."""
from __future__ import annotations

import pytest
import torch

import ssml_lib.methods.insclr as insclr_module
from ssml_lib.engine import read_log
from ssml_lib.errors import ConfigError
from ssml_lib.methods import METHODS
from ssml_lib.mining import select_in_batch

from insclr_tiny_fit import fit_tiny_insclr, tiny_cub_train_set


def test_relative_selection_by_hand():
    # one tuple: anchor e0, neighbours at cosines 0.9, 0.6, 0.3 (unit vectors in the e0-e1 plane)
    cos = torch.tensor([0.9, 0.6, 0.3])
    feats = torch.cat([torch.tensor([[1.0, 0.0]]), torch.stack([cos, (1 - cos ** 2).sqrt()], dim=1)])
    labels = torch.tensor([1, 1, 1, 1])
    absolute = select_in_batch(feats, labels, 3, 0.65)
    relative = select_in_batch(feats, labels, 3, 0.65, relative=True)  # 0.9/0.9 = 1, 0.6/0.9 = 0.667, 0.333
    assert absolute.accepted.tolist() == [[True, False, False]]
    assert relative.accepted.tolist() == [[True, True, False]]
    assert relative.labels.tolist() == [1, 1, 1, -1] and torch.allclose(relative.similarity, cos[None])
    # a tuple whose best neighbour is not similar at all keeps none
    assert not select_in_batch(torch.tensor([[1.0, 0], [-1, 0], [0, -1], [-0.6, -0.8]]), labels, 3, 0.5,
                               relative=True).accepted.any()


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    return tiny_cub_train_set(tmp_path_factory.mktemp("data"))


_SELECT, _LOSS = insclr_module.select_in_batch, insclr_module.insclr_contrastive_loss
BASE = dict(insclr_stages=["base"], pool_size=10, base_memory=False, base_selection_threshold=0.5)


def _base_run(cub, out, monkeypatch, **switch):
    seen = {"select": [], "loss": []}
    monkeypatch.setattr(insclr_module, "select_in_batch",
                        lambda feats, *a, **kw: (seen["select"].append((feats.clone(), kw)), _SELECT(feats, *a, **kw))[1])
    monkeypatch.setattr(insclr_module, "insclr_contrastive_loss",
                        lambda emb, labels, *a, **kw: (seen["loss"].append((emb.detach().clone(), labels.clone())),
                                                       _LOSS(emb, labels, *a, **kw))[1])
    result = fit_tiny_insclr(cub, out, **BASE, **switch)
    return seen, read_log(result.stages[0].log_path)


def test_each_rule_changes_only_the_similarity_the_selection_reads(cub, tmp_path, monkeypatch):
    default, log = _base_run(cub, tmp_path / "noaug", monkeypatch)
    assert "precision_trace" not in log[-1]  # the log is unchanged by default
    (noaug, kw), (emb0, labels0) = default["select"][0], default["loss"][0]
    assert kw == {"normalize": False, "relative": False}
    assert torch.equal(labels0, _SELECT(noaug, labels0.abs(), 3, 0.5, normalize=False).labels)
    for rule in ("augmented", "relative", "multiscale"):
        seen, _ = _base_run(cub, tmp_path / rule, monkeypatch, selection_rule=rule)
        feats, kw = seen["select"][0]
        emb, labels = seen["loss"][0]
        assert torch.equal(emb, emb0), rule  # the same training features, batch and weights at the first step
        assert kw == {"normalize": False, "relative": rule == "relative"}, rule
        assert torch.equal(labels, _SELECT(feats, labels0.abs(), 3, 0.5, **kw).labels), rule  # the loss reads it
        if rule == "augmented":
            assert torch.equal(feats, emb0)
        elif rule == "relative":
            assert torch.equal(feats, noaug)
        else:  # unit vectors averaged over three scales: not the single-scale features
            assert not torch.allclose(feats, noaug) and torch.allclose(feats.norm(dim=1), torch.ones(len(feats)))


def test_precision_trace_counts_add_up_to_the_epoch_precision(cub, tmp_path, monkeypatch):
    _, log = _base_run(cub, tmp_path / "trace", monkeypatch, precision_log_every=1)
    trace = log[-1]["precision_trace"]
    assert [row[0] for row in trace] == [1, 2]  # one window a step
    hits, total = sum(r[1] for r in trace), sum(r[2] for r in trace)
    assert total > 0 and hits / total == pytest.approx(log[-1]["batch_pos_precision"])
    assert all(r[3] == r[4] == 0 for r in trace)  # no memory mining in a base stage


def test_rule_and_trace_settings_are_checked():
    for bad in ({"selection_rule": "fixed"}, {"selection_scales": ()}, {"precision_log_every": 0}):
        with pytest.raises(ConfigError):
            METHODS["insclr"].Config(**bad)
    assert METHODS["insclr"].Config().selection_rule == "noaug"
