"""InsCLR contrastive loss and in-batch positive selection (Deng et al., AAAI 2022).

Loss (the official code's; docs/methods.md, InsCLR), with s_ij = f_i . g_j on features that the model has
already L2-normalised (the loss does not normalise):

    L_i = sum_{j: y_j = y_i, s_ij < 1 - 1e-6 - pos_margin} (1 - s_ij)
        + sum_{j: y_j != y_i, s_ij > margin} v(s_ij),        L = mean_i L_i,

with v(s) = s for ``value="official"`` (what the code adds) and v(s) = s - margin for ``value="hinge"``
(the paper's Eq. [s - margin]_+). The two differ by a constant per active negative, so their gradients are
identical and only the reported value moves.

* Batch loss (``ref_emb=None``): f = g = emb, gradients on both sides. The official code drops the
  self-pair only through the ``s < 1 - 1e-6`` rule; we also drop the diagonal by index, because under bf16
  a row's self-similarity can round below 1 - 1e-6 and would otherwise count as a positive.
* Memory loss (``ref_emb`` given): columns are the bank, detached; only the similarity rule applies, so a
  bank entry identical to the anchor (s >= 1 - 1e-6 - pos_margin) is skipped as in the code.
  The official trainer keeps only rows with label > 0 as anchors; pass ``anchor_mask=labels > 0`` to do
  that without a data-dependent gather (the mean is then over the kept rows).
"""
from __future__ import annotations

import torch

from ._common import LossInputError, as_float, as_index, check_rows, compute_dtype, full_precision

INSCLR_VALUES = ("official", "hinge")
_SELF_EPS = 1e-6


def insclr_contrastive_loss(emb, labels, ref_emb=None, ref_labels=None, margin: float = 0.4, *,
                            pos_margin: float = 0.0, value: str = "official",
                            anchor_mask=None) -> torch.Tensor:
    """InsCLR contrastive loss: sum over pairs, mean over (kept) rows. See the module docstring."""
    emb = as_float(emb, "emb")
    check_rows(emb, "emb")
    labels = as_index(labels, "labels", emb.device)
    if labels.shape != (emb.shape[0],):
        raise LossInputError(f"labels has shape {tuple(labels.shape)}, expected ({emb.shape[0]},): "
                             f"one pseudo-label per row of emb.")
    if (ref_emb is None) != (ref_labels is None):
        raise LossInputError("pass ref_emb and ref_labels together (memory loss) or neither (batch loss).")
    if ref_emb is not None:
        ref_emb = as_float(ref_emb, "ref_emb")
        check_rows(ref_emb, "ref_emb")
        ref_labels = as_index(ref_labels, "ref_labels", emb.device)
        if ref_emb.shape[1] != emb.shape[1] or ref_labels.shape != (ref_emb.shape[0],):
            raise LossInputError(f"ref_emb {tuple(ref_emb.shape)} / ref_labels {tuple(ref_labels.shape)} do not "
                                 f"match emb {tuple(emb.shape)}: the bank needs the same dim and one label per row.")
    if not (isinstance(margin, (int, float)) and -1.0 <= margin <= 1.0):
        raise LossInputError(f"margin must be a cosine similarity in [-1, 1], got {margin!r}.")
    if not (isinstance(pos_margin, (int, float)) and 0.0 <= pos_margin < 2.0):
        raise LossInputError(f"pos_margin must be in [0, 2), got {pos_margin!r}.")
    if value not in INSCLR_VALUES:
        raise LossInputError(f"unknown value {value!r}; use one of {INSCLR_VALUES}.")
    if anchor_mask is not None:
        anchor_mask = torch.as_tensor(anchor_mask, device=emb.device)
        if anchor_mask.dtype != torch.bool or anchor_mask.shape != labels.shape:
            raise LossInputError(f"anchor_mask must be a bool vector of shape {tuple(labels.shape)}, got "
                                 f"{anchor_mask.dtype} {tuple(anchor_mask.shape)}; e.g. labels > 0.")

    batch_loss = ref_emb is None
    dtype = compute_dtype(emb) if batch_loss else compute_dtype(emb, ref_emb)
    with full_precision(emb.device):
        f = emb.to(dtype)
        g = f if batch_loss else ref_emb.detach().to(dtype)
        g_labels = labels if batch_loss else ref_labels
        sim = f @ g.T
        same = labels[:, None] == g_labels[None, :]
        positive = same & (sim < 1.0 - _SELF_EPS - pos_margin)
        if batch_loss:
            positive &= ~torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
        negative = ~same & (sim > margin)
        neg_value = sim if value == "official" else sim - margin
        zero = torch.zeros((), dtype=dtype, device=sim.device)
        per_row = (torch.where(positive, 1.0 - sim, zero) + torch.where(negative, neg_value, zero)).sum(1)
        if anchor_mask is None:
            return per_row.mean()
        keep = anchor_mask.to(dtype)
        return (per_row * keep).sum() / keep.sum().clamp(min=1.0)


@torch.no_grad()
def insclr_select_labels(noaug_emb, labels, anchor_index, threshold: float = 0.6) -> torch.Tensor:
    """InsCLR in-batch selection (the official TYPE "fixed"): reject weak neighbours of each anchor.

    ``noaug_emb`` (n, D): L2-normalised no-augmentation features of the batch; ``labels`` (n,): the
    pseudo-labels (anchor id + 1, shared by its neighbours); ``anchor_index`` (n,): the row of each row's
    anchor (an anchor points at itself). A neighbour whose cosine similarity to its anchor is below
    ``threshold`` gets label -(anchor label): a negative of its anchor, and (label <= 0) excluded as an
    anchor of the memory loss. Two rejected neighbours of one anchor share -a, so they stay positives of
    each other in the batch loss -- an official quirk we keep. Returns a new label tensor.
    """
    noaug_emb = as_float(noaug_emb, "noaug_emb")
    check_rows(noaug_emb, "noaug_emb")
    n = noaug_emb.shape[0]
    labels = as_index(labels, "labels", noaug_emb.device)
    anchor_index = as_index(anchor_index, "anchor_index", noaug_emb.device)
    if labels.shape != (n,) or anchor_index.shape != (n,):
        raise LossInputError(f"labels {tuple(labels.shape)} and anchor_index {tuple(anchor_index.shape)} must "
                             f"both have shape ({n},), one entry per row of noaug_emb.")
    if not (isinstance(threshold, (int, float)) and -1.0 <= threshold <= 1.0):
        raise LossInputError(f"threshold must be a cosine similarity in [-1, 1], got {threshold!r}.")
    with full_precision(noaug_emb.device):
        f = noaug_emb.to(compute_dtype(noaug_emb))
        sim_to_anchor = (f * f[anchor_index]).sum(1)
        is_anchor = anchor_index == torch.arange(n, device=f.device)
        reject = ~is_anchor & (sim_to_anchor < threshold)
        return torch.where(reject, -labels, labels)
