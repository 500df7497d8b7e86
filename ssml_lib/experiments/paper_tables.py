"""A row of a method paper's retrieval table (:data:`~.tables.PAPER_TABLES`) under that table's protocol.

The runner (:func:`~.runner.evaluate`) hands the row's model here when the table's protocol is one of
:data:`PAPER_PROTOCOLS`; the protocols themselves are in :mod:`.evaluate_paper`. With ``whitening: pca`` the
whitening is fitted first (:mod:`.whitening_row`) and every result row carries ``setting: whitening``, the
setting under which the reference files list the papers' whitened rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from ..config import RunConfig
from .evaluate_paper import (R1M, DescriptorCache, RetrievalEmbedder, evaluate_gldv2_retrieval, evaluate_original,
                             evaluate_revisited_r1m, whitener)

PAPER_PROTOCOLS = ("revisited_r1m", "original", "gldv2_retrieval")


def evaluate_paper_table(spec, model, roots: Mapping[str, Path], run: RunConfig, mcfg, device: torch.device,
                         progress: bool = True, *, standin: bool = False) -> tuple[list, dict]:
    from .row_model import NORMALIZATION
    from .whitening_row import fit_row_whitening

    embedder = RetrievalEmbedder(model)
    info: dict = {}
    whitening = None
    if run.eval.whitening == "pca":
        whitening, info["whitening"] = fit_row_whitening(embedder, spec, roots[spec.train_dataset], run,
                                                         max_side=mcfg.max_side, normalize=NORMALIZATION,
                                                         device=device, standin=standin, progress=progress)
    cache = DescriptorCache(embedder, run.eval, device, progress, whitener(whitening))
    common = dict(max_side=mcfg.max_side, normalize=NORMALIZATION, standin=standin)
    rows: list = []
    for name in spec.eval_datasets:
        if spec.protocol == "revisited_r1m":
            r, i = evaluate_revisited_r1m(cache, name, roots[name], roots["revisitop1m"], **common)
        elif spec.protocol == "original":
            r, i = evaluate_original(cache, name, roots[name], **common)
        else:
            r, i = evaluate_gldv2_retrieval(cache, name, roots[name], **common)
        rows += r
        info[name] = i
    if whitening is not None:
        rows = [{**r, "setting": "whitening"} for r in rows]
    return rows, info


__all__ = ["PAPER_PROTOCOLS", "R1M", "evaluate_paper_table"]
