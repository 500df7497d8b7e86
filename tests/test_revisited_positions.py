"""Revisited mAP without a full ranking, A/B: ``revisited_map`` (the places of each query's listed items only)
against the ranking path it replaced (benchmarks/official/previous.py: a stable argsort of every row, then
``compute_map`` per setup), on random scores with many exact ties (and -0.0 beside 0.0), both precision rules;
and ``ranking_positions`` against the stable argsort itself."""
import numpy as np
import pytest

from benchmarks.official.previous import old_revisited_map
from ssml_lib.eval import revisited_map
from ssml_lib.eval.revisited import ranking_positions


def _case(rng, trial):
    n, nq = int(rng.integers(5, 80)), int(rng.integers(1, 5))
    if trial % 3:
        scores = rng.integers(0, int(rng.integers(2, 8)), size=(nq, n)).astype(np.float32) * 0.5  # many ties
    else:
        scores = rng.standard_normal((nq, n)).astype(np.float32)
    if trial % 5 == 0:
        scores[:, ::2] = -0.0
    gnd = []
    for _ in range(nq):
        p = rng.permutation(n)
        a, b, c = rng.integers(0, max(1, n // 4), size=3)
        gnd.append({"easy": p[:a], "hard": p[a:a + b], "junk": p[a + b:a + b + c]})
    return scores, gnd


@pytest.mark.parametrize("precision", ["capped", "uncapped"])
def test_same_map_as_the_full_ranking_with_ties(precision):
    rng = np.random.default_rng(0)
    for trial in range(200):
        scores, gnd = _case(rng, trial)
        old, new = old_revisited_map(scores, gnd, precision=precision), revisited_map(scores, gnd, precision=precision)
        for key in old:
            np.testing.assert_allclose(np.asarray(new[key], float), np.asarray(old[key], float), atol=1e-12,
                                       err_msg=f"trial {trial}, {key}")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_places_are_those_of_the_stable_argsort(dtype):
    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(1, 300))
        row = (rng.integers(0, 9, size=n) * 0.25 if trial % 2 else rng.standard_normal(n)).astype(dtype)
        items = rng.permutation(n)[: int(rng.integers(0, n + 1))]
        place = np.empty(n, dtype=np.int64)
        place[np.argsort(-row, kind="stable")] = np.arange(n)
        assert ranking_positions(row, items).tolist() == place[items].tolist()


def test_non_finite_scores_are_refused():
    gnd = [{"easy": np.array([0]), "hard": np.array([], dtype=int), "junk": np.array([], dtype=int)}]
    with pytest.raises(Exception, match="NaN or inf"):
        revisited_map(np.array([[np.nan, 0.0]]), gnd)
