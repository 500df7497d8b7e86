"""Base for the per-epoch batch samplers: seeded, resumable mid-epoch, split across DDP ranks (private).

Each epoch's global list of batches is a pure function of ``(seed, epoch, table)``, so resuming needs only
``epoch`` and the number of batches already consumed, no generator state. Global batch ``b`` goes to rank
``b % num_replicas``; batches beyond a multiple of ``num_replicas`` are dropped so every rank runs the same
number of steps (DDP would otherwise hang on the last step).
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from ..errors import SsmlError
from ._common import resolve_replicas


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator whose stream depends on (seed, epoch) only; SeedSequence keeps epochs independent."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


class EpochBatchSampler(Sampler[list[int]]):
    """Subclasses implement :meth:`global_batches` -> int64 (num_batches, batch_len) for one epoch."""

    def __init__(self, table: torch.Tensor, *, seed: int, num_replicas: int | None, rank: int | None):
        self.num_replicas, self.rank = resolve_replicas(num_replicas, rank)
        self.seed = int(seed)
        self.epoch = 0
        self._position = 0  # batches of the current epoch already handed out on this rank
        self._set_table(table)

    # -- to implement -------------------------------------------------------------------------------------
    def global_batches(self, epoch: int) -> torch.Tensor:
        raise NotImplementedError

    def num_global_batches(self) -> int:
        raise NotImplementedError

    # -- common machinery ----------------------------------------------------------------------------------
    def _set_table(self, table: torch.Tensor) -> None:
        self.table = table.detach().to("cpu", torch.int64).contiguous()
        self._checksum: str | None = None

    def table_checksum(self) -> str:
        if self._checksum is None:
            self._checksum = hashlib.sha1(self.table.numpy().tobytes()).hexdigest()
        return self._checksum

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; a new epoch starts from its first batch, the same epoch keeps its position."""
        if int(epoch) != self.epoch:
            self.epoch, self._position = int(epoch), 0

    def __len__(self) -> int:
        return self.num_global_batches() // self.num_replicas

    def rank_batches(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's batches of an epoch, in order, int64 (len(self), batch_len)."""
        batches = self.global_batches(self.epoch if epoch is None else epoch)
        return batches[self.rank::self.num_replicas][: len(self)]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.rank_batches()
        start = self._position
        for b in range(start, batches.shape[0]):
            self._position = b + 1
            yield batches[b].tolist()
        self._position = 0  # a finished epoch can be iterated again from its start

    def state_dict(self, consumed_batches: int | None = None) -> dict[str, Any]:
        """Resumable state. A DataLoader prefetches, so pass the number of batches the training loop has
        actually consumed in this epoch; by default the number this sampler has handed out is used."""
        position = self._position if consumed_batches is None else int(consumed_batches)
        return {"seed": self.seed, "epoch": self.epoch, "position": position,
                "num_replicas": self.num_replicas, "table_checksum": self.table_checksum()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"seed", "epoch", "position", "num_replicas", "table_checksum"} - set(state)
        if missing:
            raise SsmlError(f"sampler state lacks {sorted(missing)}; it was not written by state_dict().")
        if "table" in state:  # samplers whose table changes every epoch carry it (see NeighbourBatchSampler)
            self._set_table(torch.as_tensor(state["table"]))
        if state["table_checksum"] != self.table_checksum():
            raise SsmlError("sampler state was saved for a different neighbour table (checksum mismatch); "
                            "rebuild the sampler from the same candidate pool / features as the checkpoint.")
        if int(state["num_replicas"]) != self.num_replicas:
            raise SsmlError(f"sampler state was saved with {state['num_replicas']} replicas, resuming with "
                            f"{self.num_replicas}; resume with the same number of processes.")
        if not 0 <= int(state["position"]) <= len(self):
            raise SsmlError(f"sampler position {state['position']} outside [0, {len(self)}]; state is corrupt.")
        self.seed, self.epoch, self._position = int(state["seed"]), int(state["epoch"]), int(state["position"])
