"""Memory banks: overwrite / momentum writes, v1 negative draws, v2 query-set expansion by hand."""
import math

import pytest
import torch

from ssml_lib.errors import ConfigError, SsmlError
from ssml_lib.mining import FeatureMemory, draw_negatives, expand_query_set, parse_selection_mode

from memory_v2_case import hand_built_v2_memory


def test_write_last_duplicate_wins_and_state_dict_restores():
    m = FeatureMemory(5, 2, dtype=torch.float16)
    m.write(torch.tensor([3, 1, 3]), torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert m.read(torch.tensor([3, 1])).tolist() == [[5.0, 6.0], [3.0, 4.0]]
    assert m.read(torch.tensor([0])).dtype == torch.float32
    assert m.written.tolist() == [False, True, False, True, False]
    fresh = FeatureMemory(5, 2, dtype=torch.float16)
    fresh.load_state_dict(m.state_dict())
    assert torch.equal(fresh.features, m.features) and torch.equal(fresh.written, m.written)
    with pytest.raises(SsmlError, match="len\\(indices\\)"):
        m.write(torch.tensor([0]), torch.ones(2, 2))


def test_isl_momentum_update_formula_and_uniform_init():
    g = torch.Generator().manual_seed(0)
    m = FeatureMemory(4, 3, init="uniform", generator=g)
    bound = 1 / math.sqrt(3 / 3)
    assert m.written.all() and m.features.abs().max() <= bound
    before = m.features[2].clone()
    x = torch.tensor([[0.0, 3.0, 4.0]])
    m.momentum_update(torch.tensor([2]), x, momentum=0.5)
    expect = 0.5 * before + 0.5 * x[0]
    assert torch.allclose(m.features[2], expect / expect.norm(), atol=1e-6)


def test_v1_draw_excludes_pool_neighbours_and_uses_one_dummy_label():
    n = 30
    pool = torch.stack([(torch.arange(n) + s) % n for s in range(1, 6)], dim=1)  # i+1..i+5
    m = FeatureMemory(n, 4)
    m.write(torch.arange(n - 2), torch.randn(n - 2, 4, generator=torch.Generator().manual_seed(0)))  # 28, 29 unwritten
    batch = torch.tensor([0, 10])
    d = draw_negatives(m, batch, pool, num_draw=20, num_exclude=3, generator=torch.Generator().manual_seed(1))
    excluded = {1, 2, 3, 11, 12, 13, 28, 29}
    drawn = d.indices[d.valid].tolist()
    assert len(drawn) == 20 and len(set(drawn)) == 20 and not excluded & set(drawn)
    assert (d.labels == n + 1).all()
    assert torch.equal(d.features, m.read(d.indices))
    # More asked than eligible: fixed size, the surplus is marked invalid with zero features.
    d2 = draw_negatives(m, batch, pool, num_draw=25, num_exclude=3, exclude_batch=True)
    eligible = set(range(n)) - excluded - {0, 10}
    assert set(d2.indices[d2.valid].tolist()) == eligible and int(d2.valid.sum()) == len(eligible)
    assert (d2.features[~d2.valid] == 0).all()


# Hand-built similarity structure: item 0 is the query; 1..4 are candidates; threshold t = 0.5.
SIM = torch.eye(5)
for (i, j), v in {(1, 0): 0.9, (2, 0): 0.6, (3, 0): 0.4, (4, 0): 0.55, (3, 1): 0.8, (4, 1): 0.2,
                  (2, 1): 0.95, (4, 2): 0.95, (4, 3): 0.1, (3, 2): 0.2}.items():
    SIM[i, j] = SIM[j, i] = v
QUERY = torch.tensor([[True, False, False, False, False]])
CAND = torch.tensor([[False, True, True, True, True]])


def _expand(**kw):
    sel = expand_query_set(SIM[None], QUERY, CAND, min_similarity=0.5, **kw)
    return set(sel[0].nonzero().flatten().tolist())


def _reference(sim, query, cand, rounds, t, agg, top_k=None, thr=None):
    """Plain loops in float64, as the official per-label code does it."""
    q, sel = set(query), set()
    for _ in range(rounds):
        scores = {}
        for c in cand:
            if c in sel:
                continue
            vals = [float(sim[c, j]) for j in q if sim[c, j] >= t]
            if vals:
                scores[c] = sum(vals) / len(vals) if agg == "avg" else max(vals)
        ranked = sorted(scores, key=lambda c: (-scores[c], c))
        pick = ranked[:top_k] if top_k is not None else [c for c in ranked if scores[c] >= thr]
        sel |= set(pick)
        q |= set(pick)
    return sel


def test_expansion_by_hand():
    # round 1: scores 1:.9 2:.6 4:.55 (3 has no similarity >= t) -> {1}
    assert _expand(rounds=1, aggregate="avg", top_k=1) == {1}
    # round 2, query {0,1}: avg 2:(.6+.95)/2=.775 3:.8 4:.55 -> 3 ; max 2:.95 -> 2
    assert _expand(rounds=2, aggregate="avg", top_k=1) == {1, 3}
    assert _expand(rounds=2, aggregate="max", top_k=1) == {1, 2}
    assert _expand(rounds=1, aggregate="avg", top_k=2) == {1, 2}
    # threshold 0.58: round 1 {1, 2}; round 2 (query {0,1,2}) adds 3 (.8) and 4 ((.55+.95)/2 = .75)
    assert _expand(rounds=1, aggregate="avg", score_threshold=0.58) == {1, 2}
    assert _expand(rounds=2, aggregate="avg", score_threshold=0.58) == {1, 2, 3, 4}
    assert _expand(rounds=0, aggregate="avg", top_k=3) == set()
    with pytest.raises(ConfigError):
        _expand(rounds=1, aggregate="avg", top_k=1, score_threshold=0.5)


@pytest.mark.parametrize("agg", ["avg", "max"])
@pytest.mark.parametrize("mode", [{"top_k": 2}, {"thr": 0.7}])
def test_expansion_matches_reference_loop_on_random_groups(agg, mode):
    g = torch.Generator().manual_seed(5)
    G, E = 4, 12
    x = torch.nn.functional.normalize(torch.randn(G, E, 3, generator=g, dtype=torch.float64), dim=2)
    sim = x @ x.transpose(1, 2)
    query = torch.zeros(G, E, dtype=torch.bool)
    query[:, :2] = True
    cand = torch.rand(G, E, generator=g) < 0.7
    cand[:, :2] = False
    kw = {"top_k": mode["top_k"]} if "top_k" in mode else {"score_threshold": mode["thr"]}
    got = expand_query_set(sim, query, cand, rounds=3, min_similarity=0.3, aggregate=agg, **kw)
    for b in range(G):
        want = _reference(sim[b], [0, 1], cand[b].nonzero().flatten().tolist(), 3, 0.3, agg,
                          mode.get("top_k"), mode.get("thr"))
        assert set(got[b].nonzero().flatten().tolist()) == want


def _rows(draw, valid_label):
    keep = draw.valid & (draw.labels == valid_label)
    return sorted(draw.indices[keep].tolist())


def test_v2_mining_on_hand_built_pool():
    # anchor 0 + accepted neighbour 1 (label 1). Boundaries pos .75 / neg .5:
    #   init positives {1,2} u {0} minus members {0,1} = {2}; candidates {3} u {5,6}; beyond {4} u {7}.
    # no-aug cosine to the query items: 3 -> .7, 5 -> .65, 6 -> .3 (< min_similarity .6, never chosen).
    n, pool, sims, mem = hand_built_v2_memory()
    batch, labels = torch.tensor([0, 1]), torch.tensor([1, 1])
    common = dict(num_neighbors=1, positive_threshold=0.75, negative_threshold=0.5, min_similarity=0.6)
    noaug = mem.noaug.read(batch)
    d1 = mem.mine(batch, labels, noaug, pool, sims, rounds=1, top_k=1, **common)
    assert _rows(d1, 1) == [2, 3]
    assert not (d1.valid & (d1.labels == n + 1)).any()  # num_negatives = 0: no negatives at all
    d2 = mem.mine(batch, labels, noaug, pool, sims, rounds=2, top_k=1, **common)
    assert _rows(d2, 1) == [2, 3, 5]
    d3 = mem.mine(batch, labels, noaug, pool, sims, rounds=3, top_k=1, **common)
    assert _rows(d3, 1) == [2, 3, 5]
    # aug-bank features are the ones handed to the loss
    assert torch.equal(d2.features[d2.valid], mem.aug.read(d2.indices[d2.valid]))
    # negatives, "exclusive": pool ones beyond the boundary {4, 7} + random others up to 4 negatives, none
    # seen by the group
    d4 = mem.mine(batch, labels, noaug, pool, sims, rounds=2, top_k=1, num_negatives=4, sets="exclusive",
                  generator=torch.Generator().manual_seed(0), **common)
    neg = _rows(d4, n + 1)
    assert len(neg) == 4 and {4, 7} <= set(neg) and set(neg) - {4, 7} <= set(range(8, n))
    assert _rows(d4, 1) == [2, 3, 5]
    # "official": the 4 rows are the whole draw; 3 positives + 2 pool negatives already exceed it
    d5 = mem.mine(batch, labels, noaug, pool, sims, rounds=2, top_k=1, num_negatives=4,
                  generator=torch.Generator().manual_seed(0), **common)
    assert _rows(d5, n + 1) == [4, 7] and _rows(d5, 1) == [2, 3, 5]
    d6 = mem.mine(batch, labels, noaug, pool, sims, rounds=2, top_k=1, num_negatives=8,
                  generator=torch.Generator().manual_seed(0), **common)
    neg = _rows(d6, n + 1)
    assert len(neg) == 5 and {4, 7} <= set(neg) and not {2, 3, 5} & set(neg)


def test_v2_rejected_neighbour_is_not_a_member():
    n, pool, sims, mem = hand_built_v2_memory()
    batch, labels = torch.tensor([0, 1]), torch.tensor([1, -1])  # neighbour 1 rejected by selection
    d = mem.mine(batch, labels, mem.noaug.read(batch), pool, sims, num_neighbors=1, positive_threshold=0.75,
                 negative_threshold=0.5, rounds=1, min_similarity=0.6, top_k=5)
    # only anchor 0's pool row counts: init {1, 2}; candidate {3} (cos .7 to the query) is selected
    assert _rows(d, 1) == [1, 2, 3]


def test_parse_selection_mode():
    assert parse_selection_mode("b+i_tr4_avg0.60_k05") == {"rounds": 4, "aggregate": "avg",
                                                           "min_similarity": 0.6, "top_k": 5}
    with pytest.raises(ConfigError):
        parse_selection_mode("b+i_tr4_mean0.6_k5")


def test_last_occurrence_matches_pairwise_reference_and_scales():
    from ssml_lib.mining._common import last_occurrence

    g = torch.Generator().manual_seed(3)
    for n, hi in ((0, 1), (1, 1), (7, 3), (200, 20), (1000, 1000)):
        index = torch.randint(0, hi, (n,), generator=g)
        pos = torch.arange(n)
        ref = torch.where(index[:, None] == index[None, :], pos[None, :], -1).amax(dim=1) if n else pos
        assert torch.equal(last_occurrence(index), ref)
    big = torch.arange(300_000) % 1000  # the B x B compare needed 90e9 bytes here; the sort needs O(n)
    out = last_occurrence(big)
    assert torch.equal(out[:1000], torch.arange(299_000, 300_000))
