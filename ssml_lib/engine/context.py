"""What a method's hooks see of the running fit (``FitContext``), and what ``fit`` returns (``FitResult``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader, Subset

from ..data.device_decode import device_collate
from ..progress import in_notebook
from .config import TrainConfig
from .device import autocast, to_device
from .distributed import all_gather_tensor
from .logging import TIMING_KEYS


@dataclass
class FitContext:
    cfg: TrainConfig
    method: Any  # the unwrapped Method (never the DDP wrapper)
    device: torch.device
    out_dir: Path
    train_set: Any
    datasets: dict = field(default_factory=dict)  # extra named datasets passed to fit (e.g. a no-aug view)
    rank: int = 0
    world_size: int = 1
    amp_dtype: Optional[torch.dtype] = None
    optimizer: Optional[torch.optim.Optimizer] = None
    epoch: int = 0
    step: int = 0  # 0-based global index of the current step (= steps done, outside a step)
    step_in_epoch: int = 0
    steps_in_epoch: int = 0

    @property
    def seed(self) -> int:
        return self.cfg.seed

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def log(self, message: str, *, detail: bool = False) -> None:
        """Print ``message`` on the main rank (above a running progress bar). ``detail`` messages (the run's
        whole configuration, each epoch's log record) are for terminals and logs; a notebook leaves them out,
        since ``provenance.json`` and ``log.jsonl`` in the run folder hold them."""
        if not self.is_main or (detail and in_notebook()):
            return
        from tqdm import tqdm

        tqdm.write(message)

    @torch.no_grad()
    def embed(self, dataset: Any, batch_size: Optional[int] = None) -> torch.Tensor:
        """Embeddings (float32, on the device, dataset order) of every item, through ``method.embed_batch``
        in eval mode. Under DDP every rank must call it (it gathers): each rank embeds a contiguous shard and
        receives the whole matrix."""
        n = len(dataset)
        per = math.ceil(n / self.world_size)
        start, stop = min(n, self.rank * per), min(n, (self.rank + 1) * per)
        indices = list(range(start, stop)) + [n - 1] * (per - (stop - start))  # equal shards for all_gather
        loader = DataLoader(Subset(dataset, indices), batch_size=batch_size or max(1, self.cfg.batch_size // self.world_size),
                            shuffle=False, num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda",
                            generator=torch.Generator(),  # leaves the global RNG untouched
                            collate_fn=device_collate)  # default_collate, but deferred views (decode='gpu') too
        was_training = self.method.training
        self.method.eval()
        try:
            parts = []
            for batch in loader:
                with autocast(self.device, self.amp_dtype):
                    parts.append(self.method.embed_batch(to_device(batch, self.device, self.cfg.channels_last)).float())
            local = torch.cat(parts) if parts else torch.empty(0, device=self.device)
        finally:
            self.method.train(was_training)
        return all_gather_tensor(local)[:n]


@dataclass
class FitResult:
    history: list[dict]  # one record per epoch, as in log.jsonl
    out_dir: Path
    checkpoint: Path
    global_step: int
    completed: bool  # all epochs (or max_steps) done
    resumed_from_step: Optional[int] = None

    @property
    def metrics(self) -> dict:
        """The last epoch's record without timing keys (what two equal runs must agree on)."""
        return {k: v for k, v in (self.history[-1] if self.history else {}).items() if k not in TIMING_KEYS}
