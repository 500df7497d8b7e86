"""kNN with exact values: every returned key is settled in float64 (canonical where needed), not only near-ties.

:func:`knn` with ``exact_values=True`` (the InsCLR candidate pool) comes here. Two ways to the candidates, the same
answer (indices and values, ties by index):

* dense (few references, or a GPU, whose float64 matmul is about as fast as its float32 one): one blocked
  float64 matmul of a chunk of queries against every reference, then the ``n_cand`` smallest keys per row;
* proposed (many references on a CPU): the float32 back end (faiss or torch) proposes ``n_cand`` candidates and
  each query's candidate rows are gathered and scored in float64.

Either way the candidates are sorted by (key, index) with canonical keys where the float64 bound leaves the
order or the float32 rounding open, and a row whose k-th key is not clear of the best key left out is redone
against every reference.
"""
from __future__ import annotations

import torch

from .exact_keys import float64_keys, pair_bound, settle

DENSE_FACTOR = 64  # CPU: dense while n_ref <= DENSE_FACTOR * n_cand (a float64 block beats the gathers there)
TILE = 1536  # rows of a product block in the self-search
SYMMETRIC_BYTES = 4 * 2**30  # CPU self-search: running candidate lists (n x n_cand keys + columns) up to this size


def exact_value_chunks(q, r, kk, n_cand, metric, max_bytes, propose, err, exact_rows):
    """Yield ``(start, stop, keys, indices)`` (float64 keys, the kk best per query row) over chunks of ``q``."""
    n_q, n_ref, d = q.shape[0], r.shape[0], q.shape[1]
    dense = q.device.type == "cuda" or n_ref <= DENSE_FACTOR * n_cand
    r64 = r.double() if dense else None
    rn = (r64 if dense else r.double()).norm(dim=1)
    r_sq = (r64 * r64).sum(dim=1) if dense and metric == "l2sq" else None
    complete = n_cand == n_ref
    if dense:
        rows = max(1, min(n_q, int(max_bytes // (16 * n_ref + 64 * n_cand))))
    else:
        rows = max(1, min(n_q, int(max_bytes // (12 * d * n_cand + 8 * n_ref))))
    pre = _symmetric_candidates(r64, r_sq, metric, n_cand, max_bytes) if dense and _symmetric(q, r, n_cand) else None
    for start in range(0, n_q, rows):
        stop = min(n_q, start + rows)
        qc = q[start:stop]
        if pre is not None:
            key, cand, boundary = (t[start:stop] for t in pre)
            margin = 2 * pair_bound(qc.double().norm(dim=1), rn.max(), metric, d)
        elif dense:
            key, cand, boundary = _dense_candidates(qc, r64, r_sq, metric, n_cand)
            margin = 2 * pair_bound(qc.double().norm(dim=1), rn.max(), metric, d)
        else:
            approx, cand, boundary = propose(qc, n_cand)
            key = float64_keys(qc, r, cand, torch.ones_like(cand, dtype=torch.bool), metric)
            margin = 3 * err[start:stop]
        key, idx = settle(qc, r, rn, key, cand, torch.ones_like(cand, dtype=torch.bool), None, metric, max_bytes)
        key, idx = key[:, :kk], idx[:, :kk]
        ok = torch.ones_like(boundary, dtype=torch.bool) if complete else key[:, -1] + margin < boundary
        bad = (~ok).nonzero().flatten()
        if bad.numel():  # rare: a near-tie straddles the candidate boundary
            key[bad], idx[bad] = exact_rows(qc[bad], r, kk, metric, max_bytes)
        yield start, stop, key, idx


def _symmetric(q, r, m) -> bool:
    """A search of a set against itself on a CPU, with room for the running candidate lists: each product block
    is computed once and read both ways, half the float64 work of the query-by-query blocks."""
    same = q is r or (q.shape == r.shape and q.data_ptr() == r.data_ptr() and q.stride() == r.stride())
    return same and q.device.type == "cpu" and m < r.shape[0] and r.shape[0] * m * 16 <= SYMMETRIC_BYTES


def _symmetric_candidates(x64, x_sq, metric, m, max_bytes):
    """(keys, columns, boundary) for every row of x against every row, the m smallest keys per row (unsorted),
    from the product blocks on and above the diagonal, each also read transposed for the rows of its columns.
    A key left out of a row was >= every key kept then, and the kept maximum never grows: >= the boundary."""
    n = x64.shape[0]
    keys = torch.full((n, m), float("inf"), dtype=torch.float64)
    cols = torch.zeros((n, m), dtype=torch.int64)
    tile = max(m, min(n, TILE, int((max_bytes // 24) ** 0.5)))  # small tiles: closer to half the products
    for i0 in range(0, n, tile):
        i1 = min(n, i0 + tile)
        for j0 in range(i0, n, tile):
            j1 = min(n, j0 + tile)
            s = x64[i0:i1] @ x64[j0:j1].T
            key = s.neg_() if metric == "ip" else s.mul_(-2).add_(x_sq[None, j0:j1]).add_(x_sq[i0:i1, None])
            _merge(keys, cols, i0, i1, key, j0)
            if j0 != i0:
                _merge(keys, cols, j0, j1, key, i0, along=0)
    return keys, cols, keys.max(dim=1).values


def _merge(keys, cols, r0, r1, block, c0, along: int = 1):
    """Rows r0:r1 keep the m smallest of their kept keys and their keys in ``block`` (columns c0, c0 + 1, ...);
    ``along=0``: the rows' keys run down the block's columns (the transposed reading)."""
    m = keys.shape[1]
    bound = keys[r0:r1].max(dim=1, keepdim=True).values  # only keys below a row's kept maximum can enter
    view = block if along == 1 else block.T
    enter = view < bound
    count = enter.sum(dim=1)
    w = int(count.max())
    if w == 0:
        return
    if 4 * w <= view.shape[1]:  # few enter (the usual case once a row has seen a few blocks): gather them
        row, col = enter.nonzero(as_tuple=True)  # row-major: each row's entries together
        slot = torch.arange(row.numel()) - (count.cumsum(0) - count)[row]
        vals = torch.full((view.shape[0], w), float("inf"), dtype=keys.dtype)
        place = torch.zeros((view.shape[0], w), dtype=torch.int64)
        vals[row, slot] = view[row, col]
        place[row, slot] = col
    else:
        vals, place = block.topk(w, dim=along, largest=False, sorted=False)
        if along == 0:
            vals, place = vals.T, place.T
    both, where = torch.cat([keys[r0:r1], vals], dim=1), torch.cat([cols[r0:r1], place.add_(c0)], dim=1)
    vals, pick = both.topk(m, dim=1, largest=False, sorted=False)
    keys[r0:r1] = vals
    cols[r0:r1] = where.gather(1, pick)


def _dense_candidates(qc, r64, r_sq, metric, m):
    """float64 keys of the chunk against every reference; the m smallest per row, unsorted, as (keys, columns,
    boundary): every key left out of a row is >= its boundary."""
    q64 = qc.double()
    s = q64 @ r64.T
    if metric == "ip":  # the largest products, negated afterwards: no pass over the block to negate it
        vals, cols = s.topk(m, dim=1, sorted=False)
        vals = vals.neg_()
    else:
        key = s.mul_(-2).add_(r_sq[None, :]).add_((q64 * q64).sum(dim=1, keepdim=True))
        vals, cols = key.topk(m, dim=1, largest=False, sorted=False)
    return vals, cols, vals.max(dim=1).values


__all__ = ["DENSE_FACTOR", "SYMMETRIC_BYTES", "exact_value_chunks"]
