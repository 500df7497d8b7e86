"""Fast paths give the same answers as the reference paths: rank-based Recall@K versus kNN lists, and the
float64 pre-screen of near-ties in knn versus canonical keys for every flagged pair."""
import importlib

import pytest
import torch

from ssml_lib.eval import knn, recall_at_k
from ssml_lib.eval.recall import best_match_rank
from ssml_lib.mining.candidate_pool import candidate_pool

knn_mod = importlib.import_module("ssml_lib.eval.knn")  # the module, not the function the package exports


def _data(n, d, seed, n_classes=None, dup=0.2, grid=False):
    """Clustered vectors with exact duplicates (ties) and, optionally, values on a coarse grid (many near-ties)."""
    g = torch.Generator().manual_seed(seed)
    n_classes = n_classes or max(2, n // 4)
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = torch.randn(n_classes, d, generator=g)[y] + torch.randn(n, d, generator=g)
    if grid:
        x = (x * 2).round() / 2
    n_dup = int(dup * n)
    src, dst = torch.randint(0, n, (n_dup,), generator=g), torch.randperm(n, generator=g)[:n_dup]
    x[dst] = x[src].clone()  # distinct targets: a repeated target would make the copy order-dependent
    return x, y


@pytest.mark.parametrize("n,d,seed", [(50, 3, 0), (300, 16, 1), (700, 8, 2), (1200, 64, 3)])
@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_rank_recall_equals_knn_recall(n, d, seed, metric):
    x, y = _data(n, d, seed, grid=seed % 2 == 0)
    ks = [k for k in (1, 2, 5, 10, 100, 1000) if k < n]
    fast = recall_at_k(x, y, ks, metric=metric, max_bytes=n * 400)  # several chunks
    slow = recall_at_k(x, y, ks, metric=metric, method="knn")
    assert fast == slow
    q, qy, r, ry = x[: n // 3], y[: n // 3], x[n // 3:], y[n // 3:]
    ks = [k for k in ks if k <= r.shape[0]]
    assert recall_at_k(q, qy, ks, r, ry, metric=metric) == recall_at_k(q, qy, ks, r, ry, metric=metric,
                                                                          method="knn")


@pytest.mark.parametrize("n_classes", [3, 40])
def test_rank_recall_equals_knn_recall_on_weak_embeddings(n_classes):
    # labels unrelated to the vectors: matches rank deep (the counting, not listing, path) and, with 3 classes,
    # the dense label-mask path
    g = torch.Generator().manual_seed(n_classes)
    x, y = (torch.randn(600, 6, generator=g) * 4).round(), torch.randint(0, n_classes, (600,), generator=g)
    ks = (1, 3, 50, 400)
    for metric in ("cosine", "l2"):
        assert recall_at_k(x, y, ks, metric=metric, max_bytes=600 * 500) == recall_at_k(
            x, y, ks, metric=metric, method="knn")


def test_rank_by_hand_with_ties_and_lone_query():
    # 1-d l2: item 0 at 0; items 1, 2 tie at distance 1 (1 is other class, 2 same class); item 3 alone in class 2
    x = torch.tensor([[0.0], [1.0], [-1.0], [5.0]])
    y = torch.tensor([0, 1, 0, 2])
    rank = best_match_rank(x, y, metric="l2")
    assert rank[0] == 1  # item 1 ties item 2 and has the lower index
    assert rank[2] == 0  # item 0 is closest to item 2
    assert rank[3] == 4  # no other item of class 2: n_ref sentinel
    r = recall_at_k(x, y, (1, 2), metric="l2")
    assert r == recall_at_k(x, y, (1, 2), metric="l2", method="knn")
    assert r[1] == pytest.approx(1 / 4) and r[2] == pytest.approx(2 / 4)


def test_drop_first_and_bad_method():
    x, y = _data(80, 4, 5)
    assert recall_at_k(x, y, (1, 4), self_exclusion="drop_first") == recall_at_k(
        x, y, (1, 4), self_exclusion="drop_first", method="knn")
    with pytest.raises(Exception, match="method"):
        recall_at_k(x, y, 1, method="fast")


@pytest.mark.parametrize("metric", ["ip", "l2sq"])
@pytest.mark.parametrize("d,grid", [(2048, False), (512, True), (7, True)])
def test_float64_prescreen_identical_to_canonical_path(monkeypatch, metric, d, grid):
    x, _ = _data(160, d, d, grid=grid)
    if not grid:
        x = torch.nn.functional.normalize(x, dim=1)
    new = knn(x, None, 40, metric=metric, exclude_self=True, backend="torch", max_bytes=160 * 4000)
    new_cuts = knn(x, None, 40, metric=metric, exclude_self=True, backend="torch", exact_cuts=[1, 10])
    monkeypatch.setattr(knn_mod, "_FLOAT64_PRESCREEN", False)
    old = knn(x, None, 40, metric=metric, exclude_self=True, backend="torch", max_bytes=160 * 4000)
    old_cuts = knn(x, None, 40, metric=metric, exclude_self=True, backend="torch", exact_cuts=[1, 10])
    assert torch.equal(new[1], old[1]) and torch.equal(new[0], old[0])
    assert torch.equal(new_cuts[1], old_cuts[1]) and torch.equal(new_cuts[0], old_cuts[0])


def test_candidate_pool_identical_with_prescreen(monkeypatch):
    x, _ = _data(200, 1024, 7)
    x = torch.nn.functional.normalize(x, dim=1)
    new = candidate_pool(x, 30)
    monkeypatch.setattr(knn_mod, "_FLOAT64_PRESCREEN", False)
    old = candidate_pool(x, 30)
    assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])
