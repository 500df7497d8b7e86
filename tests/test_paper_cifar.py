"""The Spreading paper's CIFAR-10 notebook: its params files (one per row, a source comment on every value, the
paper's settings, refused without data_root), the stand-in layers, and a tiny end-to-end run that writes only into
the run and result folders it is given."""
from __future__ import annotations

import pytest

from conftest import isolate
from paper_params_case import check_paper_params_file
from ssml_lib.errors import ConfigError
from ssml_lib.experiments.paper_cifar import (PARAMS_DIR, ROWS, SPREADING, TABLE, resolve_row,
                                              run_paper_cifar_notebook, standin_milestones)
from ssml_lib.results import load_reference


def test_one_params_file_per_row_and_no_other():
    assert {p.stem for p in PARAMS_DIR.glob("*.yaml")} == set(ROWS)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_params_file_names_its_row_and_comments_every_value(row):
    check_paper_params_file(SPREADING, row)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_params_file_resolves_to_the_papers_settings_and_is_refused_without_data_root(row):
    r = resolve_row(row, data_root="/data", paper_scale=True)
    assert r.name == row and r.method == ROWS[row][0]
    assert r.model == {"backbone": "resnet18_cifar", "embedding_size": 128, "knn_k": 200, "knn_temperature": 0.1}
    if row != "pretrained":
        t = r.train_cfg
        assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.epochs, t.milestones, t.gamma, t.batch_size) == \
            ("sgd", 0.03, 0.9, 5e-4, 200, (120, 160), 0.1, 128)
    with pytest.raises(ConfigError, match="needs the real"):
        resolve_row(row, paper_scale=True)


def test_row_specific_settings():
    assert resolve_row("spreading", data_root="/d", paper_scale=True).method_cfg.temperature == 0.1
    assert resolve_row("spreading", data_root="/d", paper_scale=True).method_cfg.nn_positive_prob == 0.0
    assert resolve_row("npsoftmax", data_root="/d", paper_scale=True).method_cfg.memory_momentum == 0.5
    assert resolve_row("nce", data_root="/d", paper_scale=True).method_cfg.nce_k == 4096
    plain, hard = (resolve_row(r, data_root="/d", paper_scale=True) for r in ("triplet", "triplet_hard"))
    assert (plain.method_cfg.triplet_mining, hard.method_cfg.triplet_mining) == ("all", "hard")
    assert plain.method_cfg.margin == hard.method_cfg.margin == 0.5 and plain.train_cfg == hard.train_cfg
    assert (plain.setting, hard.setting) == ("", "hard")


def test_rows_and_settings_match_the_reference_table():
    ref = load_reference(TABLE)
    keys = set(zip(ref["method"], ref["setting"]))
    assert all((method, setting) in keys for method, _, setting in ROWS.values())


def test_standin_layers_and_refusals():
    r = resolve_row("spreading")
    assert r.model["backbone"] == "convnet4" and r.train_cfg.milestones == tuple(standin_milestones(r.train_cfg.epochs))
    assert resolve_row("spreading", overrides={"epochs": 10}).train_cfg.milestones == (6, 8)
    assert resolve_row("spreading", standin_size="tiny").train_cfg.epochs == 1
    assert standin_milestones(3) == [2] and standin_milestones(200) == [120, 160]
    assert resolve_row("nce").method_cfg.nce_k == 41 and resolve_row("nce", standin_size="tiny").method_cfg.nce_k == 10
    assert resolve_row("nce", overrides={"nce_k": 7}).method_cfg.nce_k == 7
    with pytest.raises(ConfigError, match="unknown parameter 'temprature'"):
        resolve_row("spreading", overrides={"temprature": 0.2})
    with pytest.raises(ConfigError, match="unknown row"):
        resolve_row("deepcluster")


def test_tiny_run_writes_results_and_figure_only_where_told(tmp_path, monkeypatch):
    isolate(tmp_path, tmp_path / "cache", monkeypatch)
    result = run_paper_cifar_notebook({"method": ["pretrained", "npsoftmax"], "standin_size": "tiny",
                                       "device": "cpu", "seed": 0, "epochs": 1})
    assert result.standin and result.paths["fig3"].is_file()
    assert str(result.paths["fig3"]).startswith(str(tmp_path))
    table = result.tables["Table 1"]
    ours = table.set_index("paper row")["ours, STAND-IN (%)"]
    assert 0 <= ours["NPSoftmax [46]"] <= 100 and 0 <= ours["RandomCNN"] <= 100
    assert ours[["DeepCluster (10) [3]", "Exemplar [8]", "NCE [46]"]].isna().all()  # not run here
    curve = result.tables["Figure 3 (per epoch)"]
    assert list(curve[curve["row"] == "npsoftmax"]["epoch"]) == [0, 1]
    written = sorted(p.name for p in (tmp_path / "results").rglob("*.csv"))
    assert written == ["npsoftmax.csv", "pretrained.csv"]


def test_method_takes_a_row_a_list_or_papermills_json_text():
    from ssml_lib.experiments.paper_cifar import _as_rows

    assert _as_rows("spreading") == ["spreading"]
    assert _as_rows(["spreading", "triplet_hard"]) == _as_rows('["spreading", "triplet_hard"]')
    with pytest.raises(ConfigError, match="names no row"):
        _as_rows([])


def test_run_folder_changes_with_any_setting_and_the_data():
    from ssml_lib.experiments.paper_cifar_run import row_digest

    base = resolve_row("nce")
    assert row_digest(base, "a") == row_digest(resolve_row("nce"), "a")
    assert row_digest(base, "a") != row_digest(resolve_row("nce", overrides={"nce_k": 7}), "a")  # a method setting
    assert row_digest(base, "a") != row_digest(base, "b")  # other data
