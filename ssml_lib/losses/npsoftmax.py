"""Non-parametric softmax over a memory bank: instance discrimination of Wu et al. (CVPR 2018), "NPSoftmax".

Each training image i is its own class; its "weight" is the memory row v_i (a running average of its past
embeddings, not a learned parameter). With L2-normalised embeddings f and the bank V (N x D, detached):

    P(i | f) = exp(v_i . f / T) / sum_j exp(v_j . f / T),     L = -(1/B) sum_b log P(index_b | f_b)

over all N rows of the bank (the full softmax; the NCE approximation is not this loss). T = 0.1 in the CIFAR
code. The bank is read as given: the caller updates it after the step (v_i <- normalise(m v_i + (1 - m) f_i)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import LossInputError, as_float, check_positive, check_rows


def npsoftmax_loss(emb, memory, index, temperature: float = 0.1) -> torch.Tensor:
    """Mean negative log-probability of each row's own index under the softmax over the memory bank.

    ``emb``: (B, D) embeddings (L2-normalised by the caller); ``memory``: (N, D) bank (no gradient flows into
    it); ``index``: (B,) dataset indices of the rows, each in [0, N).
    """
    emb, memory = as_float(emb, "emb"), as_float(memory, "memory")
    check_rows(emb, "emb", min_rows=1)
    check_positive(temperature, "temperature")
    if memory.ndim != 2 or memory.shape[1] != emb.shape[1]:
        raise LossInputError(f"memory must be (N, {emb.shape[1]}), got {tuple(memory.shape)}; it holds one row "
                             "per training image in the embedding's dimension.")
    index = torch.as_tensor(index, device=emb.device).long().reshape(-1)
    if index.numel() != emb.shape[0]:
        raise LossInputError(f"index has {index.numel()} entries for {emb.shape[0]} embeddings; pass each row's "
                             "dataset index.")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= memory.shape[0]):
        raise LossInputError(f"index must lie in [0, {memory.shape[0]}) (the bank's rows).")
    logits = emb @ memory.detach().to(emb.dtype).T / temperature
    return F.cross_entropy(logits, index)
