"""The Spreading paper's Tables 3-6 notebooks (several rows through the table runner) and its Figure 4."""
from types import SimpleNamespace

import pandas as pd
import pytest

from ssml_lib.errors import ConfigError
from ssml_lib.experiments import paper_spreading_unseen as unseen
from ssml_lib.experiments.figures import plot_neighbours
from ssml_lib.experiments.paper_spreading_fig4 import RetrievalsConfig, retrieval_figure
from ssml_lib.experiments.tables import PAPER_TABLES

TABLE = "paper_spreading_table5_cars"


def test_the_four_tables_are_recall_tables_with_the_papers_rows():
    for name in unseen.UNSEEN_TABLES:
        spec = PAPER_TABLES[name]
        assert spec.protocol == "recall" and spec.methods == ("pretrained", "spreading", "nce", "mom")
        assert spec.ks == ((1, 10, 100) if spec.train_dataset == "sop" else (1, 2, 4, 8))
    assert PAPER_TABLES["paper_spreading_table6_sop_scratch"].init == "scratch"


def test_row_files():
    assert unseen.row_files(TABLE, ["pretrained", "nce"], None, False) == {"pretrained": None, "nce": None}
    files = unseen.row_files(TABLE, ["pretrained", "nce"], None, True)
    assert files == {m: f"params/{TABLE}/{m}.yaml" for m in ("pretrained", "nce")}
    assert unseen.row_files(TABLE, ["nce"], "x.yaml", False) == {"nce": "x.yaml"}
    with pytest.raises(ConfigError, match="one row's file"):
        unseen.row_files(TABLE, ["pretrained", "nce"], "x.yaml", False)
    with pytest.raises(ConfigError, match="both given"):
        unseen.row_files(TABLE, ["nce"], "x.yaml", True)


@pytest.fixture
def fake_rows(monkeypatch):
    """run_table_row replaced by a recorder returning a fixed R@1 per row (nothing is trained or written)."""
    calls = []

    def fake(table, params_file, overrides, progress=True):
        calls.append((table, params_file, dict(overrides)))
        rows = pd.DataFrame([{"dataset": "cars196", "metric": "R@1", "value": 10.0 + len(calls), "setting": ""}])
        return SimpleNamespace(method=overrides["method"], rows=rows, markdown="md", standin=True)

    monkeypatch.setattr(unseen, "run_table_row", fake)
    return calls


def test_rows_run_in_order_beside_every_paper_row(fake_rows):
    ns = dict(method=["pretrained", "spreading"], paper_scale=False, data_root=None, params_file=None,
              standin_size="tiny", epochs=None, device="cpu", seed=None)
    result = unseen.run_paper_rows(TABLE, ns)
    assert [c[2]["method"] for c in fake_rows] == ["pretrained", "spreading"]
    assert all(c[1] is None and c[2]["standin_size"] == "tiny" and "epochs" not in c[2] for c in fake_rows)
    sbs = result.side_by_side.set_index(["paper_label", "metric"])
    assert sbs.loc[("Initial (FC)", "R@1"), ["paper", "ours"]].tolist() == [35.1, 11.0]
    assert sbs.loc[("Ours", "R@1"), ["paper", "ours"]].tolist() == [41.3, 12.0]
    assert sbs.loc[("Exemplar [8]", "R@1"), "paper"] == 36.5 and pd.isna(sbs.loc[("Exemplar [8]", "R@1"), "ours"])
    assert result.standin and result.markdown == "md"
    unseen.run_paper_rows(TABLE, dict(ns, method="nce"))  # one name works too
    assert fake_rows[-1][2]["method"] == "nce"


@pytest.mark.parametrize("bad, match", [
    (dict(method=["pretrained", "supervised"]), "the rows of"),       # not a row of the table
    (dict(method=["spreading", "spreading"]), "each once"),
    (dict(method=["pretrained", "spreading"], no_such_setting=1), "no_such_setting"),
])
def test_every_row_is_checked_before_any_runs(fake_rows, bad, match):
    with pytest.raises(ConfigError, match=match):
        unseen.run_paper_rows(TABLE, dict(standin_size="tiny", device="cpu", **bad))
    assert fake_rows == []


def test_plot_neighbours_names_rows():
    img = [[[0, 0, 0]] * 4] * 4
    fig = plot_neighbours([img, img], [[img], [img]], [1, 1], [[1], [2]], row_names=["epoch 0", "epoch 3"])
    axes = fig.axes
    assert [axes[0].get_ylabel(), axes[2].get_ylabel()] == ["epoch 0", "epoch 3"]
    assert plot_neighbours([img], [[img]], [1], [[1]]).axes[0].get_ylabel() == ""


def test_figure4_refuses_before_any_work():
    with pytest.raises(ConfigError, match="does not train"):
        retrieval_figure("pretrained", standin_size="tiny")
    with pytest.raises(ConfigError, match="must be >= 1"):
        RetrievalsConfig(n_points=0)
