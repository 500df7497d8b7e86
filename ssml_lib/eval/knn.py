"""Exact k-nearest-neighbour search with deterministic ties, on faiss or chunked torch.

Order: best first (inner product descending, or squared L2 ascending), then reference index ascending. Both back
ends return the same indices, ties included. How: a back end proposes ``k + extra`` candidates from float32
scores; candidates whose float32 scores lie within the rounding-error bound of a neighbour's are re-scored with
one canonical float64 formula (elementwise products summed in a fixed pairwise tree, so the bits do not depend
on the back end, the chunking or the device); the rest keep their float32 score, whose order is then provably
right. Flagged candidates are first re-scored in float64 (:mod:`.exact_keys`: a matmul against every reference
when they are few, else each query's candidate rows gathered); only those still within the (far tighter)
float64 bound of a neighbour, or whose float32 rounding it leaves open, get the canonical formula. A row whose
k-th neighbour is not clear of the candidate boundary by that bound is redone exactly against every reference
item. Inputs are cast to float32 first; "exact" means exact for those float32 values.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from ._inputs import EvalInputError, as_embeddings
from .exact_keys import canonical_keys, settle_chains
from .exact_search import exact_value_chunks

_METRICS = ("ip", "l2sq")
_BACKENDS = ("auto", "faiss", "torch")
_default_backend = "auto"
_FLOAT64_PRESCREEN = True  # False: canonical keys for every flagged pair (the slower reference path, for A/B tests)


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def set_default_backend(name: str) -> None:
    """Choose what ``backend="auto"`` means for this process: "auto" (faiss if importable), "faiss" or "torch"."""
    global _default_backend
    if name not in _BACKENDS:
        raise EvalInputError(f"unknown kNN backend {name!r}; use one of {_BACKENDS}.")
    _default_backend = name


def resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in _BACKENDS:
        raise EvalInputError(f"unknown kNN backend {backend!r}; use one of {_BACKENDS}.")
    if backend == "auto":
        backend = _default_backend
    if backend == "auto":  # faiss-cpu on CPU tensors; CUDA tensors stay on the GPU with torch
        backend = "faiss" if device.type == "cpu" and faiss_available() else "torch"
    if backend == "faiss" and not faiss_available():
        raise EvalInputError("backend='faiss' was asked for but faiss is not importable; pip install faiss-cpu "
                             "or pass backend='torch'.")
    return backend


def knn(query: Any, ref: Any = None, k: int = 10, *, metric: str = "ip", exclude_self: bool = False,
        backend: str = "auto", max_bytes: int = 512 * 2**20,
        exact_cuts: Sequence[int] | None = None, exact_values: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(values, indices)`` of shape (n_query, k): the k nearest rows of ``ref`` for each query row.

    ``ref=None`` searches the query set itself. ``exclude_self=True`` drops the reference item whose index equals
    the query's row index (query rows must be the first rows of ``ref``). ``values`` are inner products
    (metric "ip") or squared distances ("l2sq"). ``max_bytes`` bounds the score block of one query chunk.
    ``exact_cuts`` (e.g. the K of Recall@K): only the sets of the first j neighbours, j in exact_cuts (and k), are
    then guaranteed; the order of near-tied neighbours between two cuts may follow the float32 scores. Much
    faster for large k on dense data, where many neighbours lie within float32 rounding of each other.
    ``exact_values=True``: every returned value is the float32 rounding of the pair's canonical float64 key (by
    default only near-tied pairs get it, the rest keep the back end's float32 score, whose bits differ between
    back ends); found by :mod:`.exact_search` (a blocked float64 matmul + top-k where that is cheaper).
    """
    if metric not in _METRICS:
        raise EvalInputError(f"unknown kNN metric {metric!r}; use 'ip' (inner product) or 'l2sq'.")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise EvalInputError(f"k must be a positive int, got {k!r}.")
    q = as_embeddings(query, "query")
    r = q if ref is None else as_embeddings(ref, "ref")
    if r.shape[1] != q.shape[1]:
        raise EvalInputError(f"query has {q.shape[1]} dims but ref has {r.shape[1]}; embed both with one model.")
    if r.device != q.device:
        raise EvalInputError(f"query is on {q.device} but ref is on {r.device}; move both to one device.")
    n_q, n_ref = q.shape[0], r.shape[0]
    if exclude_self and n_q > n_ref:
        raise EvalInputError("exclude_self needs the query rows to be the first rows of ref, but the query has "
                             f"{n_q} rows and ref only {n_ref}.")
    if k > n_ref - int(exclude_self):
        raise EvalInputError(f"k={k} exceeds the {n_ref - int(exclude_self)} reference items available; "
                             "lower k.")
    device = q.device
    backend = resolve_backend(backend, device)
    if backend == "faiss":
        q, r = q.cpu(), r.cpu()
    kk = k + int(exclude_self)
    if exact_cuts is None:
        cuts = list(range(1, kk + 1))
    else:  # with self exclusion a returned place j is place j or j + 1 before self is dropped
        cuts = sorted({c + e for c in list(exact_cuts) + [k] for e in range(1 + int(exclude_self)) if 0 < c <= k})
    n_cand = min(n_ref, kk + max(16, kk // 4))
    err = _error_bound(q, r, metric, backend)
    propose = _faiss_proposer(r, metric) if backend == "faiss" else _torch_proposer(r, metric)

    values = torch.empty(n_q, k, dtype=torch.float32, device=q.device)
    indices = torch.empty(n_q, k, dtype=torch.int64, device=q.device)
    for start, stop, key, idx in (exact_value_chunks(q, r, kk, n_cand, metric, max_bytes, propose, err, _exact_rows)
                                  if exact_values else _chunks(q, r, kk, n_cand, metric, max_bytes, propose, err,
                                                               cuts)):
        if exclude_self:
            key, idx = _drop_self(key, idx, torch.arange(start, stop, device=idx.device))
        values[start:stop] = (-key if metric == "ip" else key).to(torch.float32)
        indices[start:stop] = idx
    return values.to(device), indices.to(device)


def _chunks(q, r, kk, n_cand, metric, max_bytes, propose, err, cuts):
    """Yield ``(start, stop, keys, indices)``: float32 proposals, near-ties settled exactly, over query chunks."""
    n_q, n_ref = q.shape[0], r.shape[0]
    rows = max(1, min(n_q, int(max_bytes // (n_ref * 8 + n_cand * 64))))
    for start in range(0, n_q, rows):
        stop = min(n_q, start + rows)
        approx, cand, boundary = propose(q[start:stop], n_cand)
        key, idx, ok = _rerank(q[start:stop], r, approx, cand, boundary, kk, err[start:stop], metric, max_bytes,
                               complete=n_cand == n_ref, cuts=cuts)
        bad = (~ok).nonzero().flatten()
        if bad.numel():
            key[bad], idx[bad] = _exact_rows(q[start:stop][bad], r, kk, metric, max_bytes)
        yield start, stop, key, idx


def _error_bound(q: torch.Tensor, r: torch.Tensor, metric: str, backend: str) -> torch.Tensor:
    """Per-query bound on |float32 score - exact score|: the worst-case gamma bound for any summation order."""
    d = q.shape[1]
    u_acc = 2.0**-24
    u_in = 0.0  # rounding of the inputs inside the matmul (TF32 / bf16 modes)
    if backend == "torch":
        prec = torch.get_float32_matmul_precision()
        tf32 = q.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
        u_in = {"highest": 0.0, "high": 2.0**-11, "medium": 2.0**-8}.get(prec, 2.0**-8)
        if tf32:
            u_in = max(u_in, 2.0**-11)
    gamma = (d + 4) * u_acc / (1 - (d + 4) * u_acc)
    qn = q.double().norm(dim=1)
    rmax = r.double().norm(dim=1).max() if r.shape[0] else torch.zeros((), dtype=torch.float64)
    scale = qn * rmax if metric == "ip" else (qn + rmax) ** 2
    return (gamma + 4 * u_in) * scale


def _faiss_proposer(r: torch.Tensor, metric: str):
    import faiss

    built = []  # the index is built on the first proposal (a dense exact search never asks for one)

    def propose(qc: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not built:
            built.append(faiss.IndexFlatIP(r.shape[1]) if metric == "ip" else faiss.IndexFlatL2(r.shape[1]))
            built[0].add(r.numpy())
        dist, ids = built[0].search(qc.numpy(), m)
        dist, ids = torch.from_numpy(dist), torch.from_numpy(ids).to(torch.int64)
        key = -dist if metric == "ip" else dist
        return key, ids, key.max(dim=1).values.double()

    return propose


def _torch_proposer(r: torch.Tensor, metric: str):
    r_sq = (r * r).sum(dim=1)

    def propose(qc: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = qc @ r.T
        key = s.neg_() if metric == "ip" else s.mul_(-2).add_(r_sq[None, :]).add_((qc * qc).sum(dim=1, keepdim=True))
        return _select_smallest(key, m)

    return propose


def _select_smallest(key: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``m`` smallest keys of every row, unsorted, as ``(keys, columns, boundary)``: every key left out of a
    row is >= its boundary. (A sampled-threshold selection was tried: no faster than topk on CPU at SOP scale.)"""
    vals, cols = key.topk(m, dim=1, largest=False, sorted=False)  # _rerank sorts; skipping the sort here pays
    return vals, cols, vals.max(dim=1).values.double()


def _sortable(key32: torch.Tensor) -> torch.Tensor:
    """int64 codes whose integer order is the float32 order of ``key32`` (-0.0 and +0.0 equal)."""
    bits = (key32.float() + 0.0).view(torch.int32).to(torch.int64)
    return torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # negative floats: flip the magnitude bits


def _rerank(q, r, approx, cand, boundary, kk, err, metric, max_bytes, complete, cuts):
    """Order candidates by (key, index) using exact keys wherever float32 keys are too close to call.

    Keys are "smaller is better" (negated inner products). Returns the top-kk keys, indices, and a flag per row
    saying whether the top-kk set is certified (no non-candidate can beat or tie the kk-th candidate); every
    non-candidate's float32 key is >= ``boundary``. Speed: one sort of packed (float32 key, index) int64 codes
    orders every candidate; only the items of near-tie chains that need exact keys are then re-sorted, among the
    places their chain occupies (chains lie more than 2 err apart, so exact keys never move an item out of them).
    """
    packed = (_sortable(approx) << 32) | cand  # index < 2**31: the low word breaks ties by index
    packed, order = packed.sort(dim=1)
    idx = packed & 0xFFFFFFFF
    a_sorted = approx.gather(1, order).double()
    close = (a_sorted[:, 1:] - a_sorted[:, :-1]) <= 2 * err[:, None]
    flag_sorted = torch.zeros_like(a_sorted, dtype=torch.bool)
    flag_sorted[:, 1:] |= close
    flag_sorted[:, :-1] |= close
    # A chain of near-ties needs exact keys only if it spans a cut c (places c-1 and c, 0-based); with every
    # place a cut (the default) that is every chain starting before place kk.
    chain = torch.cat([torch.zeros_like(close[:, :1], dtype=torch.int64), (~close).cumsum(dim=1)], dim=1)
    if len(cuts) == kk:
        flag_sorted &= chain <= chain[:, kk - 1:kk]
    else:
        c = torch.tensor([c for c in cuts if c < chain.shape[1]], dtype=torch.int64, device=chain.device)
        dummy = chain.shape[1]  # chain ids are < the width; this column marks "no chain crosses the cut"
        spanning = torch.where(close[:, c - 1], chain[:, c], dummy)  # the chain crossing each cut
        table = torch.zeros(chain.shape[0], dummy + 1, dtype=torch.bool, device=chain.device)
        table.scatter_(1, spanning, True)
        table[:, dummy] = False
        flag_sorted &= table.gather(1, chain)
    if _FLOAT64_PRESCREEN:
        key, idx = settle_chains(q, r, a_sorted, idx, flag_sorted, chain, metric, max_bytes)
    else:  # the reference path: canonical keys for every flagged pair, chains re-sorted one by one
        key = a_sorted
        fr, fc = flag_sorted.nonzero(as_tuple=True)  # row-major: each chain's places are contiguous, in order
        if fr.numel():
            f_idx = idx[fr, fc]
            group = fr * (chain.shape[1] + 1) + chain[fr, fc]  # ascending along the list
            f_key = canonical_keys(q, fr, r, f_idx, metric, max_bytes)
            o = f_idx.argsort(stable=True)  # lexicographic (group, exact key, index) by stable passes
            o = o[f_key[o].argsort(stable=True)]
            o = o[group[o].argsort(stable=True)]
            key = a_sorted.clone()
            key[fr, fc] = f_key[o]
            idx[fr, fc] = f_idx[o]
    top_key, top_idx = key[:, :kk], idx[:, :kk]
    if complete:
        ok = torch.ones(q.shape[0], dtype=torch.bool, device=q.device)
    else:
        ok = top_key[:, -1] + 3 * err < boundary
    return top_key, top_idx, ok


def _exact_rows(qb: torch.Tensor, r: torch.Tensor, kk: int, metric: str, max_bytes: int):
    """Exact top-kk for a few rows: canonical keys against every reference item, then a stable sort."""
    n_ref = r.shape[0]
    keys, idxs = [], []
    for i in range(qb.shape[0]):  # rare: only rows whose boundary was too close to call
        rows = torch.full((n_ref,), i, dtype=torch.int64, device=qb.device)
        key = canonical_keys(qb, rows, r, torch.arange(n_ref, device=qb.device), metric, max_bytes)
        order = key.argsort(stable=True)[:kk]
        keys.append(key[order])
        idxs.append(order)
    return torch.stack(keys), torch.stack(idxs)


def _drop_self(key: torch.Tensor, idx: torch.Tensor, own: torch.Tensor):
    """Remove the column holding the query's own index; where self is absent, drop the last column."""
    is_self = idx == own[:, None]
    n, kk = idx.shape
    drop = torch.where(is_self.any(dim=1), is_self.int().argmax(dim=1), torch.full_like(own, kk - 1))
    cols = torch.arange(kk - 1, device=idx.device)[None, :]
    src = cols + (cols >= drop[:, None]).long()  # a gather, not a boolean mask: no host sync, no copy of n x kk
    return key.gather(1, src), idx.gather(1, src)
