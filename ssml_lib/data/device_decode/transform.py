"""``deferred_transform``: a torchvision pipeline turned into a :class:`DeviceTransform`, whose output is a
:class:`DeviceView` (where to crop, whether to flip, the output size and the normalisation; step 2 of the
device path)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from torchvision.transforms import transforms as T

from ...errors import ConfigError
from ..transforms import CaffeNormalize
from .files import FIX_CPU, EncodedImage
from .geometry import _GEOMETRY, _Region
from .normalization import Normalization, _caffe_step, _normalize_step, _to_tensor_step


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
