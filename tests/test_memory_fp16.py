"""fp16 storage of memory banks (STUDY.md §7: "fp16 where it suffices"): the losses and mined sets computed
from an fp16 bank stay within stated tolerances of the fp32 bank."""
import torch

from ssml_lib.losses import insclr_contrastive_loss, isl_affinity_loss
from ssml_lib.mining import FeatureMemory


def _banks(n=512, d=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
    idx = torch.arange(n)
    b32, b16 = FeatureMemory(n, d), FeatureMemory(n, d, dtype=torch.float16)
    b32.write(idx, feats)
    b16.write(idx, feats)
    return feats, b32, b16


def test_fp16_bank_keeps_insclr_memory_loss_within_1e_3():
    feats, b32, b16 = _banks()
    batch = feats[:32] + 0.05 * torch.randn(32, 128, generator=torch.Generator().manual_seed(1))
    batch = torch.nn.functional.normalize(batch, dim=1).requires_grad_(True)
    labels = torch.arange(1, 33)
    ref_idx = torch.arange(32, 512)
    ref_labels = torch.full((480,), 10_000)  # memory negatives share one dummy label, as memory v1 does
    l32 = insclr_contrastive_loss(batch, labels, b32.read(ref_idx), ref_labels, margin=0.1)
    l16 = insclr_contrastive_loss(batch, labels, b16.read(ref_idx), ref_labels, margin=0.1)
    assert l32.item() > 0
    assert abs(l32.item() - l16.item()) <= 1e-3 * max(1.0, abs(l32.item()))


def test_fp16_bank_keeps_isl_affinity_loss_and_top_neighbours():
    feats, b32, b16 = _banks()
    emb = feats[:16]
    idx = torch.arange(16)
    l32 = isl_affinity_loss(emb, b32.read(torch.arange(512)), idx)
    l16 = isl_affinity_loss(emb, b16.read(torch.arange(512)), idx)
    assert abs(l32.item() - l16.item()) <= 1e-3 * abs(l32.item())
    # mined neighbour sets (top-10 by similarity to the bank) agree on at least 99% of entries
    s32 = emb @ b32.read(torch.arange(512)).T
    s16 = emb @ b16.read(torch.arange(512)).T
    top32, top16 = s32.topk(10).indices, s16.topk(10).indices
    same = (top32.unsqueeze(2) == top16.unsqueeze(1)).any(2).float().mean()
    assert same >= 0.99
