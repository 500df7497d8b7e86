"""The InsCLR switches behind the paper's ablation tables change only what they name, and their defaults keep
today's behaviour: the ``impr_mode`` grammar (no sparsity, threshold selection), ``impr_query_set`` ("anchor":
the paper's D-anchor row), checked on hand-built memories and on one impr stage of the tiny stand-in."""
from __future__ import annotations

import pytest
import torch

from ssml_lib.engine import read_log
from ssml_lib.errors import ConfigError
from ssml_lib.methods.insclr import InsCLR, InsCLRConfig
from ssml_lib.mining import QueryExpansionMemory, expand_query_set, parse_selection_mode

from insclr_tiny_fit import fit_tiny_insclr, tiny_cub_train_set
from memory_v2_case import hand_built_v2_memory


# ---------------------------------------------------------------- the mode grammar

def test_official_mode_string_parses_as_before():
    # exactly the four keys the miner got before the grammar grew (score_threshold keeps the miner's default)
    assert parse_selection_mode("b+i_tr4_avg0.60_k05") == {"rounds": 4, "aggregate": "avg", "min_similarity": 0.6,
                                                           "top_k": 5}
    assert InsCLRConfig().impr_mode == "b+i_tr4_avg0.60_k05" and InsCLRConfig().impr_query_set == "tuple"


def test_new_mode_forms_name_sparsity_and_threshold_selection():
    assert parse_selection_mode("b+i_tr2_max_k05") == {"rounds": 2, "aggregate": "max",
                                                       "min_similarity": float("-inf"), "top_k": 5}
    assert parse_selection_mode("b+i_tr2_avg_t0.60") == {"rounds": 2, "aggregate": "avg",
                                                         "min_similarity": float("-inf"), "top_k": None,
                                                         "score_threshold": 0.6}
    for bad in ("b+i_tr2_avg._k05", "b+i_tr2_avg_t", "b+i_tr2_avg0.6_k", "b+i_tr2_avg0.6_k5_t0.6"):
        with pytest.raises(ConfigError):
            parse_selection_mode(bad)
    with pytest.raises(ConfigError):
        InsCLRConfig(impr_query_set="batch")


def _two_candidates():
    # items: 0, 1 query; 2 = candidate A (cos .9 to item 0, .1 to item 1); 3 = candidate B (.7 to both)
    s = torch.eye(4)
    s[0, 2] = s[2, 0] = 0.9
    s[1, 2] = s[2, 1] = 0.1
    s[0, 3] = s[3, 0] = s[1, 3] = s[3, 1] = 0.7
    query, cand = torch.tensor([[True, True, False, False]]), torch.tensor([[False, False, True, True]])
    return s[None], query, cand


def test_sparsity_changes_only_which_similarities_are_averaged():
    s, query, cand = _two_candidates()
    spa = parse_selection_mode("b+i_tr1_avg0.60_k01")
    plain = parse_selection_mode("b+i_tr1_avg_k01")
    # with sparsity A scores .9 (only its .9 counts) and wins; without, A = (.9 + .1) / 2 = .5 < B = .7
    assert expand_query_set(s, query, cand, **spa)[0].tolist() == [False, False, True, False]
    assert expand_query_set(s, query, cand, **plain)[0].tolist() == [False, False, False, True]
    # max ignores the low similarity anyway: sparsity changes nothing there
    assert torch.equal(expand_query_set(s, query, cand, **parse_selection_mode("b+i_tr1_max0.60_k01")),
                       expand_query_set(s, query, cand, **parse_selection_mode("b+i_tr1_max_k01")))


def test_threshold_selection_takes_every_candidate_at_or_above_it():
    s, query, cand = _two_candidates()
    # no sparsity, avg: A .5, B .7
    assert expand_query_set(s, query, cand, **parse_selection_mode("b+i_tr1_avg_t0.60"))[0].tolist() == \
        [False, False, False, True]
    assert expand_query_set(s, query, cand, **parse_selection_mode("b+i_tr1_avg_t0.50"))[0].tolist() == \
        [False, False, True, True]


# ---------------------------------------------------------------- D-anchor: the query set is the anchor alone

def _mine(labels, sets, **kw):
    n, pool, sims, mem = hand_built_v2_memory()
    batch = torch.tensor([0, 1])
    g = torch.Generator().manual_seed(0)
    return mem.mine(batch, torch.tensor(labels), mem.noaug.read(batch), pool, sims, num_neighbors=1,
                    positive_threshold=0.75, negative_threshold=0.5, rounds=2, min_similarity=0.6, top_k=1,
                    num_negatives=6, sets=sets, generator=g, **kw)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("sets", ["official", "exclusive"])
def test_anchor_query_set_mines_as_if_the_neighbours_were_rejected(sets):
    tuple_default, tuple_named = _mine([1, 1], sets), _mine([1, 1], sets, query_members="tuple")
    assert _same(tuple_default, tuple_named)  # the default is today's rule
    anchor = _mine([1, 1], sets, query_members="anchor")
    # exactly the draw of a tuple whose neighbour was rejected (label -1): only the anchor's pool row and feature
    assert _same(anchor, _mine([1, -1], sets))
    assert not _same(anchor, tuple_default)
    pos = lambda d: sorted(d.indices[d.valid & (d.labels == 1)].tolist())  # noqa: E731
    assert 5 in pos(tuple_default) and 5 not in pos(anchor)  # 5 is reachable only through the neighbour's row
    # where selection already left the anchor alone, the switch changes nothing
    assert _same(_mine([1, -1], sets, query_members="anchor"), _mine([1, -1], sets))


# ---------------------------------------------------------------- through InsCLR: only the miner's input changes

@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    return tiny_cub_train_set(tmp_path_factory.mktemp("data"))


_MINE, _STEP = QueryExpansionMemory.mine, InsCLR.training_step  # the originals, wrapped afresh by every run
IMPR = dict(insclr_stages=["impr"], pool_size=10, memory_draw=20, impr_selection_threshold=0.5,
            impr_positive_threshold=0.9, impr_negative_threshold=0.3)


def _impr_run(cub, out, monkeypatch, **switch):
    calls, steps = [], []
    monkeypatch.setattr(QueryExpansionMemory, "mine", lambda self, *a, **kw: (calls.append(kw), _MINE(self, *a, **kw))[1])
    monkeypatch.setattr(InsCLR, "training_step", lambda self, batch: (steps.append(_STEP(self, batch)), steps[-1])[1])
    result = fit_tiny_insclr(cub, out, **IMPR, **switch)
    assert read_log(result.stages[0].log_path)
    return calls, steps


@pytest.mark.parametrize("switch, named", [
    ({"impr_query_set": "anchor"}, {"query_members": "anchor"}),
    ({"impr_mode": "b+i_tr2_max_t0.70"}, {"rounds": 2, "aggregate": "max", "min_similarity": float("-inf"),
                                           "top_k": None, "score_threshold": 0.7}),
])
def test_switch_reaches_the_miner_and_leaves_the_batch_loss_alone(cub, tmp_path, monkeypatch, switch, named):
    base_calls, base_steps = _impr_run(cub, tmp_path / "default", monkeypatch)
    calls, steps = _impr_run(cub, tmp_path / "switched", monkeypatch, **switch)
    assert len(calls) == len(base_calls) == 2 and base_calls[0]["query_members"] == "tuple"
    for before, after in zip(base_calls, calls):
        changed = {k for k in set(before) | set(after) if before.get(k, "absent") != after.get(k, "absent")}
        assert changed == {k for k in named if before.get(k, "absent") != named[k]}
        assert all(after[k] == v for k, v in named.items())
    # the first step (same seed, weights, batch and selection): the batch loss does not see the switch (what it
    # mines is checked on the hand-built memory above)
    assert torch.equal(base_steps[0]["loss_batch"], steps[0]["loss_batch"])
