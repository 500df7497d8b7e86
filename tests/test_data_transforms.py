"""Named transform presets: geometry per reference, and exact values of each input normalisation."""
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from ssml_lib.data import build_transform
from ssml_lib.errors import ConfigError

COLOR = (200, 100, 50)


def kinds(transform):
    return [type(t).__name__ for t in transform.transforms]


def test_geometry_of_each_preset():
    assert kinds(build_transform("thesis", True, 48, 55)) == \
        ["Resize", "RandomCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert kinds(build_transform("thesis", False, 48, 55))[:2] == ["Resize", "CenterCrop"]
    spreading = build_transform("spreading", True, 48, 55)
    assert kinds(spreading)[:3] == ["Resize", "RandomCrop", "RandomHorizontalFlip"]
    assert tuple(spreading.transforms[0].size) == (55, 55)  # squash, aspect ratio not kept
    assert build_transform("spreading", False, 48, 55).transforms[1].size == (48, 48)
    stml = build_transform("stml", True, 48).transforms[0]
    assert isinstance(stml, T.RandomResizedCrop) and stml.scale == (0.16, 1.0)
    assert stml.ratio == pytest.approx((3 / 4, 4 / 3))
    insclr = build_transform("insclr", True, 48).transforms[0]
    assert insclr.scale == (0.75, 1.33) and insclr.ratio == (0.75, 1.33)
    assert kinds(build_transform("insclr", False, 48, 55))[:2] == ["Resize", "CenterCrop"]
    assert kinds(build_transform("retrieval", False)) == ["ToTensor", "Normalize"]


@pytest.mark.parametrize("preset", ["thesis", "spreading", "stml", "insclr", "noaug"])
@pytest.mark.parametrize("train", [True, False])
def test_output_shape_on_non_square_input(preset, train):
    out = build_transform(preset, train, size=48, resize=55)(Image.new("RGB", (100, 50), COLOR))
    assert out.shape == (3, 48, 48) and out.dtype == torch.float32


def test_thesis_test_keeps_aspect_spreading_squashes():
    # a 110x55 image: Resize(55) keeps the aspect (110x55), Resize((55, 55)) squashes; the centre crops differ
    img = Image.new("RGB", (110, 55))
    img.paste((255, 255, 255), (0, 0, 30, 55))  # white band on the left only
    thesis = build_transform("thesis", False, 48, 55, normalize="none")(img)
    squash = build_transform("spreading", False, 48, 55, normalize="none")(img)
    assert thesis[:, :, 0].max() < 0.05  # the centre of the wide image: no white
    assert squash[:, :, 0].min() > 0.95  # squashed, the white band reaches the crop


def _pixel(normalize):
    out = build_transform("noaug", False, size=4, normalize=normalize)(Image.new("RGB", (4, 4), COLOR))
    return out[:, 0, 0].double()


def test_normalisation_values():
    r, g, b = COLOR
    assert _pixel("inception").tolist() == pytest.approx([b - 104, g - 117, r - 128], abs=1e-4)  # BGR order
    assert _pixel("inception_spreading").tolist() == pytest.approx(
        [b - 102.9801, g - 115.9465, r - 122.7717], abs=1e-4)
    rgb = torch.tensor(COLOR, dtype=torch.float64) / 255
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64)
    assert torch.allclose(_pixel("resnet"), (rgb - mean) / torch.tensor([0.229, 0.224, 0.225]).double(), atol=1e-5)
    assert torch.allclose(_pixel("resnet_stml"), (rgb - mean) / torch.tensor([0.229, 0.227, 0.225]).double(),
                          atol=1e-5)
    assert torch.allclose(_pixel("none"), rgb, atol=1e-6)
    cifar = (rgb - torch.tensor([0.4914, 0.4822, 0.4465]).double()) / torch.tensor([0.2023, 0.1994, 0.2010]).double()
    assert torch.allclose(_pixel("cifar"), cifar, atol=1e-5)


def test_default_sizes():
    assert build_transform("thesis", False, normalize="inception")(Image.new("RGB", (300, 260))).shape == (3, 227, 227)
    resnet = build_transform("thesis", False)
    assert resnet.transforms[0].size == 256 and resnet.transforms[1].size == (224, 224)
    assert build_transform("thesis", False, size=64).transforms[0].size == 73  # round(64 * 8 / 7)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown preset 'thesys'.*Did you mean 'thesis'"):
        build_transform("thesys", True)
    with pytest.raises(ConfigError, match="unknown normalize 'imagenet'"):
        build_transform("thesis", True, normalize="imagenet")
    with pytest.raises(ConfigError, match="test-time preset"):
        build_transform("retrieval", True)
    with pytest.raises(ConfigError, match="resize .* must be >= size"):
        build_transform("thesis", True, size=64, resize=32)
    with pytest.raises(ConfigError, match="size must be a positive integer"):
        build_transform("thesis", True, size=48.0)
    with pytest.raises(ConfigError, match="train must be True or False"):
        build_transform("thesis", "yes")
