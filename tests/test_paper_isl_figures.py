"""The ISL paper's figure notebooks (Figures 3 and 4, the appendix's mined positives): their params files (a
source comment on every value, AlexNet and the official ISL settings, refused without data_root), the precision
of mined sets on a hand-built case, the sweeps' points (each changes only the value it names) and the rounds the
appendix shows. The notebooks themselves run end to end under nbval."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from paper_params_case import check_paper_params_file
from ssml_lib.errors import ConfigError
from ssml_lib.experiments.paper_cifar import resolve_row
from ssml_lib.experiments.paper_isl_appendix import APPENDIX, EUCLIDEAN_KEY, round_points
from ssml_lib.experiments.paper_isl_fig3 import FIG3, same_class_counts
from ssml_lib.experiments.paper_isl_fig4 import FIG4, SWEEPS, _sweeps

TABLES = {t.name: t for t in (FIG3, FIG4, APPENDIX)}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_params_file_comments_every_value_and_resolves_to_the_paper_setting(name):
    table = TABLES[name]
    assert list(table.rows) == ["isl"]
    data = check_paper_params_file(table, "isl")
    assert data["method"] == "isl"
    row = resolve_row("isl", data_root="/data", paper_scale=True, table=table)
    cfg, t = row.method_cfg, row.train_cfg
    assert row.model["backbone"] == "alexnet_cifar" and cfg.isl_sampling_times == 5
    assert (cfg.isl_rounds, cfg.isl_gate, cfg.isl_radius, cfg.isl_similarity) == (4, 0.5, 0.6, "geodesic")
    assert (t.optimizer, t.lr, t.batch_size, t.epochs) == ("sgd", 0.03, 128, 200)
    assert all(k in row.model for k in table.model_defaults)  # the figure's own keys are in the file
    with pytest.raises(ConfigError, match="needs the real dataset"):
        resolve_row("isl", paper_scale=True, table=table)


def test_same_class_counts_by_hand():
    # 4 bank entries on the unit circle at 0, 10, 90 and 180 degrees, labels 0, 0, 1, 0
    deg = torch.tensor([0.0, 10.0, 90.0, 180.0, 170.0]) * torch.pi / 180
    circle = torch.stack([deg.cos(), deg.sin()], 1)
    bank, labels = circle[:4], torch.tensor([0, 0, 1, 0])
    # anchor 0 queried by itself: neighbours (self excluded) 1 (same), 2 (other), 3 (same);
    # anchor 2 queried by a proxy at 170 degrees: 3, then 1 (cos 160), then 0 (cos 170): all of another class
    counts = same_class_counts(torch.stack([bank[0], circle[4]]), bank, torch.tensor([0, 2]), labels, [1, 2, 3])
    assert counts.tolist() == [1, 1, 2]


def test_each_sweep_point_changes_only_its_value():
    fixed = resolve_row("isl", data_root="/d", paper_scale=True, table=FIG4)
    for key in SWEEPS.values():
        other = {"isl_gate": 0.3, "isl_radius": 0.8, "isl_sampling_times": 1}[key]
        point = resolve_row("isl", data_root="/d", paper_scale=True, overrides={key: other}, table=FIG4)
        assert getattr(point.method_cfg, key) == other
        assert dataclasses.replace(point.method_cfg, **{key: getattr(fixed.method_cfg, key)}) == fixed.method_cfg
        assert point.train_cfg == fixed.train_cfg and point.model == fixed.model
    assert _sweeps(None) == list(SWEEPS) and _sweeps("threshold") == ["threshold"]
    with pytest.raises(ConfigError, match="unknown sweep"):
        _sweeps(["threshold", "gamma"])


def test_standin_layers():
    assert resolve_row("isl", standin_size="tiny", table=FIG3).method_cfg.isl_rounds == 3
    assert resolve_row("isl", standin_size="tiny", table=FIG4).method_cfg.isl_sampling_times == 5
    assert resolve_row("isl", standin_size="tiny", table=APPENDIX).model["backbone"] == "convnet4"


def test_appendix_shows_the_last_epoch_of_every_mining_round():
    history = [{"epoch": 0}, *({"epoch": e, "extra": {"mined_positives": {"7": [e]}, EUCLIDEAN_KEY: {"7": [-e]}}}
                               for e in range(1, 7))]  # 2 epochs a round, 3 rounds
    points = round_points(history, epochs_per_round=2)
    assert [p["round"] for p in points] == [1, 2] and [p["positives"] for p in points] == [{7: [4]}, {7: [6]}]
    assert [p["positives"] for p in round_points(history, 2, EUCLIDEAN_KEY)] == [{7: [-4]}, {7: [-6]}]
