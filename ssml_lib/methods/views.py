"""Dataset wrappers that turn a base dataset of ``(PIL image, label, index)`` into what a method trains on.

The base is what ``ssml_lib.data.open_dataset(..., transform=None)`` returns: untransformed images, so that a
method can draw as many augmented views as it needs. Every wrapper keeps the base's ``labels`` (for the
mined-positive precision diagnostic only) and returns the base index, so banks and pools stay addressed by
dataset index.

- :class:`Transformed`: ``(tensor, label, index)``; one transform (the no-augmentation view for features).
- :class:`TwoViews`: ``((view1, view2), label, index)``; two independent draws of the transform. With a
  ``partner`` table, view 2 comes from image ``partner[index]`` (Spreading's CUB 1-NN trick).
- :class:`NeighbourTuples`: ``(views (1 + k, C, H, W), labels (1 + k,), indices (1 + k,))``; an anchor and
  the rows of a neighbour table (InsCLR's anchor + top-k candidate tuples, MoM's pools).

Augmentations draw from the global torch RNG, whose state the engine checkpoints, so a resumed run with
``num_workers=0`` sees the same views as an uninterrupted one.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError


def _check_base(base: Any, transform: Optional[Callable], who: str) -> None:
    if getattr(base, "transform", None) is not None:
        raise ConfigError(f"{who}: the base dataset already has a transform ({base.transform!r}), so its items are "
                          "not PIL images. Fix: open it with transform=None (open_dataset(name, root, split)); the "
                          "method applies its own train/test transforms.")
    if transform is not None and not callable(transform):
        raise ConfigError(f"{who}: transform must be callable (e.g. build_transform(...)), got "
                          f"{type(transform).__name__}.")
    if not hasattr(base, "__len__") or not hasattr(base, "__getitem__"):
        raise ConfigError(f"{who}: the base must be a map-style dataset, got {type(base).__name__}.")


def base_labels(base: Any) -> np.ndarray:
    """int64 labels of every item of ``base`` (its ``.labels``; read item by item only as a fallback)."""
    labels = getattr(base, "labels", None)
    if labels is None:  # e.g. a torch Subset: labels of the wrapped dataset, in subset order
        inner = getattr(base, "dataset", None)
        if inner is not None and getattr(inner, "labels", None) is not None and hasattr(base, "indices"):
            return np.asarray(inner.labels, dtype=np.int64)[np.asarray(base.indices)]
        return np.asarray([int(base[i][1]) for i in range(len(base))], dtype=np.int64)
    return np.asarray(labels, dtype=np.int64).reshape(-1)


class _Wrapper(Dataset):
    def __init__(self, base: Any, transform: Optional[Callable]):
        _check_base(base, transform, type(self).__name__)
        self.base, self.transform = base, transform
        self.root = getattr(base, "root", None)  # the engine infers "stand-in or real" from it

    def __len__(self) -> int:
        return len(self.base)

    @property
    def labels(self) -> np.ndarray:
        return base_labels(self.base)

    def _image(self, i: int) -> Any:
        image = self.base[int(i)][0]
        return self.transform(image) if self.transform is not None else image

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r}, n={len(self)})"


class Transformed(_Wrapper):
    """``(transform(image), label, index)``."""

    def __getitem__(self, i: int):
        image, label, _ = self.base[int(i)]
        return (self.transform(image) if self.transform is not None else image), int(label), int(i)


class TwoViews(_Wrapper):
    """``((transform(image_i), transform(image_partner[i])), label_i, i)``; partner defaults to i itself."""

    def __init__(self, base: Any, transform: Callable, partner: Optional[torch.Tensor] = None):
        super().__init__(base, transform)
        self.partner: Optional[torch.Tensor] = None
        self.set_partner(partner)

    def set_partner(self, partner: Optional[Any]) -> None:
        """Install a partner table (N,) of dataset indices (a CPU copy is kept), or None for plain views."""
        if partner is None:
            self.partner = None
            return
        p = torch.as_tensor(partner).detach().to("cpu", torch.int64).reshape(-1)
        if p.numel() != len(self.base) or (p.numel() and (int(p.min()) < 0 or int(p.max()) >= len(self.base))):
            raise ConfigError(f"TwoViews: the partner table must hold {len(self.base)} indices in "
                              f"0..{len(self.base) - 1}, got {p.numel()} values. Fix: build it from features of "
                              "this same dataset.")
        self.partner = p

    def __getitem__(self, i: int):
        i = int(i)
        image, label, _ = self.base[i]
        j = i if self.partner is None else int(self.partner[i])
        second = image if j == i else self.base[j][0]
        return (self.transform(image), self.transform(second)), int(label), i


class NeighbourTuples(_Wrapper):
    """Item ``i``: the anchor and its neighbours ``table[i]`` (k columns), each through ``transform``.

    Returns ``(views (1 + k, C, H, W), labels (1 + k,), indices (1 + k,))``; the default collate stacks these
    to (B, 1 + k, ...). Labels are for diagnostics only. Replace the table each epoch/stage with
    :meth:`set_table`.
    """

    def __init__(self, base: Any, transform: Callable, table: Any):
        super().__init__(base, transform)
        self.set_table(table)

    def set_table(self, table: Any) -> None:
        t = torch.as_tensor(table).detach().to("cpu", torch.int64)
        n = len(self.base)
        if t.dim() != 2 or t.shape[0] != n or (t.numel() and (int(t.min()) < 0 or int(t.max()) >= n)):
            raise ConfigError(f"NeighbourTuples: the table must be ({n}, k) indices into the base dataset, got "
                              f"shape {tuple(t.shape)}. Fix: build it with candidate_pool/neighbour_table on features "
                              "of this same dataset.")
        self.table = t

    def __getitem__(self, i: int):
        i = int(i)
        indices = torch.cat([torch.tensor([i]), self.table[i]])
        items = [self.base[int(j)] for j in indices]
        views = torch.stack([self.transform(item[0]) for item in items])
        labels = torch.tensor([int(item[1]) for item in items], dtype=torch.int64)
        return views, labels, indices
