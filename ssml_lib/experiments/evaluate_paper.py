"""The InsCLR paper's retrieval protocols for a row's model, as tidy result rows (percent, as the paper prints).

- ``revisited_r1m`` (its Table 3): rOxford5k / rParis6k Medium and Hard mAP, and again with the revisitop 1M
  distractors appended to the database (dataset ``<name>+r1m``); the distractors are embedded once per row.
- ``original`` (Table 4): Oxford5k / Paris6k mAP of the original protocol (queries cropped to their box, junk
  removed), and oxford105k / paris106k with the 100k Flickr distractors.
- ``gldv2_retrieval`` (Table 5): mAP@100 of the GLDv2 retrieval task, Public and Private queries apart.

Descriptors: images one by one (sizes vary), thumbnailed to ``max_side``, the eval scales averaged, L2-normalised,
ranked by inner product, as for the thesis's revisited tables (:mod:`.evaluate`). Images shared between the
datasets of a row (a 105k database holds the 5k one) are embedded once, keyed by path and query box. With
``whitening`` (:mod:`.whitening_row`) every descriptor is whitened and L2-normalised again before ranking.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..config import EvalConfig
from ..data import Thumbnail, build_transform, open_dataset
from ..data.revisited import open_distractors
from ..eval import (apply_pca_whitening, extract_embeddings, gldv2_retrieval_map, instre_map, original_map,
                    revisited_map)

R1M = "+r1m"


class RetrievalEmbedder(nn.Module):
    """The row's retrieval embedding (``f`` of a two-head model), flattened, float32."""

    def __init__(self, embedder: nn.Module):
        super().__init__()
        self.embedder = embedder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..methods._common import retrieval_embedding

        return retrieval_embedding(self.embedder(x)).flatten(1).float()


class _Items(torch.utils.data.Dataset):
    """Items ``which`` of ``base``, re-indexed 0..n-1 (extract_embeddings fills row ``index``)."""

    def __init__(self, base, which):
        self.base, self.which = base, list(which)

    def __len__(self) -> int:
        return len(self.which)

    def __getitem__(self, i: int):
        image, label, _ = self.base[self.which[i]]
        return image, label, i


class DescriptorCache:
    """Descriptors of one model under one extraction setting, keyed by (path, query box); a row's datasets
    share it. ``whiten``: applied to every descriptor (after the L2 normalisation of extraction)."""

    def __init__(self, model: nn.Module, cfg: EvalConfig, device: torch.device, progress: bool,
                 whiten: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        self.model, self.cfg, self.device, self.progress, self.whiten = model, cfg, device, progress, whiten
        self.store: dict = {}

    def embed(self, dataset, boxes=None) -> torch.Tensor:
        keys = [(str(p), tuple(np.round(boxes[i], 3)) if boxes is not None else None)
                for i, p in enumerate(dataset.paths)]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            # one image per loader batch (sizes vary); images of one size are stacked into eval.batch_size
            emb, _ = extract_embeddings(self.model, _Items(dataset, missing), device=self.device, batch_size=1,
                                        stack=self.cfg.batch_size, scales=self.cfg.scales,
                                        normalize=self.cfg.normalize, progress=self.progress)
            if self.whiten is not None:
                emb = self.whiten(emb)
            for i, row in zip(missing, emb):
                self.store[keys[i]] = row
        return torch.stack([self.store[k] for k in keys])


def whitener(whitening) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    return None if whitening is None else (lambda x: apply_pca_whitening(x, whitening))


def _transform(normalize: str, max_side: Optional[int]):
    tf = build_transform("retrieval", train=False, normalize=normalize)
    if max_side is None:
        return tf
    from torchvision.transforms import Compose

    return Compose([Thumbnail(max_side), tf])


def _counts(standin: bool) -> str:
    return "off" if standin else "warn"


def evaluate_revisited_r1m(cache: DescriptorCache, dataset: str, root: Path, distractor_root: Path, *,
                           max_side: Optional[int], normalize: str, standin: bool = False) -> tuple[list, dict]:
    tf = build_transform("retrieval", train=False, normalize=normalize)
    opts = dict(max_side=max_side, expect_counts=_counts(standin))
    db, query = (open_dataset(dataset, root, split, tf, **opts) for split in ("db", "query"))
    distractors = open_distractors(distractor_root, tf, **opts)
    q, d, x = cache.embed(query, query.bbx), cache.embed(db), cache.embed(distractors)
    rows, info = [], {"n_db": len(db), "n_query": len(query), "n_distractors": len(distractors)}
    for name, database in ((dataset, d), (dataset + R1M, torch.cat([d, x]))):
        result = revisited_map(q @ database.T, query.gnd)
        rows += [{"dataset": name, "metric": f"mAP_{m}", "value": 100.0 * result[m], "setting": ""}
                 for m in ("medium", "hard")]
        info[name] = {k: v for k, v in result.items() if k.startswith("mp_")}
    return rows, info


def evaluate_original(cache: DescriptorCache, dataset: str, root: Path, *, max_side: Optional[int],
                      normalize: str, standin: bool = False) -> tuple[list, dict]:
    tf = build_transform("retrieval", train=False, normalize=normalize)
    opts = dict(max_side=max_side, expect_counts=_counts(standin))
    db, query = (open_dataset(dataset, root, split, tf, **opts) for split in ("db", "query"))
    metric = instre_map if dataset == "instre" else original_map  # INSTRE: the split of Iscen et al.
    result = metric(cache.embed(query, query.bbx) @ cache.embed(db).T, query.gnd)
    return ([{"dataset": dataset, "metric": "mAP", "value": 100.0 * result["map"], "setting": ""}],
            {"n_db": len(db), "n_query": len(query), "n_distractors": len(db) - db.n_db})


def evaluate_gldv2_retrieval(cache: DescriptorCache, dataset: str, root: Path, *, max_side: Optional[int],
                             normalize: str, standin: bool = False, top: int = 100) -> tuple[list, dict]:
    tf = _transform(normalize, max_side)
    index, test = (open_dataset(dataset, root, split, tf, expect_counts=_counts(standin))
                   for split in ("index", "test"))
    queries, database = cache.embed(test), cache.embed(index)
    k = min(top, len(database))
    # the first 100 of each ranking, in blocks of queries (the real index has 762k images)
    ranks = np.concatenate([torch.topk(block @ database.T, k, dim=1).indices.numpy()
                            for block in queries.split(256)]) if len(queries) else np.zeros((0, k), dtype=np.int64)
    result = gldv2_retrieval_map(ranks, test.relevant_positions(index), n_relevant=test.n_relevant,
                                 usage=test.usage, max_predictions=top)
    rows = [{"dataset": dataset, "metric": f"mAP@100_{s}", "value": 100.0 * result[s], "setting": ""}
            for s in ("public", "private")]
    usage = np.asarray(test.usage)
    return rows, {"n_index": len(index), "n_public": int((usage == "Public").sum()),
                  "n_private": int((usage == "Private").sum())}
