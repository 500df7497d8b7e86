"""Table 10's projected column: the paper's steps x measured step times, by hand on a made-up measurement, and
the table that shows it beside the thesis's hours, labelled as a projection (temporary folders only)."""
import json

import numpy as np
import pytest

from ssml_lib.experiments.cost import build_cost_table
from ssml_lib.experiments.cost_projection import TRAIN_IMAGES, paper_table, project_row, projection
from ssml_lib.results import load_reference

CASES = [  # case, method, backbone, items, images per step, px, step s, backbone-only step s
    ("spreading", "spreading", "googlenet", 64, 128, 224, 0.040, 0.032),
    ("stml", "stml", "googlenet", 120, 240, 224, 0.060, 0.040),
    ("insclr_base", "insclr", "resnet101", 256, 256, 224, 0.135, 0.100),
    ("insclr_impr", "insclr", "resnet101", 256, 256, 224, 0.150, 0.100),
    ("isl_round0", "isl", "resnet18", 128, 128, 224, 0.022, 0.016),
]


def _write_measurement(folder):
    rows = [dict(case=c, method=m, backbone=b, batch_items=i, images_per_step=n, resolution=px, step_s=s,
                 backbone_step_s=bb) for c, m, b, i, n, px, s, bb in CASES]
    rec = {"suite": "methods", "rows": rows, "provenance": {"device": {"summary": "1x Test GPU"},
                                                           "timestamp_utc": "2030-01-01T00:00:00+00:00"}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "methods_cuda.json").write_text(json.dumps(rec))


@pytest.fixture()
def measured(tmp_path):
    _write_measurement(tmp_path / "results" / "benchmarks")
    return projection(load_reference("table10_cost"), tmp_path / "results" / "benchmarks")


def test_every_thesis_cell_maps_to_its_table():
    assert paper_table("cub200", "pretrained") == "table1_cub_pretrained"
    assert paper_table("gldv2_6pct", "pretrained") == "table7_gldv2"  # not table 8 (InsCLR per cycle)
    assert paper_table("gldv2_6pct", "scratch") == "table9_gldv2_scratch"
    assert paper_table("imagenet", "scratch") is None


def test_a_measured_method_and_backbone_scale_by_steps_and_pixels(measured):
    frame, info = measured
    row = frame.set_index(["method", "init", "dataset"]).loc[("spreading", "pretrained", "cub200")]
    steps = 60 * (TRAIN_IMAGES["cub200"] // 64)  # params: 60 epochs of 64 instances, two views each
    assert row["steps"] == steps
    assert row["projected_h"] == pytest.approx(steps * 128 * (0.040 / 128) * (227 / 224) ** 2 / 3600)
    assert row["basis"] == "spreading step on googlenet"
    assert info == {"device": "1x Test GPU", "timestamp": "2030-01-01T00:00:00+00:00",
                    "source": info["source"]} and info["source"].endswith("methods_cuda.json")


def test_another_backbone_takes_the_method_overhead_times_its_backbone_step(measured):
    frame, _ = measured
    row = frame.set_index(["method", "init", "dataset"]).loc[("insclr", "scratch", "gldv2_6pct")]
    resnet18 = 0.016 / 128  # backbone-only seconds per image, from the ISL case
    base, impr = 0.135 / 0.100 * resnet18, 0.150 / 0.100 * resnet18
    # three 60k-step instance cycles, then the 40k-step memory cycle, 64 images a step, 224 px
    assert row["steps"] == 3 * 60_000 + 40_000
    assert row["projected_h"] == pytest.approx((3 * 60_000 * base + 40_000 * impr) * 64 / 3600)
    assert "resnet18 backbone step (isl_round0 case)" in row["basis"]
    assert len(frame) == 24 and frame["projected_h"].notna().all()


def test_a_missing_measurement_leaves_the_row_unprojected():
    measured = {"cases": {c[0]: dict(zip(("case", "method", "backbone", "batch_items", "images_per_step",
                                         "resolution", "step_s", "backbone_step_s"), c)) for c in CASES[:2]}}
    row = project_row("spreading", "sop", "scratch", measured)  # resnet18: no case ran it
    assert np.isnan(row["projected_h"]) and row["basis"] == "no measured resnet18 step"


def test_the_cost_table_shows_the_projection_beside_the_thesis_hours(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_RESULTS", str(tmp_path / "elsewhere"))  # nothing of the repository's results
    res = tmp_path / "results"
    _write_measurement(res / "benchmarks")
    record = {"schema": 1, "timestamp_utc": "2024-01-01T00:00:00+00:00", "wall_time_s": 60.0,
              "params": {"run": {"table": "table2_cub_scratch", "method": "spreading", "device": "cpu"}},
              "device": {"cuda_count": 0, "summary": "CPU"}, "data": {"standin": True}, "extra": {}}
    (res / "standin" / "table2_cub_scratch").mkdir(parents=True)
    (res / "standin" / "table2_cub_scratch" / "spreading.json").write_text(json.dumps(record))
    result = build_cost_table(res, include=["standin"])
    md = (res / "standin" / "table10_cost.md").read_text()
    assert "| paper (GPU h) | projected (GPU h, 1x Test GPU) | ours |" in md
    assert "**Projected** = a projection, not a run" in md and "methods_cuda.json" in md
    table = result.tables["standin"]
    assert table["projected"].notna().sum() == 24
    total = table.drop_duplicates(["method", "init", "dataset"])["projected"].sum()
    assert f"| 825 h = 34d + 9h | {total:.3g} |" in md
    assert result.provenance["standin"]["extra"]["projection"]["device"] == "1x Test GPU"


def test_without_a_measurement_the_column_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_RESULTS", str(tmp_path / "elsewhere"))
    result = build_cost_table(tmp_path / "results", include=["standin"])
    assert "no GPU step times found" in result.markdown
    assert result.tables["standin"]["projected"].isna().all()
