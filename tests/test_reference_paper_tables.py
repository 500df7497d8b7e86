"""The method papers' own tables in results/reference/: the Spreading paper's Table 1 (CIFAR-10 kNN accuracy)."""
import pandas as pd

from ssml_lib.results import REFERENCE_DIR, load_reference

TABLE = "paper_spreading_table1_cifar10"
COLUMNS = ["table", "method", "paper_label", "dataset", "metric", "value", "printed", "unit", "setting", "source"]
# read again from the paper's Table 1 when this test was written
PRINTED = {"RandomCNN": "32.1", "DeepCluster (10) [3]": "44.4", "DeepCluster (1000) [3]": "67.6",
           "Exemplar [8]": "74.5", "NPSoftmax [46]": "80.8", "NCE [46]": "80.4", "Triplet": "57.5",
           "Triplet (Hard)": "78.4", "Ours": "83.6"}


def test_shape_columns_and_values():
    df = load_reference(TABLE)
    assert list(df.columns) == COLUMNS and (df["table"] == TABLE).all()
    assert dict(zip(df["paper_label"], df["printed"])) == PRINTED  # the paper's row order and cells
    assert list(df["paper_label"]) == list(PRINTED)
    assert (df["printed"].astype(float) == df["value"]).all() and (df["unit"] == "percent").all()
    assert (df["dataset"] == "cifar10").all() and (df["metric"] == "kNN").all()
    assert not df.duplicated(["method", "dataset", "metric", "setting"]).any()
    assert df["source"].str.startswith("the Spreading paper (Ye et al. 2019").all()
    assert df["source"].str.contains("Table 1: kNN accuracy").all()


def test_registry_names_where_we_have_the_method():
    df = load_reference(TABLE).set_index("paper_label")
    assert df.loc["Ours", "method"] == "spreading"
    assert df.loc["NPSoftmax [46]", "method"] == "npsoftmax" and df.loc["NCE [46]", "method"] == "nce"
    assert df.loc[["Triplet", "Triplet (Hard)"], "method"].tolist() == ["triplet", "triplet"]
    assert df.loc[["Triplet", "Triplet (Hard)"], "setting"].tolist() == ["", "hard"]


def test_values_agree_with_the_differences_the_paper_quotes():
    v = load_reference(TABLE).set_index("paper_label")["value"]
    # "outperforms it [Exemplar] by 9.1%", "NPSoftmax and NCE ... by 2.8% and 3.2%"
    assert round(v["Ours"] - v["Exemplar [8]"], 1) == 9.1
    assert round(v["Ours"] - v["NPSoftmax [46]"], 1) == 2.8
    assert round(v["Ours"] - v["NCE [46]"], 1) == 3.2
    assert v.idxmax() == "Ours"


def test_listed_in_the_reference_readme():
    assert f"`{TABLE}.csv`" in (REFERENCE_DIR / "README.md").read_text(encoding="utf-8")
    assert isinstance(load_reference(TABLE), pd.DataFrame)


def test_rendered_caption_is_the_papers():
    """``render_table`` takes the caption after the source's first ", ": the title must not hold one."""
    source = load_reference(TABLE)["source"].iloc[0]
    assert source.split(", ", 1)[-1] == "Table 1: kNN accuracy (%) on CIFAR-10 dataset."
