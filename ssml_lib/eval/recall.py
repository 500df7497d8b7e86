"""Recall@K as deep metric learning uses it: the fraction of queries with a same-label item among their K nearest.

Protocol (docs/protocols.md, Recall@K): exact search; when the queries are also the references, the query
itself is excluded by index and ties go to the lower reference index. Every query counts (one with no other item
of its class scores 0), as in Lifted Structure / Proxy-Anchor; pytorch-metric-learning instead drops such lone
queries, so compare the two only on data where every class has two or more items.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

from ._inputs import EvalInputError, as_embeddings, as_labels
from .exact_keys import canonical_keys, float32_above, float32_below
from .knn import _error_bound, knn

_METRICS = {"cosine": "ip", "l2": "l2sq", "ip": "ip"}
_SELF_EXCLUSION = ("index", "drop_first")
_METHODS = ("rank", "knn")


def _as_ks(ks: int | Iterable[int]) -> list[int]:
    ks = [ks] if isinstance(ks, int) else list(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise EvalInputError(f"ks must be positive ints, got {ks!r}; e.g. ks=(1, 2, 4, 8).")
    return ks


def neighbour_labels(emb: Any, labels: Any, k: int, ref_emb: Any = None, ref_labels: Any = None, *,
                     metric: str = "cosine", self_exclusion: str = "index", backend: str = "auto",
                     max_bytes: int = 512 * 2**20,
                     exact_cuts: Iterable[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (query labels (n,), labels of the k nearest references (n, k)) under the named protocol.

    ``exact_cuts``: see :func:`knn`; the first-j neighbour sets are exact for j in exact_cuts.
    """
    if metric not in _METRICS:
        raise EvalInputError(f"unknown metric {metric!r}; use 'cosine' (L2-normalised inner product), 'l2' "
                             "(Euclidean on the vectors as given) or 'ip' (raw inner product).")
    if self_exclusion not in _SELF_EXCLUSION:
        raise EvalInputError(f"unknown self_exclusion {self_exclusion!r}; use 'index' (recommended) or "
                             "'drop_first' (compatibility with repositories that drop the first neighbour).")
    q, y, r, ry, same_source = _queries_and_references(emb, labels, ref_emb, ref_labels)
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        r = q if same_source else torch.nn.functional.normalize(r, dim=1)
    ref = None if same_source else r
    kwargs = dict(metric=_METRICS[metric], backend=backend, max_bytes=max_bytes)
    if same_source and self_exclusion == "drop_first":
        if k + 1 > q.shape[0]:
            raise EvalInputError(f"k={k} needs at least {k + 1} items for drop_first; lower k.")
        cuts = None if exact_cuts is None else [1] + [c + 1 for c in exact_cuts]
        idx = knn(q, None, k + 1, exact_cuts=cuts, **kwargs)[1][:, 1:]  # the old rule: whatever came first goes
    else:
        idx = knn(q, ref, k, exclude_self=same_source, exact_cuts=exact_cuts, **kwargs)[1]
    return y, ry.to(idx.device)[idx]


def _queries_and_references(emb: Any, labels: Any, ref_emb: Any, ref_labels: Any):
    """(queries, their labels, references, their labels, whether the queries are the references)."""
    q = as_embeddings(emb, "emb")
    y = as_labels(labels, q.shape[0], "labels")
    if (ref_emb is None) != (ref_labels is None):
        raise EvalInputError("pass both ref_emb and ref_labels, or neither (then the queries are the references).")
    same_source = ref_emb is None
    r = q if same_source else as_embeddings(ref_emb, "ref_emb")
    ry = y if same_source else as_labels(ref_labels, r.shape[0], "ref_labels")
    return q, y, r, ry, same_source


def recall_at_k(emb: Any, labels: Any, ks: int | Iterable[int], ref_emb: Any = None, ref_labels: Any = None, *,
                metric: str = "cosine", self_exclusion: str = "index", backend: str = "auto",
                max_bytes: int = 512 * 2**20, method: str = "rank") -> dict[int, float]:
    """Recall@K (hit rate) for each K in ``ks``, as fractions.

    ``ref_emb``/``ref_labels`` given: queries search that separate gallery (no self exclusion). Otherwise each
    query searches all the other rows. ``metric``: "cosine" (default), "l2" or "ip". ``self_exclusion``:
    "index" removes the query's own row; "drop_first" drops the first neighbour whatever it is (older code).
    ``method``: "rank" (default) counts, per query, the items ranked before its best same-label item, in one
    pass with no neighbour lists; "knn" reads the labels of the max(ks) nearest neighbours. Both give identical
    results; "drop_first" always uses "knn" (its rule is defined by the neighbour list).
    """
    ks = _as_ks(ks)
    if method not in _METHODS:
        raise EvalInputError(f"unknown method {method!r}; use 'rank' (fast, default) or 'knn'.")
    if method == "rank" and self_exclusion == "index":
        if metric not in _METRICS:
            raise EvalInputError(f"unknown metric {metric!r}; use 'cosine' (L2-normalised inner product), 'l2' "
                                 "(Euclidean on the vectors as given) or 'ip' (raw inner product).")
        n_ref = as_embeddings(emb if ref_emb is None else ref_emb, "emb").shape[0] - int(ref_emb is None)
        if max(ks) > n_ref:
            raise EvalInputError(f"k={max(ks)} exceeds the {n_ref} reference items available; lower k.")
        rank = best_match_rank(emb, labels, ref_emb, ref_labels, metric=metric, max_bytes=max_bytes)
        return {k: float((rank < k).double().mean()) for k in ks}
    y, nl = neighbour_labels(emb, labels, max(ks), ref_emb, ref_labels, metric=metric,
                             self_exclusion=self_exclusion, backend=backend, max_bytes=max_bytes,
                             exact_cuts=ks)  # R@K needs exact top-K sets only, not the order inside them
    hit_within = (nl == y.to(nl.device)[:, None]).cummax(dim=1).values  # hit_within[:, j]: a hit in the top j+1
    return {k: float(hit_within[:, k - 1].double().mean()) for k in ks}


def best_match_rank(emb: Any, labels: Any, ref_emb: Any = None, ref_labels: Any = None, *, metric: str = "cosine",
                    max_bytes: int = 512 * 2**20) -> torch.Tensor:
    """Per query, the 0-based rank of its best same-label reference item (int64; n_ref when it has none).

    Rank = number of other reference items that beat it: a better score, or an equal score and a lower index
    (the knn order, self excluded by index when the queries are the references). Float32 scores decide every
    pair clear of the rounding-error bound; the rest get knn's canonical float64 keys, so ties fall identically.
    """
    q, y, r, ry, same_source = _queries_and_references(emb, labels, ref_emb, ref_labels)
    if r.shape[1] != q.shape[1]:
        raise EvalInputError(f"emb has {q.shape[1]} dims but ref_emb has {r.shape[1]}; embed both with one model.")
    if r.device != q.device:
        raise EvalInputError(f"emb is on {q.device} but ref_emb is on {r.device}; move both to one device.")
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        r = q if same_source else torch.nn.functional.normalize(r, dim=1)
    kind = _METRICS[metric]
    y, ry = y.to(q.device), ry.to(q.device)
    err = 2 * _error_bound(q, r, kind, "torch")  # 2x: margin for the float64 keys' own (tiny) rounding
    n_q, n_ref = q.shape[0], r.shape[0]
    r_sq = (r * r).sum(dim=1)
    order = ry.argsort(stable=True)  # reference rows grouped by label, for same-label look-ups
    by_label = (order, ry[order])
    rank = torch.full((n_q,), n_ref, dtype=torch.int64, device=q.device)
    rows = max(1, min(n_q, int(max_bytes // (n_ref * 16 + 1))))
    sparse = True
    for start in range(0, n_q, rows):
        stop = min(n_q, start + rows)
        rank[start:stop], density = _chunk_rank(q[start:stop], y[start:stop], r, ry, by_label, r_sq,
                                                err[start:stop], kind, start if same_source else None, max_bytes,
                                                sparse)
        sparse = density < 0.05  # many items ahead of the match (a weak embedding): count rather than list
    return rank


def _same_label_columns(yc, by_label, n_ref):
    """(columns (m, w), valid (m, w)): the reference rows sharing each query's label, padded; None if too wide."""
    order, sorted_y = by_label
    first = torch.searchsorted(sorted_y, yc)
    last = torch.searchsorted(sorted_y, yc, right=True)
    width = int((last - first).max()) if yc.numel() else 0
    if width * 8 > n_ref:  # few large classes: a dense label mask is cheaper
        return None
    pos = first[:, None] + torch.arange(max(width, 1), device=yc.device)[None, :]
    return order[pos.clamp(max=n_ref - 1)], pos < last[:, None]


def _chunk_rank(qc, yc, r, ry, by_label, r_sq, err, kind, self_offset, max_bytes, sparse):
    """best_match_rank for one chunk of query rows, and the share of the chunk's pairs that were listed.

    Keys are "smaller is better" (negated inner products); ``raw`` holds inner products as computed for "ip"
    (negation is exact, so comparing raw with negated thresholds saves a pass over the block).
    """
    m, n_ref = qc.shape[0], r.shape[0]
    sign = -1.0 if kind == "ip" else 1.0
    raw = qc @ r.T
    if kind == "l2sq":
        raw.mul_(-2).add_(r_sq[None, :]).add_((qc * qc).sum(dim=1, keepdim=True))
    rows = torch.arange(m, device=qc.device)
    if self_offset is not None:
        raw[rows, rows + self_offset] = sign * float("inf")  # self never competes
    table = _same_label_columns(yc, by_label, n_ref)
    if table is None:
        best32 = torch.where(yc[:, None] == ry[None, :], raw * sign, float("inf")).amin(dim=1)
    else:
        cols, valid = table
        best32 = torch.where(valid, raw.gather(1, cols) * sign, float("inf")).amin(dim=1)
    has = torch.isfinite(best32)
    # The match's exact key lies within err of best32, so items whose float32 key is more than 2 err below
    # (above) it surely beat (lose to) it; 4 err leaves room for the float64 keys' own rounding. Items in
    # between, the match among them, get canonical keys.
    lo = float32_below(best32.double() - 4 * err)
    hi = torch.where(has, float32_above(best32.double() + 4 * err), -float("inf"))
    if sparse:  # usually few items are ahead of the match: list them instead of counting whole rows
        br, bc = (raw >= -hi[:, None] if kind == "ip" else raw <= hi[:, None]).nonzero(as_tuple=True)
        sure = raw[br, bc] * sign < lo[br]
        n_below = torch.zeros(m, dtype=torch.int64, device=qc.device).index_add_(0, br, sure.long())
        br, bc = br[~sure], bc[~sure]
        density = (br.numel() + float(n_below.sum())) / max(1, m * n_ref)
    else:
        key = raw.mul_(sign)
        n_below = (key < lo[:, None]).sum(dim=1)
        band_rows = ((key <= hi[:, None]).sum(dim=1) > n_below).nonzero().flatten()
        sub = key[band_rows]
        br, bc = ((sub >= lo[band_rows, None]) & (sub <= hi[band_rows, None])).nonzero(as_tuple=True)
        br, density = band_rows[br], 1.0
    bk = canonical_keys(qc, br, r, bc, kind, max_bytes)
    is_same = ry[bc] == yc[br]
    best_key = torch.full((m,), float("inf"), dtype=torch.float64, device=qc.device)
    best_key.scatter_reduce_(0, br[is_same], bk[is_same], "amin")  # the match: lowest key, then lowest index
    at_best = is_same & (bk == best_key[br])
    best_idx = torch.full((m,), n_ref, dtype=torch.int64, device=qc.device)
    best_idx.scatter_reduce_(0, br[at_best], bc[at_best], "amin")
    beats = (bk < best_key[br]) | ((bk == best_key[br]) & (bc < best_idx[br]))
    n_band = torch.zeros(m, dtype=torch.int64, device=qc.device).index_add_(0, br, beats.long())
    return torch.where(has, n_below + n_band, torch.full_like(n_below, n_ref)), density
