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
    for start in range(0, n_q, rows):
        stop = min(n_q, start + rows)
        qc = q[start:stop]
        if dense:
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


__all__ = ["DENSE_FACTOR", "exact_value_chunks"]
