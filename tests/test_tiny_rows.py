"""``standin_size="tiny"`` runs every row of Tables 1-9 and both figure notebooks, with nothing else given: the
tiny layer (``params/standin/tiny.yaml``) fits every method's batch, lists and pools to the tiny data and
shortens every schedule to a few steps. Each row takes seconds (one shared cache: the tiny stand-in and its
"ImageNet" pre-training are made once)."""
import pytest

from conftest import isolate
from ssml_lib.experiments import TABLES, run_notebook_row
from ssml_lib.experiments.runner import resolve_params

ROWS = [(table, method) for table, spec in TABLES.items() for method in spec.methods]
TINY = {"standin_size": "tiny", "device": "cpu"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def env(tmp_path, cache, monkeypatch):
    return isolate(tmp_path, cache, monkeypatch)


def table_namespace(method: str) -> dict:
    """A table notebook's parameters cell (tools/make_notebooks.py) with ``-p method M -p standin_size tiny``."""
    return {"method": method, "data_root": None, "params_file": None, "seed": 0, **TINY}


def test_the_tiny_layer_applies_only_at_tiny_size():
    tiny = resolve_params("table1_cub_pretrained", None, {"method": "stml", **TINY})
    assert any("tiny.yaml" in f for f in tiny["files"])
    assert (tiny["train"].batch_size, tiny["train"].epochs, tiny["model"].pretrain_epochs) == (24, 1, 1)
    default = resolve_params("table1_cub_pretrained", None, {"method": "stml"})
    assert not any("tiny.yaml" in f for f in default["files"]) and default["train"].batch_size == 60
    insclr = resolve_params("table7_gldv2", None, {"method": "insclr", **TINY})
    assert (insclr["method"].pool_size, insclr["train"].max_steps) == (8, 2)  # insclr.<name>: InsCLR only
    # the notebook's own values still win over the tiny layer
    given = resolve_params("table1_cub_pretrained", None, {"method": "stml", "batch_size": 12, **TINY})
    assert given["train"].batch_size == 12


@pytest.mark.parametrize("table,method", ROWS)
def test_tiny_runs_every_table_row(env, table, method):
    row = run_notebook_row(table, table_namespace(method), progress=False)
    assert row.standin and row.method == method and len(row.rows) > 0
    assert row.rows["value"].between(0, 100).all()
    assert row.provenance["params"]["run"]["data"]["standin_size"] == "tiny"
    if TABLES[table].ks == (1, 10, 100):  # R@100 needs 101 test images; the tiny SOP test split has 48
        assert set(row.rows["metric"]) >= {"R@1", "R@10"} and "R@100" not in set(row.rows["metric"])
        assert row.provenance["extra"]["data_checks"]["ks_dropped"]["sop"]["ks"] == [100]


def test_tiny_runs_the_neighbours_figure_notebook(env):
    from ssml_lib.experiments.neighbours import run_neighbours_notebook

    ns = dict(method="spreading", datasets=["cub200", "cars196"], init="scratch", n_queries=2, n_neighbours=4,
              data_root=None, params_file=None, seed=0, **TINY)  # the notebook's defaults, tiny
    result = run_neighbours_notebook(ns, progress=False)
    assert result.standin and set(result.figures) == {"cub200_spreading", "cars196_spreading"}


def test_tiny_runs_the_positive_mining_figure_notebook(env):
    from ssml_lib.experiments.positive_mining import run_positive_mining_notebook

    ns = dict(methods=["spreading", "insclr", "stml"], table="table2_cub_scratch", n_anchors=3, n_points=4,
              n_show=4, params_dir=None, method_params={}, data_root=None, seed=0, **TINY)  # the defaults, tiny
    result = run_positive_mining_notebook(ns, progress=False)
    assert result.standin and {"spreading", "insclr", "stml", "precision"} <= set(result.figures)
