"""CUB-200-2011, Cars196 and SOP loaders on hand-built miniature copies of the real layouts."""
import warnings

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from ssml_lib.data import DatasetCountWarning, open_dataset
from ssml_lib.errors import ConfigError, DatasetError

CARS_FIELDS = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]


def jpeg(path, color=(200, 30, 30), size=(8, 8), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path, "JPEG")


def make_cub(root, classes=(3, 1, 101, 200, 2, 150)):
    """One image per listed class, in that order; ids 1..n. The halves split is decided by the max id (200)."""
    top = root / "CUB_200_2011"
    images, labels = [], []
    for image_id, c in enumerate(classes, start=1):
        rel = f"{c:03d}.Bird_{c}/Bird_{c}_{image_id:04d}.jpg"
        jpeg(top / "images" / rel, color=(c, 10, 10))
        images.append(f"{image_id} {rel}")
        labels.append(f"{image_id} {c}")
    (top / "images.txt").write_text("\n".join(images) + "\n")
    (top / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (top / "train_test_split.txt").write_text("\n".join(f"{i} 1" for i in range(1, len(classes) + 1)) + "\n")
    return top


def write_cars_mat(path, rows, fields=CARS_FIELDS):
    dtype = [(f, "O") for f in fields]
    ann = np.zeros((1, len(rows)), dtype=dtype)
    for i, (rel, cls, test) in enumerate(rows):
        values = {"relative_im_path": rel, "bbox_x1": 1, "bbox_y1": 2, "bbox_x2": 7, "bbox_y2": 6, "class": cls,
                  "test": test}
        ann[0, i] = tuple(np.array([values[f]]) if f == "relative_im_path" else np.array([[values.get(f, 0)]])
                          for f in fields)
    scipy.io.savemat(str(path), {"annotations": ann, "class_names": np.array(["a", "b"], dtype=object)})


def make_cars(root, classes=(99, 1, 196, 98, 5)):
    top = root / "cars196"
    rows = []
    for i, c in enumerate(classes, start=1):
        rel = f"car_ims/{i:06d}.jpg"
        jpeg(top / rel, color=(c, 50, 50), mode="L" if i == 2 else "RGB")  # one grey image, as in the real set
        rows.append((rel, c, i % 2))
    write_cars_mat(top / "cars_annos.mat", rows)
    return top


def make_sop(root):
    top = root / "Stanford_Online_Products"
    header = "image_id class_id super_class_id path"
    train = [(1, 1, 1, "bicycle_final/111_0.JPG"), (2, 1, 1, "bicycle_final/111_1.JPG"),
             (3, 7, 2, "chair_final/222_0.JPG")]
    test = [(4, 11319, 1, "bicycle_final/333_0.JPG"), (5, 11320, 3, "mug_final/444_0.JPG")]
    for fname, rows in (("Ebay_train.txt", train), ("Ebay_test.txt", test)):
        (top).mkdir(parents=True, exist_ok=True)
        (top / fname).write_text("\n".join([header] + [" ".join(map(str, r)) for r in rows]) + "\n")
        for r in rows:
            jpeg(top / r[3])
    return top


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetCountWarning)
        yield


def test_cub_splits_order_labels_paths(tmp_path, quiet):
    top = make_cub(tmp_path)
    train = open_dataset("cub200", top, "train")
    test = open_dataset("cub200", top, "test")
    assert train.labels.tolist() == [3, 1, 2]  # images.txt order, 1-based class ids as in the file
    assert test.labels.tolist() == [101, 200, 150]
    assert train.image_ids.tolist() == [1, 2, 5] and test.image_ids.tolist() == [3, 4, 6]
    assert train.paths[0] == str(top / "images" / "003.Bird_3" / "Bird_3_0001.jpg")
    assert train.class_range == (1, 100) and test.class_range == (101, 200)
    assert train.root == top and train.name == "cub200" and train.split == "train"
    zb = open_dataset("cub200", top, "test", label_convention="zero_based")
    assert zb.labels.tolist() == [100, 199, 149]


def test_getitem_returns_rgb_label_index_and_applies_transform(tmp_path, quiet):
    top = make_cub(tmp_path)
    ds = open_dataset("cub200", top, "test")
    img, label, index = ds[1]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (8, 8)
    assert (label, index) == (200, 1)
    ds = open_dataset("cub200", top, "test", transform=lambda im: torch.tensor(im.size))
    assert ds[2][0].tolist() == [8, 8] and ds[2][1:] == (150, 2)


def test_cars_reads_mat_ignores_test_flag_and_converts_grey(tmp_path, quiet):
    top = make_cars(tmp_path)
    train = open_dataset("cars196", top, "train")
    test = open_dataset("cars196", top, "test")
    assert train.labels.tolist() == [1, 98, 5] and test.labels.tolist() == [99, 196]
    assert train.paths == [str(top / "car_ims" / f"{i:06d}.jpg") for i in (2, 4, 5)]
    assert train.class_range == (1, 98) and test.class_range == (99, 196)
    img, label, _ = train[0]  # 000002.jpg was written grey
    assert img.mode == "RGB" and label == 1
    assert open_dataset("cars196", top, "train", label_convention="zero_based").labels.tolist() == [0, 97, 4]


def test_cars_fields_read_by_name_not_position(tmp_path, quiet):
    top = tmp_path / "cars"
    jpeg(top / "car_ims" / "000001.jpg")
    jpeg(top / "car_ims" / "000002.jpg")
    write_cars_mat(top / "cars_annos.mat", [("car_ims/000001.jpg", 196, 0), ("car_ims/000002.jpg", 1, 1)],
                   fields=["class", "test", "relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"])
    assert open_dataset("cars196", top, "test").paths == [str(top / "car_ims" / "000001.jpg")]
    write_cars_mat(top / "cars_annos.mat", [("car_ims/000001.jpg", 196, 0)], fields=["relative_im_path", "label"])
    with pytest.raises(DatasetError, match="expected relative_im_path.*class"):
        open_dataset("cars196", top, "test")


def test_sop_from_ebay_files(tmp_path, quiet):
    top = make_sop(tmp_path)
    train = open_dataset("sop", top, "train")
    test = open_dataset("sop", top, "test")
    assert train.labels.tolist() == [1, 1, 7] and test.labels.tolist() == [11319, 11320]
    assert train.super_labels.tolist() == [1, 1, 2] and test.image_ids.tolist() == [4, 5]
    assert test.paths == [str(top / "bicycle_final/333_0.JPG"), str(top / "mug_final/444_0.JPG")]
    assert open_dataset("sop", top, "test", label_convention="zero_based").labels.tolist() == [11318, 11319]
    assert len(train[2]) == 3 and train[2][1:] == (7, 2)


def test_sop_header_and_rows_are_checked(tmp_path, quiet):
    top = make_sop(tmp_path)
    (top / "Ebay_test.txt").write_text("4 11319 1 bicycle_final/333_0.JPG\n")
    with pytest.raises(DatasetError, match="header line"):
        open_dataset("sop", top, "test")
    (top / "Ebay_test.txt").write_text("image_id class_id super_class_id path\n4 11319 bicycle_final/333_0.JPG\n")
    with pytest.raises(DatasetError, match="4 fields"):
        open_dataset("sop", top, "test")


def test_expect_counts_warn_error_off(tmp_path):
    top = make_cub(tmp_path)
    with pytest.warns(DatasetCountWarning, match="5,864"):
        open_dataset("cub200", top, "train")
    with pytest.raises(DatasetError, match="expect_counts='off'"):
        open_dataset("cub200", top, "train", expect_counts="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(open_dataset("cub200", top, "train", expect_counts="off")) == 3
    with pytest.raises(ConfigError, match="expect_counts"):
        open_dataset("cub200", top, "train", expect_counts="loud")


def test_real_size_split_gives_protocol_counts(tmp_path):
    """200 classes with the real CUB counts split 1-100 / 101-200 into 5,864 / 5,924 without a warning."""
    top = tmp_path / "CUB_200_2011"
    (top / "images").mkdir(parents=True)
    per_class = np.r_[np.full(36, 58), np.full(64, 59), np.full(76, 59), np.full(24, 60)]  # 5,864 + 5,924
    labels = np.repeat(np.arange(1, 201), per_class)
    (top / "images.txt").write_text("".join(f"{i} x/{i}.jpg\n" for i in range(1, len(labels) + 1)))
    (top / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(labels, start=1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = open_dataset("cub200", top, "train", expect_counts="error")
        test = open_dataset("cub200", top, "test", expect_counts="error")
    assert (len(train), len(test)) == (5864, 5924)
    assert train.labels.max() == 100 and test.labels.min() == 101


def test_label_convention_is_checked(tmp_path, quiet):
    with pytest.raises(ConfigError, match="label_convention.*zero_based"):
        open_dataset("sop", make_sop(tmp_path), "train", label_convention="zero")
