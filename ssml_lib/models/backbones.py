"""Backbones that return a spatial feature map ``(B, C, H, W)``; pooling and heads come after.

Each trunk keeps torchvision's parameter names (``conv1.weight``, ``layer4.1.bn2.bias``, ``inception5b...``)
so a torchvision ImageNet checkpoint loads into it once its classifier keys are dropped.

GoogLeNet: the Spreading and STML code use BVLC GoogLeNet (no BatchNorm, LRN after conv1/conv2). torchvision's
``googlenet`` is the BN variant ported from TensorFlow; it is what we use (1024-d features, aux heads off). Its
ImageNet weights expect inputs in [-1, 1]; ``transform_input=True`` maps ImageNet-normalised images there, as
torchvision itself does whenever it loads those weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torchvision import models as tvm

from ssml_lib.errors import ConfigError


class ConvNet4(nn.Module):
    """Four conv-BN-ReLU-maxpool blocks (32-64-128-256); the CPU stand-in network (48 px in, 3x3x256 out)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), in_channels: int = 3):
        super().__init__()
        blocks, prev = [], in_channels
        for width in widths:
            blocks.append(nn.Sequential(
                nn.Conv2d(prev, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),  # ceil: small query crops never pool to 0x0
            ))
            prev = width
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = prev
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class ResNetTrunk(nn.Module):
    """torchvision ResNet up to ``layer4`` (stride 32, or 8 with the CIFAR stem); no avgpool, no fc."""

    def __init__(self, resnet: tvm.ResNet, cifar_stem: bool = False):
        super().__init__()
        if cifar_stem:
            # CIFAR variant (ISL, Spreading CIFAR tables): 3x3 stride-1 stem and no max-pool keep 32 px maps usable.
            resnet.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(resnet.conv1.weight, mode="fan_out", nonlinearity="relu")
            resnet.maxpool = nn.Identity()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(resnet, name))
        self.out_channels = resnet.fc.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class AlexNetCifarTrunk(nn.Module):
    """The small-image AlexNet of the ISL code (32 px in): five 3x3 conv-BN-ReLU layers (64-192-384-256-256, max-pool
    after the 1st, 2nd and 5th: conv5 is 256 x 4 x 4), then two fully connected layers (4096 -> 1024 -> 1024, each
    with BatchNorm and ReLU). ``forward`` returns the second FC output as a (B, 1024, 1, 1) map, so pooling is a no-op
    and the embedding head is the code's 128-d projection; :meth:`conv5` is the last conv map (for the linear probe).
    """

    def __init__(self, width: int = 1024):
        super().__init__()
        layers, prev = [], 3
        for i, out in enumerate((64, 192, 384, 256, 256)):
            layers += [nn.Conv2d(prev, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            if i in (0, 1, 4):
                layers.append(nn.MaxPool2d(2, 2))
            prev = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(256 * 4 * 4, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True))
        self.out_channels = width

    def conv5(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))[:, :, None, None]


def conv5_features(backbone: nn.Module, x: torch.Tensor, pool: str = "avg") -> torch.Tensor:
    """The last convolutional map of ``backbone`` (AlexNet's conv5, ResNet's layer4 = conv5_x) as one vector per
    image: its global average (``avg``) or the whole map flattened (``flatten``)."""
    fmap = backbone.conv5(x) if hasattr(backbone, "conv5") else backbone(x)
    if pool == "avg":
        return fmap.mean(dim=(2, 3))
    if pool == "flatten":
        return fmap.flatten(1)
    raise ConfigError(f"unknown conv5 pooling {pool!r}; use 'avg' or 'flatten'")


_GOOGLENET_ORDER = ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
                    "inception5a", "inception5b")


class GoogLeNetTrunk(nn.Module):
    """torchvision (BN) GoogLeNet up to ``inception5b``: 1024 channels at stride 32."""

    def __init__(self, transform_input: bool = False):
        super().__init__()
        net = tvm.GoogLeNet(aux_logits=False, transform_input=False, init_weights=True)
        for name in _GOOGLENET_ORDER:
            setattr(self, name, getattr(net, name))
        self.transform_input = transform_input
        # ImageNet mean/std normalised -> (x - 0.5) / 0.5, per channel; non-persistent so state dicts stay clean.
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("_scale", (std / 0.5).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_shift", ((mean - 0.5) / 0.5).view(1, 3, 1, 1), persistent=False)
        self.out_channels = 1024

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform_input:
            x = x * self._scale + self._shift
        for name in _GOOGLENET_ORDER:
            x = getattr(self, name)(x)
        return x

    def extra_repr(self) -> str:
        return f"transform_input={self.transform_input}"


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone, its feature size, and where its ImageNet weights come from."""
    factory: Callable[..., nn.Module]
    feature_dim: int
    imagenet_weights: str | None = None   # attribute path in torchvision.models, e.g. "ResNet50_Weights.IMAGENET1K_V1"
    classifier_prefixes: tuple[str, ...] = ()   # keys of a classifier checkpoint that the trunk does not have


BACKBONES: dict[str, BackboneSpec] = {
    "convnet4": BackboneSpec(lambda **_: ConvNet4(), 256),
    "googlenet": BackboneSpec(lambda transform_input=False, **_: GoogLeNetTrunk(transform_input), 1024,
                              "GoogLeNet_Weights.IMAGENET1K_V1", ("fc.", "aux1.", "aux2.")),
    "resnet18": BackboneSpec(lambda **_: ResNetTrunk(tvm.resnet18()), 512,
                             "ResNet18_Weights.IMAGENET1K_V1", ("fc.",)),
    "resnet18_cifar": BackboneSpec(lambda **_: ResNetTrunk(tvm.resnet18(), cifar_stem=True), 512, None, ("fc.",)),
    "resnet50_cifar": BackboneSpec(lambda **_: ResNetTrunk(tvm.resnet50(), cifar_stem=True), 2048, None, ("fc.",)),
    "alexnet_cifar": BackboneSpec(lambda **_: AlexNetCifarTrunk(), 1024),
    "resnet50": BackboneSpec(lambda **_: ResNetTrunk(tvm.resnet50()), 2048,
                             "ResNet50_Weights.IMAGENET1K_V1", ("fc.",)),
    "resnet101": BackboneSpec(lambda **_: ResNetTrunk(tvm.resnet101()), 2048,
                              "ResNet101_Weights.IMAGENET1K_V1", ("fc.",)),
}


def backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name]


def build_backbone(name: str, *, transform_input: bool = False) -> nn.Module:
    """A randomly initialised trunk with ``.out_channels``; ``transform_input`` applies to GoogLeNet only."""
    return backbone_spec(name).factory(transform_input=transform_input)
