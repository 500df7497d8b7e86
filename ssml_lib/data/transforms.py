"""Image transforms of the references, by name (the official code of each method: docs/methods.md).

``build_transform(preset, train, size, resize, normalize)``: the preset names the geometry (how images are
cropped and flipped), ``normalize`` names the input convention of the backbone. Sizes are parameters so the
stand-in can run at 48 or 64 px.

Presets (train | test):
- ``thesis``: Resize(resize) + RandomCrop(size) + HFlip | Resize(resize) + CenterCrop(size)
- ``spreading``: Resize((resize, resize)) squash + RandomCrop(size) + HFlip | squash + CenterCrop(size)
- ``stml``: RandomResizedCrop(size, scale=(0.16, 1)) + HFlip | Resize(resize) + CenterCrop(size)
- ``insclr``: RandomResizedCrop(size, scale=(0.75, 1.33), ratio=(0.75, 1.33)) + HFlip | Resize + CenterCrop
- ``noaug``: Resize((size, size)) for both (InsCLR's no-augmentation features use 512)
- ``retrieval``: test only, no geometric step (the revisited datasets thumbnail with ``max_side``)

Normalisations:
- ``resnet``: ImageNet mean/std [0.485, 0.456, 0.406] / [0.229, 0.224, 0.225]
- ``resnet_stml``: the same mean with STML's std [0.229, 0.227, 0.225]
- ``inception``: RGB->BGR, scale to 0-255, subtract [104, 117, 128] (BGR order), std 1 (STML, Proxy-NCA)
- ``inception_spreading``: scale to 0-255, subtract [122.7717, 115.9465, 102.9801] (RGB order), then RGB->BGR
- ``cifar``: mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010) (lemniscate, Spreading, ISL)
- ``none``: ToTensor only, values in [0, 1]
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torchvision import transforms as T

from ..errors import ConfigError
from .layout import check_choice

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STML_STD = (0.229, 0.227, 0.225)
CAFFE_BGR_MEAN = (104.0, 117.0, 128.0)
SPREADING_RGB_MEAN = (122.7717, 115.9465, 102.9801)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

PRESETS = ("thesis", "spreading", "stml", "insclr", "noaug", "retrieval")
NORMALIZATIONS = ("resnet", "resnet_stml", "inception", "inception_spreading", "cifar", "none")


class CaffeNormalize:
    """Tensor in [0, 1], RGB -> Caffe-style input: x 255, BGR channel order, mean subtracted, std 1.

    ``mean_order`` says whether ``mean`` is given per RGB channel (subtracted before the swap, as Spreading
    does) or per BGR channel (after it, as STML's [104, 117, 128]); the result is the same tensor either way
    once the means are listed in the matching order.
    """

    def __init__(self, mean: Sequence[float], mean_order: str = "bgr"):
        check_choice("mean_order", mean_order, ("bgr", "rgb"), "CaffeNormalize")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.mean_order = mean_order

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 255.0
        if self.mean_order == "rgb":
            return (x - self.mean).flip(0)
        return x.flip(0) - self.mean

    def __repr__(self) -> str:
        return f"CaffeNormalize(mean={self.mean.flatten().tolist()}, mean_order={self.mean_order!r})"


def normalization(name: str) -> T.Compose:
    """ToTensor followed by the named input normalisation."""
    check_choice("normalize", name, NORMALIZATIONS)
    steps = {
        "resnet": [T.Normalize(IMAGENET_MEAN, IMAGENET_STD)],
        "resnet_stml": [T.Normalize(IMAGENET_MEAN, STML_STD)],
        "inception": [CaffeNormalize(CAFFE_BGR_MEAN, "bgr")],
        "inception_spreading": [CaffeNormalize(SPREADING_RGB_MEAN, "rgb")],
        "cifar": [T.Normalize(CIFAR_MEAN, CIFAR_STD)],
        "none": [],
    }[name]
    return T.Compose([T.ToTensor(), *steps])


def default_sizes(normalize: str, size: Optional[int], resize: Optional[int]) -> tuple[int, int]:
    """Crop 227 for inception inputs and 224 otherwise; resize 256 at those sizes, else round(size * 8 / 7)."""
    if size is None:
        size = 227 if normalize.startswith("inception") else 224
    if resize is None:
        resize = 256 if 224 <= size <= 256 else int(round(size * 8 / 7))
    for what, v in (("size", size), ("resize", resize)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"build_transform: {what} must be a positive integer (pixels), got {v!r}.")
    if resize < size:
        raise ConfigError(f"build_transform: resize ({resize}) must be >= size ({size}); the crop is taken from the "
                          "resized image.")
    return size, resize


def _geometry(preset: str, train: bool, size: int, resize: int) -> list:
    if preset == "noaug":
        return [T.Resize((size, size))]
    if preset == "retrieval":
        if train:
            raise ConfigError("build_transform: 'retrieval' is a test-time preset; pick a training preset from "
                              f"{[p for p in PRESETS if p != 'retrieval']}.")
        return []
    flip = T.RandomHorizontalFlip()
    if preset == "spreading":
        squash = T.Resize((resize, resize))  # Spreading pre-squashes to 256x256, aspect ratio not kept
        return [squash, T.RandomCrop(size), flip] if train else [squash, T.CenterCrop(size)]
    if not train:
        return [T.Resize(resize), T.CenterCrop(size)]
    if preset == "thesis":
        return [T.Resize(resize), T.RandomCrop(size), flip]
    if preset == "stml":
        return [T.RandomResizedCrop(size, scale=(0.16, 1.0)), flip]
    return [T.RandomResizedCrop(size, scale=(0.75, 1.33), ratio=(0.75, 1.33)), flip]  # insclr


def build_transform(
    preset: str = "thesis", train: bool = True, size: Optional[int] = None, resize: Optional[int] = None,
    normalize: str = "resnet",
) -> T.Compose:
    """The named pipeline: PIL RGB image -> normalised float tensor (3, H, W). See the module docstring."""
    check_choice("preset", preset, PRESETS, "build_transform")
    check_choice("normalize", normalize, NORMALIZATIONS, "build_transform")
    if not isinstance(train, bool):
        raise ConfigError(f"build_transform: train must be True or False, got {train!r}.")
    size, resize = default_sizes(normalize, size, resize)
    return T.Compose([*_geometry(preset, train, size, resize), *normalization(normalize).transforms])


CIFAR_AUGMENTATIONS = ("crop", "jitter", "grey", "flip")  # the CIFAR training steps by name, in their order


def cifar_transform(train: bool = True, size: int = 32, flip: bool = True, without: Sequence[str] = (),
                    resize: bool = False) -> T.Compose:
    """The CIFAR pipelines of the Spreading and Wu et al. (lemniscate) CIFAR code, with CIFAR normalisation.

    Train: RandomResizedCrop(size, scale=(0.2, 1)), ColorJitter(0.4, 0.4, 0.4, 0.4), RandomGrayscale(0.2),
    HFlip; test: the image as it is. (The Spreading paper names the same four augmentations "with default
    parameters"; these are the values its code passes.) ``flip=False`` leaves the flip out, as the ISL CIFAR/SVHN
    code does. ``without`` leaves out the named training steps (:data:`CIFAR_AUGMENTATIONS`: ``crop``, ``jitter``,
    ``grey``, ``flip``; the Spreading paper's Tables 7 and 8), all four: the image as it is, normalised.
    ``resize=True`` brings test images to ``size`` first (Resize(size); the STL-10 stand-in runs its 96 px images
    at 32 px).
    """
    if not isinstance(train, bool):
        raise ConfigError(f"cifar_transform: train must be True or False, got {train!r}.")
    unknown = sorted(set(without) - set(CIFAR_AUGMENTATIONS))
    if isinstance(without, str) or unknown:
        raise ConfigError(f"cifar_transform: without takes a list of {', '.join(CIFAR_AUGMENTATIONS)}; got "
                          f"{without!r}.")
    named = {"crop": T.RandomResizedCrop(size, scale=(0.2, 1.0)), "jitter": T.ColorJitter(0.4, 0.4, 0.4, 0.4),
             "grey": T.RandomGrayscale(0.2), "flip": T.RandomHorizontalFlip()}
    left_out = set(without) | (set() if flip else {"flip"})
    if train:
        steps = [named[k] for k in CIFAR_AUGMENTATIONS if k not in left_out]
    else:
        steps = [T.Resize(size)] if resize else []
    return T.Compose([*steps, *normalization("cifar").transforms])  # ToTensor + Normalize

