"""InsCLR memory v2 selection: the official mode string and iterative query expansion on boolean sets.

Every group has a query set (items known to be positives) and candidates. Each round scores the
candidates against the current query set and moves the best ones into it, so later rounds can reach
images that only resemble the earlier picks (official ``XBMv2.select``, mode ``b+i``).
"""
from __future__ import annotations

import re
from typing import Any

import torch

from ..errors import ConfigError
from ._common import check_choice, check_positive_int


def parse_selection_mode(mode: str) -> dict[str, Any]:
    """Mode strings -> the keyword arguments of the memory miner.

    The official form ``b+i_tr<R>_<avg|max><t>_k<k>`` (e.g. ``b+i_tr4_avg0.60_k05``: 4 rounds, mean of the
    similarities >= 0.6, top 5 a round). Two extensions name the InsCLR paper's Table 2 rows: no number after
    ``avg``/``max`` keeps every similarity (no sparsity: ``min_similarity`` -inf), and ``_t<T>`` in place of
    ``_k<k>`` selects every candidate whose score is >= T (threshold selection) instead of the top k.
    """
    m = re.fullmatch(r"b\+i_tr(\d+)_(avg|max)(\d*\.?\d*)_(?:k(\d+)|t(\d*\.?\d+))", mode)
    if m is None or m[3] == ".":
        raise ConfigError(f"selection mode {mode!r} is not of the form 'b+i_tr<R>_<avg|max>[<t>]_<k<k>|t<T>>' "
                          f"(e.g. 'b+i_tr4_avg0.60_k05'; 'b+i_tr2_max_k05': no sparsity; "
                          f"'b+i_tr2_avg_t0.60': threshold selection).")
    out = {"rounds": int(m[1]), "aggregate": m[2], "min_similarity": float(m[3]) if m[3] else float("-inf")}
    return {**out, "top_k": int(m[4])} if m[4] is not None else {**out, "top_k": None, "score_threshold": float(m[5])}


@torch.no_grad()
def expand_query_set(similarity: torch.Tensor, query: torch.Tensor, candidates: torch.Tensor, *,
                     rounds: int, min_similarity: float, aggregate: str = "avg", top_k: int | None = None,
                     score_threshold: float | None = None, avg_eps: float = 0.0) -> torch.Tensor:
    """Iterative query expansion on G groups of E items at once.

    ``similarity`` (G, E, E); ``query`` and ``candidates`` (G, E) bool. A candidate is eligible in a round
    when it is not yet selected and at least one query item has similarity >= ``min_similarity`` to it; its
    score is the mean (``avg``) or the max of those similarities. Exactly one of ``top_k`` (the k
    best-scored eligible candidates per round) or ``score_threshold`` (every eligible candidate with
    score >= it) selects. The official ``select`` divides the ``avg`` sum by ``count + 1e-6``; pass
    ``avg_eps=1e-6`` to score exactly so (it only matters at ties and at the score threshold). Equal
    scores go to the earlier item (a stable sort; the official sort is stable only for up to 16
    candidates, beyond that its tie order is unspecified). Returns the selected candidates (G, E) bool.
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
            score = (similarity * hits).sum(-1) / (count.clamp(min=1) + avg_eps)
        else:
            score = torch.where(hits, similarity, neg_inf).amax(-1)
        eligible = candidates & ~selected & (count > 0)
        if top_k is not None:
            ranked = torch.sort(torch.where(eligible, score, neg_inf), dim=1, descending=True, stable=True)
            kk = min(int(top_k), score.shape[1])
            pick = torch.zeros_like(selected).scatter_(1, ranked.indices[:, :kk], ranked.values[:, :kk] > neg_inf)
        else:
            pick = eligible & (score >= score_threshold)
        selected |= pick
        query |= pick
    return selected
