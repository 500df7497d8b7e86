"""Training items that carry a file's bytes instead of its pixels: :class:`EncodedImage` and the
:class:`EncodedFiles` wrapper of a training set (step 1 of the device path, see the package docstring)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import functional as TF

from ...errors import ConfigError
from ..base import ImageListDataset, load_rgb

# the fix every refusal of the device path names
FIX_CPU = "Fix: use TrainConfig(decode='cpu') (PIL decoding in the DataLoader workers)"
_DEVICE_MODES = ("RGB", "L")  # JPEG modes the device decoder turns into the same RGB as PIL's convert("RGB")


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
