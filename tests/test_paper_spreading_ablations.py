"""The Spreading paper's Tables 7 and 8 (CIFAR-10 ablations): one params file per row at paper scale, each the
Table 1 spreading row with only its switch set; rows against the reference CSVs; a tiny run that trains a row
through the switched transform and writes only where it is told."""
from __future__ import annotations

import dataclasses

import pytest

from conftest import isolate
from paper_params_case import check_paper_params_file
from ssml_lib.data.transforms import CIFAR_AUGMENTATIONS
from ssml_lib.errors import ConfigError
from ssml_lib.experiments import paper_cifar_run
from ssml_lib.experiments.paper_cifar import resolve_row
from ssml_lib.experiments.paper_spreading_ablations import (TABLE7, TABLE8, TABLES,
                                                           run_paper_spreading_ablation_notebook)
from ssml_lib.results import load_reference

ROWS = [(t, r) for t in TABLES for r in TABLES[t].rows]
SWITCH = {"no_crop": ["crop"], "no_grey": ["grey"], "no_jitter": ["jitter"], "no_flip": ["flip"],
          "no_da": list(CIFAR_AUGMENTATIONS), "hard": "hard_half", "easy": "easy_half"}


def test_one_params_file_per_row_and_no_other():
    for name, table in TABLES.items():
        assert {p.stem for p in table.params_dir.glob("*.yaml")} == set(table.rows)
    assert list(TABLES[TABLE7].rows) == ["full", "no_crop", "no_grey", "no_jitter", "no_flip"]
    assert list(TABLES[TABLE8].rows) == ["full", "no_da", "hard", "easy"]


@pytest.mark.parametrize("table,row", ROWS)
def test_params_file_is_the_table1_row_with_only_its_switch(table, row):
    spec = TABLES[table]
    data = check_paper_params_file(spec, row)
    assert data["method"] == "spreading"
    ours = resolve_row(row, data_root="/d", paper_scale=True, table=spec)
    table1 = resolve_row("spreading", data_root="/d", paper_scale=True)
    assert ours.train_cfg == table1.train_cfg  # the Table 1 recipe: 200 epochs, lr 0.03, batch 128, ...
    negatives = SWITCH[row] if row in ("hard", "easy") else "all"
    assert ours.method_cfg == dataclasses.replace(table1.method_cfg, negatives=negatives)
    without = SWITCH[row] if row not in ("full", "hard", "easy") else []
    assert ours.model == dict(table1.model, augment_without=without)
    assert data.get("augment_without", []) == without and data.get("negatives", "all") == negatives
    with pytest.raises(ConfigError, match="needs the real"):
        resolve_row(row, paper_scale=True, table=spec)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_rows_and_settings_match_the_reference_table(table):
    ref = load_reference(table)
    assert set(ref["setting"]) == {s for _, _, s in TABLES[table].rows.values()}
    assert (ref["method"] == "spreading").all()


def test_standin_rows_keep_the_table1_standin_recipe():
    table1 = resolve_row("spreading", standin_size="tiny")
    hard = resolve_row("hard", standin_size="tiny", table=TABLES[TABLE8])
    assert hard.train_cfg == table1.train_cfg and hard.method_cfg.negatives == "hard_half"
    with pytest.raises(ConfigError, match="unknown row"):
        resolve_row("no_crop", table=TABLES[TABLE8])


def test_tiny_run_trains_through_the_switched_transform(tmp_path, monkeypatch):
    isolate(tmp_path, tmp_path / "cache", monkeypatch)
    seen = []
    real = paper_cifar_run.cifar_transform
    monkeypatch.setattr(paper_cifar_run, "cifar_transform",
                        lambda train, **kw: seen.append((train, kw.get("without", ()))) or real(train, **kw))
    result = run_paper_spreading_ablation_notebook(TABLE8, {"rows": ["no_da"], "standin_size": "tiny", "device": "cpu",
                                                            "seed": 0, "epochs": 1})
    assert (True, tuple(CIFAR_AUGMENTATIONS)) in seen
    ours = result.tables["Table 8"].set_index("paper row")["ours, STAND-IN (%)"]
    assert 0 <= ours["No DA"] <= 100 and ours[["Full", "Hard", "Easy"]].isna().all()
    assert result.standin and str(result.paths["curves"]).startswith(str(tmp_path))
    assert sorted(p.name for p in (tmp_path / "results").rglob("*.csv")) == ["spreading.csv"]
