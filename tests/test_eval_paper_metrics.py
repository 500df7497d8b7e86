"""Original Oxford/Paris mAP and GLDv2 mAP@100 from ranking arrays: hand-computed cases and agreement with the
per-query references of the package (compute_map, gldv2_map_at_100)."""
import numpy as np
import pytest

import ssml_lib.eval.original_oxford as original_oxford
from ssml_lib.errors import GroundTruthError
from ssml_lib.eval import EvalInputError, compute_map, gldv2_map_at_100, gldv2_retrieval_map, original_map


def scores_for(rankings, n):
    """Similarities whose descending order is each given ranking (best first)."""
    s = np.zeros((len(rankings), n))
    for q, r in enumerate(rankings):
        s[q, r] = np.arange(n, 0, -1)
    return s


def test_original_map_hand_computed():
    # q0: ok = good + ok = {3, 4, 2, 5}, junk {0}; ranking 2, 1, 0, 4, 5, 3. Deleting the junk leaves
    # 2, 1, 4, 5, 3: positives at 0, 2, 3, 4 -> AP = 1/4 [1 + (1/2 + 2/3)/2 + (2/3 + 3/4)/2 + (3/4 + 4/5)/2] = 23/30.
    # q1: ok {3}, junk {1}; ranking 1, 3, ...: after deleting 1 the positive is first -> AP 1.
    # q2: no positives -> left out of the mean.
    gnd = [{"ok": [3, 4, 2, 5], "junk": [0]}, {"ok": [3], "junk": [1]}, {"ok": [], "junk": [2]}]
    s = scores_for([[2, 1, 0, 4, 5, 3], [1, 3, 0, 2, 4, 5], [0, 1, 2, 3, 4, 5]], 6)
    out = original_map(s, gnd)
    assert out["ap"][:2] == pytest.approx([23 / 30, 1.0], abs=1e-15) and np.isnan(out["ap"][2])
    assert out["map"] == pytest.approx(53 / 60, abs=1e-15) and round(100 * out["map"], 2) == 88.33
    # 5/12 = protocols' Easy case: positives {3, 4}, junk {0, 2, 5}, ranking 2, 1, 0, 4, 5, 3
    easy = original_map(scores_for([[2, 1, 0, 4, 5, 3]], 6), [{"ok": [3, 4], "junk": [0, 2, 5]}])
    assert easy["map"] == pytest.approx(5 / 12, abs=1e-15)


def test_original_map_first_positive_after_a_negative():
    # ranking 1, 0 with ok {0}: precision 0 before it (after one negative), 1/2 after it -> AP = (0 + 1/2)/2
    assert original_map(scores_for([[1, 0]], 2), [{"ok": [0], "junk": []}])["map"] == 0.25


def test_original_map_matches_compute_map_with_ties_and_blocks(monkeypatch):
    rng = np.random.default_rng(3)
    s = np.round(rng.normal(size=(9, 40)), 1)  # rounded: many equal scores, ranked by lower index first
    gnd = []
    for q in range(9):
        p = rng.permutation(40)
        gnd.append({"ok": p[:q + 1].tolist(), "junk": p[q + 1:q + 4].tolist()})
    expected = compute_map(np.argsort(-s, axis=1, kind="stable"), gnd)[1]
    monkeypatch.setattr(original_oxford, "_BLOCK_CELLS", 80)  # two queries a block
    assert original_map(s, gnd)["ap"] == pytest.approx(expected, abs=1e-12)


def test_original_map_refuses_bad_input():
    with pytest.raises(EvalInputError, match="transpose"):
        original_map(np.zeros((3, 2)), [{"ok": [0], "junk": []}] * 2)
    with pytest.raises(GroundTruthError, match="lacks key"):
        original_map(np.zeros((1, 3)), [{"easy": [0], "junk": []}])
    with pytest.raises(GroundTruthError, match="outside"):
        original_map(np.zeros((1, 3)), [{"ok": [3], "junk": []}])


# GLDv2: the index ids s00, s10, s20, s30, s40, s50 are positions 0..5 (protocols' G1 vector)
G1_RELEVANT = [[1, 2], [1], [3, 4, 5], [3]]  # A, B, C, D
G1_RANKS = np.array([[-1, -1], [0, 1], [4, -1], [3, 4]])  # A has no prediction


def test_gldv2_map_hand_computed():
    # A 0; B: hit at 2 -> (1/2)/1; C: hit at 1 -> 1/3; D: 1. Mean over the four queries = 0.458333.
    out = gldv2_retrieval_map(G1_RANKS, G1_RELEVANT)
    assert out["all"] == pytest.approx((0 + 0.5 + 1 / 3 + 1) / 4, abs=1e-15) and round(out["all"], 6) == 0.458333
    assert out["ap"] == pytest.approx([0, 0.5, 1 / 3, 1], abs=1e-15)
    assert gldv2_retrieval_map(G1_RANKS, G1_RELEVANT, max_predictions=1)["all"] == pytest.approx(0.5, abs=1e-15)
    by_usage = gldv2_retrieval_map(G1_RANKS, G1_RELEVANT, usage=["Public", "Private", "Public", "Private"])
    assert by_usage["public"] == pytest.approx(1 / 6) and by_usage["private"] == pytest.approx(0.75)


def test_gldv2_map_duplicates_and_cap():
    # q1 relevant {a, b, c} = {0, 1, 2}, predictions x, a, a, b: the repeated a keeps its place but scores once
    # -> (1/2 + 2/4)/3 = 1/3; q2 {3}: y, z, d -> 1/3; q3 {4, 5}: nothing -> 0. Mean 2/9.
    ranks = np.array([[9, 0, 0, 1], [7, 8, 3, -1], [-1, -1, -1, -1]])
    assert gldv2_retrieval_map(ranks, [[0, 1, 2], [3], [4, 5]])["all"] == pytest.approx(2 / 9, abs=1e-15)
    # 150 relevant, the first 100 predictions all correct: denominator min(150, 100) -> 1
    ranks = np.arange(150)[None, :]
    assert gldv2_retrieval_map(ranks, [np.arange(150)])["all"] == 1.0
    # relevant images outside the searched index still count in the denominator
    assert gldv2_retrieval_map(np.array([[0, 1]]), [[0]], n_relevant=[2])["all"] == 0.5


def test_gldv2_map_matches_the_per_query_reference():
    rng = np.random.default_rng(5)
    relevant = [rng.choice(300, rng.integers(1, 120), replace=False) for _ in range(12)]
    ranks = np.stack([rng.permutation(300) for _ in range(12)])
    ranks[3, 5] = ranks[3, 2]  # a duplicate
    solution = {f"q{i}": [str(v) for v in r] for i, r in enumerate(relevant)}
    predictions = {f"q{i}": [str(v) for v in row] for i, row in enumerate(ranks)}
    assert gldv2_retrieval_map(ranks, relevant)["all"] == pytest.approx(
        gldv2_map_at_100(predictions, solution), abs=1e-12)


def test_gldv2_map_refuses_bad_input():
    with pytest.raises(GroundTruthError, match="n_query"):
        gldv2_retrieval_map(np.zeros((2, 3), dtype=int), [[0]])
    with pytest.raises(GroundTruthError, match="n_relevant"):
        gldv2_retrieval_map(np.zeros((1, 3), dtype=int), [[0, 1]], n_relevant=[1])


def walk_ap(ranking, ok, junk):
    """The original program's loop, written out: skip junk, add d(recall) * (previous + current precision) / 2."""
    ok, junk = set(ok), set(junk)
    ap, old_recall, old_precision, found, seen = 0.0, 0.0, 1.0, 0, 0
    for item in ranking:
        if item in junk:
            continue
        found += item in ok
        seen += 1
        recall, precision = found / len(ok), found / seen
        ap += (recall - old_recall) * (old_precision + precision) / 2
        old_recall, old_precision = recall, precision
    return ap


def test_original_map_matches_the_original_programs_loop():
    rng = np.random.default_rng(11)
    s = rng.normal(size=(6, 30))
    gnd = [{"ok": rng.choice(30, 1 + q, replace=False).tolist(), "junk": []} for q in range(6)]
    for g in gnd:
        g["junk"] = rng.choice(np.setdiff1d(np.arange(30), g["ok"]), 4, replace=False).tolist()
    expected = [walk_ap(np.argsort(-row, kind="stable"), g["ok"], g["junk"]) for row, g in zip(s, gnd)]
    assert original_map(s, gnd)["ap"] == pytest.approx(expected, abs=1e-12)
