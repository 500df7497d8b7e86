"""Mining on Manifolds triplet loss (Iscen et al., CVPR 2018), the baseline of the Spreading and InsCLR papers.

The miner (manifold vs Euclidean neighbours, thesis §2.4 Eqs. 2.8-2.9) lives in ``ssml_lib.mining`` and
returns (anchor, positive, negative) index tuples; this loss only scores them:

    L = mean_t [ margin + d(a_t, p_t) - d(a_t, n_t) ]_+,

with d the squared Euclidean distance by default (MOM's triplet loss as we read it; ``squared=False``
gives the plain Euclidean form of torch's TripletMarginLoss). The margin is a run parameter: keep it in
``params/``.
"""
from __future__ import annotations

import torch

from ._common import LossInputError, as_float, as_index, check_rows, compute_dtype, full_precision, safe_sqrt


def mom_triplet_loss(emb, anchor_index, positive_index, negative_index, margin: float = 0.1, *,
                     squared: bool = True) -> torch.Tensor:
    """Triplet loss over index tuples into the rows of ``emb`` (N, D); mean over triplets, 0 if there are none."""
    emb = as_float(emb, "emb")
    check_rows(emb, "emb")
    idx = [as_index(t, name, emb.device) for t, name in
           ((anchor_index, "anchor_index"), (positive_index, "positive_index"), (negative_index, "negative_index"))]
    if any(t.dim() != 1 for t in idx) or len({t.shape[0] for t in idx}) != 1:
        raise LossInputError(f"anchor/positive/negative index must be 1-D and equally long, got shapes "
                             f"{[tuple(t.shape) for t in idx]}; pass the miner's triplets as three vectors.")
    if not (isinstance(margin, (int, float)) and margin >= 0):
        raise LossInputError(f"margin must be a number >= 0, got {margin!r}.")
    a, p, n = idx
    dtype = compute_dtype(emb)
    with full_precision(emb.device):
        x = emb.to(dtype)
        if a.numel() == 0:
            return x.sum() * 0.0  # keeps the graph so backward() still works on an empty step
        d_pos = (x[a] - x[p]).pow(2).sum(1)
        d_neg = (x[a] - x[n]).pow(2).sum(1)
        if not squared:
            d_pos, d_neg = safe_sqrt(d_pos), safe_sqrt(d_neg)
        return torch.relu(margin + d_pos - d_neg).mean()
