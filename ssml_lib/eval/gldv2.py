"""GLDv2 retrieval metrics (Kaggle / DELF definitions, docs/protocols.md) and their CSV files.

mAP@100: per query, sum over the first 100 predictions of [new and relevant] * (relevant-so-far / position),
divided by min(|ground truth|, 100); a repeated id neither scores nor counts but keeps its position. The mean
runs over every solution query of the subset (Public and Private are separate), so a query without a prediction
counts 0. :func:`gldv2_retrieval_map` computes the same mAP@100 from a ranking array of every query at once
(no per-query loop), with Public and Private apart.
"""
from __future__ import annotations

import csv
import os
from typing import Mapping, Sequence

import numpy as np

from ..errors import GroundTruthError

Ids = Sequence[str]


def _new_relevant(prediction: Ids, relevant: Ids, max_predictions: int) -> np.ndarray:
    """Boolean per kept position: the id is relevant and appears here for the first time."""
    pred = np.asarray(list(prediction[:max_predictions]), dtype=object)
    if pred.size == 0:
        return np.zeros(0, dtype=bool)
    first = np.zeros(pred.size, dtype=bool)
    first[np.unique(pred.astype(str), return_index=True)[1]] = True
    return first & np.isin(pred.astype(str), np.asarray(list(relevant), dtype=str))


def _check(predictions: Mapping[str, Ids], solution: Mapping[str, Ids], max_predictions: int) -> None:
    if not solution:
        raise GroundTruthError("the solution is empty; pass the Public or Private subset of "
                               "retrieval_solution_v2.1.csv (see read_retrieval_solution).")
    if isinstance(max_predictions, bool) or not isinstance(max_predictions, int) or max_predictions < 1:
        raise GroundTruthError(f"max_predictions must be a positive int, got {max_predictions!r}.")
    unknown = [q for q in predictions if q not in solution]
    if unknown:
        raise GroundTruthError(f"prediction for query {unknown[0]!r} which is not in the solution subset; "
                               "split predictions per subset with read_predictions().")


def gldv2_map_at_100(predictions: Mapping[str, Ids], solution: Mapping[str, Ids],
                     max_predictions: int = 100) -> float:
    """Kaggle/DELF mAP@100 of ``predictions`` (query id -> ranked index ids) against ``solution``."""
    _check(predictions, solution, max_predictions)
    total = 0.0
    for q, pred in predictions.items():  # per query; positions are handled as arrays
        hits = _new_relevant(pred, solution[q], max_predictions)
        precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
        total += float(np.sum(precision[hits])) / min(len(solution[q]), max_predictions)
    return total / len(solution)


def gldv2_mean_precision_at_k(predictions: Mapping[str, Ids], solution: Mapping[str, Ids],
                              ks: Sequence[int] = (1, 5, 10, 50, 100)) -> dict[int, float]:
    """Uncapped mP@k: (new relevant ids in the top k) / k, averaged over all solution queries."""
    _check(predictions, solution, max(ks))
    sums = np.zeros(len(ks))
    for q, pred in predictions.items():
        found = np.cumsum(_new_relevant(pred, solution[q], max(ks)))
        sums += [found[min(k, found.size) - 1] / k if found.size else 0.0 for k in ks]
    return {k: float(s / len(solution)) for k, s in zip(ks, sums)}


def gldv2_first_correct_positions(predictions: Mapping[str, Ids], solution: Mapping[str, Ids],
                                  max_predictions: int = 100) -> np.ndarray:
    """1-based position of the first relevant prediction per solution query (max_predictions + 1 if none)."""
    _check(predictions, solution, max_predictions)
    out = np.full(len(solution), max_predictions + 1, dtype=np.int64)
    for i, (q, relevant) in enumerate(solution.items()):
        pred = list(predictions.get(q, []))[:max_predictions]  # duplicates are not skipped here
        hit = np.flatnonzero(np.isin(np.asarray(pred, dtype=str), np.asarray(list(relevant), dtype=str)))
        if hit.size:
            out[i] = hit[0] + 1
    return out


def read_retrieval_solution(path: str | os.PathLike) -> tuple[dict, dict, list]:
    """Parse retrieval_solution_v2.1.csv (id,images,Usage) into (public, private, ignored ids)."""
    public, private, ignored = {}, {}, []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:3]] != ["id", "images", "Usage"]:
            raise GroundTruthError(f"{path}: expected the header 'id,images,Usage', got {header}; is this "
                                   "retrieval_solution_v2.1.csv?")
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != 3:
                raise GroundTruthError(f"{path}:{line}: expected 3 fields (id,images,Usage), got {len(row)}; "
                                       "the file looks truncated or edited. Re-download it.")
            qid, images, usage = row
            if usage == "Ignored":
                ignored.append(qid)
            elif usage in ("Public", "Private"):
                ids = images.split()
                if not ids:
                    raise GroundTruthError(f"{path}:{line}: {usage} query {qid} has no images; re-download.")
                (public if usage == "Public" else private)[qid] = ids
            else:
                raise GroundTruthError(f"{path}:{line}: Usage {usage!r} is not Public, Private or Ignored.")
    return public, private, ignored


def read_predictions(path: str | os.PathLike, public: Mapping, private: Mapping,
                     ignored: Sequence[str] = ()) -> tuple[dict, dict]:
    """Parse a prediction CSV (id,images; images space-separated, best first) into (public, private) dicts."""
    ignored = set(ignored)
    out_public, out_private, seen = {}, {}, set()
    with open(path, newline="") as f:
        rows = csv.reader(f)
        next(rows, None)  # header
        for line, row in enumerate(rows, start=2):
            if not row or not any(field.strip() for field in row):
                continue
            qid = row[0]
            if qid in seen:
                raise GroundTruthError(f"{path}:{line}: query {qid} appears twice; keep one row per query.")
            seen.add(qid)
            if qid in ignored:
                continue
            ids = row[1].split(" ") if len(row) > 1 else []
            while ids and ids[-1] == "":  # a trailing space leaves an empty last token
                ids.pop()
            if qid in public:
                target = out_public
            elif qid in private:
                target = out_private
            else:
                raise GroundTruthError(f"{path}:{line}: query {qid} is in neither the Public nor the Private "
                                       "subset; check that the prediction file matches this solution file.")
            if ids:
                target[qid] = ids
    return out_public, out_private


def gldv2_retrieval_map(ranks, relevant: Sequence, n_relevant=None, usage=None,
                        max_predictions: int = 100) -> dict:
    """mAP@100 of rankings over the index, the Kaggle metric, for every query at once.

    ``ranks`` (n_query, >= k): index positions best first (e.g. ``argsort(-scores)`` or a top-100 search; -1
    pads a short row); ``relevant[q]``: index positions of query q's ground truth; ``n_relevant[q]``: the
    size of its ground truth (default ``len(relevant[q])``; larger when relevant images are not in the index
    searched). ``usage``: per query 'Public' / 'Private'. Returns {'all': mAP} plus {'public', 'private'} when
    ``usage`` is given; each mean runs over that subset's queries.
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 2 or ranks.shape[0] != len(relevant) or not np.issubdtype(ranks.dtype, np.integer):
        raise GroundTruthError(f"ranks must be an integer (n_query, k) array with n_query = len(relevant) = "
                               f"{len(relevant)}, got {ranks.dtype} {ranks.shape}.")
    if isinstance(max_predictions, bool) or not isinstance(max_predictions, int) or max_predictions < 1:
        raise GroundTruthError(f"max_predictions must be a positive int, got {max_predictions!r}.")
    nq = len(relevant)
    counts = np.asarray([len(r) for r in relevant], dtype=np.int64)
    n_rel = counts if n_relevant is None else np.asarray(n_relevant, dtype=np.int64).reshape(-1)
    if n_rel.shape != (nq,) or (n_rel < counts).any() or (n_rel < 1).any():
        raise GroundTruthError("n_relevant must give, per query, a count >= 1 and >= len(relevant[q]).")
    top = ranks[:, :max_predictions].astype(np.int64)
    width = int(max(top.max(initial=-1), max((int(np.max(r)) for r in relevant if len(r)), default=-1))) + 2
    rows = np.repeat(np.arange(nq, dtype=np.int64), counts)
    keys = np.sort(rows * width + np.concatenate([np.asarray(r, dtype=np.int64) for r in relevant] or [[]]))
    pred_keys = np.arange(nq, dtype=np.int64)[:, None] * width + top
    first = np.zeros(top.size, dtype=bool)  # a repeated id keeps its position but scores only once
    first[np.unique(pred_keys.ravel(), return_index=True)[1]] = True
    hits = first.reshape(top.shape) & (top >= 0) & np.isin(pred_keys, keys)
    precision = np.cumsum(hits, axis=1) / np.arange(1, top.shape[1] + 1)
    ap = np.where(hits, precision, 0.0).sum(axis=1) / np.minimum(n_rel, max_predictions)
    out = {"all": float(ap.mean()) if nq else float("nan"), "ap": ap}
    if usage is not None:
        usage = np.asarray(usage)
        for subset in ("Public", "Private"):
            chosen = usage == subset
            out[subset.lower()] = float(ap[chosen].mean()) if chosen.any() else float("nan")
    return out
