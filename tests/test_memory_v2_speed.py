"""InsCLR memory v2, A/B: the compacted miner (features read and compared only for query items and candidates)
against the previous one (every entry of every group's universe, benchmarks/official/previous.py). The draws must be
identical, on random batches with exact ties (duplicated images, duplicated features, equal scores)."""
import pytest
import torch

from benchmarks.official.previous import old_mine
from ssml_lib.mining import QueryExpansionMemory, query_expansion, query_universe


def _case(seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi, (1,), generator=g))  # noqa: E731
    n, d, k, b, p = r(60, 300), r(4, 24), r(1, 4), r(2, 9), r(8, 40)
    centres = torch.randn(max(2, n // r(5, 20)), d, generator=g)
    feats = centres[torch.randint(0, centres.shape[0], (n,), generator=g)] + r(2, 8) / 10 * torch.randn(n, d,
                                                                                                   generator=g)
    feats = torch.nn.functional.normalize(feats, dim=1)
    dup = torch.randperm(n, generator=g)[: n // 5]
    feats[dup] = feats[dup.roll(1)]                      # exact ties: equal features, so equal scores
    if seed % 3 == 0:
        feats = (feats * 4).round() / 4                  # a coarse grid: many equal similarities
    s = feats @ feats.T + 0.05 * torch.randn(n, n, generator=g)
    s.fill_diagonal_(-9.0)
    sims, pool = s.topk(p, dim=1)
    anchors = torch.randperm(n, generator=g)[:b]
    idx = torch.cat([anchors[:, None], pool[anchors, :k]], 1).reshape(-1)
    labels = (anchors + 1).repeat_interleave(k + 1)
    rejected = torch.rand(b, k + 1, generator=g) < 0.25
    rejected[:, 0] = False
    labels = torch.where(rejected.reshape(-1), -labels, labels)
    kw = dict(num_neighbors=k, positive_threshold=[0.5, 0.75, 0.9][r(0, 3)], negative_threshold=[0.0, 0.3, 0.5][r(0, 3)],
              rounds=r(1, 5), min_similarity=[0.3, 0.5, 0.6][r(0, 3)], aggregate=["avg", "max"][r(0, 2)],
              num_negatives=[0, r(1, 60), 400][r(0, 3)], pool_columns=[None, r(3, p + 1)][r(0, 2)])
    if r(0, 4):
        kw["top_k"] = r(1, 7)
    else:
        kw.update(top_k=None, score_threshold=[0.6, 0.7][r(0, 2)])
    written = torch.rand(n, generator=g) < 0.9
    return n, feats, written, pool, sims, idx, labels, kw


@pytest.mark.parametrize("gpu_layout", [False, True])
@pytest.mark.parametrize("sets", ["official", "exclusive"])
def test_compacted_miner_draws_what_the_previous_one_drew(sets, gpu_layout, monkeypatch):
    if gpu_layout:  # every place kept and a fixed-size draw, as on a GPU (no data-dependent size)
        monkeypatch.setattr(query_universe, "_width", lambda relevant: relevant.shape[1])
        monkeypatch.setattr(query_expansion, "_fixed_size", lambda device: True)
    for seed in range(120):
        n, feats, written, pool, sims, idx, labels, kw = _case(seed)
        mem = QueryExpansionMemory(n, feats.shape[1])
        rows = written.nonzero().squeeze(1)
        mem.noaug.write(rows, feats[rows])
        mem.aug.write(rows, feats[rows] * 2)
        if sets == "official":  # the official trainer writes the batch first
            mem.noaug.write(idx, feats[idx])
            mem.aug.write(idx, feats[idx] * 2)
        noaug = feats[idx] + (0.0 if sets == "official" else 0.01)  # exclusive: batch and bank differ
        new = mem.mine(idx, labels, noaug, pool, sims, sets=sets, generator=torch.Generator().manual_seed(seed),
                       **kw)
        old = old_mine(mem, idx, labels, noaug, pool, sims, sets=sets,
                       generator=torch.Generator().manual_seed(seed), **kw)
        keep = slice(None) if gpu_layout else old.valid  # a CPU returns the valid rows only, in the same order
        assert gpu_layout or bool(new.valid.all()), seed
        for field in ("indices", "features", "labels", "valid"):
            a, c = getattr(new, field), getattr(old, field)[keep]
            assert a.shape == c.shape and torch.equal(a, c), (seed, field)


@pytest.mark.parametrize("valid_fraction", [0.05, 0.5, 0.95])
def test_reading_the_draw_gives_the_rows_and_zeros_either_way(valid_fraction):
    g = torch.Generator().manual_seed(0)
    mem = QueryExpansionMemory(50, 8)
    mem.aug.features = torch.randn(50, 8, generator=g)
    indices = torch.randint(0, 50, (200,), generator=g)
    valid = torch.rand(200, generator=g) < valid_fraction
    out = mem._read_valid(indices, valid)
    assert torch.equal(out, mem.aug.features[indices] * valid[:, None])
