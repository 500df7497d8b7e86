"""InsCLR memory v2 sets: the "official" rule (as the official XBMv2.get) against the "exclusive" one.

Hand-made cases for the two differences that matter most, then random batches against a slow per-group
restatement of both rules written with Python sets.
"""
import math

import pytest
import torch

from ssml_lib.errors import ConfigError
from ssml_lib.mining import QueryExpansionMemory

N_DIM = 8


def _unit(*coords):
    v = torch.zeros(N_DIM)
    for axis, value in coords:
        v[axis] = value
    return v / v.norm()


def _memory(features):
    n = features.shape[0]
    mem = QueryExpansionMemory(n, features.shape[1])
    mem.noaug.write(torch.arange(n), features)
    mem.aug.write(torch.arange(n), torch.arange(n, dtype=torch.float32)[:, None].repeat(1, features.shape[1]))
    return mem


def _positives(draw, n):
    keep = draw.valid & (draw.labels != n + 1)
    return sorted(zip(draw.indices[keep].tolist(), draw.labels[keep].tolist()))


def _negatives(draw, n):
    keep = draw.valid & (draw.labels == n + 1)
    return sorted(draw.indices[keep].tolist())


COMMON = dict(num_neighbors=1, positive_threshold=0.8, negative_threshold=0.5, min_similarity=0.6,
              aggregate="avg")


def _case_member_comes_back():
    # group label 1: anchor 0 + neighbour 1. Row 0: init {2}, candidate {1} (a member), beyond {5};
    # row 1: init {0}, candidate {3}, beyond {6}. Image 3 is far from the query set (cosines < 0.6).
    n = 10
    feats = torch.stack([_unit((7, 1.0))] * n)
    feats[0], feats[1] = _unit((0, 1.0)), _unit((0, 1.0), (1, 0.3))
    feats[2], feats[3] = _unit((0, 1.0), (2, 1.0)), _unit((0, 1.0), (3, 2.0))
    pool = torch.tensor([[2, 1, 5], [0, 3, 6]] + [[(i + 1) % n, (i + 2) % n, (i + 3) % n] for i in range(2, n)])
    sims = torch.tensor([[0.9, 0.7, 0.2], [0.85, 0.6, 0.1]] + [[0.1] * 3] * (n - 2))
    return n, feats, pool, sims, torch.tensor([0, 1]), torch.tensor([1, 1])


def test_a_member_is_selected_as_its_own_memory_positive_only_under_official():
    n, feats, pool, sims, batch, labels = _case_member_comes_back()
    mem = _memory(feats)
    got = {sets: mem.mine(batch, labels, feats[batch], pool, sims, rounds=2, top_k=1, sets=sets, **COMMON)
           for sets in ("official", "exclusive")}
    # official: candidate 1 scores (cos to 0, 1 and 2 all >= 0.6) and comes back with its group's label
    assert _positives(got["official"], n) == [(1, 1), (2, 1)]
    assert _positives(got["exclusive"], n) == [(2, 1)]  # members are never candidates of their group
    d = got["official"]
    assert torch.equal(d.features[d.valid], mem.aug.read(d.indices[d.valid]))  # aug rows go to the loss


def test_official_negatives_may_be_batch_members_and_count_the_positives():
    n, feats, pool, sims, batch, labels = _case_member_comes_back()
    pool[0] = torch.tensor([2, 3, 1])  # member 1 now lies beyond row 0's negative boundary
    mem = _memory(feats)
    kw = dict(rounds=1, top_k=1, num_negatives=1, **COMMON)
    official = mem.mine(batch, labels, feats[batch], pool, sims, sets="official", **kw)
    exclusive = mem.mine(batch, labels, feats[batch], pool, sims, sets="exclusive", **kw)
    assert _positives(official, n) == _positives(exclusive, n) == [(2, 1)]
    assert _negatives(official, n) == [1, 6]  # a member as a memory negative, as the official draw allows
    assert _negatives(exclusive, n) == [6]
    # a bigger draw: official fills positives + negatives up to 6 rows, exclusive 6 negatives
    kw["num_negatives"] = 6
    gen = torch.Generator().manual_seed(0)
    official = mem.mine(batch, labels, feats[batch], pool, sims, sets="official", generator=gen, **kw)
    neg = _negatives(official, n)
    assert len(neg) == 5 and {1, 6} <= set(neg) and 2 not in neg
    exclusive = mem.mine(batch, labels, feats[batch], pool, sims, sets="exclusive", generator=gen, **kw)
    neg = _negatives(exclusive, n)
    assert len(neg) == 6 and 6 in neg and not {0, 1, 2, 3} & set(neg)


def test_an_image_claimed_by_two_groups_keeps_one_label_under_official():
    # groups 1 (anchor 0 + 1) and 5 (anchor 4 + 5) both have image 2 in a positive zone. Image 3, a
    # candidate of group 1, resembles only image 2 (cosine .98; 0 to the members).
    n = 10
    feats = torch.stack([_unit((7, 1.0))] * n)
    feats[0], feats[1] = _unit((0, 1.0)), _unit((0, 1.0), (1, 0.3))
    feats[2], feats[3] = _unit((2, 1.0)), _unit((2, 1.0), (3, 0.2))
    feats[4], feats[5] = _unit((4, 1.0)), _unit((4, 1.0), (5, 0.3))
    pool = torch.tensor([[2, 3, 7], [0, 8, 9], [3, 0, 1], [2, 0, 1], [2, 5, 8], [4, 9, 7],
                         [7, 8, 9], [6, 8, 9], [6, 7, 9], [6, 7, 8]])
    sims = torch.tensor([[0.9, 0.6, 0.1], [0.95, 0.3, 0.2], [0.1] * 3, [0.1] * 3, [0.85, 0.82, 0.1],
                         [0.9, 0.2, 0.1]] + [[0.1] * 3] * 4)
    batch, labels = torch.tensor([0, 1, 4, 5]), torch.tensor([1, 1, 5, 5])
    mem = _memory(feats)
    kw = dict(rounds=2, top_k=2, **COMMON)
    official = mem.mine(batch, labels, feats[batch], pool, sims, sets="official", **kw)
    exclusive = mem.mine(batch, labels, feats[batch], pool, sims, sets="exclusive", **kw)
    # official: one row for image 2, with the larger label; group 1 loses it from its query set, so
    # image 3 (reachable only through image 2) is not selected
    assert _positives(official, n) == [(2, 5)]
    assert _positives(exclusive, n) == [(2, 1), (2, 5), (3, 1)]


def test_unknown_rule_is_refused():
    n, feats, pool, sims, batch, labels = _case_member_comes_back()
    with pytest.raises(ConfigError):
        _memory(feats).mine(batch, labels, feats[batch], pool, sims, sets="shared", **COMMON)


# ------------------------------------------------------------------ random batches vs a set-based restatement

def _boundary(row, threshold):
    return max((j + 1 for j, v in enumerate(row) if v >= threshold), default=0)


def _reference(case, official):
    """Both rules group by group with Python sets; returns (positive pairs, pool negatives, random pool,
    the smallest score margin of any selection decision)."""
    pool, sims, idx, labels, feats, k = (case[key] for key in ("pool", "sims", "idx", "labels", "feats", "k"))
    t, rounds, agg, top_k = case["t"], case["rounds"], case["agg"], case["top_k"]
    s = k + 1
    groups = []
    for start in range(0, len(idx), s):
        label = labels[start]
        members = [idx[j] for j in range(start, start + s) if labels[j] == label]
        zones = [(pool[m], _boundary(sims[m], case["pos"]), _boundary(sims[m], case["neg"])) for m in members]
        groups.append(dict(label=label, members=members,
                           init=set().union(*(row[:p] for row, p, _ in zones)) - set(members),
                           cand=set().union(*(row[p:q] for row, p, q in zones)),
                           beyond=set().union(*(row[q:] for row, _, q in zones)),
                           seen=set().union(*(pool[j] for j in idx[start:start + s]))))
    owner = {}
    if official:
        for g in groups:
            for x in g["init"]:
                owner[x] = max(owner.get(x, 0), g["label"])
    claimed = set(owner)
    margin = math.inf

    def dot(a, b):
        return sum(float(u) * float(v) for u, v in zip(feats[a], feats[b]))

    for g in groups:
        if official:
            g["init"] = {x for x in g["init"] if owner[x] == g["label"]}
            cand = sorted(g["cand"] - claimed)
        else:
            cand = sorted(g["cand"] - set(g["members"]) - g["init"])
        query = list(g["members"]) + sorted(g["init"])  # a multiset: a member may enter twice
        chosen = []
        for _ in range(rounds):
            scores = {}
            for c in cand:
                if c in chosen:
                    continue
                close = [v for v in (dot(c, q) for q in query) if v >= t]
                margin = min([margin] + [abs(dot(c, q) - t) for q in query])
                if close:
                    scores[c] = sum(close) / (len(close) + (1e-6 if official else 0.0)) if agg == "avg" \
                        else max(close)
            ranked = sorted(scores, key=lambda c: (-scores[c], c))
            if len(ranked) > top_k:
                margin = min(margin, scores[ranked[top_k - 1]] - scores[ranked[top_k]])
            chosen += ranked[:top_k]
            query += ranked[:top_k]
        g["chosen"] = set(chosen)
    if official:
        sel_owner = {}
        for g in groups:
            for x in g["chosen"]:
                sel_owner[x] = max(sel_owner.get(x, 0), g["label"])
        positives = {(x, owner[x]) for x in claimed} | set(sel_owner.items())
        pos_images = {x for x, _ in positives}
        pool_neg = set().union(*(g["beyond"] for g in groups)) - pos_images
        random_pool = set(range(case["n"])) - pos_images - pool_neg
    else:
        positives = {(x, g["label"]) for g in groups for x in g["init"] | g["chosen"]}
        busy = set().union(*(set(g["members"]) | g["init"] | g["cand"] for g in groups))
        pool_neg = set().union(*(g["beyond"] for g in groups)) - busy
        # nothing of any tuple nor of the pool rows of any tuple image (rejected neighbours included)
        random_pool = set(range(case["n"])) - busy - set(idx) - set().union(*(g["seen"] for g in groups))
    return positives, pool_neg, random_pool, margin


def _random_case(seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi, (1,), generator=g))  # noqa: E731
    n, k, b = r(20, 50), r(1, 4), r(2, 6)
    p = r(k + 2, 11)
    centres = torch.randn(max(2, n // 6), 5, generator=g)
    feats = centres[torch.randint(0, centres.shape[0], (n,), generator=g)] + 0.6 * torch.randn(n, 5, generator=g)
    feats = feats / feats.norm(dim=1, keepdim=True) * (0.8 + 0.4 * torch.rand(n, 1, generator=g))  # norms differ
    old = torch.nn.functional.normalize(feats + 0.3 * torch.randn(n, 5, generator=g), dim=1)
    s = old @ old.T
    s.fill_diagonal_(-math.inf)
    sims, pool = s.topk(p, dim=1)
    anchors = torch.randperm(n, generator=g)[:b]
    idx = torch.cat([anchors[:, None], pool[anchors, :k]], 1).reshape(-1)
    labels = (anchors + 1).repeat_interleave(k + 1)
    rejected = torch.rand(b, k + 1, generator=g) < 0.25
    rejected[:, 0] = False
    labels = torch.where(rejected.reshape(-1), -labels, labels)
    return dict(n=n, k=k, pool=pool.tolist(), sims=sims.tolist(), idx=idx.tolist(), labels=labels.tolist(),
                feats=feats.tolist(), pos=[0.6, 0.75, 0.85][r(0, 3)], neg=[0.0, 0.3, 0.5][r(0, 3)],
                t=[0.3, 0.5, 0.6][r(0, 3)], rounds=r(1, 5), agg=["avg", "max"][r(0, 2)], top_k=r(1, 6),
                num_negatives=r(0, 30), tensors=(feats, pool, sims, idx, labels))


@pytest.mark.parametrize("sets", ["official", "exclusive"])
def test_random_batches_match_a_set_based_restatement(sets):
    checked = 0
    for seed in range(150):
        case = _random_case(seed)
        feats, pool, sims, idx, labels = case["tensors"]
        positives, pool_neg, random_pool, margin = _reference(case, sets == "official")
        if margin < 1e-5:  # a float-rounding tie: either answer is right
            continue
        checked += 1
        mem = QueryExpansionMemory(case["n"], feats.shape[1])
        mem.noaug.write(torch.arange(case["n"]), feats)
        mem.aug.write(torch.arange(case["n"]), feats)
        draw = mem.mine(idx, labels, feats[idx], pool, sims, num_neighbors=case["k"],
                        positive_threshold=case["pos"], negative_threshold=case["neg"], rounds=case["rounds"],
                        min_similarity=case["t"], aggregate=case["agg"], top_k=case["top_k"],
                        num_negatives=case["num_negatives"], sets=sets,
                        generator=torch.Generator().manual_seed(seed))
        n, budget = case["n"], case["num_negatives"]
        got_pos = _positives(draw, n)
        assert sorted(positives) == got_pos, seed
        assert len(got_pos) == len(set(got_pos))
        official = sets == "official"
        if official:
            assert len({x for x, _ in got_pos}) == len(got_pos)  # one label per image
        neg = _negatives(draw, n)
        assert len(neg) == len(set(neg)), seed
        if budget == 0:
            assert neg == [], seed
            continue
        drawn = set(neg) - pool_neg
        assert pool_neg <= set(neg) and drawn <= random_pool, seed
        room = budget - (len(got_pos) if official else 0) - len(pool_neg)
        assert len(drawn) == max(0, min(room, len(random_pool))), seed
    assert checked >= 120  # ties are rare with features of different norms
