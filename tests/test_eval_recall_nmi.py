"""Recall@K (D1, D2, PML agreement) and NMI (D3, sklearn agreement, seeded k-means)."""
import math

import numpy as np
import pytest
import torch

from ssml_lib.eval import (EvalInputError, faiss_available, nmi, nmi_from_partition, nmi_with_info,
                           recall_at_k)

D1_X = np.array([0.00, 0.10, 0.35, 0.50, 0.92, 1.05])[:, None]
D1_Y = np.array([0, 0, 1, 0, 1, 1])  # A A B A B B
BACKENDS = ["torch"] + (["faiss"] if faiss_available() else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_d1_recall(backend):
    r = recall_at_k(D1_X, D1_Y, (1, 2, 4), metric="l2", backend=backend)
    assert r[1] == pytest.approx(4 / 6, abs=1e-12)
    assert r[2] == pytest.approx(5 / 6, abs=1e-12)
    assert r[4] == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_d2_index_exclusion_versus_drop_first(backend):
    x, y = np.array([[0.0], [0.0], [1.0], [1.1]]), np.array([0, 1, 1, 0])
    assert recall_at_k(x, y, 1, metric="l2", backend=backend)[1] == 0.0
    assert recall_at_k(x, y, 1, metric="l2", self_exclusion="drop_first", backend=backend)[1] == 0.25


def test_cosine_differs_from_l2_on_unnormalised_vectors():
    # query 0 = (1, 0): by angle its neighbour is item 1 (same class), by distance item 2 (other class)
    x = np.array([[1.0, 0.0], [10.0, 0.5], [1.0, 1.2], [10.0, 6.0]])
    y = np.array([0, 0, 1, 1])
    assert recall_at_k(x[:1], y[:1], 1, x[1:], y[1:], metric="cosine")[1] == 1.0
    assert recall_at_k(x[:1], y[:1], 1, x[1:], y[1:], metric="l2")[1] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pytorch_metric_learning_precision_at_1(seed):
    pml = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(60).repeat_interleave(3)[torch.randperm(180, generator=g)]  # no lone queries
    x = torch.randn(180, 16, generator=g) + 0.8 * torch.randn(60, 16, generator=g)[y]
    calc = pml.AccuracyCalculator(include=("precision_at_1",))
    same = calc.get_accuracy(x, y)["precision_at_1"]
    assert recall_at_k(x, y, 1, metric="l2")[1] == pytest.approx(same, abs=1e-12)
    keep = torch.isin(y[:50], y[50:])  # PML drops queries whose class is absent from the gallery
    q, qy = x[:50][keep], y[:50][keep]
    sep = calc.get_accuracy(q, qy, x[50:], y[50:])["precision_at_1"]
    assert recall_at_k(q, qy, 1, x[50:], y[50:], metric="l2")[1] == pytest.approx(sep, abs=1e-12)


def test_recall_bad_input():
    with pytest.raises(EvalInputError, match="ks"):
        recall_at_k(D1_X, D1_Y, (0,))
    with pytest.raises(EvalInputError, match="one label per row"):
        recall_at_k(D1_X, D1_Y[:3], 1)
    with pytest.raises(EvalInputError, match="both"):
        recall_at_k(D1_X, D1_Y, 1, ref_emb=D1_X)
    with pytest.raises(EvalInputError, match="self_exclusion"):
        recall_at_k(D1_X, D1_Y, 1, self_exclusion="first")


D3 = [  # y, c, I, H(C), H(Y), arithmetic, geometric (reference/protocols.md §4.5)
    ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1], 0.318257, 0.636514, 0.693147, 0.478704, 0.479139),
    ([0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1], 0.132304, 0.450561, 0.693147, 0.231360, 0.236747),
    ([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1], 0.462098, 0.693147, 1.098612, 0.515804, 0.529541),
]


@pytest.mark.parametrize("row", D3)
def test_d3_nmi_from_fixed_partition(row):
    y, c, _, _, _, arith, geom = row
    assert round(nmi_from_partition(y, c, "arithmetic"), 6) == arith
    assert round(nmi_from_partition(y, c, "geometric"), 6) == geom


def test_d3_mutual_information_by_hand():
    y, c, mi, hc, hy, arith, _ = D3[0]
    # n_cy: (y0,c0)=2, (y0,c1)=1, (y1,c1)=3; n_y = 3, 3; n_c = 2, 4; N = 6
    by_hand = (2 / 6) * math.log(6 * 2 / (2 * 3)) + (1 / 6) * math.log(6 / (4 * 3)) + (3 / 6) * math.log(
        6 * 3 / (4 * 3))
    assert round(by_hand, 6) == mi
    assert round(2 * by_hand / (hc + hy), 6) == arith


def test_nmi_matches_sklearn_on_random_partitions():
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        y, c = rng.integers(0, 7, 200), rng.integers(0, 11, 200) * 3 + 5  # arbitrary cluster ids
        for avg in ("arithmetic", "geometric", "min", "max"):
            assert nmi_from_partition(y, c, avg) == pytest.approx(
                normalized_mutual_info_score(y, c, average_method=avg), abs=1e-12)
    assert nmi_from_partition([1, 1, 1], [4, 4, 4]) == 1.0
    assert nmi_from_partition([0, 1, 2], [0, 0, 0]) == 0.0


@pytest.mark.parametrize("kmeans", ["sklearn"] + (["faiss"] if faiss_available() else []))
def test_nmi_kmeans_seeded_and_recorded(kmeans):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat_interleave(25)
    x = torch.randn(100, 8, generator=g) * 0.1 + 5 * torch.eye(8)[y]  # four well-separated blobs
    value, info = nmi_with_info(x, y, seed=3, kmeans=kmeans, n_init=2)
    assert value == pytest.approx(1.0)
    assert info["n_clusters"] == 4 and info["seed"] == 3 and info["n_init"] == 2
    assert kmeans in info["implementation"].lower()
    noisy = torch.randn(100, 8, generator=g)
    assert nmi(noisy, y, seed=1, kmeans=kmeans) == nmi(noisy, y, seed=1, kmeans=kmeans)


def test_nmi_bad_input():
    with pytest.raises(EvalInputError, match="n_clusters"):
        nmi(np.zeros((3, 2)), [0, 1, 2], n_clusters=5)
    with pytest.raises(EvalInputError, match="average"):
        nmi_from_partition([0, 1], [0, 1], "harmonic")
