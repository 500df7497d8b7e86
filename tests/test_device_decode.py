"""decode='gpu' (ssml_lib.data.device_decode), checked on the CPU (libjpeg stands in for nvJPEG): deferred
transforms draw the same crops and flips as torchvision for a seed and their output matches the PIL pipeline
to within the uint8 rounding PIL does (measured mean |difference| about 0.0011 of the [0, 1] range for every
preset, train and test); device_collate is default_collate except for deferred views; PNG, grey and CMYK files
work; unsupported ops and datasets are refused with a fix; fit_method trains spreading and InsCLR with
decode='gpu' to first-step losses within 1% of decode='cpu' (measured within 0.2%)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, default_collate
from torchvision import transforms as T

from ssml_lib.data import ImageListDataset, build_transform, make_standin, open_dataset
from ssml_lib.data.device_decode import (DeviceBatch, DeviceTransform, EncodedFiles, EncodedImage,
                                         deferred_transform, device_collate)
from ssml_lib.data.transforms import NORMALIZATIONS
from ssml_lib.engine import TrainConfig, fit, read_log
from ssml_lib.errors import ConfigError
from ssml_lib.methods._common import labels_tensor
from ssml_lib.methods.schedule import build_method, fit_method, method_config, train_config
from ssml_lib.methods.views import TwoViews
from ssml_lib.models import build_model

PRESETS = ("thesis", "spreading", "stml", "insclr", "noaug")
MEAN_TOL = 0.002  # of the [0, 1] range; PIL's uint8 rounding alone gives ~0.001
SIZE, RESIZE = 32, 37


def _texture(w: int, h: int, seed: int) -> Image.Image:
    """A smooth random RGB image (detail of a few pixels, like a downscaled photo)."""
    small = np.random.default_rng(seed).random((h // 4 + 2, w // 4 + 2, 3)) * 255
    return Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.BICUBIC)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    out = {}
    for name, (w, h) in {"wide": (61, 45), "tall": (43, 58)}.items():
        out[name] = d / f"{name}.jpg"
        _texture(w, h, len(name)).save(out[name], quality=95)
    out["grey"] = d / "grey.jpg"
    _texture(50, 40, 3).convert("L").save(out["grey"], quality=95)
    out["png"] = d / "img.png"
    _texture(47, 39, 4).save(out["png"])
    out["cmyk"] = d / "cmyk.jpg"
    _texture(44, 52, 5).convert("CMYK").save(out["cmyk"], quality=95)
    return out


def pil(path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def device_out(transform: DeviceTransform, path, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return device_collate([transform(EncodedImage.from_file(path))]).materialize("cpu")[0]


def pil_out(transform, path, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return transform(pil(path))


# ---------------------------------------------------------------- random parameters and geometry

@pytest.mark.parametrize("preset", PRESETS)
def test_same_seed_draws_the_same_crop_and_flip_as_torchvision(files, preset):
    tf = build_transform(preset, True, SIZE, RESIZE, "none")
    dt = deferred_transform(tf)
    for seed in range(20):
        torch.manual_seed(seed)
        tf(pil(files["wide"]))
        after_pil = torch.rand(3)
        torch.manual_seed(seed)
        view = dt(EncodedImage.from_file(files["wide"]))
        assert torch.equal(torch.rand(3), after_pil), "the two paths drew different amounts from the RNG"
    if preset in ("stml", "insclr"):  # the box is RandomResizedCrop.get_params' own
        rrc = tf.transforms[0]
        for seed in range(20):
            torch.manual_seed(seed)
            i, j, h, w = T.RandomResizedCrop.get_params(pil(files["tall"]), rrc.scale, rrc.ratio)
            torch.manual_seed(seed)
            assert dt(EncodedImage.from_file(files["tall"])).box == (j, i, j + w, i + h)
    assert view.size == (SIZE, SIZE)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("preset", PRESETS)
def test_presets_match_the_pil_pipeline(files, preset, train):
    tf = build_transform(preset, train, SIZE, RESIZE, "none")
    dt = deferred_transform(tf)
    for name in ("wide", "tall"):
        for seed in range(4):
            a, b = pil_out(tf, files[name], seed), device_out(dt, files[name], seed)
            assert a.shape == b.shape == (3, SIZE, SIZE)
            diff = (a - b).abs()
            assert diff.mean() < MEAN_TOL, (name, seed, float(diff.mean()))
            assert diff.max() < 0.02, (name, seed, float(diff.max()))  # no misplaced pixel anywhere


@pytest.mark.parametrize("ops", [
    [T.Resize(40), T.RandomHorizontalFlip(1.0), T.RandomCrop(30)],  # crop of a mirrored view
    [T.RandomResizedCrop(36), T.RandomCrop((20, 28))],  # crop, resize, crop: still exact
    [T.Resize((30, 50)), T.CenterCrop((24, 40)), T.RandomHorizontalFlip(0.5)],
], ids=["flip-then-crop", "rrc-then-crop", "squash-center-flip"])
def test_other_compositions_match_pil(files, ops):
    tf = T.Compose([*ops, T.ToTensor()])
    dt = deferred_transform(tf)
    for seed in range(6):
        a, b = pil_out(tf, files["wide"], seed), device_out(dt, files["wide"], seed)
        assert a.shape == b.shape
        assert (a - b).abs().mean() < MEAN_TOL


def test_two_resizes_in_a_row_become_one_close_to_pil(files):
    tf = T.Compose([T.Resize(50), T.CenterCrop(40), T.Resize(30), T.ToTensor()])
    a, b = pil_out(tf, files["wide"], 0), device_out(deferred_transform(tf), files["wide"], 0)
    assert a.shape == b.shape and (a - b).abs().mean() < 0.06  # documented approximation: 0.035 measured


@pytest.mark.parametrize("normalize", NORMALIZATIONS)
def test_normalisations_match_the_pil_pipeline(files, normalize):
    tf = build_transform("thesis", False, SIZE, RESIZE, normalize)
    a, b = pil_out(tf, files["wide"], 0), device_out(deferred_transform(tf), files["wide"], 0)
    unit = 255.0 if normalize.startswith("inception") else (1.0 if normalize == "none" else 1 / 0.199)
    assert (a - b).abs().mean() / unit < MEAN_TOL


def test_batch_is_stacked_flipped_and_channels_last(files):
    dt = deferred_transform(build_transform("spreading", True, SIZE, RESIZE, "resnet"))
    views, expected = [], []
    for seed in range(6):
        name = ("wide", "tall")[seed % 2]
        torch.manual_seed(seed)
        views.append(dt(EncodedImage.from_file(files[name])))
        expected.append(pil_out(build_transform("spreading", True, SIZE, RESIZE, "resnet"), files[name], seed))
    batch = device_collate(views)
    assert isinstance(batch, DeviceBatch) and len(batch) == 6 and batch.flips.any() and not batch.flips.all()
    x = batch.materialize("cpu", channels_last=True)
    assert x.dtype == torch.float32 and x.shape == (6, 3, SIZE, SIZE)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert (x - torch.stack(expected)).abs().mean() < MEAN_TOL / 0.2


# ---------------------------------------------------------------- files

def test_png_grey_and_cmyk_files_work(files):
    flags = {k: EncodedImage.from_file(files[k]).decoded for k in ("wide", "grey", "png", "cmyk")}
    assert flags == {"wide": False, "grey": False, "png": True, "cmyk": True}  # only RGB/grey JPEGs stay bytes
    tf = build_transform("noaug", False, SIZE, RESIZE, "none")
    dt = deferred_transform(tf)
    keys = ("grey", "png", "cmyk", "wide")
    x = device_collate([dt(EncodedImage.from_file(files[k])) for k in keys]).materialize("cpu")
    for k, got in zip(keys, x):
        assert (got - tf(pil(files[k]))).abs().mean() < MEAN_TOL, k
    assert (x[0, 0] - x[0, 1]).abs().max() == 0  # grey expands to three equal channels
    view = dt(pil(files["wide"]))  # a PIL image is carried decoded
    assert view.image.decoded and view.image.data.shape == (3, 45, 61)


def test_encoded_files_forward_attributes_and_load_in_workers(files):
    paths = [str(files[k]) for k in ("wide", "tall", "grey", "png")]
    base = ImageListDataset("toy", "train", files["wide"].parent, paths, [0, 1, 1, 2])
    enc = EncodedFiles(base)
    assert len(enc) == 4 and enc.name == "toy" and enc.root == base.root and enc.paths == paths
    assert labels_tensor(enc).tolist() == [0, 1, 1, 2]
    views = TwoViews(enc, deferred_transform(build_transform("thesis", True, SIZE, RESIZE)))
    loader = DataLoader(views, batch_size=4, num_workers=1, collate_fn=device_collate)
    (v1, v2), labels, idx = next(iter(loader))  # EncodedFiles and DeviceBatch cross the worker boundary
    assert isinstance(v1, DeviceBatch) and v1.materialize("cpu").shape == (4, 3, SIZE, SIZE)
    assert labels.tolist() == [0, 1, 1, 2] and idx.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------- collate

def test_device_collate_is_default_collate_except_for_views(files):
    dt = deferred_transform(build_transform("thesis", True, SIZE, RESIZE))
    plain = build_transform("thesis", False, SIZE, RESIZE)
    items = [((dt(EncodedImage.from_file(files[k])), dt(EncodedImage.from_file(files[k]))), 3 + i,
              {"idx": i, "x": torch.full((2,), float(i))}, plain(pil(files[k])))
             for i, k in enumerate(("wide", "tall", "wide"))]
    (v1, v2), labels, extra, images = device_collate(items)
    ref = default_collate([(0, lab, ex, img) for _, lab, ex, img in items])
    assert isinstance(v1, DeviceBatch) and isinstance(v2, DeviceBatch) and len(v1) == 3
    assert torch.equal(labels, ref[1]) and torch.equal(extra["idx"], ref[2]["idx"])
    assert torch.equal(extra["x"], ref[2]["x"]) and torch.equal(images, ref[3])
    assert [torch.equal(a, b) for a, b in zip(v1.data, (items[i][0][0].image.data for i in range(3)))] == [True] * 3


def test_views_of_different_sizes_or_undecoded_images_do_not_collate(files):
    a = deferred_transform(build_transform("noaug", False, SIZE))(EncodedImage.from_file(files["wide"]))
    b = deferred_transform(build_transform("noaug", False, SIZE + 2))(EncodedImage.from_file(files["wide"]))
    with pytest.raises(ConfigError, match="Fix:"):
        device_collate([a, b])
    with pytest.raises(ConfigError, match="Fix:"):
        device_collate([(EncodedImage.from_file(files["wide"]), 0)])


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("tf", [
    T.Compose([T.Resize(40), T.ColorJitter(0.4), T.ToTensor()]),
    T.Compose([T.RandomCrop(30, padding=4), T.ToTensor()]),
    T.Compose([T.Resize(40, interpolation=T.InterpolationMode.BICUBIC), T.ToTensor()]),
    T.Compose([T.Resize(40)]),
], ids=["colorjitter", "padding", "bicubic", "no-totensor"])
def test_unsupported_transforms_are_refused_with_a_fix(tf):
    with pytest.raises(ConfigError, match="Fix:"):
        deferred_transform(tf)


def test_datasets_without_files_or_with_own_images_are_refused(files):
    class InMemory(torch.utils.data.Dataset):  # e.g. CIFAR: arrays, no files
        labels = np.zeros(2, dtype=np.int64)

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return Image.new("RGB", (8, 8)), 0, i

    class Cropping(ImageListDataset):
        def load_image(self, i):
            return super().load_image(i).crop((0, 0, 10, 10))

    with pytest.raises(ConfigError, match="Fix:"):
        EncodedFiles(InMemory())
    with pytest.raises(ConfigError, match="Fix:"):
        EncodedFiles(Cropping("q", "query", files["wide"].parent, [str(files["wide"])], [0]))


# ---------------------------------------------------------------- end to end

PX = 24
INSCLR = dict(insclr_stages=["base", "impr"], pool_size=10, memory_start_step=0, memory_use_step=1,
              memory_draw=20, impr_mode="b+i_tr2_avg0.60_k03", base_selection_threshold=0.5,
              impr_selection_threshold=0.5, impr_positive_threshold=0.9, impr_negative_threshold=0.3)
# base: augmented + deferred no-aug view per item; impr: its banks are first filled by ctx.embed over deferred views


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    root = make_standin("cub200", tmp_path_factory.mktemp("data"), "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stand-in counts differ from CUB's
        return open_dataset("cub200", root, "train")


def _fit(name, cub, out, decode, method_cfg=None, batch_size=16):
    torch.manual_seed(0)
    net = build_model("convnet4", pooling="avg", head="linear", embedding_size=16)
    tc = train_config(name, {"epochs": 1, "max_steps": 2, "batch_size": batch_size, "log_every": 1,
                             "device": "cpu", "deterministic": True, "decode": decode})
    train_tf = build_transform(name, True, PX, PX + 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keep the tiny runs quiet
        run = fit_method(name, model=net, train_set=cub, method_cfg=method_cfg, train_cfg=tc, out_dir=out,
                         train_transform=train_tf, test_transform=build_transform("noaug", False, PX),
                         progress=False)
    assert run.method.train_transform is train_tf  # the caller's transform is back after fit
    return [r["loss"] for s in run.stages for r in read_log(s.log_path)]


@pytest.mark.parametrize("name, cfg, batch", [("spreading", None, 16), ("insclr", INSCLR, 8)])
def test_fit_with_gpu_decode_on_the_cpu_trains_like_cpu_decode(cub, tmp_path, name, cfg, batch):
    gpu = _fit(name, cub, tmp_path / "gpu", "gpu", cfg, batch)
    cpu = _fit(name, cub, tmp_path / "cpu", "cpu", cfg, batch)
    assert all(math.isfinite(v) for v in gpu)
    assert gpu == pytest.approx(cpu, rel=1e-2)


def test_fit_refuses_gpu_decode_for_an_own_collate_fn_before_writing(cub, tmp_path):
    method = build_method("spreading", build_model("convnet4", embedding_size=16), method_config("spreading"),
                          train_transform=build_transform("spreading", True, PX, PX + 4),
                          test_transform=build_transform("noaug", False, PX))
    method.collate_fn = default_collate
    with pytest.raises(ConfigError, match="Fix:"):
        fit(method, cub, TrainConfig(device="cpu", decode="gpu", batch_size=8), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError):
        TrainConfig(decode="nvjpeg")
