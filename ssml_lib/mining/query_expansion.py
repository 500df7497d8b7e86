"""InsCLR memory v2: per-group positive sets grown by iterative query expansion over the memory.

Official ``xbmv2.py`` (impr configs), restated as tensor ops (no per-label loop, no NumPy setdiff):
for every group of the tuple batch (anchor + accepted neighbours, see :mod:`.tuples`),

* init positives = pool neighbours of the members with similarity >= ``positive_threshold`` (the leading
  ones), minus the members;
* candidates = neighbours between the two boundaries, minus members and init positives;
* query set = members' no-aug batch features + init positives' no-aug memory features; for ``rounds``
  rounds every candidate is scored by the mean (``avg``) or max of its similarities >= ``min_similarity``
  to the current query set (no such similarity: not eligible); the top-k (or all above a score threshold)
  unselected candidates join the query set and the positives;
* negatives = pool neighbours beyond the negative boundary plus uniform random written entries, up to
  ``num_negatives`` in all; positives get the group label, negatives the dummy label N + 1.

Outputs have a fixed size with a ``valid`` mask (zero features where invalid), so nothing syncs the host.
Departures, both to avoid contradictory labels: pool negatives that are a member, positive or candidate of
any group in the batch are dropped, and duplicates among negatives are kept once.
Cost: per step B x E x E similarities with E = (1+K)(1+C), C = ``pool_columns``; lower C to save memory.
"""
from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, SsmlError
from ._common import as_features, as_index, check_choice, check_positive_int, fill_at_
from .memory_bank import FeatureMemory, MemoryDraw


def parse_selection_mode(mode: str) -> dict[str, Any]:
    """Official mode strings, e.g. ``b+i_tr4_avg0.60_k05`` -> rounds 4, avg, min_similarity 0.6, top_k 5."""
    m = re.fullmatch(r"b\+i_tr(\d+)_(avg|max)([0-9.]+)_k(\d+)", mode)
    if m is None:
        raise ConfigError(f"selection mode {mode!r} is not of the form 'b+i_tr<R>_<avg|max><t>_k<k>' "
                          f"(e.g. 'b+i_tr4_avg0.60_k05').")
    return {"rounds": int(m[1]), "aggregate": m[2], "min_similarity": float(m[3]), "top_k": int(m[4])}


@torch.no_grad()
def expand_query_set(similarity: torch.Tensor, query: torch.Tensor, candidates: torch.Tensor, *,
                     rounds: int, min_similarity: float, aggregate: str = "avg", top_k: int | None = None,
                     score_threshold: float | None = None) -> torch.Tensor:
    """Iterative query expansion on G groups of E items at once.

    ``similarity`` (G, E, E); ``query`` and ``candidates`` (G, E) bool. Exactly one of ``top_k`` (the k
    best-scored eligible candidates per round) or ``score_threshold`` (every eligible candidate with
    score >= it) selects. Returns the selected candidates (G, E) bool.
    """
    check_positive_int(rounds, "rounds", minimum=0)
    check_choice(aggregate, "aggregate", ("avg", "max"))
    if (top_k is None) == (score_threshold is None):
        raise ConfigError("pass exactly one of top_k (top-k selection) or score_threshold (threshold "
                          "selection) to expand_query_set.")
    query, selected = query.clone(), torch.zeros_like(candidates)
    close = similarity >= min_similarity
    neg_inf = torch.full((), float("-inf"), device=similarity.device)  # no host copy
    for _ in range(rounds):  # a handful of rounds; all groups and candidates at once
        hits = close & query[:, None, :]          # (G, candidate, query)
        count = hits.sum(-1)
        if aggregate == "avg":
            score = (similarity * hits).sum(-1) / count.clamp(min=1)
        else:
            score = torch.where(hits, similarity, neg_inf).amax(-1)
        eligible = candidates & ~selected & (count > 0)
        if top_k is not None:
            ranked = torch.where(eligible, score, neg_inf).topk(min(int(top_k), score.shape[1]), dim=1)
            pick = torch.zeros_like(selected).scatter_(1, ranked.indices, ranked.values > neg_inf)
        else:
            pick = eligible & (score >= score_threshold)
        selected |= pick
        query |= pick
    return selected


def _leading_count(sims: torch.Tensor, threshold: float) -> torch.Tensor:
    """Number of leading entries >= threshold along the last axis (pool rows are sorted, but be exact)."""
    return torch.cumprod((sims >= threshold).to(torch.int32), dim=-1).sum(-1)


def _segment_any(sorted_idx: torch.Tensor, flags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of sorted dataset indices: (first occurrence mask, per-entry OR of ``flags`` over its index)."""
    first = torch.ones_like(sorted_idx, dtype=torch.bool)
    first[:, 1:] = sorted_idx[:, 1:] != sorted_idx[:, :-1]
    segment = first.long().cumsum(1) - 1
    merged = torch.zeros_like(flags).scatter_reduce(1, segment, flags, "amax")
    return first, merged.gather(1, segment)


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
             generator: torch.Generator | None = None) -> MemoryDraw:
        """Memory rows for one tuple batch: (B*E + num_negatives) rows with labels and a valid mask."""
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
        pos_end = _leading_count(psim_b, positive_threshold)[..., None]     # (B, S, 1)
        neg_end = _leading_count(psim_b, negative_threshold)[..., None]
        col = torch.arange(c, device=dev)
        in_member_row = member[..., None]
        written = self.noaug.written[pidx]
        flags_pool = {
            "init": in_member_row & (col < pos_end) & written,
            "cand": in_member_row & (col >= pos_end) & (col < neg_end) & written,
            "beyond": in_member_row & (col >= neg_end) & self.aug.written[pidx],
        }
        # Universe of each group: its members first (their own batch features), then their pool rows.
        eidx = torch.cat([idx.view(b, s), pidx.view(b, s * c)], dim=1)                  # (B, E)
        efeat = torch.cat([noaug.view(b, s, -1), self.noaug.read(pidx).view(b, s * c, -1)], dim=1)
        zeros = torch.zeros(b, s, dtype=torch.bool, device=dev)
        eflags = {"member": torch.cat([member, torch.zeros_like(pidx.view(b, -1), dtype=torch.bool)], 1)}
        eflags.update({key: torch.cat([zeros, f.view(b, -1)], 1) for key, f in flags_pool.items()})

        order = torch.sort(eidx, dim=1, stable=True).indices  # stable: a member's own entry comes first
        sidx = eidx.gather(1, order)
        sfeat = efeat.gather(1, order[..., None].expand_as(efeat))
        seg = {}
        for key, f in eflags.items():
            first, seg[key] = _segment_any(sidx, f.gather(1, order).to(torch.int32))
        seg = {key: v.bool() for key, v in seg.items()}
        init = first & seg["init"] & ~seg["member"]
        cand = first & seg["cand"] & ~seg["member"] & ~seg["init"]
        query = first & (seg["member"] | init)
        mode = {"top_k": top_k, "score_threshold": score_threshold}
        selected = expand_query_set(torch.bmm(sfeat, sfeat.transpose(1, 2)), query, cand, rounds=rounds,
                                    min_similarity=min_similarity, aggregate=aggregate, **mode)
        positive = init | selected

        # Negatives from the pool: not a member/positive/candidate of any group; each image once.
        flat_idx, dummy = sidx.reshape(-1), n + 1
        busy = torch.zeros(n, dtype=torch.int32, device=dev).scatter_reduce(
            0, flat_idx, (seg["member"] | seg["init"] | seg["cand"]).reshape(-1).to(torch.int32), "amax")
        beyond = (first & seg["beyond"]).reshape(-1) & ~busy[flat_idx].bool()
        pos_of = torch.arange(flat_idx.numel(), device=dev)
        first_neg = torch.full((n,), flat_idx.numel(), device=dev).scatter_reduce(
            0, flat_idx, torch.where(beyond, pos_of, flat_idx.numel()), "amin")
        pool_negative = beyond & (first_neg[flat_idx] == pos_of) & (num_negatives > 0)

        labels = torch.where(positive.reshape(-1), group_label.expand(b, sidx.shape[1]).reshape(-1), dummy)
        valid = positive.reshape(-1) | pool_negative
        indices, all_valid, all_labels = flat_idx, valid, labels
        if num_negatives > 0:  # random written entries fill up to num_negatives negatives in all
            excluded = busy.bool().clone()
            fill_at_(excluded, flat_idx, True)
            fill_at_(excluded, idx, True)
            gen_dev = generator.device if generator is not None else dev
            keys = torch.rand(n, generator=generator, device=gen_dev).to(dev)
            top = torch.where(self.aug.written & ~excluded, keys, torch.full_like(keys, -1.0)).topk(
                min(int(num_negatives), n))
            room = int(num_negatives) - pool_negative.sum()
            rand_valid = (top.values >= 0) & (torch.arange(top.indices.numel(), device=dev) < room)
            indices = torch.cat([flat_idx, top.indices])
            all_valid = torch.cat([valid, rand_valid])
            all_labels = torch.cat([labels, torch.full_like(top.indices, dummy)])
        feats = self.aug.read(indices) * all_valid[:, None]
        return MemoryDraw(indices, feats, torch.where(all_valid, all_labels, dummy), all_valid)
