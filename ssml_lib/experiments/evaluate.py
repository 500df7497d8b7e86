"""Evaluate a model under a table's protocol and return tidy result rows (percent, as the thesis prints).

- ``recall``: embed the test split (Resize + CenterCrop), Recall@K over the other test images (self excluded
  by index, ties by index) and NMI with k = number of test classes (protocols.md §4).
- ``revisited``: embed the database and the bbx-cropped queries of rOxford5k / rParis6k one image at a time
  (sizes differ), rank by inner product, mAP Easy/Medium/Hard with capped mP@k (protocols.md §1).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import EvalConfig
from ..data import build_transform, open_dataset
from ..eval import extract_embeddings, nmi_with_info, recall_at_k, revisited_map
from ..results import rows_from_metrics


def _counts(standin: bool) -> str:
    # the stand-in is small by design; on real data a count off the published one is worth a warning
    return "off" if standin else "warn"


def evaluate_recall(model: torch.nn.Module, dataset: str, root: Path, cfg: EvalConfig, *, image_size: int,
                    resize_size: int, normalize: str, device: torch.device, progress: bool = True,
                    standin: bool = False, preset: str = "thesis") -> tuple[list, dict]:
    tf = build_transform(preset, train=False, size=image_size, resize=resize_size, normalize=normalize)
    test = open_dataset(dataset, root, "test", tf, expect_counts=_counts(standin))
    emb, labels = extract_embeddings(model, test, device=device, batch_size=cfg.batch_size, scales=cfg.scales,
                                     normalize=cfg.normalize, progress=progress)
    recall = recall_at_k(emb, labels, cfg.ks, backend=cfg.knn_backend)
    info: dict = {"n_test": len(test), "n_test_classes": int(labels.unique().numel())}
    nmi_value = None
    if cfg.nmi:
        nmi_value, nmi_info = nmi_with_info(emb, labels, seed=cfg.kmeans_seed, average=cfg.nmi_average,
                                            kmeans=cfg.kmeans_backend, n_init=cfg.kmeans_restarts)
        info["nmi"] = nmi_info
    return rows_from_metrics(dataset, recall=recall, nmi=nmi_value), info


def evaluate_revisited(model: torch.nn.Module, dataset: str, root: Path, cfg: EvalConfig, *, max_side: int | None,
                       normalize: str, device: torch.device, progress: bool = True,
                       standin: bool = False) -> tuple[list, dict]:
    tf = build_transform("retrieval", train=False, normalize=normalize)
    db = open_dataset(dataset, root, "db", tf, max_side=max_side, expect_counts=_counts(standin))
    query = open_dataset(dataset, root, "query", tf, max_side=max_side, expect_counts=_counts(standin))
    kw = dict(device=device, batch_size=1, scales=cfg.scales, normalize=cfg.normalize, progress=progress)
    db_emb, _ = extract_embeddings(model, db, **kw)
    q_emb, _ = extract_embeddings(model, query, **kw)
    result = revisited_map(q_emb @ db_emb.T, query.gnd)
    info = {"n_db": len(db), "n_query": len(query),
            **{k: [float(x) for x in v] for k, v in result.items() if k.startswith("mp_")}}
    return rows_from_metrics(dataset, revisited=result), info
