"""Stand-in datasets: real layouts that parse, class-disjoint splits, determinism, atomic and idempotent
builds, revisited ground-truth invariants, and learnable-but-not-trivial content."""
from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from ssml_lib.data import standin
from ssml_lib.data.standin import MARKER, STANDIN_NAMES, make_standin, read_standin_marker
from ssml_lib.data.standin.classes import object_class
from ssml_lib.data.standin.output import content_digest
from ssml_lib.data.standin.sizes import SIZES, DmlSize
from ssml_lib.errors import ConfigError, DatasetError
from ssml_lib.io import safe_pickle_load, sha256_file

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("standin")
    return {name: make_standin(name, root, "tiny", seed=0) for name in STANDIN_NAMES}


def _file_hashes(top: Path) -> dict[str, str]:
    return {p.relative_to(top).as_posix(): sha256_file(p) for p in sorted(top.rglob("*")) if p.is_file()}


def _read_pairs(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


# --- layouts ------------------------------------------------------------------------------------------------

def test_top_folders_have_the_real_names(tiny):
    assert {n: p.name for n, p in tiny.items()} == {
        "cub200": "CUB_200_2011", "cars196": "cars196", "sop": "Stanford_Online_Products", "gldv2": "gldv2",
        "roxford5k": "roxford5k", "rparis6k": "rparis6k", "revisitop1m": "revisitop1m", "imagenet": "imagenet",
        "oxford5k": "oxford5k", "paris6k": "paris6k", "flickr100k": "flickr100k", "gldv2_retrieval": "gldv2_retrieval",

        "cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "svhn": "svhn", "stl10": "stl10_binary", "instre": "instre"}
    for top in tiny.values():
        assert read_standin_marker(top)["standin"] is True
    assert not list(tiny["cub200"].parent.glob(".*partial*"))


def test_cub_layout(tiny):
    top, size = tiny["cub200"], SIZES["tiny"]["cub200"]
    images = _read_pairs(top / "images.txt")
    labels = dict(map(tuple, _read_pairs(top / "image_class_labels.txt")))
    classes = dict(map(tuple, _read_pairs(top / "classes.txt")))
    n_classes = size.train_classes + size.test_classes
    assert [int(c) for c in classes] == list(range(1, n_classes + 1))
    assert [int(i) for i, _ in images] == list(range(1, len(images) + 1))
    for image_id, rel in images:
        assert rel.split("/")[0] == classes[labels[image_id]]  # folder NNN.Name matches the label
        assert (top / "images" / rel).is_file() and rel.endswith(".jpg")
    assert len(images) == n_classes * size.images_per_class[0]
    assert [r[0] for r in _read_pairs(top / "train_test_split.txt")] == [i for i, _ in images]
    for row in _read_pairs(top / "bounding_boxes.txt"):
        x, y, w, h = map(float, row[1:])
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= size.image_px and y + h <= size.image_px


def test_cars_layout(tiny):
    top = tiny["cars196"]
    mat = scipy.io.loadmat(top / "cars_annos.mat")
    ann = mat["annotations"][0]
    assert ann.dtype.names == ("relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test")
    paths = [str(a[0][0]) for a in ann]
    classes = [int(a[5][0][0]) for a in ann]
    n_classes = mat["class_names"].shape[1]
    assert paths == [f"car_ims/{i:06d}.jpg" for i in range(1, len(ann) + 1)]
    assert sorted(set(classes)) == list(range(1, n_classes + 1))
    assert classes[: n_classes] != sorted(classes[: n_classes])  # interleaved, as the real file
    assert isinstance(mat["class_names"][0][0][0], str)
    modes = {Image.open(top / p).mode for p in paths}
    assert modes == {"RGB", "L"}  # some grayscale images, as in the real set
    assert b"Created on" not in (top / "cars_annos.mat").read_bytes()[:116]


def test_sop_layout(tiny):
    top, size = tiny["sop"], SIZES["tiny"]["sop"]
    header = "image_id class_id super_class_id path"
    rows = {}
    for split in ("train", "test", "info"):
        lines = (top / f"Ebay_{split}.txt").read_text().splitlines()
        assert lines[0] == header
        rows[split] = [line.split() for line in lines[1:]]
        assert [int(r[0]) for r in rows[split]] == list(range(1, len(rows[split]) + 1))
    train_classes = {int(r[1]) for r in rows["train"]}
    test_classes = {int(r[1]) for r in rows["test"]}
    assert train_classes == set(range(1, size.train_classes + 1))
    assert test_classes == set(range(size.train_classes + 1, size.train_classes + size.test_classes + 1))
    assert {int(r[2]) for r in rows["train"] + rows["test"]} == set(range(1, 13))
    assert [r[1:] for r in rows["info"]] == [r[1:] for r in rows["train"] + rows["test"]]
    for _, _, super_id, path in rows["train"] + rows["test"]:
        assert re.fullmatch(r"[a-z_]+_final/\d{12}_\d+\.JPG", path) and (top / path).is_file()


def test_gldv2_layout(tiny):
    top = tiny["gldv2"]
    with open(top / "train.csv", newline="") as f:
        train = list(csv.DictReader(f))
    with open(top / "train_clean.csv", newline="") as f:
        clean = list(csv.DictReader(f))
    assert list(train[0]) == ["id", "url", "landmark_id"] and list(clean[0]) == ["landmark_id", "images"]
    label = {r["id"]: int(r["landmark_id"]) for r in train}
    assert len(label) == len(train)
    for image_id in label:
        assert re.fullmatch(r"[0-9a-f]{16}", image_id)
        assert (top / "train" / image_id[0] / image_id[1] / image_id[2] / f"{image_id}.jpg").is_file()
    clean_ids = [i for r in clean for i in r["images"].split(" ")]
    assert set(clean_ids) < set(label)  # a strict subset: noisy images are left out
    assert all(label[i] == int(r["landmark_id"]) for r in clean for i in r["images"].split(" "))
    landmarks = [int(r["landmark_id"]) for r in clean]
    assert landmarks == sorted(landmarks)
    sizes = np.bincount(np.unique(list(label.values()), return_inverse=True)[1])
    assert sizes.min() < 15 <= sizes.max() and sizes.max() >= 3 * np.median(sizes)  # heavy tail


@pytest.mark.parametrize("name", ["roxford5k", "rparis6k"])
def test_revisited_gnd_invariants(tiny, name):
    top, size = tiny[name], SIZES["tiny"][name]
    data = safe_pickle_load(top / f"gnd_{name}.pkl")
    assert set(data) == {"imlist", "qimlist", "gnd"}
    imlist, qimlist, gnd = data["imlist"], data["qimlist"], data["gnd"]
    assert len(qimlist) == len(gnd) == size.landmarks * size.queries_per_landmark
    assert not set(qimlist) & set(imlist) and len(set(imlist)) == len(imlist)
    for n in imlist + qimlist:
        assert (top / "jpg" / f"{n}.jpg").is_file() and "." not in n
    fractional = False
    for q, entry in zip(qimlist, gnd):
        assert set(entry) == {"bbx", "easy", "hard", "junk"}
        sets = [set(entry[k]) for k in ("easy", "hard", "junk")]
        assert all(type(i) is int and 0 <= i < len(imlist) for s in sets for i in s)
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        assert sets[2], "every query has junk views"
        landmark = q.rsplit("_", 1)[0]
        assert all(imlist[i].rsplit("_", 1)[0] == landmark for s in sets for i in s)
        x1, y1, x2, y2 = entry["bbx"]
        assert all(type(v) is float for v in entry["bbx"])
        fractional |= any(v != int(v) for v in entry["bbx"])
        w, h = Image.open(top / "jpg" / f"{q}.jpg").size
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert (x2 - x1) * (y2 - y1) < 0.8 * w * h  # the query image shows context outside its box
    assert fractional
    assert any(not g["easy"] for g in gnd) and any(not g["hard"] for g in gnd)
    assert any(g["easy"] and g["hard"] for g in gnd)
    positives = set().union(*(set(g["easy"]) | set(g["hard"]) | set(g["junk"]) for g in gnd))
    assert len(positives) < len(imlist)  # the rest are distractors


def test_revisitop1m_and_imagenet_layouts(tiny):
    top = tiny["revisitop1m"]
    lines = (top / "revisitop1m.txt").read_text().splitlines()
    assert len(lines) == SIZES["tiny"]["revisitop1m"].images
    assert all(line.endswith(".jpg") and (top / "jpg" / line).is_file() for line in lines)
    from torchvision.datasets import ImageFolder

    size = SIZES["tiny"]["imagenet"]
    train, val = ImageFolder(tiny["imagenet"] / "train"), ImageFolder(tiny["imagenet"] / "val")
    assert train.classes == val.classes and len(train.classes) == size.classes
    assert len(train) == size.classes * size.train_per_class and len(val) == size.classes * size.val_per_class
    assert all(p.endswith(".JPEG") for p, _ in train.samples)


# --- classes ------------------------------------------------------------------------------------------------

def test_class_sets_are_disjoint_across_splits_and_datasets(tiny):
    size = SIZES["default"]
    keys = {}
    for name in ("cub200", "cars196"):
        n = size[name].train_classes + size[name].test_classes
        keys[name] = [object_class(name, c) for c in range(1, n + 1)]
    n_sop = size["sop"].train_classes + size["sop"].test_classes
    keys["sop"] = [object_class("sop", c, ("sop-super", 1 + c % 12)) for c in range(1, n_sop + 1)]
    with open(tiny["gldv2"] / "train.csv", newline="") as f:
        keys["gldv2"] = [object_class("gldv2", int(i)) for i in {r["landmark_id"] for r in csv.DictReader(f)}]
    for name in ("roxford5k", "rparis6k"):
        keys[name] = [object_class(name, c) for c in range(1, size[name].landmarks + 1)]
    keys["imagenet"] = [object_class("imagenet", c) for c in range(1, size["imagenet"].classes + 1)]
    prints = [c.fingerprint() for group in keys.values() for c in group]
    assert len(set(prints)) == len(prints)
    assert object_class("cub200", 7) == object_class("cub200", 7)  # a pure function of (namespace, number)
    assert object_class("cub200", 7) != object_class("cars196", 7)


def test_trivial_feature_is_above_chance_but_far_from_perfect(tmp_path):
    # Downsampled pixels + cosine kNN on the test classes: the classes are separable in principle, but the
    # nuisances (pose, light, clutter, occlusion) keep a trivial feature far below 100%.
    top = make_standin("cub200", tmp_path, DmlSize(8, 8, (12, 12), 48), seed=0)
    labels = dict(map(tuple, _read_pairs(top / "image_class_labels.txt")))
    test = [(rel, int(labels[i])) for i, rel in _read_pairs(top / "images.txt") if int(labels[i]) > 8]
    x = torch.tensor(np.stack([np.asarray(Image.open(top / "images" / r).convert("RGB")) for r, _ in test]))
    y = torch.tensor([c for _, c in test])
    feats = torch.nn.functional.adaptive_avg_pool2d(x.permute(0, 3, 1, 2).double() / 255, 8).flatten(1)
    feats = torch.nn.functional.normalize(feats - feats.mean(1, keepdim=True), dim=1)
    sim = feats @ feats.T
    sim.fill_diagonal_(-float("inf"))  # the query itself is excluded
    recall_at_1 = (y[sim.argmax(1)] == y).double().mean().item()
    chance = (len(y) / 8 - 1) / (len(y) - 1)
    assert 1.6 * chance < recall_at_1 < 0.7, (recall_at_1, chance)


# --- determinism, idempotence, atomicity --------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_and_another_seed_differs(tiny, tmp_path):
    for name in STANDIN_NAMES:
        again = make_standin(name, tmp_path / "a", "tiny", seed=0)
        assert _file_hashes(again) == _file_hashes(tiny[name]), name
    other = make_standin("roxford5k", tmp_path / "b", "tiny", seed=1)
    same, diff = _file_hashes(tiny["roxford5k"]), _file_hashes(other)
    assert same["gnd_roxford5k.pkl"] != diff["gnd_roxford5k.pkl"]
    other = make_standin("cub200", tmp_path / "b", "tiny", seed=1)
    same, diff = _file_hashes(tiny["cub200"]), _file_hashes(other)
    assert same["classes.txt"] == diff["classes.txt"]  # same classes, different images
    jpegs = [{v for k, v in h.items() if k.endswith(".jpg")} for h in (same, diff)]
    assert len(jpegs[1]) == len(jpegs[0]) and not jpegs[0] & jpegs[1]
    assert read_standin_marker(other)["content_sha256"] != read_standin_marker(tiny["cub200"])["content_sha256"]


def test_complete_folder_is_returned_without_regenerating(tmp_path, monkeypatch):
    top = make_standin("sop", tmp_path, "tiny")
    stamp = (top / MARKER).stat().st_mtime_ns
    monkeypatch.setitem(standin.LAYOUTS, "sop", ("Stanford_Online_Products", _fail_writer))
    assert make_standin("sop", tmp_path, "tiny") == top
    assert (top / MARKER).stat().st_mtime_ns == stamp
    assert content_digest(top)[1] == read_standin_marker(top)["content_sha256"]


def _fail_writer(*args, **kwargs):
    raise AssertionError("should not regenerate")


def test_other_parameters_replace_a_standin_but_never_a_real_folder(tmp_path):
    top = make_standin("sop", tmp_path, "tiny", seed=0)
    assert make_standin("sop", tmp_path, "tiny", seed=3) == top
    assert read_standin_marker(top)["seed"] == 3
    real = tmp_path / "r" / "CUB_200_2011"
    real.mkdir(parents=True)
    (real / "images.txt").write_text("1 a/b.jpg\n")
    with pytest.raises(DatasetError, match="not a complete stand-in"):
        make_standin("cub200", tmp_path / "r", "tiny")
    assert [p.name for p in real.iterdir()] == ["images.txt"]


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    from ssml_lib.data.standin import dml

    calls = []

    def crash(*args, **kwargs):
        calls.append(1)
        if len(calls) > 10:
            raise KeyboardInterrupt
    monkeypatch.setattr(dml, "save_jpeg", crash)
    with pytest.raises(KeyboardInterrupt):
        make_standin("cub200", tmp_path, "tiny")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert (make_standin("cub200", tmp_path, "tiny") / MARKER).is_file()


def test_killed_generation_leaves_no_marker_and_is_cleaned_up(tmp_path):
    code = ("import sys; from ssml_lib.data.standin import make_standin; "
            "make_standin('imagenet', sys.argv[1], 'default')")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env)
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob(".imagenet.partial-*/train/*/*")) and time.time() < deadline:
            assert proc.poll() is None, "the generator ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (tmp_path / "imagenet").exists() and not list(tmp_path.rglob(MARKER))
    assert list(tmp_path.glob(".imagenet.partial-*"))  # the killed run's temp folder ...
    make_standin("imagenet", tmp_path, "tiny")
    assert not list(tmp_path.glob(".imagenet.partial-*"))  # ... is removed by the next run


@pytest.mark.parametrize("kwargs, error", [
    (dict(name="mnist"), ConfigError), (dict(size="huge"), ConfigError),
    (dict(size=SIZES["tiny"]["gldv2"]), ConfigError), (dict(seed=-1), ConfigError), (dict(seed=1.5), ConfigError),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, kwargs, error):
    args = dict(name="cub200", root=tmp_path / "out", size="tiny", seed=0) | kwargs
    with pytest.raises(error):
        make_standin(**args)
    assert not (tmp_path / "out").exists()
