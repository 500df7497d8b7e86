"""``nce``: instance discrimination with a memory bank trained by noise-contrastive estimation (Wu et al., CVPR
2018), the "NCE [46]" row of the Spreading paper's CIFAR-10 table.

As :mod:`ssml_lib.methods.npsoftmax` (one view, the bank, its momentum update), but the full softmax over the
bank is replaced by :func:`ssml_lib.losses.nce_loss`: each image's own row against ``nce_k`` noise rows drawn
uniformly (with replacement, from the global torch generator, so a resumed run draws the same). The normaliser Z
is fixed at the first step, as in the official code, and kept in the checkpoint (``nce_z``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..errors import ConfigError
from ..losses.nce import nce_loss, nce_normaliser
from .npsoftmax import NPSoftmax, NPSoftmaxConfig


@dataclasses.dataclass(frozen=True)
class NCEConfig(NPSoftmaxConfig):
    nce_k: int = 4096  # official lemniscate --nce-k: noise samples per image

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nce_k < 1:
            raise ConfigError(f"nce_k must be >= 1, got {self.nce_k}. Fix: 4096 (the official value).")


class NCE(NPSoftmax):
    name: ClassVar[str] = "nce"
    Config: ClassVar[type] = NCEConfig

    def __init__(self, model, cfg: NCEConfig, *, train_transform, test_transform):
        super().__init__(model, cfg, train_transform=train_transform, test_transform=test_transform)
        self.register_buffer("nce_z", torch.tensor(-1.0, dtype=torch.float64))  # < 0: not fixed yet

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        images, _labels, idx = batch  # labels unused: self-supervised
        emb = self(images)
        bank = self.memory.features
        noise = torch.randint(0, bank.shape[0], (emb.shape[0], self.cfg.nce_k), device=emb.device)
        if float(self.nce_z) < 0:
            self.nce_z.fill_(nce_normaliser(emb, bank, idx, noise, self.cfg.temperature))
        loss = nce_loss(emb, bank, idx, noise, self.cfg.temperature, z=float(self.nce_z))
        self._pending = (idx, emb.detach())  # the bank changes after the step (backward still reads it)
        return {"loss": loss}
