"""Revisited Oxford/Paris mAP and mP@k (docs/protocols.md, Revisited), as revisitop computes them.

Per query: junk items are removed from the ranking by shifting positives' positions; AP is the trapezoid rule
over the precision-recall curve with denominator n = len(positive list); queries with no positives are skipped;
mP@k caps k at the rank of the last positive found (``precision="uncapped"`` gives the Self-Taught fork's
variant). Rankings are stable: equal scores go to the lower database index. Distractors (+R1M) are just more
score columns after the database ones. :func:`revisited_map` never sorts a whole row: it finds the places of a
query's listed items only (:func:`ranking_positions`), the same places a full stable ranking gives them.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import GroundTruthError
from ._inputs import EvalInputError

_SETUPS = {  # setup -> (lists that are positive, lists that are junk)
    "easy": (("easy",), ("junk", "hard")),
    "medium": (("easy", "hard"), ("junk",)),
    "hard": (("hard",), ("junk", "easy")),
}


def validate_gnd(gnd: Any, n_db: int, keys: Sequence[str] = ("easy", "hard", "junk"),
                 require_disjoint: bool = True) -> list[dict]:
    """Check a gnd list (one dict per query) and return it with each index list as an int64 array.

    Refuses missing keys, non-integer entries, indices outside [0, n_db) and (by default) lists that overlap.
    """
    if not isinstance(gnd, (list, tuple)) or not all(isinstance(g, dict) for g in gnd):
        raise GroundTruthError("gnd must be a list with one dict per query (as in gnd_<name>.pkl['gnd']); got "
                               f"{type(gnd).__name__}. Pass data['gnd'], not the whole pickle.")
    out = []
    for q, g in enumerate(gnd):
        missing = [k for k in keys if k not in g]
        if missing:
            raise GroundTruthError(f"gnd[{q}] lacks key(s) {missing} (has {sorted(g)}); use a revisited gnd file "
                                   f"with {list(keys)}, or rebuild it from the official gnd_<name>.pkl.")
        entry = dict(g)
        for k in keys:
            arr = np.asarray(g[k]).reshape(-1)
            if arr.size and arr.dtype.kind not in "iu":
                raise GroundTruthError(f"gnd[{q}]['{k}'] holds {arr.dtype} values; it must hold integer image "
                                       "indices. Re-download the gnd file.")
            arr = arr.astype(np.int64)
            bad = arr[(arr < 0) | (arr >= n_db)]
            if bad.size:
                raise GroundTruthError(f"gnd[{q}]['{k}'] has index {int(bad[0])} outside [0, {n_db}) (the "
                                       "database size); the gnd file does not match this database (wrong "
                                       "dataset, or 1-based .mat indices: subtract 1).")
            entry[k] = arr
        if require_disjoint:
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    both = np.intersect1d(entry[a], entry[b])
                    if both.size:
                        raise GroundTruthError(f"gnd[{q}] lists image {int(both[0])} as both '{a}' and '{b}'; "
                                               "the official files keep them disjoint. Fix the file, or pass "
                                               "require_disjoint=False.")
        out.append(entry)
    return out


def trapezoid_ap(positions: np.ndarray, n_positives: int) -> float:
    """AP from sorted 0-based positions (after junk removal) of the positives found; denominator n_positives."""
    r = np.asarray(positions, dtype=np.float64)
    j = np.arange(1, r.size + 1, dtype=np.float64)
    right = j / (r + 1)  # precision just after the j-th positive
    left = np.where(r > 0, (j - 1) / np.maximum(r, 1), 1.0)  # ... and just before it
    return float(np.sum((left + right) / 2) / n_positives)


def compute_map(ranks: Any, gnd: Sequence[dict], kappas: Sequence[int] = (), *,
                precision: str = "capped") -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """mAP, per-query AP, mP@kappas and per-query P@kappas for rankings ``ranks`` (n_query, n_ranked).

    Row q of ``ranks`` lists database indices best first (it may be truncated; missing positives score 0).
    ``gnd[q]`` has 'ok' and 'junk' index lists. Empty-'ok' queries get AP = NaN and are left out of the means.
    ``precision``: "capped" (revisitop: k_q = min(rank of last positive, kappa)) or "uncapped" (k_q = kappa).
    """
    if precision not in ("capped", "uncapped"):
        raise EvalInputError(f"unknown precision {precision!r}; use 'capped' (revisitop) or 'uncapped'.")
    ranks = np.asarray(ranks)
    if ranks.ndim != 2 or ranks.shape[0] != len(gnd):
        raise EvalInputError(f"ranks must be (n_query, n_ranked) with n_query = len(gnd) = {len(gnd)}, got "
                             f"shape {ranks.shape}; note rows are queries (revisitop uses columns).")
    kappas = np.asarray(list(kappas), dtype=np.int64)
    aps = np.full(len(gnd), np.nan)
    prs = np.full((len(gnd), kappas.size), np.nan)
    for q, g in enumerate(gnd):  # one query at a time; everything inside is vectorised
        ok, junk = np.asarray(g["ok"]), np.asarray(g["junk"])
        if ok.size == 0:
            continue
        pos = np.flatnonzero(np.isin(ranks[q], ok))
        junk_pos = np.flatnonzero(np.isin(ranks[q], junk))
        aps[q], prs[q] = _query_scores(pos, junk_pos, ok.size, kappas, precision)
    return _means(aps, prs, kappas)


def _query_scores(pos: np.ndarray, junk_pos: np.ndarray, n_ok: int, kappas: np.ndarray,
                  precision: str) -> tuple[float, np.ndarray]:
    """AP and P@kappas of one query from the sorted ranking positions of its positives and junk items."""
    shifted = pos - np.searchsorted(junk_pos, pos, side="left")  # junk strictly before each positive
    if shifted.size == 0:
        return trapezoid_ap(shifted, n_ok), np.zeros(kappas.size)  # nothing found in a truncated ranking
    cut = np.minimum(shifted.max() + 1, kappas) if precision == "capped" else kappas
    return trapezoid_ap(shifted, n_ok), (shifted[None, :] + 1 <= cut[:, None]).sum(axis=1) / cut


def _means(aps: np.ndarray, prs: np.ndarray, kappas: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    valid = ~np.isnan(aps)
    m_ap = float(aps[valid].mean()) if valid.any() else float("nan")
    pr = prs[valid].mean(axis=0) if valid.any() else np.full(kappas.size, np.nan)
    return m_ap, aps, pr, prs


def rank_by_scores(scores: Any) -> np.ndarray:
    """Stable ranking per query row: descending score, ties to the lower database index."""
    s = scores.detach().cpu().numpy() if hasattr(scores, "detach") else np.asarray(scores)
    if s.ndim != 2:
        raise EvalInputError(f"scores must be (n_query, n_db) similarities, got shape {s.shape}.")
    if not np.isfinite(s).all():
        raise EvalInputError("scores contain NaN or inf; check the descriptors before ranking.")
    return np.argsort(-s, axis=1, kind="stable")


def ranking_positions(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """0-based places of ``items`` (distinct indices) in the stable descending ranking of the 1-D ``scores``
    (equal scores: the lower index first), without sorting the row: O(n log m) for m items.

    Place of item r = #{j: s_j > s_r} + #{j: s_j == s_r, j < r}. The strict count comes from one binary search
    of every score among the m items' sorted scores; the tie count from the few scores equal to an item's.
    """
    items = np.asarray(items, dtype=np.int64)
    if items.size == 0:
        return items
    vals = scores[items]
    order = np.argsort(-vals, kind="stable")
    desc = vals[order]                                        # the items' scores, descending
    above = np.flatnonzero(scores >= desc[-1])  # only these can precede an item (or tie with one)
    sub = scores[above]
    at_least = np.searchsorted(-desc, -sub, side="right")     # per j: how many item scores are >= s_j (>= 1)
    strict = np.cumsum(np.bincount(at_least, minlength=items.size + 1))[:items.size]  # s_j > desc[k]: j counts
    places = np.empty(items.size, dtype=np.int64)
    places[order] = strict
    # every j whose score equals an item's (the items included); where a value is shared, lower indices first
    tied = above[sub == desc[at_least - 1]]
    values, group, counts = np.unique(scores[tied], return_inverse=True, return_counts=True)
    if (counts > 1).any():
        keys = np.sort(group.astype(np.int64) * scores.size + tied)
        g = np.searchsorted(values, vals) * scores.size
        places += np.searchsorted(keys, g + items) - np.searchsorted(keys, g)
    return places


def revisited_map(scores: Any, gnd: Sequence[dict], kappas: Sequence[int] = (1, 5, 10), *,
                  precision: str = "capped") -> dict:
    """Easy/Medium/Hard mAP (fractions) and mP@kappas for similarity ``scores`` (n_query, n_db [+ distractors]).

    Returns {'easy', 'medium', 'hard': mAP, 'mp_easy', 'mp_medium', 'mp_hard': lists of mP@k}.
    """
    s = scores.detach().cpu().numpy() if hasattr(scores, "detach") else np.asarray(scores)
    if s.ndim != 2 or s.shape[0] != len(gnd):
        raise EvalInputError(f"scores must be (n_query, n_db) with n_query = len(gnd) = {len(gnd)}, got shape "
                             f"{s.shape}; transpose a (n_db, n_query) matrix.")
    gnd = validate_gnd(gnd, s.shape[1])
    if not np.isfinite(s).all():
        raise EvalInputError("scores contain NaN or inf; check the descriptors before ranking.")
    if precision not in ("capped", "uncapped"):
        raise EvalInputError(f"unknown precision {precision!r}; use 'capped' (revisitop) or 'uncapped'.")
    kappas = np.asarray(list(kappas), dtype=np.int64)
    aps = {setup: np.full(len(gnd), np.nan) for setup in _SETUPS}
    prs = {setup: np.full((len(gnd), kappas.size), np.nan) for setup in _SETUPS}
    for q, e in enumerate(gnd):  # the places of the query's listed items only; no full ranking
        lists = {k: np.unique(e[k]) for k in ("easy", "hard", "junk")}
        listed = np.concatenate(list(lists.values()))  # disjoint (validated)
        where = dict(zip(listed.tolist(), ranking_positions(s[q], listed).tolist()))
        for setup, (pos_keys, junk_keys) in _SETUPS.items():
            n_ok = sum(e[k].size for k in pos_keys)
            if n_ok == 0:
                continue
            pos, junk = ([where[i] for k in keys for i in lists[k].tolist()] for keys in (pos_keys, junk_keys))
            aps[setup][q], prs[setup][q] = _query_scores(np.sort(pos), np.sort(junk), n_ok, kappas, precision)
    out: dict = {}
    for setup in _SETUPS:
        m_ap, _, pr, _ = _means(aps[setup], prs[setup], kappas)
        out[setup] = m_ap
        out[f"mp_{setup}"] = [float(v) for v in pr]
    return out


def format_revisited(result: dict, kappas: Sequence[int] = (1, 5, 10)) -> str:
    """revisitop's printout: percentages rounded with np.around(100 * x, 2)."""
    def pct(x):
        return np.around(100 * np.asarray(x, dtype=np.float64), 2)

    maps = ", ".join(f"{k[0].upper()}: {pct(result[k])}" for k in ("easy", "medium", "hard"))
    mps = ", ".join(f"{k[0].upper()}: {pct(result['mp_' + k])}" for k in ("easy", "medium", "hard"))
    return f"mAP {maps}\nmP@k{list(kappas)} {mps}"
