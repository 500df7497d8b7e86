"""MOM (Iscen et al., CVPR 2018): manifold vs Euclidean neighbours for hard positive / negative pools.

Thesis §2.4: P+(r) = NN^m_k(r) minus NN^e_k(r) (same manifold, not Euclidean-close: hard positives) and
P-(r) = NN^e_k(r) minus NN^m_k(r) (Euclidean-close, other manifold: hard negatives). Manifold similarity
is a random walk (diffusion) on the mutual kNN graph with weights [x_i . x_j]_+^power (descriptors
L2-normalised): f_r = (I - alpha S)^{-1} e_r with S = D^-1/2 A D^-1/2, solved by a fixed number of
conjugate-gradient steps (no data-dependent stopping, so no host sync). Anchors are the modes of the
graph ranked by the random walk's stationary probability (proportional to the weighted degree).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ..errors import SsmlError
from ._common import as_features, as_index, check_positive_int, fill_at_


def manifold_graph(features: Any, k: int, *, power: float = 3.0, mutual: bool = True,
                   backend: str = "auto") -> torch.Tensor:
    """Symmetric sparse (N, N) affinity of the (mutual) k-NN graph by inner product, coalesced COO."""
    from ..eval.knn import knn

    feats = as_features(features)
    n = feats.shape[0]
    k = check_positive_int(k, "k")
    if k >= n:
        raise SsmlError(f"graph k={k} needs more than {k} items, got {n}; lower k.")
    sims, nbr = knn(feats, None, k=k, metric="ip", exclude_self=True, backend=backend)
    sims = torch.as_tensor(sims).to(feats.device).float().clamp_min(0).pow(power)
    rows = torch.arange(n, device=feats.device).repeat_interleave(k)
    cols = torch.as_tensor(nbr).to(feats.device, torch.int64).reshape(-1)
    vals = sims.reshape(-1)
    keys = torch.sort(rows * n + cols).values
    reverse = cols * n + rows
    pos = torch.searchsorted(keys, reverse).clamp(max=keys.numel() - 1)
    reciprocal = keys[pos] == reverse
    if mutual:
        rows, cols, vals = rows[reciprocal], cols[reciprocal], vals[reciprocal]
    else:  # union: add each one-way edge's reverse
        one_way = ~reciprocal
        rows, cols = torch.cat([rows, cols[one_way]]), torch.cat([cols, rows[one_way]])
        vals = torch.cat([vals, vals[one_way]])
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n),
                                   check_invariants=False).coalesce()


def stationary_distribution(graph: torch.Tensor) -> torch.Tensor:
    """Stationary probability of the random walk D^-1 A on an undirected graph: degree / total degree."""
    degree = torch.sparse.sum(graph, dim=1).to_dense()
    return degree / degree.sum().clamp_min(torch.finfo(degree.dtype).tiny)


def select_anchors(graph: torch.Tensor, num_anchors: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Modes of the graph (stationary probability >= every neighbour's), best first.

    Returns (indices (num_anchors,), valid (num_anchors,) bool): slots past the number of modes are invalid.
    """
    pi = stationary_distribution(graph)
    r, c = graph.indices()
    neighbour_max = torch.zeros_like(pi).scatter_reduce(0, r, pi[c], "amax", include_self=True)
    score = torch.where(pi >= neighbour_max, pi, torch.full_like(pi, float("-inf")))
    top = score.topk(min(check_positive_int(num_anchors, "num_anchors"), pi.numel()))
    return top.indices, top.values > float("-inf")


def manifold_similarity(graph: torch.Tensor, anchors: Any, *, alpha: float = 0.99,
                        iterations: int = 50) -> torch.Tensor:
    """(R, N) diffusion similarity of every item to each anchor: rows of (I - alpha S)^-1, by batched CG."""
    if not 0.0 < alpha < 1.0:
        raise SsmlError(f"alpha must lie in (0, 1) for (I - alpha S) to be invertible, got {alpha}.")
    n = graph.shape[0]
    anchors = as_index(anchors, "anchors", ndim=1).to(graph.device)
    degree = torch.sparse.sum(graph, dim=1).to_dense()
    inv_sqrt = torch.where(degree > 0, degree.clamp_min(1e-30).rsqrt(), torch.zeros_like(degree))
    r, c = graph.indices()
    s_norm = torch.sparse_coo_tensor(graph.indices(), inv_sqrt[r] * graph.values() * inv_sqrt[c], (n, n),
                                     check_invariants=False)

    def apply(x: torch.Tensor) -> torch.Tensor:  # (I - alpha S) x, x (N, R)
        return x - alpha * torch.sparse.mm(s_norm, x)

    b = torch.zeros(n, anchors.numel(), device=graph.device, dtype=graph.values().dtype)
    fill_at_(b, (anchors, torch.arange(anchors.numel(), device=graph.device)), 1.0)
    x, res = torch.zeros_like(b), b.clone()
    p, rr = res.clone(), (res * res).sum(0)
    for _ in range(check_positive_int(iterations, "iterations")):
        ap = apply(p)
        den = (p * ap).sum(0)
        step = torch.where(den > 0, rr / den.clamp_min(1e-30), torch.zeros_like(den))
        x = x + step * p
        res = res - step * ap
        rr_new = (res * res).sum(0)
        p = res + torch.where(rr > 0, rr_new / rr.clamp_min(1e-30), torch.zeros_like(rr)) * p
        rr = rr_new
    return x.T


class MomPools(NamedTuple):
    positives: torch.Tensor       # (R, k) manifold neighbours
    positive_mask: torch.Tensor   # (R, k) True where not a Euclidean neighbour: P+
    negatives: torch.Tensor       # (R, k) Euclidean neighbours
    negative_mask: torch.Tensor   # (R, k) True where not a manifold neighbour: P-


def euclidean_neighbours(features: Any, anchors: Any, k: int, *, backend: str = "auto") -> torch.Tensor:
    """(R, k) nearest items to each anchor by squared Euclidean distance, self excluded, ties by index."""
    from ..eval.knn import knn

    feats = as_features(features)
    anchors = as_index(anchors, "anchors", ndim=1).to(feats.device)
    _, idx = knn(feats, None, k=check_positive_int(k, "k"), metric="l2sq", exclude_self=True, backend=backend)
    return torch.as_tensor(idx).to(feats.device, torch.int64)[anchors]


def manifold_neighbours(similarity: torch.Tensor, anchors: Any, k: int) -> torch.Tensor:
    """(R, k) items of highest manifold similarity to each anchor, self excluded, ties by index."""
    anchors = as_index(anchors, "anchors", ndim=1).to(similarity.device)
    sim = similarity.clone()
    fill_at_(sim, (torch.arange(anchors.numel(), device=sim.device), anchors), float("-inf"))
    # Stable descending sort puts equal scores in index order.
    return torch.sort(sim, dim=1, descending=True, stable=True).indices[:, : check_positive_int(k, "k")]


def mom_pools(features: Any, anchors: Any, k: int, *, graph_k: int = 50, power: float = 3.0,
              alpha: float = 0.99, iterations: int = 50, backend: str = "auto") -> MomPools:
    """Positive and negative pools of each anchor (Iscen et al. 2018, thesis Eqs. 2.8 and 2.9)."""
    graph = manifold_graph(features, graph_k, power=power, backend=backend)
    manifold = manifold_neighbours(manifold_similarity(graph, anchors, alpha=alpha, iterations=iterations),
                                   anchors, k)
    euclid = euclidean_neighbours(features, anchors, k, backend=backend)
    in_euclid = (manifold[:, :, None] == euclid[:, None, :]).any(-1)
    in_manifold = (euclid[:, :, None] == manifold[:, None, :]).any(-1)
    return MomPools(manifold, ~in_euclid, euclid, ~in_manifold)
