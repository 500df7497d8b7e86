"""InsCLR memory v2: per-group positive sets grown by iterative query expansion over the memory.

Official ``xbmv2.py`` (impr configs), restated as tensor ops (no per-group loop, no NumPy set ops). A group
is one tuple of the batch (see :mod:`.tuples`); its members are the anchor and the neighbours that kept
its label (in-batch selection); each member's pool row is cut by two similarity boundaries into a
positive zone (>= ``positive_threshold``), a candidate zone and the zone beyond ``negative_threshold``.
For every group,

* init positives = the members' positive zones, minus the group's own members;
* candidates = the members' candidate zones, minus init positives;
* query set = the members' no-aug batch features + the init positives' no-aug memory features; for
  ``rounds`` rounds each candidate is scored by the mean (``avg``) or max of its similarities >=
  ``min_similarity`` to the current query set (none: not eligible); the top-k (or all with score >= a
  threshold) unselected candidates join the query set and the positives (:mod:`.query_set`);
* positives get the group label, negatives the dummy label N + 1; the augmented bank feeds the loss.

Two rules for the sets (``sets``):

``"official"`` (default), as the official ``XBMv2.get`` does, with the batch written to both banks
  before mining (the official trainer enqueues, then gets):

  - candidates exclude the init positives of *every* group, but not the group's own members, so a member
    can come back as a memory positive of its own group (in the next round its features then count twice
    in the query set, as in the official concatenation);
  - one label per image: an image that is an init positive (or a selected positive) of several groups
    keeps only the label of the group with the *largest* label. The official code writes the labels in
    ascending group order into one slot per image and, when the write runs sequentially (a single CPU
    thread or a small step), the last write, i.e. the largest label, stays; an image claimed by another
    group stays out of the query set of the groups that lose it;
  - negatives = the members' beyond zones (written entries) minus all positives, then uniform random
    written entries minus positives and those pool negatives, so that positives + negatives reach
    ``num_negatives`` (the official ``GET_SIZE`` counts the whole draw). Batch members and unselected
    candidates can be negatives.

``"exclusive"``, the rule used here before: members are never init positives or candidates of their own
  group, an image may be a positive of several groups at once (one row per group), and no member, init
  positive or candidate of any group is ever a negative (pool or random); ``num_negatives`` counts
  negatives only. InsCLR mines before writing the batch under this rule (the banks as the previous step
  left them). It avoids contradictory labels (a member labelled as its own memory positive, an image
  that is a positive of one group and a negative of another), at the cost of departing from the
  official sets; pick it to study those label conflicts or to reproduce runs made with it.

Both rules take the boundaries as the official code does: one past the last pool column at or above the
threshold (on sorted pool rows, the number of leading entries at or above it). Positives and candidates
must be written (the official bank is filled by a full pass before training, so all are). Labels must
differ between tuples, as tuple batches make them. Equal selection scores go to the lower image index.
On a GPU the output has a fixed size with a ``valid`` mask (zero features where invalid), so nothing syncs the
host; on a CPU, which has nothing to wait for, only the valid rows come back (``valid`` all true), each bank row
read once. Cost: the sets are formed on indices over B x E entries, E = (1+K)(1+C), C = ``pool_columns``;
features are read and compared only for the entries that can be a query item or a candidate (on a CPU,
B x W x W similarities with W the largest such count of a group; on a GPU, where a data-dependent size would
make the step wait, W = E: lower C there to save memory).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SsmlError
from ._common import as_features, as_index, check_choice, check_positive_int, fill_at_
from .memory_bank import FeatureMemory, MemoryDraw
from .query_set import expand_query_set, parse_selection_mode  # noqa: F401  (also importable from here)
from .query_universe import (any_per_image, boundary, build_universe, compact_features, keep_largest_label)

SETS = ("official", "exclusive")
QUERY_MEMBERS = ("tuple", "anchor")


def _fixed_size(device: torch.device) -> bool:
    """Whether the draw keeps its fixed size: on a GPU, where a data-dependent size would make the step wait."""
    return device.type != "cpu"


class QueryExpansionMemory(nn.Module):
    """The two v2 banks (augmented features for the loss, no-aug features for mining) and the miner."""

    def __init__(self, num_items: int, dim: int, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        self.aug = FeatureMemory(num_items, dim, dtype=dtype, device=device)
        self.noaug = FeatureMemory(num_items, dim, dtype=dtype, device=device)

    @torch.no_grad()
    def mine(self, batch_indices: Any, batch_labels: Any, batch_noaug: Any, pool_indices: Any, pool_sims: Any,
             *, num_neighbors: int = 3, positive_threshold: float = 0.75, negative_threshold: float = 0.5,
             rounds: int = 4, min_similarity: float = 0.6, aggregate: str = "avg", top_k: int | None = 5,
             score_threshold: float | None = None, num_negatives: int = 0, pool_columns: int | None = None,
             sets: str = "official", query_members: str = "tuple",
             generator: torch.Generator | None = None) -> MemoryDraw:
        """Memory rows for one tuple batch, with labels and a valid mask: (B*E + num_negatives) rows on a GPU, the
        valid ones only on a CPU (same rows, same order).

        ``sets``: ``"official"`` or ``"exclusive"`` (module docstring). Under ``"official"`` write this
        batch to both banks first; ``num_negatives`` = 0 turns memory negatives off. ``query_members``:
        ``"tuple"`` (default) mines from the anchor and the neighbours that kept its label; ``"anchor"`` from the
        anchor alone (the InsCLR paper's "D-anchor" ablation): only its feature starts the query set and only its
        pool row gives init positives, candidates and pool negatives, as if every neighbour had been rejected.
        """
        official = check_choice(sets, "sets", SETS) == "official"
        anchor_only = check_choice(query_members, "query_members", QUERY_MEMBERS) == "anchor"
        n, dev = self.aug.num_items, self.aug.features.device
        k = check_positive_int(num_neighbors, "num_neighbors")
        idx = as_index(batch_indices, "batch_indices", ndim=1).to(dev)
        lab = as_index(batch_labels, "batch_labels", ndim=1).to(dev)
        noaug = as_features(batch_noaug, "batch_noaug").to(dev).float()
        pool, psim = as_index(pool_indices, "pool_indices", ndim=2), as_features(pool_sims, "pool_sims")
        if idx.numel() % (1 + k) or lab.shape != idx.shape or noaug.shape[0] != idx.numel():
            raise SsmlError(f"batch_indices ({idx.numel()}), batch_labels ({lab.numel()}) and batch_noaug "
                            f"({noaug.shape[0]} rows) must be one tuple batch of groups of 1 + {k}.")
        if pool.shape != psim.shape or pool.shape[0] != n:
            raise SsmlError(f"pool indices {tuple(pool.shape)} and similarities {tuple(psim.shape)} must both "
                            f"be ({n}, P) for this bank; load the pool of this dataset.")
        c = pool.shape[1] if pool_columns is None else min(check_positive_int(pool_columns, "pool_columns"),
                                                            pool.shape[1])
        s, b = 1 + k, idx.numel() // (1 + k)
        rows = idx.to(pool.device)
        pidx = pool[rows, :c].to(dev).view(b, s, c)
        psim_b = psim[rows, :c].to(dev).float().view(b, s, c)

        group_label = lab.view(b, s)[:, :1]
        member = (lab.view(b, s) == group_label) & (group_label > 0)          # (B, S)
        if anchor_only:
            member = member & (torch.arange(s, device=dev) == 0)
        pos_end = boundary(psim_b, positive_threshold)[..., None]           # (B, S, 1)
        neg_end = boundary(psim_b, negative_threshold)[..., None]
        col = torch.arange(c, device=dev)
        in_member_row = member[..., None]
        written = self.noaug.written[pidx]
        u = build_universe(idx.view(b, s), member, pidx, {
            "init": in_member_row & (col < pos_end) & written,
            "cand": in_member_row & (col >= pos_end) & (col < neg_end) & written,
            "beyond": in_member_row & (col >= neg_end) & self.aug.written[pidx],
        })
        sidx, first, seg = u.sidx, u.first, u.seg
        labels_e = group_label.expand(b, sidx.shape[1])
        init = first & seg["init"] & ~seg["member"]
        if official:
            init, any_init = keep_largest_label(init, sidx, labels_e, n)
            cand = first & ~u.member_entry & seg["cand"] & ~any_init
        else:
            cand = first & seg["cand"] & ~seg["member"] & ~seg["init"]
        query = u.member_entry | init
        place, valid_c, feats_c = compact_features(u, query | cand, noaug.view(b, s, -1), self.noaug)
        mode = {"top_k": top_k, "score_threshold": score_threshold, "avg_eps": 1e-6 if official else 0.0}
        picked = expand_query_set(torch.bmm(feats_c, feats_c.transpose(1, 2)), query.gather(1, place) & valid_c,
                                  cand.gather(1, place) & valid_c, rounds=rounds, min_similarity=min_similarity,
                                  aggregate=aggregate, **mode)
        selected = torch.zeros_like(cand).scatter_(1, place, picked)
        if official:
            selected, _ = keep_largest_label(selected, sidx, labels_e, n)
        positive = init | selected
        return self._draw(sidx, first, seg, positive, labels_e, idx, num_negatives, official, generator)

    def _draw(self, sidx, first, seg, positive, labels_e, batch_idx, num_negatives, official,
              generator) -> MemoryDraw:
        """Positives with their group's label, the pool negatives, then random written entries."""
        n, dev = self.aug.num_items, sidx.device
        # Pool negatives: the members' beyond zones, each image once, minus what the rule keeps out.
        flat_idx, dummy = sidx.reshape(-1), n + 1
        keep_out = positive if official else (seg["member"] | seg["init"] | seg["cand"])
        busy = any_per_image(flat_idx, keep_out.reshape(-1), n)
        beyond = (first & seg["beyond"]).reshape(-1) & ~busy[flat_idx]
        pos_of = torch.arange(flat_idx.numel(), device=dev)
        first_neg = torch.full((n,), flat_idx.numel(), device=dev).scatter_reduce(
            0, flat_idx, torch.where(beyond, pos_of, flat_idx.numel()), "amin")
        pool_negative = beyond & (first_neg[flat_idx] == pos_of) & (num_negatives > 0)

        labels = torch.where(positive.reshape(-1), labels_e.reshape(-1), dummy)
        valid = positive.reshape(-1) | pool_negative
        indices, all_valid, all_labels = flat_idx, valid, labels
        if num_negatives > 0:  # random written entries fill the rest
            if official:  # not a positive nor a pool negative; the positives count towards the draw size
                excluded = busy | any_per_image(flat_idx, pool_negative, n)
                room = int(num_negatives) - valid.sum()
            else:  # nothing seen in any group's universe, no batch image
                excluded = busy.clone()
                fill_at_(excluded, flat_idx, True)
                fill_at_(excluded, batch_idx, True)
                room = int(num_negatives) - pool_negative.sum()
            gen_dev = generator.device if generator is not None else dev
            keys = torch.rand(n, generator=generator, device=gen_dev).to(dev)
            top = torch.where(self.aug.written & ~excluded, keys, torch.full_like(keys, -1.0)).topk(
                min(int(num_negatives), n))
            rand_valid = (top.values >= 0) & (torch.arange(top.indices.numel(), device=dev) < room)
            indices = torch.cat([flat_idx, top.indices])
            all_valid = torch.cat([valid, rand_valid])
            all_labels = torch.cat([labels, torch.full_like(top.indices, dummy)])
        labels = torch.where(all_valid, all_labels, dummy)
        if not _fixed_size(indices.device):  # keep only the valid rows, each read once
            keep = all_valid.nonzero().squeeze(1)
            indices, labels = indices[keep], labels[keep]
            return MemoryDraw(indices, self.aug.read(indices), labels, torch.ones_like(indices, dtype=torch.bool))
        return MemoryDraw(indices, self._read_valid(indices, all_valid), labels, all_valid)

    def _read_valid(self, indices: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Augmented-bank rows of ``indices``, zero where not valid (the fixed-size draw of a GPU)."""
        return self.aug.read(indices) * valid[:, None]
