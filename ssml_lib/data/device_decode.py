"""Training JPEGs decoded on the device (nvJPEG on CUDA) instead of in CPU DataLoader workers.

``TrainConfig.decode = "gpu"`` turns this on; the engine then

1. wraps the training set in :class:`EncodedFiles`, whose items are ``(EncodedImage, label, index)``: the
   file's bytes and its size read from the header, nothing decoded;
2. replaces the method's ``train_transform`` / ``test_transform`` by :func:`deferred_transform` of them: a
   :class:`DeviceTransform` draws the same random parameters as the torchvision pipeline (same calls on the
   global torch RNG, in the same order, so the engine's per-item seeding keeps runs deterministic) but only
   records where to crop, whether to flip, the output size and the normalisation: a :class:`DeviceView`;
3. collates with :func:`device_collate` (``default_collate`` everywhere except that a list of DeviceViews
   becomes one :class:`DeviceBatch`);
4. ``to_device`` calls :meth:`DeviceBatch.materialize`: one batched ``decode_jpeg`` on the device, per image
   the crop of the original image, one bilinear antialiased resize (``F.interpolate``) and the crop of the
   resized image, then batched flip and normalisation.

The geometry is PIL's, in the same whole pixels: a RandomResizedCrop is a crop of the original then a resize,
a Resize + RandomCrop/CenterCrop a resize of the whole image then a crop. Differences from the PIL pipeline
(see ``TrainConfig`` for the measured sizes): the resize is computed in float with no rounding to uint8;
the JPEG decoders differ in IDCT/chroma-upsampling rounding (nvJPEG vs libjpeg); and a pipeline that resizes,
crops and resizes again gets one resize of the crop (its box rounded to original pixels), not two.

Files that are not 8-bit RGB/grey JPEGs (PNG, CMYK JPEG, ...) are decoded on the CPU in the worker instead, so
any file works; only the JPEGs go to the device decoder.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as nnf
from PIL import Image
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import collate, default_collate_fn_map
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF
from torchvision.transforms import transforms as T

from ..errors import ConfigError, DatasetError
from .base import ImageListDataset, load_rgb
from .transforms import CaffeNormalize

FIX_CPU = "Fix: use TrainConfig(decode='cpu') (PIL decoding in the DataLoader workers)"
_DEVICE_MODES = ("RGB", "L")  # JPEG modes the device decoder turns into the same RGB as PIL's convert("RGB")


# ---------------------------------------------------------------------------------------------- encoded files

@dataclasses.dataclass
class EncodedImage:
    """One image as a training item: ``data`` is the file's bytes (1-D uint8) or, when ``decoded``, the
    pixels (uint8 (3, H, W)) of a file the device decoder cannot read; ``size`` is (width, height)."""

    data: torch.Tensor
    size: tuple[int, int]
    decoded: bool = False

    @classmethod
    def from_file(cls, path: str | Path) -> "EncodedImage":
        """Bytes of an 8-bit RGB or grey JPEG (size from the header, no decoding); other files decoded here."""
        try:
            with Image.open(path) as img:
                fmt, mode, size = img.format, img.mode, img.size
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            load_rgb(path)  # raises the DatasetError that names the file and the fix
            raise
        if fmt != "JPEG" or mode not in _DEVICE_MODES:
            return cls.from_pil(load_rgb(path))
        raw = Path(path).read_bytes()  # torchvision.io.read_file is deprecated; same 1-D uint8 tensor
        return cls(torch.frombuffer(bytearray(raw), dtype=torch.uint8), size)

    @classmethod
    def from_pil(cls, image: Image.Image) -> "EncodedImage":
        """Decoded pixels of a PIL image (converted to RGB)."""
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return cls(TF.pil_to_tensor(rgb), rgb.size, decoded=True)


class EncodedFiles(Dataset):
    """``dataset[i]`` as ``(EncodedImage, label, i)``; every other attribute (``labels``, ``root``, ``paths``,
    ``name``, ...) is the wrapped dataset's, so label look-ups and the stand-in detection keep working."""

    def __init__(self, dataset: Any):
        _check_encodable(dataset)
        self.base = dataset

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        i = int(i)
        return EncodedImage.from_file(self.base.paths[i]), int(self.base.labels[i]), i

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "base":  # not yet set (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def __repr__(self) -> str:
        return f"EncodedFiles({self.base!r})"


def _check_encodable(dataset: Any) -> None:
    who = type(dataset).__name__
    if getattr(dataset, "paths", None) is None or getattr(dataset, "labels", None) is None:
        raise ConfigError(f"decode='gpu' reads image files, but the training set ({who}) has no .paths/.labels "
                          f"(e.g. CIFAR held in memory). {FIX_CPU}.")
    own = getattr(type(dataset), "load_image", None)
    if own is not None and own is not ImageListDataset.load_image:
        raise ConfigError(f"decode='gpu' decodes whole files, but {who} overrides load_image (it crops or "
                          f"changes images). {FIX_CPU}.")
    if getattr(dataset, "transform", None) is not None:
        raise ConfigError(f"decode='gpu': the training set already has a transform ({dataset.transform!r}). Fix: "
                          "open it with transform=None; the method applies its own transforms.")


# ---------------------------------------------------------------------------------------------- normalisation

@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per output channel c: ``scale[c] * x[perm[c]] + shift[c]`` of pixel values x in 0..255."""

    perm: tuple[int, ...] = (0, 1, 2)
    scale: tuple[float, ...] = (1.0, 1.0, 1.0)
    shift: tuple[float, ...] = (0.0, 0.0, 0.0)

    def affine(self, scale: Sequence[float], shift: Sequence[float]) -> "Normalization":
        """Followed by ``y * scale + shift`` per output channel."""
        return Normalization(self.perm, tuple(a * s for a, s in zip(self.scale, scale)),
                             tuple(b * s + t for b, s, t in zip(self.shift, scale, shift)))

    def reversed_channels(self) -> "Normalization":
        """Followed by RGB <-> BGR (``flip(0)`` of the channels)."""
        return Normalization(self.perm[::-1], self.scale[::-1], self.shift[::-1])

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float pixel values -> normalised input (three channel ops, no host-to-device copy)."""
        return torch.stack([x[:, p] * a + b for p, a, b in zip(self.perm, self.scale, self.shift)], dim=1)


def _to_tensor_step(norm: Normalization) -> Normalization:
    return norm.affine((1 / 255.0,) * 3, (0.0,) * 3)


def _normalize_step(norm: Normalization, op: T.Normalize) -> Normalization:
    mean, std = _three(op.mean, "Normalize mean"), _three(op.std, "Normalize std")
    return norm.affine(tuple(1.0 / s for s in std), tuple(-m / s for m, s in zip(mean, std)))


def _caffe_step(norm: Normalization, op: CaffeNormalize) -> Normalization:
    mean = _three(op.mean.flatten().tolist(), "CaffeNormalize mean")
    norm = norm.affine((255.0,) * 3, (0.0,) * 3)
    if op.mean_order == "rgb":  # (x - mean).flip(0)
        return norm.affine((1.0,) * 3, tuple(-m for m in mean)).reversed_channels()
    return norm.reversed_channels().affine((1.0,) * 3, tuple(-m for m in mean))  # x.flip(0) - mean


def _three(values: Any, what: str) -> tuple[float, float, float]:
    v = [float(x) for x in (values.tolist() if isinstance(values, torch.Tensor) else values)]
    if len(v) == 1:
        v = v * 3
    if len(v) != 3:
        raise ConfigError(f"deferred_transform: {what} must have 1 or 3 values, got {len(v)}. {FIX_CPU}.")
    return v[0], v[1], v[2]


# ---------------------------------------------------------------------------------------------- geometry

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


# ---------------------------------------------------------------------------------------------- views

@dataclasses.dataclass
class DeviceView:
    """One deferred view: ``image`` (bytes or pixels); ``box`` (x0, y0, x1, y1) of the original image, resized
    to ``resize`` (h, w), of which ``window`` (x0, y0, x1, y1) is kept; then ``flip``; ``size`` (h, w) is the
    window's; ``norm`` the normalisation. :func:`device_collate` batches these."""

    image: EncodedImage
    box: tuple[int, int, int, int]
    resize: tuple[int, int]
    window: tuple[int, int, int, int]
    flip: bool
    size: tuple[int, int]
    norm: Normalization


class DeviceTransform:
    """A torchvision Compose replayed as box arithmetic: ``transform(image) -> DeviceView``.

    ``image`` is an :class:`EncodedImage` or a PIL image (its pixels are then carried, decoded). Random
    parameters come from the global torch RNG with the same calls as the torchvision ops, so with the same seed
    both pipelines pick the same crop and flip."""

    def __init__(self, steps: Sequence[Callable[[_Region], _Region]], norm: Normalization, source: str):
        self.steps, self.norm, self.source = tuple(steps), norm, source

    def __call__(self, image: Any) -> DeviceView:
        enc = image if isinstance(image, EncodedImage) else EncodedImage.from_pil(image)
        region = _Region.whole(*enc.size)
        for step in self.steps:
            region = step(region)
        return DeviceView(enc, region.box, region.resize, region.window, region.flipped,
                          (region.height, region.width), self.norm)

    def __repr__(self) -> str:
        return f"DeviceTransform({self.source})"


def deferred_transform(transform: Any) -> DeviceTransform:
    """The DeviceTransform of a torchvision ``T.Compose`` (nested Composes allowed) of Resize, RandomCrop,
    CenterCrop, RandomResizedCrop, RandomHorizontalFlip, ToTensor, Normalize and CaffeNormalize; a
    DeviceTransform is returned unchanged. Any other op is a ConfigError."""
    if isinstance(transform, DeviceTransform):
        return transform
    steps, norm, to_tensor = [], Normalization(), False
    for op in _flatten(transform):
        if isinstance(op, T.ToTensor):
            norm, to_tensor = _to_tensor_step(norm), True
        elif isinstance(op, (T.Normalize, CaffeNormalize)):
            if not to_tensor:
                raise ConfigError(f"deferred_transform: {op!r} comes before ToTensor. Fix: put ToTensor first.")
            norm = _normalize_step(norm, op) if isinstance(op, T.Normalize) else _caffe_step(norm, op)
        else:
            steps.append(_geometry_step(op))
    if not to_tensor:
        raise ConfigError(f"deferred_transform: {transform!r} has no ToTensor, so its output is not a tensor. "
                          "Fix: end it with ToTensor (and a normalisation), e.g. build_transform(...).")
    return DeviceTransform(steps, norm, repr(transform).replace("\n", " "))


def _flatten(transform: Any) -> list:
    if isinstance(transform, T.Compose):
        return [op for t in transform.transforms for op in _flatten(t)]
    return [transform]


def _geometry_step(op: Any) -> Callable[[_Region], _Region]:
    for cls, make in _GEOMETRY:
        if type(op) is cls:  # subclasses may change behaviour: only the exact ops are replayed
            return make(op)
    raise ConfigError(f"deferred_transform: {type(op).__name__} ({op!r}) has no device equivalent (supported: "
                      "Resize, RandomCrop, CenterCrop, RandomResizedCrop, RandomHorizontalFlip, ToTensor, Normalize, "
                      f"CaffeNormalize). {FIX_CPU}.")


# ---------------------------------------------------------------------------------------------- batches

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


__all__ = ["DeviceBatch", "DeviceTransform", "DeviceView", "EncodedFiles", "EncodedImage", "Normalization",
           "deferred_transform", "device_collate"]
