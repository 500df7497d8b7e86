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

The parts, in pipeline order: ``files`` (encoded items), ``normalization`` and ``geometry`` (what a torchvision
pipeline does, restated), ``transform`` (the deferred transform and its views), ``batch`` (collation and the
decode on the device). Import the names from ``ssml_lib.data.device_decode``.
"""
from __future__ import annotations

from .batch import DeviceBatch, device_collate
from .files import FIX_CPU, EncodedFiles, EncodedImage  # noqa: F401  (FIX_CPU: as before the split)
from .normalization import Normalization
from .transform import DeviceTransform, DeviceView, deferred_transform

__all__ = ["DeviceBatch", "DeviceTransform", "DeviceView", "EncodedFiles", "EncodedImage", "Normalization",
           "deferred_transform", "device_collate"]
