"""The stand-in recipe protocol: class split of the training set, the selection rule, one candidate end to end."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssml_lib.experiments import recipe_search as rs


class _Base:
    def __init__(self, labels):
        self.labels = np.asarray(labels)
        self.paths = [f"img{i}.jpg" for i in range(len(labels))]
        self.root = "/standin"

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return f"image{i}", int(self.labels[i]), i


def test_class_split_reindexes_and_keeps_only_its_classes():
    base = _Base([1, 2, 3, 1, 2, 3, 4])
    split = rs.ClassSplit(base, [2, 4])
    assert len(split) == 3 and list(split.labels) == [2, 2, 4] and split.paths == ["img1.jpg", "img4.jpg", "img6.jpg"]
    assert [split[i] for i in range(3)] == [("image1", 2, 0), ("image4", 2, 1), ("image6", 4, 2)]


def _rows(values):
    return pd.DataFrame([{"method": "m", "lr_multiplier": m, "head_init": h, "val_r1": v} for m, h, v in values])


def test_best_validation_wins_and_near_ties_go_to_the_official_choice():
    assert rs.choose(_rows([(1, "default", 50), (3, "default", 55), (10, "pca", 54)]))["lr_multiplier"] == 3
    pick = rs.choose(_rows([(1, "default", 54.7), (3, "default", 55), (1, "pca", 55.1)]))
    assert (pick["lr_multiplier"], pick["head_init"]) == (1, "default")  # within 0.5 points: official lr and head


def test_one_candidate_trains_on_fit_classes_and_scores_held_out_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(rs, "FIT_CLASSES", 5)
    monkeypatch.setattr(rs, "VALIDATION_CLASSES", 3)
    import ssml_lib.experiments.runner as runner

    real = runner.resolve_params

    def tiny(table, params_file=None, overrides=None):
        return real(table, params_file, {**(overrides or {}), "standin_size": "tiny", "pretrain_epochs": 1,
                                         "epochs": 1, "batch_size": 8})
    monkeypatch.setattr(runner, "resolve_params", tiny)
    row = rs.run_candidate("spreading", 3.0, "pca", out_dir=tmp_path / "run")
    assert row["lr"] == pytest.approx(3e-3) and row["head"]["head_init"] == "pca"
    assert row["fit_images"] == 5 * 6 and row["val_images"] == 3 * 6  # tiny: 6 images a class
    assert 0 <= row["val_r1"] <= 100 and 0 <= row["val_r1_pooled"] <= 100
