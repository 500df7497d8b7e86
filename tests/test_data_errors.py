"""Bad input (STUDY.md §8): every case raises an SsmlError subclass naming the problem and the fix, up front."""
import warnings

import numpy as np
import pytest
from PIL import Image

from ssml_lib.data import DatasetCountWarning, check_images, open_dataset
from ssml_lib.errors import ConfigError, DatasetError, SsmlError


def jpeg(path, size=(8, 8), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, "JPEG")


def make_cub(root, n=4):
    top = root / "CUB_200_2011"
    images = [f"{i} {i:03d}.B/{i}.jpg" for i in range(1, n + 1)]
    for i in range(1, n + 1):
        jpeg(top / "images" / f"{i:03d}.B" / f"{i}.jpg", seed=i)
    (top / "images.txt").write_text("\n".join(images) + "\n")
    # classes 1 and 2 for the first half of the images, 3 and 4 for the rest: 1-2 train, 3-4 test
    (top / "image_class_labels.txt").write_text("\n".join(f"{i} {i}" for i in range(1, n + 1)) + "\n")
    return top


def make_sop(root):
    top = root / "Stanford_Online_Products"
    top.mkdir(parents=True)
    rows = ["image_id class_id super_class_id path"] + [f"{i} {i} 1 bike_final/{i}.JPG" for i in range(1, 4)]
    (top / "Ebay_train.txt").write_text("\n".join(rows) + "\n")
    for i in range(1, 4):
        jpeg(top / "bike_final" / f"{i}.JPG", seed=i)
    return top


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetCountWarning)
        yield


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*cannot be downloaded"):
        open_dataset("cub200", tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match="no data root given"):
        open_dataset("cub200", None, "train")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        open_dataset("cub200", tmp_path / "file", "train")


def test_typo_in_root_suggests_sibling(tmp_path):
    top = make_cub(tmp_path)
    with pytest.raises(DatasetError, match=f"Did you mean {top}"):
        open_dataset("cub200", tmp_path / "CUB_200_201", "train")


def test_parent_folder_suggests_the_dataset(tmp_path):
    top = make_cub(tmp_path / "data" / "more")
    for given in (top.parent, top.parent.parent):  # one and two levels up
        with pytest.raises(DatasetError, match=f"Did you mean {top}\\?"):
            open_dataset("cub200", given, "train")
    with pytest.raises(DatasetError, match="none of images.txt, image_class_labels.txt was found"):
        open_dataset("cub200", tmp_path, "train")  # three levels up is too far to guess


def test_sub_folder_suggests_parent_and_several_candidates_are_listed(tmp_path):
    top = make_cub(tmp_path / "a")
    with pytest.raises(DatasetError, match=f"Did you mean {top}\\?"):
        open_dataset("cub200", top / "images", "train")
    make_cub(tmp_path / "b")
    with pytest.raises(DatasetError, match="several folders nearby"):
        open_dataset("cub200", tmp_path, "train")


def test_revisitop_layout_two_levels_down(tmp_path):
    top = tmp_path / "datasets" / "roxford5k"
    top.mkdir(parents=True)
    (top / "gnd_roxford5k.pkl").write_bytes(b"")
    with pytest.raises(DatasetError, match=f"Did you mean {top}\\?"):
        open_dataset("roxford5k", tmp_path, "db")


def test_missing_split_files(tmp_path):
    top = make_cub(tmp_path)
    (top / "image_class_labels.txt").unlink()
    with pytest.raises(DatasetError, match="missing image_class_labels.txt .*Re-extract CUB_200_2011.tgz"):
        open_dataset("cub200", top, "train")
    sop = make_sop(tmp_path)
    with pytest.raises(DatasetError, match="missing Ebay_test.txt .*Re-extract"):
        open_dataset("sop", sop, "test")
    cars = tmp_path / "cars"
    cars.mkdir()
    (cars / "cars_annos.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match="cannot read .*cars_annos.mat"):
        open_dataset("cars196", cars, "train")


def test_inconsistent_cub_files(tmp_path):
    top = make_cub(tmp_path)
    (top / "image_class_labels.txt").write_text("1 1\n2 1\n")
    with pytest.raises(DatasetError, match=r"image ids \[3, 4\] of images.txt have no line"):
        open_dataset("cub200", top, "train")
    (top / "image_class_labels.txt").write_text("1 1\n2 1\n3 x\n")
    with pytest.raises(DatasetError, match="line 3 .* is not '<image_id> <value>'"):
        open_dataset("cub200", top, "train")


def test_unknown_name_split_option(tmp_path):
    top = make_cub(tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset 'cub'.*Did you mean 'cub200'"):
        open_dataset("cub", top, "train")
    with pytest.raises(ConfigError, match="open_torchvision_dataset"):
        open_dataset("cifar10", top, "train")
    with pytest.raises(ConfigError, match="unknown split 'val'.*'train', 'test'"):
        open_dataset("cub200", top, "val")
    with pytest.raises(ConfigError, match="unknown split 'test'.*'db', 'query'"):
        open_dataset("roxford5k", top, "test")
    with pytest.raises(ConfigError, match="unknown option 'label_conventon'.*Did you mean 'label_convention'"):
        open_dataset("cub200", top, "train", label_conventon="file")
    assert all(issubclass(e, SsmlError) for e in (ConfigError, DatasetError))


def _damage(top):
    """Truncate image 2, replace image 3 by text, delete image 4 (all train/test of CUB, file order)."""
    p2, p3, p4 = (top / "images" / f"{i:03d}.B" / f"{i}.jpg" for i in (2, 3, 4))
    jpeg(p2, size=(64, 64), seed=9)
    p2.write_bytes(p2.read_bytes()[: len(p2.read_bytes()) * 6 // 10])
    p3.write_text("not an image")
    p4.unlink()


def test_check_images_counts_and_refuses_past_limit(tmp_path):
    top = make_cub(tmp_path, n=8)  # classes 1-4 train, 5-8 test
    _damage(top)
    train = open_dataset("cub200", top, "train")
    with pytest.raises(DatasetError, match=r"3 of 4 images .*limit 0.*skip=report.skip"):
        check_images(train)
    report = check_images(train, max_bad=3)
    assert report.n_checked == 4 and report.n_bad == 3 and report.skip == [1, 2, 3]
    reasons = [r for _, _, r in report.bad]
    assert "truncated" in reasons[0] and reasons[1].startswith("unreadable") and reasons[2] == "missing"
    with pytest.raises(DatasetError):
        check_images(train, max_bad=0.5)  # 3 of 4 > 2
    assert check_images(open_dataset("cub200", top, "test")).n_bad == 0
    with pytest.raises(ConfigError, match="max_bad"):
        check_images(train, max_bad=1.5)


def test_skip_removes_reported_images(tmp_path):
    top = make_cub(tmp_path, n=8)
    _damage(top)
    report = check_images(open_dataset("cub200", top, "train"), max_bad=3)
    clean = open_dataset("cub200", top, "train", skip=report.skip)
    assert len(clean) == 1 and clean.labels.tolist() == [1] and clean.source_index.tolist() == [0]
    assert clean.image_ids.tolist() == [1] and len(clean.skipped) == 3
    assert clean[0][1:] == (1, 0) and check_images(clean).n_bad == 0
    with pytest.raises(ConfigError, match="outside 0..3"):
        open_dataset("cub200", top, "train", skip=[4])


def test_reading_a_bad_image_names_the_fix(tmp_path):
    top = make_cub(tmp_path, n=8)
    _damage(top)
    train = open_dataset("cub200", top, "train")
    with pytest.raises(DatasetError, match="cannot be read .*check_images"):
        train[1]
    with pytest.raises(DatasetError, match="is missing.*skip=report.skip"):
        train[3]
