"""The geometry of a torchvision pipeline (Resize, RandomCrop, CenterCrop, RandomResizedCrop,
RandomHorizontalFlip) replayed as whole-pixel box arithmetic, with the same random draws as torchvision's ops."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import transforms as T

from ...errors import ConfigError
from .files import FIX_CPU


@dataclasses.dataclass(frozen=True)
class _Region:
    """What the pipeline has made of the image so far, in whole pixels as PIL computes it: the ``box`` (x0, y0,
    x1, y1) of the original image, resized to ``resize`` (h, w), of which the ``window`` (x0, y0, x1, y1 in
    the resized box) is the current view, mirrored when ``flipped``."""

    box: tuple[int, int, int, int]
    resize: tuple[int, int]
    window: tuple[int, int, int, int]
    flipped: bool = False

    @classmethod
    def whole(cls, width: int, height: int) -> "_Region":
        return cls((0, 0, width, height), (height, width), (0, 0, width, height))

    @property
    def width(self) -> int:
        return self.window[2] - self.window[0]

    @property
    def height(self) -> int:
        return self.window[3] - self.window[1]

    def cropped(self, top: int, left: int, height: int, width: int) -> "_Region":
        """The ``height`` x ``width`` window at (top, left) of the current view (exact)."""
        if self.flipped:  # the view is mirrored: its column `left` is column width - left - w of the window
            left = self.width - left - width
        x, y = self.window[:2]
        return dataclasses.replace(self, window=(x + left, y + top, x + left + width, y + top + height))

    def resized(self, height: int, width: int) -> "_Region":
        """The current view resized to ``height`` x ``width`` (a no-op at its own size, as in torchvision)."""
        if (height, width) == (self.height, self.width):
            return self
        return dataclasses.replace(self._settled(), resize=(int(height), int(width)),
                                   window=(0, 0, int(width), int(height)))

    def _settled(self) -> "_Region":
        """The current view as a box of the original image. Exact when nothing was resized yet or the window is
        the whole resized box; otherwise (a resize, a crop, then another resize) the window's edges are mapped
        back to original pixels and rounded, and the two resamplings become one."""
        (bx0, by0, bx1, by1), (rh, rw), (wx0, wy0, wx1, wy1) = self.box, self.resize, self.window
        if self.window == (0, 0, rw, rh):
            return self
        sx, sy = (bx1 - bx0) / rw, (by1 - by0) / rh  # exactly 1 when nothing was resized
        x0 = min(math.floor(bx0 + wx0 * sx + 0.5), bx1 - 1)
        y0 = min(math.floor(by0 + wy0 * sy + 0.5), by1 - 1)
        x1, y1 = max(x0 + 1, math.floor(bx0 + wx1 * sx + 0.5)), max(y0 + 1, math.floor(by0 + wy1 * sy + 0.5))
        return _Region((x0, y0, x1, y1), (y1 - y0, x1 - x0), (0, 0, x1 - x0, y1 - y0), self.flipped)


def _bilinear(op: Any) -> None:
    if getattr(op, "interpolation", InterpolationMode.BILINEAR) != InterpolationMode.BILINEAR:
        raise ConfigError(f"deferred_transform: {op!r} uses {op.interpolation}; the device path resizes bilinearly "
                          f"only. {FIX_CPU}, or use bilinear interpolation.")


def _resize_step(op: T.Resize) -> Callable[[_Region], _Region]:
    """torchvision's Resize: an int (or [int]) sets the shorter side, keeping the aspect as torchvision rounds
    it; (h, w) squashes."""
    _bilinear(op)
    if op.max_size is not None:
        raise ConfigError(f"deferred_transform: {op!r} has max_size, which the device path does not support. "
                          f"{FIX_CPU}.")
    size = [op.size] if isinstance(op.size, int) else list(op.size)

    def step(r: _Region) -> _Region:
        if len(size) == 2:
            return r.resized(size[0], size[1])
        short, long = sorted((r.width, r.height))
        new_short, new_long = size[0], int(size[0] * long / short)  # torchvision truncates the long side
        return r.resized(new_long, new_short) if r.width <= r.height else r.resized(new_short, new_long)

    return step


def _random_crop_step(op: T.RandomCrop) -> Callable[[_Region], _Region]:
    """RandomCrop.get_params: two randint draws (row, then column) unless the crop is the whole view."""
    if op.padding is not None:
        raise ConfigError(f"deferred_transform: {op!r} pads, which the device path does not support. {FIX_CPU}.")
    th, tw = op.size

    def step(r: _Region) -> _Region:
        if r.height < th or r.width < tw:
            raise ConfigError(f"RandomCrop({th}, {tw}) of a {r.height}x{r.width} view would need padding, which "
                              f"the device path does not do. {FIX_CPU}, or resize to at least the crop size first.")
        if (r.height, r.width) == (th, tw):
            return r
        i = int(torch.randint(0, r.height - th + 1, size=(1,)).item())
        j = int(torch.randint(0, r.width - tw + 1, size=(1,)).item())
        return r.cropped(i, j, th, tw)

    return step


def _center_crop_step(op: T.CenterCrop) -> Callable[[_Region], _Region]:
    th, tw = op.size

    def step(r: _Region) -> _Region:
        if r.height < th or r.width < tw:
            raise ConfigError(f"CenterCrop({th}, {tw}) of a {r.height}x{r.width} view would need padding, which "
                              f"the device path does not do. {FIX_CPU}, or resize to at least the crop size first.")
        top, left = int(round((r.height - th) / 2.0)), int(round((r.width - tw) / 2.0))
        return r.cropped(top, left, th, tw)

    return step


def _random_resized_crop_step(op: T.RandomResizedCrop) -> Callable[[_Region], _Region]:
    """RandomResizedCrop.get_params (same RNG draws, same rounding, same central fallback), then the resize."""
    _bilinear(op)
    scale, ratio, (out_h, out_w) = tuple(op.scale), tuple(op.ratio), op.size
    log_ratio = torch.log(torch.tensor(ratio))

    def params(height: int, width: int) -> tuple[int, int, int, int]:
        area = height * width
        for _ in range(10):
            target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
            aspect = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
            w, h = int(round(math.sqrt(target_area * aspect))), int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                i = int(torch.randint(0, height - h + 1, size=(1,)).item())
                j = int(torch.randint(0, width - w + 1, size=(1,)).item())
                return i, j, h, w
        in_ratio = float(width) / float(height)
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def step(r: _Region) -> _Region:
        return r.cropped(*params(r.height, r.width)).resized(out_h, out_w)

    return step


def _flip_step(op: T.RandomHorizontalFlip) -> Callable[[_Region], _Region]:
    p = op.p

    def step(r: _Region) -> _Region:
        if torch.rand(1) < p:  # the same draw as RandomHorizontalFlip.forward
            return dataclasses.replace(r, flipped=not r.flipped)
        return r

    return step


_GEOMETRY = ((T.RandomResizedCrop, _random_resized_crop_step), (T.Resize, _resize_step),
             (T.RandomCrop, _random_crop_step), (T.CenterCrop, _center_crop_step),
             (T.RandomHorizontalFlip, _flip_step))
