"""Device placement, bf16 autocast, channels_last, and the module DDP wraps around a method's step."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Optional

import torch
from torch import nn

from ..data.device_decode import DeviceBatch
from ..errors import ConfigError
from .config import TrainConfig


def autocast(device: torch.device, amp_dtype: Optional[torch.dtype]):
    return torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()


def to_device(obj: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Tensors in (nested) tuples, lists and dicts moved to ``device``; 4-D float tensors made channels_last on
    CUDA when asked (convolutions then avoid layout conversions). A DeviceBatch (decode='gpu') is decoded and
    augmented on ``device`` into its float tensor."""
    if isinstance(obj, DeviceBatch):
        return obj.materialize(device, channels_last and device.type == "cuda")
    if isinstance(obj, torch.Tensor):
        obj = obj.to(device, non_blocking=True)
        if channels_last and device.type == "cuda" and obj.dim() == 4 and obj.is_floating_point():
            obj = obj.contiguous(memory_format=torch.channels_last)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(x, device, channels_last) for x in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device, channels_last) for k, v in obj.items()}
    return obj


class TrainingStep(nn.Module):
    """Routes DDP's forward to ``training_step``, so DDP's gradient hooks see every step."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch: Any) -> dict:
        return self.method.training_step(batch)


def resolve_amp(cfg: TrainConfig, device: torch.device) -> Optional[torch.dtype]:
    if device.type != "cuda" or cfg.amp == "off":
        return None  # ignored on CPU: bf16 autocast there is slow and changes results
    if not torch.cuda.is_bf16_supported():
        if cfg.amp == "bf16":
            raise ConfigError("amp='bf16' but this GPU has no bf16 support. Fix: use amp='auto' or 'off'.")
        return None
    return torch.bfloat16
