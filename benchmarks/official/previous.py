"""ssml's blocks as they were before the speed-ups of issue 12 (commit fa4f3d0), kept verbatim: the A/B tests
check the new code against them and ``--suite official`` times them beside the new code ("ssml before").

* :func:`old_mine` -- InsCLR memory v2 mining: every group's similarity over all E = (1 + K)(1 + C) entries
  of its universe (now: only the entries that can be a query item or a candidate).
* :func:`old_spreading_official` -- the Spreading loss (official form) in log space, through autograd (now: a
  few passes and a closed-form gradient).
* :func:`old_candidate_pool` -- the pool as knn's default path gives it: float32 proposals, near-ties settled
  exactly, other values the back end's float32 score (now: exact values, a float64 matmul + top-k where cheaper).
* :func:`old_revisited_map` -- the revisited mAP through a full stable ranking of every row, then
  ``compute_map`` per setup (now: the places of each query's listed items only).
"""
from __future__ import annotations

from typing import Any

import math

import torch

from ssml_lib.errors import SsmlError
from ssml_lib.losses._common import log1mexp
from ssml_lib.mining._common import as_features, as_index, check_choice, check_positive_int, fill_at_
from ssml_lib.mining.memory_bank import MemoryDraw
from ssml_lib.mining.query_expansion import SETS
from ssml_lib.mining.query_set import expand_query_set

def _boundary(sims: torch.Tensor, threshold: float) -> torch.Tensor:
    """One past the last column with similarity >= threshold along the last axis (0 if none)."""
    cols = torch.arange(1, sims.shape[-1] + 1, device=sims.device)
    return torch.where(sims >= threshold, cols, 0).amax(-1)


def _segments(sorted_key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of sorted keys: (first occurrence mask, segment id of each entry)."""
    first = torch.ones_like(sorted_key, dtype=torch.bool)
    first[:, 1:] = sorted_key[:, 1:] != sorted_key[:, :-1]
    return first, first.long().cumsum(1) - 1


def _segment_or(segment: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Per-entry OR of ``flags`` over the entries of its segment."""
    merged = torch.zeros_like(segment).scatter_reduce(1, segment, flags.long(), "amax")
    return merged.gather(1, segment).bool()


def _any_per_image(index: torch.Tensor, flags: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) bool: some entry of the image has its flag set (duplicates agree, unlike a plain scatter)."""
    return torch.zeros(n, dtype=torch.int32, device=index.device).scatter_reduce(
        0, index, flags.to(torch.int32), "amax").bool()


def _keep_largest_label(claimed: torch.Tensor, sidx: torch.Tensor, labels: torch.Tensor,
                        n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One label per image: (entries kept, image claimed by any group) for (B, E) claims."""
    owner = torch.zeros(n, dtype=labels.dtype, device=labels.device).scatter_reduce(
        0, sidx.reshape(-1), torch.where(claimed, labels, 0).reshape(-1), "amax")
    return claimed & (owner[sidx] == labels), (owner > 0)[sidx]


@torch.no_grad()
def old_mine(self, batch_indices: Any, batch_labels: Any, batch_noaug: Any, pool_indices: Any, pool_sims: Any,
         *, num_neighbors: int = 3, positive_threshold: float = 0.75, negative_threshold: float = 0.5,
         rounds: int = 4, min_similarity: float = 0.6, aggregate: str = "avg", top_k: int | None = 5,
         score_threshold: float | None = None, num_negatives: int = 0, pool_columns: int | None = None,
         sets: str = "official", generator: torch.Generator | None = None) -> MemoryDraw:
    """Memory rows for one tuple batch: (B*E + num_negatives) rows with labels and a valid mask.

    ``sets``: ``"official"`` or ``"exclusive"`` (module docstring). Under ``"official"`` write this
    batch to both banks first; ``num_negatives`` = 0 turns memory negatives off.
    """
    official = check_choice(sets, "sets", SETS) == "official"
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
    pos_end = _boundary(psim_b, positive_threshold)[..., None]          # (B, S, 1)
    neg_end = _boundary(psim_b, negative_threshold)[..., None]
    col = torch.arange(c, device=dev)
    in_member_row = member[..., None]
    written = self.noaug.written[pidx]
    flags_pool = {
        "init": in_member_row & (col < pos_end) & written,
        "cand": in_member_row & (col >= pos_end) & (col < neg_end) & written,
        "beyond": in_member_row & (col >= neg_end) & self.aug.written[pidx],
    }
    # Universe of each group: its tuple first (batch features), then its members' pool rows (memory).
    eidx = torch.cat([idx.view(b, s), pidx.view(b, s * c)], dim=1)                  # (B, E)
    efeat = torch.cat([noaug.view(b, s, -1), self.noaug.read(pidx).view(b, s * c, -1)], dim=1)
    zeros = torch.zeros(b, s, dtype=torch.bool, device=dev)
    eflags = {"member": torch.cat([member, torch.zeros_like(pidx.view(b, -1), dtype=torch.bool)], 1)}
    eflags.update({key: torch.cat([zeros, f.view(b, -1)], 1) for key, f in flags_pool.items()})

    # Sorted by image, a member's own batch entry first and in a segment of its own; the image's other
    # entries (pool occurrences, a rejected neighbour's batch entry) form a second segment.
    key = eidx * 2 + (~eflags["member"]).long()
    order = torch.sort(key, dim=1, stable=True).indices
    sidx = eidx.gather(1, order)
    sfeat = efeat.gather(1, order[..., None].expand_as(efeat))
    first, _ = _segments(key.gather(1, order))
    _, image = _segments(sidx)
    seg = {name: _segment_or(image, f.gather(1, order)) for name, f in eflags.items()}
    member_entry = first & eflags["member"].gather(1, order)
    labels_e = group_label.expand(b, sidx.shape[1])
    init = first & seg["init"] & ~seg["member"]
    if official:
        init, any_init = _keep_largest_label(init, sidx, labels_e, n)
        cand = first & ~member_entry & seg["cand"] & ~any_init
    else:
        cand = first & seg["cand"] & ~seg["member"] & ~seg["init"]
    mode = {"top_k": top_k, "score_threshold": score_threshold, "avg_eps": 1e-6 if official else 0.0}
    selected = expand_query_set(torch.bmm(sfeat, sfeat.transpose(1, 2)), member_entry | init, cand,
                                rounds=rounds, min_similarity=min_similarity, aggregate=aggregate, **mode)
    if official:
        selected, _ = _keep_largest_label(selected, sidx, labels_e, n)
    positive = init | selected

    # Pool negatives: the members' beyond zones, each image once, minus what the rule keeps out.
    flat_idx, dummy = sidx.reshape(-1), n + 1
    keep_out = positive if official else (seg["member"] | seg["init"] | seg["cand"])
    busy = _any_per_image(flat_idx, keep_out.reshape(-1), n)
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
            excluded = busy | _any_per_image(flat_idx, pool_negative, n)
            room = int(num_negatives) - valid.sum()
        else:  # nothing seen in any group's universe, no batch image
            excluded = busy.clone()
            fill_at_(excluded, flat_idx, True)
            fill_at_(excluded, idx, True)
            room = int(num_negatives) - pool_negative.sum()
        gen_dev = generator.device if generator is not None else dev
        keys = torch.rand(n, generator=generator, device=gen_dev).to(dev)
        top = torch.where(self.aug.written & ~excluded, keys, torch.full_like(keys, -1.0)).topk(
            min(int(num_negatives), n))
        rand_valid = (top.values >= 0) & (torch.arange(top.indices.numel(), device=dev) < room)
        indices = torch.cat([flat_idx, top.indices])
        all_valid = torch.cat([valid, rand_valid])
        all_labels = torch.cat([labels, torch.full_like(top.indices, dummy)])
    feats = self.aug.read(indices) * all_valid[:, None]
    return MemoryDraw(indices, feats, torch.where(all_valid, all_labels, dummy), all_valid)


def old_spreading_official(x: torch.Tensor, temperature: float = 0.1, m: float = 1.0) -> torch.Tensor:
    """The Spreading loss of x = [emb; emb_aug] as ``ssml_lib.losses.spreading`` computed it before."""
    n = x.shape[0]
    rows = torch.arange(n, device=x.device)
    partner = (rows + n // 2) % n
    logits = x @ x.detach().T / temperature
    pos_logit = logits[rows, partner]
    negative = (rows[None, :] != rows[:, None]) & (rows[None, :] != partner[:, None])
    neg_logits = logits.masked_fill(~negative, float("-inf"))
    log_z = torch.logaddexp(math.log(m) + torch.logsumexp(neg_logits, dim=1), pos_logit)
    log_p = pos_logit - log_z
    log_not_q = log1mexp(neg_logits - log_z[:, None])
    return -(log_p.sum() + m * log_not_q.sum()) / n


def old_candidate_pool(features: torch.Tensor, pool_size: int, backend: str = "auto"):
    """The pool as ``candidate_pool`` computed it before: knn's default path."""
    from ssml_lib.eval.knn import knn

    sims, idx = knn(features, None, k=pool_size, metric="ip", exclude_self=True, backend=backend)
    return idx.to(torch.int64), sims.to(torch.float32)


def old_revisited_map(scores, gnd, kappas=(1, 5, 10), *, precision: str = "capped") -> dict:
    """``revisited_map`` as it was: rank every row (stable argsort), then ``compute_map`` for each setup."""
    import numpy as np

    from ssml_lib.eval.revisited import _SETUPS, compute_map, rank_by_scores, validate_gnd

    s = scores.detach().cpu().numpy() if hasattr(scores, "detach") else np.asarray(scores)
    gnd = validate_gnd(gnd, s.shape[1])
    ranks, out = rank_by_scores(s), {}
    for setup, (pos_keys, junk_keys) in _SETUPS.items():
        g = [{"ok": np.concatenate([e[k] for k in pos_keys]), "junk": np.concatenate([e[k] for k in junk_keys])}
             for e in gnd]
        m_ap, _, pr, _ = compute_map(ranks, g, kappas, precision=precision)
        out[setup] = m_ap
        out[f"mp_{setup}"] = [float(v) for v in pr]
    return out
