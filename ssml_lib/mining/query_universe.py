"""InsCLR memory v2: each group's universe of entries, its sets on indices only, and the compacted features.

A group's universe is its tuple (batch entries) followed by its members' pool rows (memory entries), sorted by
image so that every image of the group is one segment (a member's own batch entry first, in a segment of its
own). Everything here works on indices and flags of shape (B, E), E = (1 + K)(1 + C); only
:func:`compact_features` reads features, and only for the entries that can be a query item or a candidate.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class Universe(NamedTuple):
    sidx: torch.Tensor          # (B, E) image of each entry, sorted per group
    source: torch.Tensor        # (B, E) the entry's place in the unsorted universe (< S: a batch entry)
    first: torch.Tensor         # (B, E) first entry of its segment
    member_entry: torch.Tensor  # (B, E) a member's own batch entry
    seg: dict                   # flag name -> (B, E): the flag holds for some entry of the image in this group


def boundary(sims: torch.Tensor, threshold: float) -> torch.Tensor:
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


def any_per_image(index: torch.Tensor, flags: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) bool: some entry of the image has its flag set (duplicates agree, unlike a plain scatter)."""
    return torch.zeros(n, dtype=torch.int32, device=index.device).scatter_reduce(
        0, index, flags.to(torch.int32), "amax").bool()


def keep_largest_label(claimed: torch.Tensor, sidx: torch.Tensor, labels: torch.Tensor,
                       n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One label per image: (entries kept, image claimed by any group) for (B, E) claims."""
    owner = torch.zeros(n, dtype=labels.dtype, device=labels.device).scatter_reduce(
        0, sidx.reshape(-1), torch.where(claimed, labels, 0).reshape(-1), "amax")
    return claimed & (owner[sidx] == labels), (owner > 0)[sidx]


def build_universe(idx: torch.Tensor, member: torch.Tensor, pidx: torch.Tensor,
                   flags_pool: dict) -> Universe:
    """``idx`` (B, S) the tuples, ``member`` (B, S), ``pidx`` (B, S, C) their pool rows, ``flags_pool`` name ->
    (B, S, C) flags of the pool entries (batch entries carry none)."""
    b, s = idx.shape
    eidx = torch.cat([idx, pidx.view(b, -1)], dim=1)                                  # (B, E)
    zeros = torch.zeros_like(idx, dtype=torch.bool)
    eflags = {"member": torch.cat([member, torch.zeros_like(pidx.view(b, -1), dtype=torch.bool)], 1)}
    eflags.update({key: torch.cat([zeros, f.view(b, -1)], 1) for key, f in flags_pool.items()})
    # Sorted by image, a member's own batch entry first and in a segment of its own; the image's other
    # entries (pool occurrences, a rejected neighbour's batch entry) form a second segment.
    key = eidx * 2 + (~eflags["member"]).long()
    order = torch.sort(key, dim=1, stable=True).indices
    sidx = eidx.gather(1, order)
    first, _ = _segments(key.gather(1, order))
    _, image = _segments(sidx)
    seg = {name: _segment_or(image, f.gather(1, order)) for name, f in eflags.items()}
    member_entry = first & eflags["member"].gather(1, order)
    return Universe(sidx, order, first, member_entry, seg)


def _width(relevant: torch.Tensor) -> int:
    """Places kept per group: the largest relevant count on a CPU (free to read), all of them on a GPU."""
    return int(relevant.sum(1).max()) if relevant.device.type == "cpu" else relevant.shape[1]


def compact_features(u: Universe, relevant: torch.Tensor, batch_feats: torch.Tensor,
                     bank) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The features of the ``relevant`` entries only, moved to the front of each group, in universe order.

    Returns ``(place, valid, feats)``: ``place`` (B, W) the entries' places in the universe, ``valid`` (B, W)
    whether the place holds a relevant entry, ``feats`` (B, W, D) their features (batch entries: the batch
    features; memory entries: the bank). W is the largest relevant count of a group on a CPU; on a GPU it is
    E, so that no step waits for the device to report a size.
    """
    width = _width(relevant)
    place = torch.sort((~relevant).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    valid = relevant.gather(1, place)
    source = u.source.gather(1, place)
    s = batch_feats.shape[1]
    feats = bank.read(u.sidx.gather(1, place))                                        # (B, W, D)
    from_batch = source < s
    batch_rows = batch_feats.gather(1, source.clamp(max=s - 1)[..., None].expand(-1, -1, batch_feats.shape[2]))
    feats = torch.where(from_batch[..., None], batch_rows, feats)
    return place, valid, feats


__all__ = ["Universe", "any_per_image", "boundary", "build_universe", "compact_features", "keep_largest_label"]
