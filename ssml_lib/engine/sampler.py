"""An epoch's batches as an index table, so the loop can resume at any batch and split it across ranks.

An epoch is a LongTensor (n_batches, global_batch) of dataset indices: the default is a seeded shuffle that
depends only on (seed, epoch); a method may return its own (STML's nearest-neighbour batches, InsCLR's anchor
lists) from ``Method.epoch_batches``. Rank r of W takes columns [r·B/W, (r+1)·B/W) of every row, like
DistributedSampler over the same global batch. The sampler state is (epoch, batches done), which the loop
records itself: the DataLoader prefetches, so a sampler cannot know how many batches were really trained on.

Each item is loaded under global RNGs seeded from (seed, epoch, position in the epoch) (:class:`SeededItems`):
random augmentation then depends neither on which worker loads an item nor on where a run was resumed, so
resumption is exact with any ``num_workers`` and results do not depend on ``num_workers``.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from ..errors import ConfigError
from .determinism import derive_seed


def default_epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int, *, shuffle: bool = True,
                          drop_last: bool = True) -> torch.Tensor:
    """(n_batches, batch_size) indices: a permutation seeded by (seed, epoch), cut into full batches.

    With ``drop_last=False`` the last batch is filled up with items from the start of the same permutation
    (a table must be rectangular), so a few items are seen twice in that epoch.
    """
    if n_items < batch_size and drop_last:
        raise ConfigError(f"the training set has {n_items} items, fewer than batch_size={batch_size}, so an epoch "
                          "would have no batch. Fix: lower batch_size or use a larger training set.")
    if shuffle:
        order = torch.randperm(n_items, generator=torch.Generator().manual_seed(derive_seed(seed, epoch)))
    else:
        order = torch.arange(n_items)
    n_full = n_items // batch_size
    if not drop_last and n_items % batch_size:
        pad = batch_size - n_items % batch_size
        order = torch.cat([order, order.repeat(pad // n_items + 1)[:pad]])
        n_full += 1
    return order[: n_full * batch_size].view(n_full, batch_size)


def check_epoch_batches(batches: torch.Tensor, n_items: int, world_size: int, source: str) -> torch.Tensor:
    if not isinstance(batches, torch.Tensor) or batches.dim() != 2 or batches.dtype not in (torch.int64, torch.int32):
        raise ConfigError(f"{source} must return an integer tensor of shape (n_batches, global_batch), got "
                          f"{getattr(batches, 'shape', type(batches).__name__)}. Fix: stack the batches into one "
                          "LongTensor.")
    if batches.shape[0] == 0:
        raise ConfigError(f"{source} returned no batches. Fix: lower batch_size or use a larger training set.")
    if batches.shape[1] % world_size:
        raise ConfigError(f"global batch {batches.shape[1]} is not divisible by the {world_size} ranks. Fix: use a "
                          f"batch_size that is a multiple of {world_size}.")
    if batches.numel() and (int(batches.min()) < 0 or int(batches.max()) >= n_items):
        raise ConfigError(f"{source} returned indices outside 0..{n_items - 1}. Fix: index the training dataset.")
    return batches.long()


class BatchTableSampler(Sampler):
    """Yields this rank's slice of rows ``start, start+1, ...`` of an epoch's batch table; with
    ``positions`` each item comes as (position of the item in the epoch's table, dataset index)."""

    def __init__(self, batches: torch.Tensor, start: int = 0, rank: int = 0, world_size: int = 1,
                 positions: bool = True):
        local = batches.shape[1] // world_size
        cols = slice(rank * local, (rank + 1) * local)
        self.rows = batches[start:, cols]
        self.pos = torch.arange(batches.numel()).view_as(batches)[start:, cols] if positions else None

    def __iter__(self):
        if self.pos is None:
            return iter(self.rows.tolist())
        return (list(zip(p, r)) for p, r in zip(self.pos.tolist(), self.rows.tolist()))

    def __len__(self) -> int:
        return self.rows.shape[0]


class SeededItems(Dataset):
    """``dataset[index]`` loaded under Python, NumPy and torch (CPU) RNGs seeded from (seed, epoch, position).

    In the main process (``num_workers=0``) the previous generator states are put back after each item, so
    loading never shifts the RNG stream of the training step (dropout, noise); the cost is microseconds."""

    def __init__(self, dataset, seed: int, epoch: int):
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        position, index = key
        s = derive_seed(self.seed, self.epoch, position)
        in_worker = get_worker_info() is not None
        if not in_worker:
            saved = random.getstate(), np.random.get_state(legacy=False), torch.get_rng_state()
        random.seed(s)
        np.random.seed(s % (2**32))
        torch.default_generator.manual_seed(s)  # CPU only: CUDA's generator belongs to the training step
        try:
            return self.dataset[index]
        finally:
            if not in_worker:
                random.setstate(saved[0])
                np.random.set_state(saved[1])  # accepts the dict form too
                torch.set_rng_state(saved[2])
