"""Instance triplet loss: two augmented views of each image are a positive pair, every other image of the batch
is a negative (the Spreading paper's "Triplet" and "Triplet (Hard)" baselines on CIFAR-10, margin 0.5).

Built from pytorch-metric-learning: ``TripletMarginLoss`` (Euclidean distance between L2-normalised
embeddings, loss max(0, d(a, p) - d(a, n) + margin), averaged over the triplets with a non-zero loss) and, for
``mining="hard"``, ``BatchHardMiner`` (per anchor its hardest positive, here the one other view, and its
hardest in-batch negative: the online hard negative mining of Hermans et al. 2017). ``mining="all"`` uses every
(anchor, positive, negative) triplet of the batch.
"""
from __future__ import annotations

import torch

from ._common import LossInputError, as_float, check_positive, check_rows

TRIPLET_MININGS = ("all", "hard")


def instance_triplet_loss(emb, emb_aug, margin: float = 0.5, *, mining: str = "all") -> torch.Tensor:
    """Triplet loss over the 2B rows [emb; emb_aug] with instance labels (row i and row B + i share one)."""
    from pytorch_metric_learning import losses, miners  # heavy import, only for this loss

    emb, emb_aug = as_float(emb, "emb"), as_float(emb_aug, "emb_aug")
    check_rows(emb, "emb", min_rows=2)
    if emb_aug.shape != emb.shape:
        raise LossInputError(f"emb_aug has shape {tuple(emb_aug.shape)} but emb has {tuple(emb.shape)}; pass the "
                             "two views of the same B instances in the same order.")
    check_positive(margin, "margin")
    if mining not in TRIPLET_MININGS:
        raise LossInputError(f"unknown triplet mining {mining!r}; use one of {TRIPLET_MININGS}.")
    x = torch.cat([emb, emb_aug])
    labels = torch.arange(emb.shape[0], device=x.device).repeat(2)
    loss_fn = losses.TripletMarginLoss(margin=margin)
    triplets = miners.BatchHardMiner()(x, labels) if mining == "hard" else None
    return loss_fn(x, labels, triplets)
