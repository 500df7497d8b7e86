"""params/paper_insclr_<table>/<method>.yaml: the InsCLR paper's settings for its Tables 3-5, one file per row
(the shape and resolution checks also cover every other PAPER_TABLES entry, e.g. the Spreading paper's Tables 3-6).

Each file names its row, comments every value, resolves through the runner's typed configs with data_root (as a
params file and as papermill -f values) and is refused without it; the resolved values are the paper's.
"""
import re
from pathlib import Path

import pytest
import yaml

from ssml_lib.errors import ConfigError
from ssml_lib.experiments.runner import resolve_params
from ssml_lib.experiments.tables import PAPER_TABLES

PARAMS = Path(__file__).resolve().parent.parent / "params"
ROWS = [(table, method) for table, spec in PAPER_TABLES.items() for method in spec.methods]
INSCLR_ROWS = [(t, m) for t, m in ROWS if t.startswith("paper_insclr")]  # the others: their own settings tests


def path_of(table, method):
    return PARAMS / table / f"{method}.yaml"


def test_one_file_per_paper_row_and_no_other():
    found = {(p.parent.name, p.stem) for table in PAPER_TABLES for p in (PARAMS / table).glob("*.yaml")}
    assert found == set(ROWS)


@pytest.mark.parametrize("table,method", ROWS)
def test_file_names_its_row_and_comments_every_value(table, method):
    text = path_of(table, method).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["method"] == method and data["paper_row"] == f"{table}/{method}" and "data_root" not in data
    assert sorted(re.findall(r"^([A-Za-z_][\w.]*):", text, flags=re.M)) == sorted(data)
    for line in text.splitlines():
        if re.match(r"^[A-Za-z_]", line):
            assert line.partition("#")[2].strip(), f"no source comment on {line!r}"
        assert len(line) <= 120


@pytest.mark.parametrize("table,method", ROWS)
def test_resolves_with_data_root_and_is_refused_without(table, method):
    real = resolve_params(table, path_of(table, method), {"data_root": "/data"})
    assert real["run"].method == method and not real["standin"]
    injected = yaml.safe_load(path_of(table, method).read_text(encoding="utf-8"))
    via_f = resolve_params(table, None, {**injected, "data_root": "/data"})
    assert all(via_f[k] == real[k] for k in ("run", "model", "method", "train"))
    with pytest.raises(ConfigError, match="are for real data only"):
        resolve_params(table, path_of(table, method), None)
    other = next(t for t in PAPER_TABLES if t != table)
    with pytest.raises(ConfigError):
        resolve_params(other, path_of(table, method), {"data_root": "/data"})


@pytest.mark.parametrize("table,method", [r for r in INSCLR_ROWS if PAPER_TABLES[r[0]].train_dataset == "gldv2"])
def test_paper_settings(table, method):  # the GLDv2 tables (Table 6, INSTRE: tests/test_paper_insclr_table6.py)
    cfg = resolve_params(table, path_of(table, method), {"data_root": "/data"})
    run, model = cfg["run"], cfg["model"]
    assert model.backbone == "resnet101" and model.pooling == "gem" and model.max_side == 1024  # paper §4.1
    scales = (2 ** 0.5, 1.0, 2 ** -0.5) if table.endswith("gldv2_retrieval") else (1.0, 2 ** -0.5, 0.5)
    assert run.eval.scales == pytest.approx(scales)
    # only Table 3's ImageNet row is whitened (the paper's "ImageNet + PCA*", Radenović et al. 2018)
    assert run.eval.whitening == ("pca" if (table, method) == ("paper_insclr_table3_revisited", "pretrained")
                                  else "none")
    if method == "insclr":
        m, train = cfg["method"], cfg["train"]
        assert model.embedding_size == 2048 and m.pool_size == 500 and m.num_neighbors == 3  # paper §4.1
        assert m.base_selection_threshold == m.impr_selection_threshold == 0.65  # paper §4.2, T_b
        assert m.insclr_stages == ("base", "base", "base", "impr") and run.data.gldv2_fraction == 1.0
        assert (train.batch_size, m.impr_batch_size, train.max_steps) == (256, 64, 60000)  # official gldv2


def test_whitening_on_a_thesis_table_is_refused_before_any_work(monkeypatch):
    from ssml_lib.experiments import runner

    monkeypatch.setattr(runner, "dataset_root", lambda *a, **k: pytest.fail("reached the data"))
    with pytest.raises(ConfigError, match="thesis's tables have no whitened rows"):
        runner.run_table_row("table7_gldv2", None, {"method": "pretrained", "whitening": "pca"}, progress=False)
