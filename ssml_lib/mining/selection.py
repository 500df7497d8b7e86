"""InsCLR in-batch selection: reject a pool neighbour whose no-augmentation feature is not close enough.

Official InsCLR (``SELECTION`` TYPE "fixed", impr configs; ``trainer.py``): for each anchor, the cosine
similarity between its no-aug feature and each of its K neighbours' no-aug features; a neighbour with
``s < threshold`` gets the label ``-(anchor label)``: a negative for the anchor and no anchor in the memory
loss. Faithful quirk kept: two rejected neighbours of one anchor share ``-a`` and so are positives of each
other in the batch loss. The no-aug features come from the model in eval mode without gradient.

``relative=True`` is the InsCLR paper's "sample-relative similarity" (§3.2, Figure 4): each tuple's similarities
are divided by the largest of them before the threshold, so the anchor's closest neighbour always scores 1.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from ..errors import SsmlError
from ._common import as_features, as_index, check_positive_int


class Selection(NamedTuple):
    labels: torch.Tensor      # (B*(1+K),) pseudo-labels after selection
    accepted: torch.Tensor    # (B, K) bool: neighbour kept as a positive
    similarity: torch.Tensor  # (B, K) anchor-neighbour similarity on no-aug features


@torch.no_grad()
def select_in_batch(noaug_features: Any, labels: Any, num_neighbors: int = 3, threshold: float = 0.6, *,
                    normalize: bool = True, relative: bool = False) -> Selection:
    """Apply the fixed-threshold rule to a tuple batch in group layout (see :mod:`.tuples`).

    ``normalize=True`` L2-normalises first (cosine similarity); pass False for features that already are.
    ``relative=True`` thresholds ``s / max(s over the tuple's neighbours)`` instead of ``s`` (a tuple whose
    largest similarity is not positive keeps none).
    """
    feats = as_features(noaug_features, "noaug_features")
    labels = as_index(labels, "labels", ndim=1).to(feats.device)
    k = check_positive_int(num_neighbors, "num_neighbors")
    if feats.shape[0] != labels.numel() or labels.numel() % (1 + k):
        raise SsmlError(f"noaug_features ({feats.shape[0]} rows) and labels ({labels.numel()}) must describe "
                        f"the same tuple batch of groups of 1 + {k}; pass the batch in sampler order.")
    if normalize:
        feats = F.normalize(feats.float(), dim=1)
    groups = feats.view(-1, 1 + k, feats.shape[1])
    sims = torch.einsum("bd,bkd->bk", groups[:, 0].float(), groups[:, 1:].float())
    score = sims / sims.amax(dim=1, keepdim=True).clamp_min(1e-12) if relative else sims
    accepted = score >= threshold
    group_labels = labels.view(-1, 1 + k)
    anchor_label = group_labels[:, :1]
    new_neighbour_labels = torch.where(accepted, group_labels[:, 1:], -anchor_label)
    new_labels = torch.cat([group_labels[:, :1], new_neighbour_labels], dim=1).reshape(-1)
    return Selection(new_labels, accepted, sims)
