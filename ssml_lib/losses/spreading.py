"""Invariant and Spreading instance feature loss (Ye et al., CVPR 2019).

Two forms (docs/methods.md, Spreading; the Spreading paper's Eqs. 3-7):

* ``variant="official"`` -- what ``BatchCriterion`` computes, and the default. The two views are stacked
  as x = [emb; emb_aug] (N = 2B rows); row i's positive is row (i + B) mod N. Every inner product is
  x_i . sg(x_j) / T (the column side is detached), the denominator Z_i runs over the N - 1 other rows,
  and with negative weight m >= 1 (``--batch-m``): Z_i = m * sum_{j not in {i, p(i)}} A_ij + A_{i,p(i)}.
  L = -(1/N) [ sum_i log P_i + m sum_i sum_{j not in {i, p(i)}} log(1 - A_ij / Z_i) ].
* ``variant="paper"`` -- the paper's equations: P(i|x^_i) is a softmax over the B original-view features
  (Eq. 3), P(i|x_j) a softmax over the original view (Eq. 4), no stop-gradient, and
  J = -sum_i log P(i|x^_i) - m sum_i sum_{j != i} log(1 - P(i|x_j)) (Eq. 7, with m = negative_weight).
  We return J / B (the paper sums; dividing by B only rescales, so learning rates carry over).

Inputs must already be L2-normalised, as the official model does in its head; the loss does not
normalise, so its gradient is exactly the official one. Both forms are computed in log space.
"""
from __future__ import annotations

import math

import torch

from ._common import (LossInputError, as_float, check_positive, check_rows, compute_dtype, full_precision,
                      log1mexp)

SPREADING_VARIANTS = ("official", "paper")


def spreading_loss(emb, emb_aug, temperature: float = 0.1, *, variant: str = "official",
                   negative_weight: float = 1.0) -> torch.Tensor:
    """Spreading loss on two L2-normalised views ``emb`` and ``emb_aug`` (both (B, D), row i = instance i)."""
    emb, emb_aug = as_float(emb, "emb"), as_float(emb_aug, "emb_aug")
    check_rows(emb, "emb", min_rows=2)
    if emb_aug.shape != emb.shape:
        raise LossInputError(f"emb_aug has shape {tuple(emb_aug.shape)} but emb has {tuple(emb.shape)}; "
                             f"pass the two views of the same B instances in the same order.")
    if emb_aug.device != emb.device:
        raise LossInputError(f"emb is on {emb.device} and emb_aug on {emb_aug.device}; move both to one device.")
    check_positive(temperature, "temperature")
    check_positive(negative_weight, "negative_weight")
    if variant not in SPREADING_VARIANTS:
        raise LossInputError(f"unknown spreading variant {variant!r}; use one of {SPREADING_VARIANTS}.")
    if variant == "official" and negative_weight < 1.0:
        # With m < 1, Z_i = m * (negatives) + positive can fall below one negative term: log(1 - Q) is NaN.
        raise LossInputError(f"the official variant needs negative_weight >= 1 (got {negative_weight}); "
                             f"below 1 its log(1 - A_ij / Z_i) is undefined. Use variant='paper' or m >= 1.")

    dtype = compute_dtype(emb, emb_aug)
    with full_precision(emb.device):
        f, f_aug = emb.to(dtype), emb_aug.to(dtype)
        if variant == "official":
            return _official(torch.cat([f, f_aug]), temperature, negative_weight)
        return _paper(f, f_aug, temperature, negative_weight)


def _official(x: torch.Tensor, temperature: float, m: float) -> torch.Tensor:
    n = x.shape[0]
    half = n // 2
    rows = torch.arange(n, device=x.device)
    partner = (rows + half) % n
    # Column side detached: gradients reach each embedding only through the rows it anchors.
    logits = x @ x.detach().T / temperature
    pos_logit = logits[rows, partner]
    # elementwise (no scalar index_put, which copies a CPU scalar to the device and syncs)
    negative = (rows[None, :] != rows[:, None]) & (rows[None, :] != partner[:, None])
    neg_logits = logits.masked_fill(~negative, float("-inf"))
    log_z = torch.logaddexp(math.log(m) + torch.logsumexp(neg_logits, dim=1), pos_logit)
    log_p = pos_logit - log_z
    # Masked entries are -inf, and log1mexp(-inf) = 0 with a zero gradient.
    log_not_q = log1mexp(neg_logits - log_z[:, None])
    return -(log_p.sum() + m * log_not_q.sum()) / n


def _paper(f: torch.Tensor, f_aug: torch.Tensor, temperature: float, m: float) -> torch.Tensor:
    b = f.shape[0]
    rows = torch.arange(b, device=f.device)
    # Row i: the augmented sample x^_i classified over the B original-view instances (Eq. 3).
    log_p_aug = torch.log_softmax(f_aug @ f.T / temperature, dim=1)[rows, rows]
    # Entry [j, i] = log P(i | x_j): x_j classified over the original view (Eq. 4).
    log_p_orig = torch.log_softmax(f @ f.T / temperature, dim=1)
    off_diag = ~torch.eye(b, dtype=torch.bool, device=f.device)
    log_not = log1mexp(log_p_orig.masked_fill(~off_diag, float("-inf")))
    return -(log_p_aug.sum() + m * log_not.sum()) / b
