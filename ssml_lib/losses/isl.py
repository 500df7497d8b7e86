"""Instance Similarity Learning losses (Wang et al., ICCV 2021), as the official ``LinearCriterion`` computes them.

docs/methods.md (ISL). With p_i = softmax_j(x_i . M_j / T) over the whole memory
bank M (N rows, detached) and the affinity set A(i) = {i} + positives(i):

* affinity loss  L_aff(i) = -log sum_{j in A(i)} p_ij   (= -log p_ii, instance discrimination, if A(i) = {i});
* "hard-positive" term, for anchors with positives only: hp = argmax_{j in A(i) minus i} M_j . M_i (the most
  similar neighbour in memory, as in the code), q = softmax(M . M_hp / T) with no gradient, and
  L_hp(i) = lambda * KL(p_i || q) = lambda * sum_j p_ij (log p_ij - log q_j);
* total = (sum_i L_aff(i) + sum_i L_hp(i)) / B.

The GAN proxy losses are pure functions on discriminator *logits*: the discriminator module should return
logits (apply the sigmoid outside) so BCE stays numerically safe under autocast.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import LossInputError, as_float, as_index, check_positive, check_rows, compute_dtype, full_precision


def isl_affinity_loss(emb, memory, index, positive_index=None, temperature: float = 0.1,
                      hard_positive_weight: float = 0.5) -> torch.Tensor:
    """ISL backbone loss (see module docstring).

    ``emb`` (B, D): batch embeddings; ``memory`` (N, D): the bank (used detached); ``index`` (B,): each
    row's own bank index; ``positive_index`` (B, P) long: bank indices of each row's mined positives, padded
    with -1 (None or P = 0: pure instance discrimination). Repeats and the row's own index in
    ``positive_index`` are ignored, so A(i) is a set as in the code.
    """
    emb, memory = as_float(emb, "emb"), as_float(memory, "memory")
    check_rows(emb, "emb")
    check_rows(memory, "memory")
    b = emb.shape[0]
    if memory.shape[1] != emb.shape[1] or memory.device != emb.device:
        raise LossInputError(f"memory {tuple(memory.shape)} on {memory.device} does not match emb "
                             f"{tuple(emb.shape)} on {emb.device}; the bank needs the same dim and device.")
    index = as_index(index, "index", emb.device)
    if index.shape != (b,):
        raise LossInputError(f"index has shape {tuple(index.shape)}, expected ({b},): each row's bank index.")
    if positive_index is None:
        positive_index = torch.full((b, 0), -1, dtype=torch.long, device=emb.device)
    positive_index = as_index(positive_index, "positive_index", emb.device)
    if positive_index.dim() != 2 or positive_index.shape[0] != b:
        raise LossInputError(f"positive_index has shape {tuple(positive_index.shape)}, expected ({b}, P) "
                             f"padded with -1.")
    check_positive(temperature, "temperature")
    if not (isinstance(hard_positive_weight, (int, float)) and hard_positive_weight >= 0):
        raise LossInputError(f"hard_positive_weight must be >= 0, got {hard_positive_weight!r}.")

    dtype = compute_dtype(emb, memory)
    with full_precision(emb.device):
        x, bank = emb.to(dtype), memory.detach().to(dtype)
        log_p = torch.log_softmax(x @ bank.T / temperature, dim=1)  # (B, N)

        valid = _unique_positives(positive_index, index)
        safe_pos = positive_index.clamp(min=0)
        members = torch.cat([index[:, None], safe_pos], dim=1)
        member_ok = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=valid.device), valid], dim=1)
        member_log_p = log_p.gather(1, members).masked_fill(~member_ok, float("-inf"))
        affinity = -torch.logsumexp(member_log_p, dim=1)

        has_pos = valid.any(1)
        hard_positive = torch.zeros_like(affinity)
        if hard_positive_weight > 0 and positive_index.shape[1] > 0:
            pos_sim = torch.einsum("bd,bpd->bp", bank[index], bank[safe_pos])
            pos_sim = pos_sim.masked_fill(~valid, float("-inf"))
            hp = safe_pos.gather(1, pos_sim.argmax(1, keepdim=True)).squeeze(1)
            log_q = torch.log_softmax(bank[hp] @ bank.T / temperature, dim=1)
            kl = (log_p.exp() * (log_p - log_q)).sum(1)
            hard_positive = hard_positive_weight * torch.where(has_pos, kl, torch.zeros_like(kl))
        return (affinity.sum() + hard_positive.sum()) / b


def _unique_positives(positive_index: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Mask of entries that are real (>= 0), not the row's own index, and not repeats within the row."""
    ok = (positive_index >= 0) & (positive_index != index[:, None])
    if positive_index.shape[1] < 2:
        return ok
    # A repeat is any entry equal to an earlier valid entry of the same row.
    keyed = torch.where(ok, positive_index, torch.full_like(positive_index, -1))
    earlier = torch.ones(positive_index.shape[1], positive_index.shape[1], dtype=torch.bool,
                         device=positive_index.device).tril(-1)
    repeat = ((keyed[:, :, None] == keyed[:, None, :]) & earlier).any(2)
    return ok & ~repeat


def isl_discriminator_loss(logit_real, logit_proxy_as_negative, logit_proxy_as_positive) -> torch.Tensor:
    """D step: 1/2 [ BCE(D(a,p,n), 1) + 1/2 BCE(D(a,p,p'), 0) + 1/2 BCE(D(a,p',n), 0) ], on logits.

    ``logit_proxy_as_negative`` = D(a, p, p'), the proxy in the negative slot; ``logit_proxy_as_positive``
    = D(a, p', n), the proxy in the positive slot. BCE is averaged over the batch.
    """
    real, as_neg, as_pos = _logits(logit_real, logit_proxy_as_negative, logit_proxy_as_positive)
    with full_precision(real.device):
        return 0.5 * (_bce(real, 1.0) + 0.5 * _bce(as_neg, 0.0) + 0.5 * _bce(as_pos, 0.0))


def isl_generator_loss(logit_proxy_as_negative, logit_proxy_as_positive) -> torch.Tensor:
    """G step (D frozen): 1/2 BCE(D(a,p,p'), 1) + 1/2 BCE(D(a,p',n), 1), on logits."""
    as_neg, as_pos = _logits(logit_proxy_as_negative, logit_proxy_as_positive)
    with full_precision(as_neg.device):
        return 0.5 * _bce(as_neg, 1.0) + 0.5 * _bce(as_pos, 1.0)


def _logits(*xs) -> list[torch.Tensor]:
    out = [as_float(x, "discriminator logit") for x in xs]
    shapes = [tuple(x.shape) for x in out]
    if any(x.dim() == 0 or x.numel() != x.shape[0] for x in out) or len({x.shape[0] for x in out}) != 1:
        raise LossInputError(f"discriminator logits must be one value per triplet, (B,) or (B, 1), all the same "
                             f"B; got shapes {shapes}. Return logits, not sigmoid probabilities.")
    dtype = compute_dtype(*out)
    return [x.reshape(-1).to(dtype) for x in out]


def _bce(logit: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))
