"""Small pieces the method classes share: the retrieval embedding of a model's output, embedding the training
set through a chosen output, and the mined-positive precision diagnostic (labels are used only here)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

from ..engine.distributed import all_gather_tensor, gather_with_grad, world_size
from ..models import l2_normalize


# The CIFAR recipe of the instance-discrimination papers (Wu et al. 2018's lemniscate code, the Spreading paper's
# baselines): SGD 0.03, momentum 0.9, weight decay 5e-4, 200 epochs, lr x0.1 at epochs 120 and 160, batch 128.
CIFAR_TRAIN_DEFAULTS = dict(optimizer="sgd", lr=0.03, momentum=0.9, weight_decay=5e-4, epochs=200,
                            schedule="multistep", schedule_unit="epoch", milestones=(120, 160), gamma=0.1,
                            batch_size=128)


def retrieval_embedding(out: Any) -> torch.Tensor:
    """The embedding used for retrieval: ``f`` of a two-head model's ``(g, f)``, else the output itself."""
    return out[1] if isinstance(out, (tuple, list)) else out


class EmbedOutputMixin:
    """``embed_batch`` returns the output named by ``self._embed_output``: 'f' (default, the retrieval
    embedding), 'g' (second head, raw) or 'features' (pooled backbone features, L2-normalised).

    ``with self.embedding_output('g'): ctx.embed(dataset)`` reuses the engine's (DDP-aware) embedding pass.
    """

    _embed_output: str = "f"

    @contextmanager
    def embedding_output(self, which: str) -> Iterator[None]:
        old, self._embed_output = self._embed_output, which
        try:
            yield
        finally:
            self._embed_output = old

    def embed_batch(self, batch: Any) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        if self._embed_output == "features":
            return l2_normalize(self.model.features(images))
        out = self.model(images)
        if self._embed_output == "g":
            return out[0]
        return retrieval_embedding(out)


class NormalizedEmbedMixin(EmbedOutputMixin):
    """``forward`` = the retrieval embedding, L2-normalised unless the model already normalises it
    (``self.normalize``, set by the method); ``embed_batch`` with output 'f' goes through ``forward``."""

    normalize: bool = True

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        emb = retrieval_embedding(self.model(images))
        return l2_normalize(emb) if self.normalize else emb

    def embed_batch(self, batch: Any) -> torch.Tensor:
        if self._embed_output == "f":
            return self(batch[0] if isinstance(batch, (list, tuple)) else batch)
        return super().embed_batch(batch)


def gather_views(x: torch.Tensor, views: int = 1, *, grad: bool = True) -> torch.Tensor:
    """Under DDP, the global batch's rows in single-process order: ``x`` holds this rank's rows as ``views``
    stacked blocks [view 1; view 2; ...], and so does the result, over every rank's items (rank order).

    Every rank then computes the same global loss, which with DDP's gradient averaging gives exactly the
    single-process gradient (``gather_with_grad``); ``grad=False`` for teachers, indices and labels.
    Identity in a single process.
    """
    if world_size() == 1:
        return x
    gather = gather_with_grad if grad else all_gather_tensor
    return torch.cat([gather(block) for block in x.chunk(views)])


def labels_tensor(dataset: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    """int64 labels of a dataset (``.labels``), for diagnostics only."""
    from .views import base_labels

    return torch.as_tensor(np.asarray(base_labels(dataset)), dtype=torch.int64, device=device)


def neighbour_precision(table: torch.Tensor, labels: torch.Tensor, *, skip_first: bool = True) -> float | None:
    """Fraction of (anchor, neighbour) entries of ``table`` (N, K) whose neighbour shares the anchor's class;
    the first column is the anchor itself and is skipped when ``skip_first``."""
    cols = table[:, 1:] if skip_first else table
    if cols.numel() == 0:
        return None
    lab = labels.to(table.device)
    return float((lab[cols] == lab[:, None]).double().mean())
