"""Evaluate a model under a table's protocol and return tidy result rows (percent, as the thesis prints).

- ``recall``: embed the test split (Resize + CenterCrop), Recall@K over the other test images (self excluded
  by index, ties by index) and NMI with k = number of test classes (docs/protocols.md).
- ``revisited``: embed the database and the bbx-cropped queries of rOxford5k / rParis6k one image at a time
  (sizes differ), rank by inner product, mAP Easy/Medium/Hard with capped mP@k (docs/protocols.md).

Every row is also scored on the pooled backbone features (before any head), from the same forward pass:
``R@1 (pooled)`` and ``mAP_medium (pooled)``. The "pretrained" row is scored on exactly those features, so a
reader sees whether a trained row's change comes from its backbone or from its embedding head.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..config import EvalConfig
from ..data import build_transform, open_dataset
from ..eval import extract_embeddings, nmi_with_info, recall_at_k, revisited_map
from ..results import rows_from_metrics


POOLED = " (pooled)"


class WithPooled(nn.Module):
    """``forward(x)`` = [retrieval embedding | pooled features] of one pass; ``split`` is the embedding's size.

    The pooled features are read with a forward hook on the network's pooling layer while the embedder (a
    trained method, or the network itself) computes its embedding, so nothing runs twice.
    """

    def __init__(self, embedder: nn.Module):
        super().__init__()
        self.embedder = embedder
        self.net = getattr(embedder, "model", embedder)
        self.split = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..methods._common import retrieval_embedding

        captured: list = []
        handle = self.net.pool.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            emb = retrieval_embedding(self.embedder(x)).flatten(1).float()
        finally:
            handle.remove()
        self.split = emb.shape[1]
        return torch.cat([emb, captured[0].flatten(1).float()], dim=1)


def _embed_both(model, dataset, *, normalize: bool, **kw) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(embedding, pooled features, labels), each part L2-normalised on its own when ``normalize``."""
    both = WithPooled(model)
    out, labels = extract_embeddings(both, dataset, normalize=False, **kw)
    emb, pooled = out[:, :both.split], out[:, both.split:]
    if normalize:
        emb, pooled = torch.nn.functional.normalize(emb, dim=1), torch.nn.functional.normalize(pooled, dim=1)
    return emb, pooled, labels


def _counts(standin: bool) -> str:
    # the stand-in is small by design; on real data a count off the published one is worth a warning
    return "off" if standin else "warn"


def evaluate_recall(model: torch.nn.Module, dataset: str, root: Path, cfg: EvalConfig, *, image_size: int,
                    resize_size: int, normalize: str, device: torch.device, progress: bool = True,
                    standin: bool = False, preset: str = "thesis", skip=None) -> tuple[list, dict]:
    """``skip``: file-order indices of test images to leave out (unreadable ones, within max_bad_images)."""
    tf = build_transform(preset, train=False, size=image_size, resize=resize_size, normalize=normalize)
    test = open_dataset(dataset, root, "test", tf, expect_counts=_counts(standin), skip=skip)
    emb, pooled, labels = _embed_both(model, test, device=device, batch_size=cfg.batch_size, scales=cfg.scales,
                                      normalize=cfg.normalize, progress=progress)
    recall = recall_at_k(emb, labels, cfg.ks, backend=cfg.knn_backend)
    pooled_r1 = recall_at_k(pooled, labels, (1,), backend=cfg.knn_backend)[1]
    info: dict = {"n_test": len(test), "n_test_classes": int(labels.unique().numel())}
    if test.skipped:
        info["skipped"] = list(test.skipped)
    nmi_value = None
    if cfg.nmi:
        nmi_value, nmi_info = nmi_with_info(emb, labels, seed=cfg.kmeans_seed, average=cfg.nmi_average,
                                            kmeans=cfg.kmeans_backend, n_init=cfg.kmeans_restarts)
        info["nmi"] = nmi_info
    rows = rows_from_metrics(dataset, recall=recall, nmi=nmi_value)
    rows.append({"dataset": dataset, "metric": "R@1" + POOLED, "value": 100.0 * float(pooled_r1), "setting": ""})
    return rows, info


def evaluate_revisited(model: torch.nn.Module, dataset: str, root: Path, cfg: EvalConfig, *, max_side: int | None,
                       normalize: str, device: torch.device, progress: bool = True,
                       standin: bool = False) -> tuple[list, dict]:
    tf = build_transform("retrieval", train=False, normalize=normalize)
    db = open_dataset(dataset, root, "db", tf, max_side=max_side, expect_counts=_counts(standin))
    query = open_dataset(dataset, root, "query", tf, max_side=max_side, expect_counts=_counts(standin))
    # one image per loader batch (sizes vary); images of one size are stacked into forwards of eval.batch_size
    kw = dict(device=device, batch_size=1, stack=cfg.batch_size, scales=cfg.scales, normalize=cfg.normalize,
              progress=progress)
    db_emb, db_pooled, _ = _embed_both(model, db, **kw)
    q_emb, q_pooled, _ = _embed_both(model, query, **kw)
    result = revisited_map(q_emb @ db_emb.T, query.gnd)
    pooled = revisited_map(q_pooled @ db_pooled.T, query.gnd)
    info = {"n_db": len(db), "n_query": len(query),
            **{k: [float(x) for x in v] for k, v in result.items() if k.startswith("mp_")}}
    rows = rows_from_metrics(dataset, revisited=result)
    rows.append({"dataset": dataset, "metric": "mAP_medium" + POOLED, "value": 100.0 * float(pooled["medium"]),
                 "setting": ""})
    return rows, info
