"""Revisited Oxford/Paris: test vectors T1-T5 of reference/protocols.md §1.11, exact fractions."""
import numpy as np
import pytest

from ssml_lib.errors import GroundTruthError
from ssml_lib.eval import compute_map, format_revisited, rank_by_scores, revisited_map, trapezoid_ap, validate_gnd

GND = [{"easy": [3, 4], "hard": [2, 5], "junk": [0]}, {"easy": [3], "hard": [], "junk": [1]}]
RANKINGS = [[2, 1, 0, 4, 5, 3], [1, 3, 0, 2, 4, 5]]


def scores_for(rankings, n_db=6):
    """Similarities whose descending order is the given ranking (best first gets the highest score)."""
    s = np.zeros((len(rankings), n_db))
    for q, ranking in enumerate(rankings):
        s[q, ranking] = np.arange(len(ranking), 0, -1)
    return s


def test_t1_easy_medium_hard_capped():
    r = revisited_map(scores_for(RANKINGS), GND)
    assert r["easy"] == pytest.approx(17 / 24, abs=1e-15)
    assert r["medium"] == pytest.approx(53 / 60, abs=1e-15)
    assert r["hard"] == pytest.approx(19 / 24, abs=1e-15)  # q2 has no hard image: skipped, not 0
    np.testing.assert_allclose(r["mp_easy"], [0.5, 5 / 6, 5 / 6], atol=1e-15)
    np.testing.assert_allclose(r["mp_medium"], [1.0, 0.9, 0.9], atol=1e-15)
    np.testing.assert_allclose(r["mp_hard"], [1.0, 2 / 3, 2 / 3], atol=1e-15)
    text = format_revisited(r)
    assert "E: 70.83" in text and "M: 88.33" in text and "H: 79.17" in text


def test_t1_per_query_aps():
    ranks = np.array(RANKINGS)
    easy = [{"ok": [3, 4], "junk": [0, 2, 5]}, {"ok": [3], "junk": [1]}]
    m_ap, aps, _, _ = compute_map(ranks, easy)
    np.testing.assert_allclose(aps, [5 / 12, 1.0], atol=1e-15)
    medium = [{"ok": [3, 4, 2, 5], "junk": [0]}, {"ok": [3], "junk": [1]}]
    assert compute_map(ranks, medium)[1][0] == pytest.approx(23 / 30, abs=1e-15)
    hard = [{"ok": [2, 5], "junk": [0, 3, 4]}, {"ok": [], "junk": [1, 3]}]
    _, aps, _, prs = compute_map(ranks, hard, (1, 5, 10))
    assert aps[0] == pytest.approx(19 / 24, abs=1e-15) and np.isnan(aps[1]) and np.isnan(prs[1]).all()


def test_t1d_uncapped_precision():
    r = revisited_map(scores_for(RANKINGS), GND, precision="uncapped")
    np.testing.assert_allclose(r["mp_easy"], [0.5, 0.3, 0.15], atol=1e-15)
    np.testing.assert_allclose(r["mp_medium"], [1.0, 0.5, 0.25], atol=1e-15)
    np.testing.assert_allclose(r["mp_hard"], [1.0, 0.4, 0.2], atol=1e-15)
    assert r["easy"] == pytest.approx(17 / 24, abs=1e-15)  # mAP is unaffected


def test_t2_truncated_ranking_keeps_full_denominator():
    medium_q1 = [{"ok": [3, 4, 2, 5], "junk": [0]}]
    assert compute_map(np.array([[2, 1, 0, 4]]), medium_q1)[0] == pytest.approx(19 / 48, abs=1e-15)
    # DELF's found-positives denominator would give 19/24: ours must not
    assert trapezoid_ap(np.array([0, 2]), 2) == pytest.approx(19 / 24, abs=1e-15)


def test_t3_trapezoid_versus_standard_ap_and_t4_walk():
    r = np.array([1, 2])  # Easy q1 after junk removal
    assert trapezoid_ap(r, 2) == pytest.approx(5 / 12, abs=1e-15)
    assert np.mean(np.arange(1, 3) / (r + 1)) == pytest.approx(7 / 12)
    # T4: the C++ walk over the non-junk sequence neg, pos, pos with P0 = 1, R0 = 0
    walk, prec, recall, found = 0.0, 1.0, 0.0, 0
    for i, is_pos in enumerate([False, True, True]):
        found += is_pos
        new_prec, new_recall = found / (i + 1), found / 2
        walk += (new_recall - recall) * (prec + new_prec) / 2
        prec, recall = new_prec, new_recall
    assert walk == pytest.approx(trapezoid_ap(r, 2), abs=1e-15)


def test_t5_delf_docstring_cap():
    ranks = np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
    g = [{"ok": [0, 7], "junk": []}]
    assert compute_map(ranks, g, (10,))[2][0] == pytest.approx(0.25)
    assert compute_map(ranks, g, (10,), precision="uncapped")[2][0] == pytest.approx(0.2)


def test_ties_go_to_lower_index_and_distractors_are_negatives():
    s = np.array([[1.0, 1.0, 1.0, 0.5]])
    assert rank_by_scores(s)[0].tolist() == [0, 1, 2, 3]
    gnd = [{"easy": [1], "hard": [], "junk": []}]
    r = revisited_map(s, gnd, kappas=(1,))
    assert r["easy"] == pytest.approx(0.5 * (0 + 0.5) / 1)  # item 0 (tie, lower index) comes first
    assert np.isnan(r["hard"])
    with_r1m = np.concatenate([s, np.full((1, 5), 2.0)], axis=1)  # distractors outrank everything
    assert revisited_map(with_r1m, gnd)["easy"] < r["easy"]


@pytest.mark.parametrize("bad, match", [
    ([{"easy": [3], "hard": [9], "junk": []}], "outside"),
    ([{"easy": [-1], "hard": [], "junk": []}], "outside"),
    ([{"easy": [1], "junk": []}], "lacks key"),
    ([{"easy": [1], "hard": [1], "junk": []}], "both"),
    ([{"easy": [0.5], "hard": [], "junk": []}], "integer"),
    ({"gnd": []}, "list"),
])
def test_validate_gnd_refuses_bad_files(bad, match):
    with pytest.raises(GroundTruthError, match=match):
        validate_gnd(bad, 6)
    if isinstance(bad, list):
        with pytest.raises(GroundTruthError):
            revisited_map(np.zeros((1, 6)), bad)


def test_validate_gnd_accepts_official_shape():
    out = validate_gnd([{"bbx": [0.5, 1, 2, 3], "easy": [1, 2], "hard": np.array([3]), "junk": []}], 6)
    assert out[0]["hard"].dtype == np.int64 and out[0]["bbx"] == [0.5, 1, 2, 3]
