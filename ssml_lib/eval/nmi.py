"""NMI of a seeded k-means clustering against the class labels (docs/protocols.md, NMI).

k defaults to the number of classes. The score comes from a sparse contingency table computed here, with natural
logs: arithmetic normalisation 2I/(H(Y)+H(C)) (sklearn >= 0.22, Lifted Structure) or geometric I/sqrt(H(Y)H(C))
(sklearn < 0.22, hence Spreading's Python 2 numbers). The k-means implementation, restarts, iterations and seed
change the number, so :func:`nmi_with_info` returns them alongside it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._inputs import EvalInputError, as_embeddings, as_labels
from .knn import faiss_available

_AVERAGES = ("arithmetic", "geometric", "min", "max")


def _entropy(counts: np.ndarray, n: int) -> float:
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


def nmi_from_partition(labels_true: Any, labels_pred: Any, average: str = "arithmetic") -> float:
    """NMI of two labelings from their contingency table (sparse: only the non-empty cells are counted)."""
    if average not in _AVERAGES:
        raise EvalInputError(f"unknown average {average!r}; use one of {_AVERAGES}.")
    y = np.asarray(labels_true).reshape(-1)
    c = np.asarray(labels_pred).reshape(-1)
    if y.shape != c.shape:
        raise EvalInputError(f"labels_true has {y.size} entries but labels_pred has {c.size}; pass one each.")
    n = y.size
    _, yi = np.unique(y, return_inverse=True)
    _, ci = np.unique(c, return_inverse=True)
    ny, nc = int(yi.max(initial=-1)) + 1, int(ci.max(initial=-1)) + 1
    if ny == nc and ny <= 1:  # one class and one cluster (or nothing): identical partitions, as sklearn says
        return 1.0
    cells, n_cy = np.unique(yi.astype(np.int64) * nc + ci, return_counts=True)
    count_y = np.bincount(yi, minlength=ny).astype(np.float64)
    count_c = np.bincount(ci, minlength=nc).astype(np.float64)
    n_y, n_c = count_y[cells // nc], count_c[cells % nc]
    mi = float(np.sum(n_cy / n * (np.log(n_cy) + math.log(n) - np.log(n_y) - np.log(n_c))))
    mi = max(mi, 0.0)  # rounding can leave a tiny negative where the true value is 0
    if mi == 0.0:
        return 0.0
    h_y, h_c = _entropy(count_y, n), _entropy(count_c, n)
    norm = {"arithmetic": (h_y + h_c) / 2, "geometric": math.sqrt(h_y * h_c), "min": min(h_y, h_c),
            "max": max(h_y, h_c)}[average]
    return mi / norm


def kmeans_assign(x: np.ndarray, n_clusters: int, *, seed: int = 0, kmeans: str = "auto", n_init: int = 1,
                  niter: int | None = None) -> tuple[np.ndarray, dict]:
    """Cluster rows of ``x`` (float32) and return (cluster id per row, record of how)."""
    if kmeans not in ("auto", "faiss", "sklearn"):
        raise EvalInputError(f"unknown kmeans {kmeans!r}; use 'faiss', 'sklearn' or 'auto'.")
    if kmeans == "auto":
        kmeans = "faiss" if faiss_available() else "sklearn"
    if not 1 <= n_clusters <= x.shape[0]:
        raise EvalInputError(f"n_clusters={n_clusters} must lie in [1, {x.shape[0]}] (the number of points).")
    if isinstance(n_init, bool) or not isinstance(n_init, int) or n_init < 1:
        raise EvalInputError(f"n_init must be a positive int, got {n_init!r}.")
    if kmeans == "faiss":
        import faiss

        niter = 20 if niter is None else niter  # faiss.Kmeans' default, as pytorch-metric-learning uses
        km = faiss.Kmeans(x.shape[1], n_clusters, niter=niter, nredo=n_init, seed=seed, verbose=False)
        km.cp.min_points_per_centroid = 1  # silence the "too few points" warning: SOP has ~5 per class
        km.train(x)
        assign = km.index.search(x, 1)[1][:, 0]
        record = {"implementation": "faiss.Kmeans", "version": faiss.__version__,
                  "max_points_per_centroid": int(km.cp.max_points_per_centroid),
                  "objective": float(km.obj[-1]) if len(km.obj) else None}
    else:
        import sklearn
        from sklearn.cluster import KMeans

        niter = 300 if niter is None else niter
        km = KMeans(n_clusters, n_init=n_init, max_iter=niter, random_state=seed).fit(x)
        assign = km.labels_
        record = {"implementation": "sklearn.cluster.KMeans", "version": sklearn.__version__,
                  "init": "k-means++", "objective": float(km.inertia_)}
    record.update(n_clusters=n_clusters, n_init=n_init, niter=niter, seed=seed)
    return np.asarray(assign, dtype=np.int64), record


def nmi_with_info(emb: Any, labels: Any, seed: int = 0, average: str = "arithmetic", *,
                  n_clusters: int | None = None, kmeans: str = "auto", n_init: int = 1,
                  niter: int | None = None) -> tuple[float, dict]:
    """NMI of k-means on ``emb`` (as given, not re-normalised) against ``labels``, and the run's record."""
    x = as_embeddings(emb, "emb").cpu().numpy()
    y = as_labels(labels, x.shape[0], "labels").cpu().numpy()
    if average not in _AVERAGES:
        raise EvalInputError(f"unknown average {average!r}; use one of {_AVERAGES}.")
    k = int(np.unique(y).size) if n_clusters is None else n_clusters
    assign, record = kmeans_assign(x, k, seed=seed, kmeans=kmeans, n_init=n_init, niter=niter)
    record["average"] = average
    return nmi_from_partition(y, assign, average), record


def nmi(emb: Any, labels: Any, seed: int = 0, average: str = "arithmetic", *, n_clusters: int | None = None,
        kmeans: str = "auto", n_init: int = 1, niter: int | None = None) -> float:
    """NMI of seeded k-means (k = number of classes unless given) against the labels; see :func:`nmi_with_info`."""
    return nmi_with_info(emb, labels, seed, average, n_clusters=n_clusters, kmeans=kmeans, n_init=n_init,
                         niter=niter)[0]
