"""The Spreading paper's Table 2 notebook (STL-10): its params files (one per row, a source on every value, the
CIFAR recipe at 96 px, refused without data_root), the stand-in layers, the training-split choice, and a tiny
end-to-end run on the 105K analogue (kNN over the labelled images, linear classifier) that writes only where told."""
from __future__ import annotations

from functools import partial

import pytest

from conftest import isolate
from paper_params_case import check_paper_params_file
from ssml_lib.errors import ConfigError
from ssml_lib.experiments.paper_cifar import resolve_row
from ssml_lib.experiments.paper_stl10 import ROWS, STL10_TABLE, TABLE, TRAIN_SPLITS, run_paper_stl10_notebook
from ssml_lib.results import load_reference

resolve = partial(resolve_row, table=STL10_TABLE)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_params_file_names_its_row_comments_every_value_and_resolves(row):
    check_paper_params_file(STL10_TABLE, row)
    r = resolve(row, data_root="/data", paper_scale=True)
    assert r.model == dict(backbone="resnet18_cifar", embedding_size=128, knn_k=200, knn_temperature=0.1,
                           input_px=96, probe_epochs=100)
    if row != "pretrained":  # the CIFAR recipe, "the same experimental setting as CIFAR-10"
        t = r.train_cfg
        assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.batch_size, t.epochs, list(t.milestones)) == \
            ("sgd", 0.03, 0.9, 5e-4, 128, 200, [120, 160])
    with pytest.raises(ConfigError, match="needs the real STL-10"):
        resolve(row, paper_scale=True)


def test_standin_layers():
    r = resolve("spreading", standin_size="tiny")
    assert (r.model["backbone"], r.model["input_px"], r.train_cfg.epochs) == ("convnet4", 32, 1)
    assert resolve("nce", standin_size="tiny").method_cfg.nce_k == 5  # 4,096 / 50,000 of the 60 labelled images


def test_input_px_resizes_the_test_images_and_sets_the_crop():
    from PIL import Image

    from ssml_lib.experiments.paper_cifar_run import row_transforms

    image = Image.new("RGB", (96, 96))
    test, train = row_transforms({"input_px": 32})
    assert test(image).shape == train(image).shape == (3, 32, 32)
    test, train = row_transforms({})  # the CIFAR tables: test images as they are, 32 px crops
    assert test(image).shape == (3, 96, 96) and train(image).shape == (3, 32, 32)


def test_reference_rows_match_our_rows_and_splits():
    ref = load_reference(TABLE)
    ours = ref[ref["method"].isin(ROWS)]
    assert set(ours["method"]) == set(ROWS) and set(ours["setting"]) <= {"", *TRAIN_SPLITS.values()}


def test_an_unknown_split_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="train_split 'unlabeled' is not one of train, train\\+unlabeled"):
        run_paper_stl10_notebook({"method": "spreading", "train_split": "unlabeled"})


def test_tiny_run_on_train_and_unlabeled(tmp_path, monkeypatch):
    isolate(tmp_path, tmp_path / "cache", monkeypatch)
    result = run_paper_stl10_notebook({"method": ["pretrained", "spreading"], "train_split": "train+unlabeled",
                                       "standin_size": "tiny", "device": "cpu", "seed": 0})
    assert result.standin and str(result.paths["knn_curve"]).startswith(str(tmp_path))
    table = result.tables["Table 2"].set_index(["method", "training images"])
    lin, knn = "ours, STAND-IN (%) linear classifier", "ours, STAND-IN (%) weighted kNN"
    ours = table.loc[("spreading", "105K")]
    assert ours["paper row"] == "Ours" and ours["paper weighted kNN"] == 81.6 and ours["our epochs"] == 1
    assert 0 <= ours[lin] <= 100 and 0 <= ours[knn] <= 100
    assert table[knn].isna()[("spreading", "5K")]  # the paper's 5K row, not run here
    pre = table.loc[("pretrained", "")]
    assert pre["paper weighted kNN"] == 22.4 and 0 <= pre[lin] <= 100
    assert table.loc[("hmp", "105K"), "note"].startswith("taken by the paper from [33]")
    assert "spreading: 180" in result.notes  # 60 labelled + 120 unlabelled stand-in images
    written = sorted(p.name for p in (tmp_path / "results").rglob("*.csv"))
    assert written == ["pretrained.csv", "spreading.csv"]
