"""Deferred views collated into one :class:`DeviceBatch` and materialised on the device: one batched JPEG
decode, then per image crop and resize, then batched flip and normalisation (steps 3 and 4 of the device
path)."""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as nnf
from torch.utils.data._utils.collate import collate, default_collate_fn_map

from ...errors import ConfigError, DatasetError
from .files import FIX_CPU, EncodedImage
from .normalization import Normalization
from .transform import DeviceView


@dataclasses.dataclass
class DeviceBatch:
    """B deferred views: every image's data back to back in one uint8 buffer (``packed``, one shared-memory
    segment from a worker), their ``shapes``, ``decoded`` (B,) bool, ``boxes`` (B, 4), ``resizes`` (B, 2),
    ``windows`` (B, 4) int64 and ``flips`` (B,) bool on the CPU (as in :class:`DeviceView`), the common output
    ``size`` (h, w) and ``norm``."""

    packed: torch.Tensor
    shapes: list[tuple[int, ...]]
    decoded: torch.Tensor
    boxes: torch.Tensor
    resizes: torch.Tensor
    windows: torch.Tensor
    flips: torch.Tensor
    size: tuple[int, int]
    norm: Normalization

    @classmethod
    def from_views(cls, views: Sequence[DeviceView]) -> "DeviceBatch":
        first = views[0]
        for v in views:
            if v.size != first.size or v.norm != first.norm:
                raise ConfigError(f"device_collate: views of one batch differ in output size ({v.size} vs "
                                  f"{first.size}) or normalisation, so they cannot be stacked. Fix: use a transform "
                                  f"with a fixed output size (a crop or a (h, w) resize), or {FIX_CPU[5:]}.")
        data = [v.image.data for v in views]
        return cls(packed=torch.cat([d.reshape(-1) for d in data]), shapes=[tuple(d.shape) for d in data],
                   decoded=torch.tensor([v.image.decoded for v in views], dtype=torch.bool),
                   boxes=torch.tensor([v.box for v in views], dtype=torch.int64),
                   resizes=torch.tensor([v.resize for v in views], dtype=torch.int64),
                   windows=torch.tensor([v.window for v in views], dtype=torch.int64),
                   flips=torch.tensor([v.flip for v in views], dtype=torch.bool), size=first.size, norm=first.norm)

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def data(self) -> list[torch.Tensor]:
        """Each image's tensor (a view into ``packed``): file bytes, or (3, H, W) pixels when decoded."""
        sizes = [math.prod(s) for s in self.shapes]
        return [d.view(s) for d, s in zip(torch.split(self.packed, sizes), self.shapes)]

    def pin_memory(self) -> "DeviceBatch":
        """Called by a DataLoader with ``pin_memory=True``."""
        return dataclasses.replace(self, packed=self.packed.pin_memory(), flips=self.flips.pin_memory())

    def materialize(self, device: torch.device | str, channels_last: bool = False) -> torch.Tensor:
        """float32 (B, 3, h, w) on ``device``: decode, crop and resize each image, then flip and normalise."""
        device = torch.device(device)
        images = self._decode(device)
        plans = zip(images, self.boxes.tolist(), self.resizes.tolist(), self.windows.tolist())  # CPU: no sync
        x = torch.stack([_render(img, box, size, window) for img, box, size, window in plans])
        flips = self.flips.to(device, non_blocking=True).view(-1, 1, 1, 1)
        x = self.norm.apply(torch.where(flips, x.flip(-1), x))
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def _decode(self, device: torch.device) -> list[torch.Tensor]:
        """uint8 (3, H, W) images on ``device``: one batched decode_jpeg of the encoded ones (nvJPEG on CUDA)."""
        from torchvision.io import ImageReadMode, decode_jpeg

        data, decoded = self.data, self.decoded.tolist()
        out: list[Optional[torch.Tensor]] = [d.to(device, non_blocking=True) if f else None
                                             for d, f in zip(data, decoded)]
        todo = [i for i, f in enumerate(decoded) if not f]
        if todo:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
                try:
                    images = decode_jpeg([data[i] for i in todo], mode=ImageReadMode.RGB, device=device)
                except RuntimeError as exc:
                    raise DatasetError(f"a JPEG of this batch cannot be decoded on {device} ({exc}). Fix: run "
                                       "ssml_lib.data.check_images(dataset, max_bad=...) and reopen the dataset "
                                       f"with skip=report.skip, or {FIX_CPU[5:]}.") from None
            for i, img in zip(todo, images):
                out[i] = img
        return out  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"DeviceBatch(n={len(self)}, size={self.size}, decoded={int(self.decoded.sum())})"


def _render(image: torch.Tensor, box: Sequence[int], size: Sequence[int], window: Sequence[int]) -> torch.Tensor:
    """float32 (3, h, w): the ``box`` of a uint8 (3, H, W) image, resized to ``size`` (bilinear, antialiased,
    skipped at the box's own size), cut to ``window``."""
    x0, y0, x1, y1 = box
    crop = image[:, y0:y1, x0:x1].unsqueeze(0).float()
    if list(size) != [y1 - y0, x1 - x0]:
        crop = nnf.interpolate(crop, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    wx0, wy0, wx1, wy1 = window
    return crop[0, :, wy0:wy1, wx0:wx1]


def _collate_views(batch: Sequence[DeviceView], *, collate_fn_map=None) -> DeviceBatch:
    return DeviceBatch.from_views(batch)


def _refuse_encoded(batch: Sequence[EncodedImage], *, collate_fn_map=None):
    raise ConfigError("device_collate: a batch holds undecoded images (EncodedImage): the method trains on the "
                      f"training set without its train_transform. {FIX_CPU}.")


_COLLATE_MAP = {**default_collate_fn_map, DeviceView: _collate_views, EncodedImage: _refuse_encoded}


def device_collate(batch: Sequence[Any]) -> Any:
    """``torch.utils.data.default_collate``, except that a list of DeviceViews becomes one DeviceBatch."""
    return collate(batch, collate_fn_map=_COLLATE_MAP)
