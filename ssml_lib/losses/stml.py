"""Self-Taught Metric Learning losses (Kim et al., CVPR 2022), as the official ``loss.py`` computes them.

docs/methods.md (STML):

* :func:`stml_targets` -- the pseudo-label matrix W = (W_P + W_C) / 2 from the (EMA) teacher's g:
  W_P = exp(-||t_i - t_j||^2 / sigma) on L2-normalised t (sigma, not 2 sigma^2); k-reciprocal contextual
  similarity with same-instance pairs forced into each kNN list; query expansion over the first
  round(k/2) neighbours; symmetrised. Same-instance pairs are forced only in the neighbour search.
  Its two halves are :func:`stml_pairwise_similarity` (W_P) and :func:`stml_contextual_similarity` (W_C).
* :func:`relaxed_contrastive_loss` -- distances divided by their (non-detached) row mean, which includes
  the zero diagonal; sum over i != j of W d^2 + (1 - W) [delta - d]_+^2, divided by N(N - 1). Given
  reference rows (``ref_emb``: a cross-batch memory, ``stml_xbm``), the same pair term of the batch rows
  against them instead, on the batch's row-mean scale, averaged over the pairs that count.
* :func:`stml_kl_distillation` -- KL(softmax(-d_g) || softmax(-d_f)) per row, g detached, mean over rows.
* :func:`stml_loss` -- (L_RC(f) + L_RC(g)) / 2 + L_KL, with no further weights.

Student embeddings are not normalised (the official ``student_norm = 0``).
"""
from __future__ import annotations

import torch

from ._common import (LossInputError, as_float, as_index, check_positive, check_rows, compute_dtype,
                      cross_distances, full_precision, pairwise_distances)
from ._neighbours import reciprocal_neighbours


def _query_expansion_size(k: int) -> int:
    # The official code uses NumPy's around (round half to even): k = 3 -> 2, k = 5 -> 2, k = 11 -> 6.
    return max(1, round(k / 2))


def _mean_normalised_distances(emb: torch.Tensor) -> torch.Tensor:
    dist = pairwise_distances(emb)
    return dist / dist.mean(1, keepdim=True)  # normaliser kept in the graph, as in the code


@torch.no_grad()
def stml_targets(teacher_emb, instance_ids, k: int, sigma: float, valid=None) -> torch.Tensor:
    """W = (W_P + W_C) / 2, an (N, N) symmetric matrix in [0, 1], from teacher embeddings (N, D).

    ``instance_ids`` (N,): the dataset index of each row (both views of an image share it). ``k`` is the
    neighbour count of the official code (num_neighbors x views). ``valid`` (N,) bool, optional: rows that
    take part (e.g. the filled slots of a memory joined to the batch); the others never enter a neighbour
    list, so W among the valid rows is W of the valid rows alone, and W in an invalid row or column is
    meaningless. At least k rows must be valid.
    """
    teacher_emb = as_float(teacher_emb, "teacher_emb")
    check_rows(teacher_emb, "teacher_emb", min_rows=2)
    n = teacher_emb.shape[0]
    instance_ids = as_index(instance_ids, "instance_ids", teacher_emb.device)
    if instance_ids.shape != (n,):
        raise LossInputError(f"instance_ids has shape {tuple(instance_ids.shape)}, expected ({n},): one "
                             f"dataset index per row, repeated for each view.")
    if not (isinstance(k, int) and 1 <= k <= n):
        raise LossInputError(f"k must be an integer in [1, {n}] (the number of rows), got {k!r}.")
    check_positive(sigma, "sigma")
    w_p = stml_pairwise_similarity(teacher_emb, sigma)
    return (w_p + stml_contextual_similarity(w_p, instance_ids, k, valid)) / 2


@torch.no_grad()
def stml_pairwise_similarity(teacher_emb: torch.Tensor, sigma: float) -> torch.Tensor:
    """W_P = exp(-||t_i - t_j||^2 / sigma) on L2-normalised teacher embeddings; diagonal 1."""
    with full_precision(teacher_emb.device):
        t = torch.nn.functional.normalize(teacher_emb.to(compute_dtype(teacher_emb)), dim=1)
        sq_dist = (2.0 - 2.0 * (t @ t.T)).clamp(min=0).fill_diagonal_(0.0)
        return torch.exp(-sq_dist / sigma)


@torch.no_grad()
def stml_contextual_similarity(w_p: torch.Tensor, instance_ids: torch.Tensor, k: int, valid=None) -> torch.Tensor:
    """W_C: k-reciprocal neighbourhood overlap, query-expanded over round(k/2) neighbours, symmetrised.
    ``valid``: as in :func:`stml_targets`."""
    instance_ids = as_index(instance_ids, "instance_ids", w_p.device)
    if w_p.dim() != 2 or instance_ids.shape != (w_p.shape[0],):
        raise LossInputError(f"w_p {tuple(w_p.shape)} must be (N, N) with instance_ids of shape (N,), got "
                             f"{tuple(instance_ids.shape)}.")
    if valid is not None:
        valid = torch.as_tensor(valid, device=w_p.device)
        if valid.dtype != torch.bool or valid.shape != instance_ids.shape:
            raise LossInputError(f"valid must be a bool mask of shape {tuple(instance_ids.shape)} (one flag per "
                                 f"row), got {valid.dtype} of shape {tuple(valid.shape)}.")
    with full_precision(w_p.device):
        # Neighbour search only: same-instance pairs count as perfect matches; self gets 2 so that it is
        # first in its own list whatever topk does with ties; invalid columns are never chosen.
        search = w_p.masked_fill(instance_ids[:, None] == instance_ids[None, :], 1.0)
        if valid is not None:
            search.masked_fill_(~valid[None, :], float("-inf"))
        search.fill_diagonal_(2.0)
        knn_index, mutual = reciprocal_neighbours(search, k)

        v = mutual.to(w_p.dtype)
        overlap = v @ v  # |R(i) & R(j)|, since V is symmetric
        w_c_tilde = v * overlap / v.sum(1, keepdim=True).clamp(min=1.0)
        n_qe = _query_expansion_size(k)
        expand = torch.zeros_like(w_p).scatter_(1, knn_index[:, :n_qe], 1.0 / n_qe)
        w_c_hat = expand @ w_c_tilde
        return (w_c_hat + w_c_hat.T) / 2


def relaxed_contrastive_loss(emb, weights, delta: float = 1.0, *, ref_emb=None, ref_mask=None) -> torch.Tensor:
    """STML relaxed contrastive loss of student embeddings ``emb`` (N, D) against soft targets ``weights`` (N, N).

    With ``ref_emb`` (M, D), reference rows that get no gradient (a cross-batch memory): the loss of ``emb``'s
    rows against them instead. ``weights`` is then (N, M) (0: the pair is a negative), ``ref_mask`` (N, M)
    bool marks the pairs that count (default: all), each distance is divided by the row's mean distance to
    the batch (as in the batch loss, diagonal included, not detached) so that a reference row as far as the
    batch's average is at d = 1, and the sum is divided by the number of pairs that count (0 if none).
    """
    emb = as_float(emb, "emb")
    check_rows(emb, "emb", min_rows=2)
    n = emb.shape[0]
    weights = as_float(weights, "weights")
    if ref_emb is not None:
        return _relaxed_contrastive_to_reference(emb, weights, delta, ref_emb, ref_mask)
    if weights.shape != (n, n):
        raise LossInputError(f"weights has shape {tuple(weights.shape)}, expected ({n}, {n}) for {n} rows; "
                             f"build it with stml_targets on the same batch.")
    check_positive(delta, "delta")
    dtype = compute_dtype(emb)
    with full_precision(emb.device):
        d = _mean_normalised_distances(emb.to(dtype))
        w = weights.detach().to(dtype)
        off_diag = ~torch.eye(n, dtype=torch.bool, device=d.device)
        pair = w * d.pow(2) + (1.0 - w) * torch.relu(delta - d).pow(2)
        return torch.where(off_diag, pair, torch.zeros_like(pair)).sum() / (n * (n - 1))


def _relaxed_contrastive_to_reference(emb, weights, delta, ref_emb, ref_mask) -> torch.Tensor:
    ref = as_float(ref_emb, "ref_emb")
    check_rows(ref, "ref_emb")
    (n, dim), m = emb.shape, ref.shape[0]
    if ref.shape[1] != dim:
        raise LossInputError(f"ref_emb has {ref.shape[1]} columns but emb {dim}; reference rows must be "
                             f"embeddings of the same head.")
    if weights.shape != (n, m):
        raise LossInputError(f"weights has shape {tuple(weights.shape)}, expected ({n}, {m}): one target per "
                             f"(row, reference row) pair.")
    mask = torch.ones(n, m, dtype=torch.bool, device=emb.device) if ref_mask is None else torch.as_tensor(ref_mask)
    if mask.dtype != torch.bool or mask.shape != (n, m):
        raise LossInputError(f"ref_mask must be a bool tensor of shape ({n}, {m}), got {mask.dtype} of shape "
                             f"{tuple(mask.shape)}.")
    check_positive(delta, "delta")
    dtype = compute_dtype(emb)
    with full_precision(emb.device):
        x = emb.to(dtype)
        row_mean = pairwise_distances(x).mean(1, keepdim=True)  # the batch's scale, in the graph
        d = cross_distances(x, ref.detach().to(device=x.device, dtype=dtype)) / row_mean
        w = weights.detach().to(dtype)
        pair = w * d.pow(2) + (1.0 - w) * torch.relu(delta - d).pow(2)
        mask = mask.to(x.device)
        return torch.where(mask, pair, torch.zeros_like(pair)).sum() / mask.sum().clamp(min=1).to(dtype)


def stml_kl_distillation(student_f, student_g) -> torch.Tensor:
    """KL self-distillation g -> f: rows of softmax(-d) from g (detached) teach those from f (T = 1)."""
    student_f, student_g = as_float(student_f, "student_f"), as_float(student_g, "student_g")
    check_rows(student_f, "student_f", min_rows=2)
    check_rows(student_g, "student_g", min_rows=2)
    if student_f.shape[0] != student_g.shape[0]:
        raise LossInputError(f"student_f has {student_f.shape[0]} rows and student_g {student_g.shape[0]}; "
                             f"both heads must embed the same batch.")
    dtype = compute_dtype(student_f, student_g)
    with full_precision(student_f.device):
        log_q = torch.log_softmax(-_mean_normalised_distances(student_f.to(dtype)), dim=1)
        log_p = torch.log_softmax(-_mean_normalised_distances(student_g.detach().to(dtype)), dim=1)
        return (log_p.exp() * (log_p - log_q)).sum() / student_f.shape[0]


def stml_loss(f, g, teacher_g, instance_ids, k: int, sigma: float, delta: float
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total STML loss and its detached parts {'rc_f', 'rc_g', 'rc', 'kl'}."""
    weights = stml_targets(teacher_g, instance_ids, k, sigma)
    rc_f = relaxed_contrastive_loss(f, weights, delta)
    rc_g = relaxed_contrastive_loss(g, weights, delta)
    kl = stml_kl_distillation(f, g)
    rc = (rc_f + rc_g) / 2
    parts = {"rc_f": rc_f.detach(), "rc_g": rc_g.detach(), "rc": rc.detach(), "kl": kl.detach()}
    return rc + kl, parts
