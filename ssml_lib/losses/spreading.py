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
normalise, so its gradient is exactly the official one. The paper form is computed in log space; the official
form with exponentials shifted per row (no overflow; the shift cancels in every ratio) and its closed-form
gradient, a few passes over the 2B x 2B matrix.

``negatives`` (the paper's Table 8, official form only): ``"all"`` (the default) uses every negative; ``"hard_half"``
/ ``"easy_half"`` keep, for each anchor row i, only the half of its 2B - 2 candidate negatives (both views of the
B - 1 other instances) that are most / least similar to it (x_i . x_j, detached: the choice carries no gradient):
B - 1 of them (a tie at the boundary goes either way). A dropped negative leaves both Z_i and the
log(1 - A_ij / Z_i) terms.
"""
from __future__ import annotations

import torch

from ._common import (LossInputError, as_float, check_positive, check_rows, compute_dtype, full_precision,
                      log1mexp)

SPREADING_VARIANTS = ("official", "paper")
SPREADING_NEGATIVES = ("all", "hard_half", "easy_half")


def spreading_loss(emb, emb_aug, temperature: float = 0.1, *, variant: str = "official",
                   negative_weight: float = 1.0, negatives: str = "all") -> torch.Tensor:
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
    if negatives not in SPREADING_NEGATIVES:
        raise LossInputError(f"unknown spreading negatives {negatives!r}; use one of {SPREADING_NEGATIVES}.")
    if negatives != "all" and variant != "official":
        raise LossInputError(f"negatives={negatives!r} is defined on the official variant only (its 2B - 2 "
                             "candidates per anchor); use variant='official' or negatives='all'.")
    if variant == "official" and negative_weight < 1.0:
        # With m < 1, Z_i = m * (negatives) + positive can fall below one negative term: log(1 - Q) is NaN.
        raise LossInputError(f"the official variant needs negative_weight >= 1 (got {negative_weight}); "
                             f"below 1 its log(1 - A_ij / Z_i) is undefined. Use variant='paper' or m >= 1.")

    dtype = compute_dtype(emb, emb_aug)
    with full_precision(emb.device):
        f, f_aug = emb.to(dtype), emb_aug.to(dtype)
        if variant == "official":
            return _official(torch.cat([f, f_aug]), temperature, negative_weight, negatives)
        return _paper(f, f_aug, temperature, negative_weight)


def _official(x: torch.Tensor, temperature: float, m: float, negatives: str = "all") -> torch.Tensor:
    return _OfficialSpreading.apply(x, temperature, m, negatives)


def _kept_half(logits: torch.Tensor, rows: torch.Tensor, partner: torch.Tensor, hard: bool) -> torch.Tensor:
    """(N, N) bool: each row's kept half of its 2B - 2 negatives, the B - 1 of largest (``hard``) or smallest
    logit (within a row the logits order x_i . x_j); self and positive are never in it."""
    n = logits.shape[0]
    score = logits.clone() if hard else logits.neg()
    score.view(-1).index_fill_(0, torch.cat([rows * (n + 1), rows * n + partner]), float("-inf"))
    return torch.zeros_like(score, dtype=torch.bool).scatter_(1, score.topk(n // 2 - 1, dim=1).indices, True)


class _OfficialSpreading(torch.autograd.Function):
    """The official loss in a few passes over the N x N matrix, with its closed-form gradient.

    Terms are scaled by a per-row shift c_i >= max_j l_ij (so exp never overflows):
    E_ij = exp(l_ij - c_i) off the diagonal, Z'_i = m * (negatives of E_i) + E_ip, q_ij = E_ij / Z'_i and
    P_i = E_ip / Z'_i; the shift cancels in every ratio. With V_ij = q_ij / (1 - q_ij) and R_i = sum_j V_ij
    over the negatives, dL/dl_ij = -(1/N) [m q_ij (m R_i - 1) - m V_ij] for a negative j and
    -(1/N) [1 + P_i (m R_i - 1)] for the positive; the columns are detached, so dL/dx = G x / T.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, temperature: float, m: float, negatives: str = "all") -> torch.Tensor:
        n = x.shape[0]
        rows = torch.arange(n, device=x.device)
        partner = (rows + n // 2) % n
        norms = x.norm(dim=1)
        if temperature >= 0.05:  # Cauchy-Schwarz: l_ij <= |x_i| max|x| / T; the far terms stay above 1e-17
            shift = norms * norms.max() / temperature
            logits = torch.addmm(-shift[:, None], x, x.T, alpha=1.0 / temperature)
        else:  # tiny temperatures: the row's largest off-diagonal logit, so some term of every row is 1
            logits = (x @ x.T).div_(temperature)
            logits.view(-1).index_fill_(0, rows * (n + 1), float("-inf"))
            logits.sub_(logits.amax(dim=1, keepdim=True))
        pos_logit = logits.gather(1, partner[:, None]).squeeze(1)
        kept = None if negatives == "all" else _kept_half(logits, rows, partner, hard=negatives == "hard_half")
        e = logits.exp_()
        e.view(-1).index_fill_(0, torch.cat([rows * (n + 1), rows * n + partner]), 0.0)  # self and positive
        if kept is not None:  # a dropped negative has q = 0: no term, and no gradient (V = 0 in backward)
            e.masked_fill_(~kept, 0.0)
        pos = pos_logit.exp()
        z = e.sum(dim=1).mul_(m).add_(pos)
        q = e.div_(z[:, None])
        log_not_q = torch.log1p(q.neg()).sum()
        loss = -((pos_logit - z.log()).sum() + m * log_not_q) / n
        ctx.save_for_backward(x, q, pos / z, partner)
        ctx.temperature, ctx.m = temperature, m
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, q, p, partner = ctx.saved_tensors
        m, n = ctx.m, x.shape[0]
        v = q / (1 - q)
        b = v.sum(dim=1).mul_(m).sub_(1)  # m R_i - 1
        g = (q * b[:, None]).sub_(v).mul_(m)
        g.scatter_add_(1, partner[:, None], (1 + p * b)[:, None])
        g = g.mul_(grad_out * (-1.0 / (n * ctx.temperature)))
        return g @ x, None, None, None


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
