"""Recall@K as deep metric learning uses it: the fraction of queries with a same-label item among their K nearest.

Protocol (reference/protocols.md §4.1-4.2): exact search; when the queries are also the references, the query
itself is excluded by index and ties go to the lower reference index. Every query counts (one with no other item
of its class scores 0), as in Lifted Structure / Proxy-Anchor; pytorch-metric-learning instead drops such lone
queries, so compare the two only on data where every class has two or more items.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

from ._inputs import EvalInputError, as_embeddings, as_labels
from .knn import knn

_METRICS = {"cosine": "ip", "l2": "l2sq", "ip": "ip"}
_SELF_EXCLUSION = ("index", "drop_first")


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
    q = as_embeddings(emb, "emb")
    y = as_labels(labels, q.shape[0], "labels")
    if (ref_emb is None) != (ref_labels is None):
        raise EvalInputError("pass both ref_emb and ref_labels, or neither (then the queries are the references).")
    same_source = ref_emb is None
    r = q if same_source else as_embeddings(ref_emb, "ref_emb")
    ry = y if same_source else as_labels(ref_labels, r.shape[0], "ref_labels")
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


def recall_at_k(emb: Any, labels: Any, ks: int | Iterable[int], ref_emb: Any = None, ref_labels: Any = None, *,
                metric: str = "cosine", self_exclusion: str = "index", backend: str = "auto",
                max_bytes: int = 512 * 2**20) -> dict[int, float]:
    """Recall@K (hit rate) for each K in ``ks``, as fractions.

    ``ref_emb``/``ref_labels`` given: queries search that separate gallery (no self exclusion). Otherwise each
    query searches all the other rows. ``metric``: "cosine" (default), "l2" or "ip". ``self_exclusion``:
    "index" removes the query's own row; "drop_first" drops the first neighbour whatever it is (older code).
    """
    ks = _as_ks(ks)
    y, nl = neighbour_labels(emb, labels, max(ks), ref_emb, ref_labels, metric=metric,
                             self_exclusion=self_exclusion, backend=backend, max_bytes=max_bytes,
                             exact_cuts=ks)  # R@K needs exact top-K sets only, not the order inside them
    hit_within = (nl == y.to(nl.device)[:, None]).cummax(dim=1).values  # hit_within[:, j]: a hit in the top j+1
    return {k: float(hit_within[:, k - 1].double().mean()) for k in ks}
