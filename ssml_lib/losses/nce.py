"""Noise-contrastive estimation of the memory-bank softmax (Wu et al., CVPR 2018, "NCE"; their Eqs. 5-7).

With L2-normalised embeddings f, a bank V of N rows (detached), for each row b its own index i_b and K noise indices
j drawn uniformly from the N items (noise density P_n = 1/N): the unnormalised probability of item k is
P(k | f) = exp(v_k . f / T) / Z, where Z is a constant (the official code fixes it once, from the first batch, as
N times the mean of exp(v . f / T) over that batch's positive and noise pairs; see :func:`nce_normaliser`). Then

    h(k, f) = P(k | f) / (P(k | f) + K P_n)
    L = -(1/B) sum_b [ log h(i_b, f_b) + sum_{j in noise_b} log(1 - h(j, f_b)) ]

as the official ``NCECriterion`` (which adds 1e-7 inside each ratio; here the ratios are exact).
"""
from __future__ import annotations

import torch

from ._common import LossInputError, as_float, check_positive, check_rows


def nce_normaliser(emb, memory, index, noise, temperature: float = 0.1) -> float:
    """The official constant Z: N x the mean of exp(v . f / T) over the positive and noise pairs of one batch."""
    with torch.no_grad():
        rows = torch.cat([torch.as_tensor(index).reshape(-1, 1).to(noise), noise], dim=1)
        logits = torch.einsum("bkd,bd->bk", memory.detach()[rows].to(emb.dtype), emb.detach()) / temperature
        return float(logits.exp().mean()) * memory.shape[0]


def nce_loss(emb, memory, index, noise, temperature: float = 0.1, *, z: float) -> torch.Tensor:
    """NCE loss of ``emb`` (B, D) against bank ``memory`` (N, D); ``index`` (B,) own rows, ``noise`` (B, K)."""
    emb, memory = as_float(emb, "emb"), as_float(memory, "memory")
    check_rows(emb, "emb", min_rows=1)
    check_positive(temperature, "temperature")
    check_positive(z, "z")
    if memory.ndim != 2 or memory.shape[1] != emb.shape[1]:
        raise LossInputError(f"memory must be (N, {emb.shape[1]}), got {tuple(memory.shape)}.")
    index = torch.as_tensor(index, device=emb.device).long().reshape(-1, 1)
    noise = torch.as_tensor(noise, device=emb.device).long()
    if noise.ndim != 2 or noise.shape[0] != emb.shape[0] or index.shape[0] != emb.shape[0]:
        raise LossInputError(f"index must be (B,) and noise (B, K) for B = {emb.shape[0]} embeddings.")
    rows = torch.cat([index, noise], dim=1)
    if int(rows.min()) < 0 or int(rows.max()) >= memory.shape[0]:
        raise LossInputError(f"index and noise must lie in [0, {memory.shape[0]}) (the bank's rows).")
    k, n = noise.shape[1], memory.shape[0]
    logits = torch.einsum("bkd,bd->bk", memory.detach()[rows].to(emb.dtype), emb) / temperature
    # log P = logit - log Z; h = P / (P + K/N) = sigmoid(log P - log(K/N))
    shifted = logits - torch.log(torch.tensor(z * k / n, dtype=emb.dtype, device=emb.device))
    log_h_pos = torch.nn.functional.logsigmoid(shifted[:, 0])
    log_not_h_noise = torch.nn.functional.logsigmoid(-shifted[:, 1:]).sum(dim=1)
    return -(log_h_pos + log_not_h_noise).mean()
