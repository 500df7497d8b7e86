"""Embed a dataset with a frozen model: eval mode, no gradients, optional multi-scale, L2-normalised rows.

Multi-scale (docs/protocols.md, Revisited): the input tensor is resized bilinearly by each scale factor, the
per-scale descriptors are combined by a power mean (mean_s v_s^p)^(1/p) -- p = 1 is InsCLR's arithmetic mean,
p = the GeM exponent is cirtorch's rule -- and the result is L2-normalised.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ._inputs import EvalInputError


def _select(out: Any, output: int | None) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        if output is None:
            raise EvalInputError(f"the model returns {len(out)} outputs; pass output=<index> to pick the "
                                 "embedding to evaluate (e.g. STML evaluates output 1).")
        return out[output]
    if output not in (None, 0):
        raise EvalInputError(f"output={output} was given but the model returns a single tensor; drop it.")
    return out


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(image, label, index) or (image, label) or image."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        parts = list(batch) + [None] * (3 - len(batch))
        return parts[0], parts[1], parts[2]
    raise EvalInputError("the dataset must yield (image, label, index) or (image, label) tuples; got "
                         f"{type(batch).__name__}.")


def _stacked(batches, stack: int):
    """Yield (images, labels, indices) with loader batches of one image shape stacked up to ``stack`` images;
    items without an index are numbered in loader order."""
    if stack < 1:
        raise EvalInputError(f"stack must be >= 1, got {stack}.")
    waiting: dict[tuple, list] = {}  # image shape -> batches waiting to be stacked
    count = seen = 0
    for batch in batches:
        x, y, index = _split_batch(batch)
        if index is None:
            index = torch.arange(seen, seen + x.shape[0])
        seen += x.shape[0]
        if stack == 1 or x.shape[0] >= stack:
            yield x, y, index
            continue
        group = waiting.setdefault(tuple(x.shape[1:]), [])
        group.append((x, y, index))
        count += x.shape[0]
        if count >= stack:  # release the fullest group
            key = max(waiting, key=lambda k: sum(b[0].shape[0] for b in waiting[k]))
            count -= sum(b[0].shape[0] for b in waiting[key])
            yield _join(waiting.pop(key))
    for group in waiting.values():
        yield _join(group)


def _join(group: list) -> tuple:
    xs, ys, idx = zip(*group)
    return torch.cat(xs), _cat_flat(ys), _cat_flat(idx)


def _cat_flat(parts: tuple) -> torch.Tensor | None:
    return None if parts[0] is None else torch.cat([torch.as_tensor(p).reshape(-1) for p in parts])


@torch.no_grad()
def extract_embeddings(model: torch.nn.Module, dataset_or_loader: Dataset | DataLoader, *,
                       device: str | torch.device = "cpu", batch_size: int = 64, num_workers: int = 0,
                       scales: Sequence[float] = (1.0,), power: float = 1.0, normalize: bool = True,
                       output: int | None = None, progress: bool = True, amp: bool = True,
                       stack: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (embeddings (n, d) float32 on CPU, labels (n,) int64) in dataset order.

    With (image, label, index) items, row ``index`` holds that item's embedding, so any loader order works.
    ``amp``: on CUDA, run the model under bf16 autocast (embeddings are returned in float32).
    ``stack``: loader batches of equal image shape are stacked into one forward of up to this many images
    (images of varied sizes come one per batch; a network in eval mode embeds each image on its own, so only
    the speed changes: one image at a time uses a CPU or GPU poorly). At most ``stack`` images wait at once.
    """
    if not scales or any(s <= 0 for s in scales):
        raise EvalInputError(f"scales must be positive factors, got {scales}; e.g. (1, 2**-0.5, 0.5).")
    if not power > 0:
        raise EvalInputError(f"power must be > 0 (1 = arithmetic mean), got {power}.")
    loader = dataset_or_loader if isinstance(dataset_or_loader, DataLoader) else DataLoader(
        dataset_or_loader, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    n = len(loader.dataset)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    emb = labels = None
    filled = torch.zeros(n, dtype=torch.bool)
    try:
        from ..progress import progress_bar

        for x, y, index in _stacked(progress_bar(loader, desc="embedding", enabled=progress), stack):
            x = x.to(device, non_blocking=True)
            total = None
            for s in scales:
                xs = x if s == 1 else torch.nn.functional.interpolate(
                    x, scale_factor=s, mode="bilinear", align_corners=False)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
                    v = _select(model(xs), output).float().flatten(1)
                if power != 1:
                    if (v < 0).any():
                        raise EvalInputError("power != 1 needs non-negative descriptors (GeM outputs); use "
                                             "power=1 for this model.")
                    v = v.pow(power)
                total = v if total is None else total + v
            v = total / len(scales)
            if power != 1:
                v = v.pow(1 / power)
            if normalize:
                v = torch.nn.functional.normalize(v, dim=1)
            v = v.cpu()
            rows = torch.as_tensor(index).long().reshape(-1)
            if emb is None:
                emb = torch.zeros(n, v.shape[1], dtype=torch.float32)
                labels = torch.full((n,), -1, dtype=torch.int64)
            emb[rows] = v
            if y is not None:
                labels[rows] = torch.as_tensor(y).long().reshape(-1)
            filled[rows] = True
    finally:
        model.train(was_training)
    if emb is None or not bool(filled.all()):
        missing = n if emb is None else int((~filled).sum())
        raise EvalInputError(f"{missing} of {n} items got no embedding; the loader must visit every item once "
                             "(drop_last=False, no sampler that skips items).")
    return emb, labels
