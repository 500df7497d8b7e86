"""Candidate pool, A/B: the exact-values search (a blocked float64 matmul + top-k, or float32 proposals re-scored
in float64) against the previous kNN path (float32 proposals, near-ties settled exactly) and a brute force.

Neighbours must be identical, ties included; every value must be the float32 rounding of the canonical key, and
the previous values (the back end's float32 score away from near-ties) within the float32 bound of it."""
import importlib

import pytest
import torch

from ssml_lib.eval import knn
from ssml_lib.eval.exact_keys import canonical_keys
from ssml_lib.mining import candidate_pool

search_mod = importlib.import_module("ssml_lib.eval.exact_search")
knn_mod = importlib.import_module("ssml_lib.eval.knn")


def _data(n, d, seed, grid=False, dup=0.2):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, max(2, n // 5), (n,), generator=g)
    x = torch.randn(max(2, n // 5), d, generator=g)[y] + torch.randn(n, d, generator=g)
    if grid:
        x = (x * 2).round() / 2
    src, dst = torch.randint(0, n, (int(dup * n),), generator=g), torch.randperm(n, generator=g)[: int(dup * n)]
    x[dst] = x[src].clone()  # exact duplicates: tied neighbours
    return x if grid else torch.nn.functional.normalize(x, dim=1)


def _brute(x, k, metric, exclude_self):
    n = x.shape[0]
    rows = torch.arange(n).repeat_interleave(n)
    cols = torch.arange(n).repeat(n)
    key = canonical_keys(x, rows, x, cols, metric, 2**26).view(n, n)
    if exclude_self:
        key.fill_diagonal_(float("inf"))
    order = torch.stack([torch.tensor(sorted(range(n), key=lambda j: (key[i, j].item(), j))[:k]) for i in range(n)])
    return key.gather(1, order), order


@pytest.mark.parametrize("regime", ["dense", "proposed"])
@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("d,grid", [(2048, False), (512, True), (7, True)])
def test_pool_neighbours_unchanged_values_exact(monkeypatch, regime, backend, d, grid):
    monkeypatch.setattr(search_mod, "DENSE_FACTOR", 10**9 if regime == "dense" else 0)
    x = _data(150, d, d + len(regime), grid)
    k = 40
    old_vals, old_idx = knn(x, None, k, metric="ip", exclude_self=True, backend=backend)
    idx, sims = candidate_pool(x, k, backend=backend, max_bytes=150 * 9000)  # several chunks
    assert torch.equal(idx, old_idx)
    rows = torch.arange(150).repeat_interleave(k)
    exact = -canonical_keys(x, rows, x, idx.reshape(-1), "ip", 2**26).view(150, k)
    assert torch.equal(sims, exact.float())
    bound = knn_mod._error_bound(x, x, "ip", backend)
    assert ((sims.double() - old_vals.double()).abs() <= bound[:, None]).all()


@pytest.mark.parametrize("regime", ["dense", "proposed"])
@pytest.mark.parametrize("metric", ["ip", "l2sq"])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_exact_values_match_a_brute_force(monkeypatch, regime, metric, exclude_self):
    monkeypatch.setattr(search_mod, "DENSE_FACTOR", 10**9 if regime == "dense" else 0)
    x = _data(60, 5, 3, grid=True, dup=0.3)  # coarse grid: many exact ties
    key, order = _brute(x, 12, metric, exclude_self)
    vals, idx = knn(x, None, 12, metric=metric, exclude_self=exclude_self, backend="torch", exact_values=True)
    assert torch.equal(idx, order)
    assert torch.equal(vals, (-key if metric == "ip" else key).float())


@pytest.mark.parametrize("metric", ["ip", "l2sq"])
@pytest.mark.parametrize("d,grid", [(64, False), (7, True)])
def test_symmetric_blocks_give_what_the_query_blocks_give(monkeypatch, metric, d, grid):
    """A self-search on a CPU computes each product block once and reads it both ways (ragged tiles, ties)."""
    monkeypatch.setattr(search_mod, "DENSE_FACTOR", 10**9)
    x = _data(150, d, 7 + d, grid)
    calls = []
    real = search_mod._symmetric_candidates
    monkeypatch.setattr(search_mod, "_symmetric_candidates", lambda *a: calls.append(1) or real(*a))
    for exclude_self in (True, False):
        small = 24 * 61**2  # tiles of 61 rows: three, the last one ragged
        sym = knn(x, None, 40, metric=metric, exclude_self=exclude_self, max_bytes=small, exact_values=True)
        monkeypatch.setattr(search_mod, "SYMMETRIC_BYTES", 0)
        per_query = knn(x, None, 40, metric=metric, exclude_self=exclude_self, max_bytes=small, exact_values=True)
        monkeypatch.setattr(search_mod, "SYMMETRIC_BYTES", 2**30)
        assert torch.equal(sym[1], per_query[1]) and torch.equal(sym[0], per_query[0])
    assert len(calls) == 2  # the symmetric path ran (and only where allowed)
    x_other = x.clone()
    knn(x, x_other, 40, metric=metric, max_bytes=small, exact_values=True)
    assert len(calls) == 2  # two different sets: no symmetric shortcut
