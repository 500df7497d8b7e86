"""The InsCLR paper's Tables 3, 4 and 5, transcribed into results/reference/paper_insclr_*.csv: shape, names,
provenance, the blank cells, and spot values read again from the paper's text when these tests were written."""
import pandas as pd
import pytest

from ssml_lib.results import load_reference

COLUMNS = ["table", "method", "paper_label", "dataset", "metric", "value", "printed", "unit", "setting", "source"]
SOURCE = "the InsCLR paper (Deng et al. 2021; InsCLR: Improving Instance Retrieval with Self-Supervision), Table {}:"
EXPECTED = {  # table: (paper table number, datasets, metrics, number of printed rows, number of cells)
    "paper_insclr_table3_revisited": (3, ["roxford5k", "roxford5k+r1m", "rparis6k", "rparis6k+r1m"],
                                      ["mAP_medium", "mAP_hard"], 20, 20 * 8 - 3 * 4),
    "paper_insclr_table4_oxford_paris": (4, ["oxford5k", "oxford105k", "paris6k", "paris106k"], ["mAP"], 2, 8),
    "paper_insclr_table5_gldv2_retrieval": (5, ["gldv2_retrieval"], ["mAP@100_public", "mAP@100_private"], 3, 6),
    "paper_insclr_table6_instre": (6, ["instre"], ["mAP"], 5, 5),
}
OURS = {"pretrained", "insclr"}  # the rows ssml can run; the others are named "other: <paper label>"


def value(table, label, dataset, metric):
    df = load_reference(table)
    hit = df[(df.paper_label == label) & (df.dataset == dataset) & (df.metric == metric)]
    assert len(hit) == 1, (table, label, dataset, metric)
    return hit["value"].iloc[0]


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_shape_names_and_provenance(table):
    number, datasets, metrics, n_rows, n_cells = EXPECTED[table]
    df = load_reference(table)
    assert list(df.columns) == COLUMNS and (df["table"] == table).all()
    assert list(dict.fromkeys(df["dataset"])) == datasets and list(dict.fromkeys(df["metric"])) == metrics
    assert df["paper_label"].nunique() == n_rows and len(df) == n_cells
    assert df["source"].str.startswith(SOURCE.format(number)).all()
    assert pd.api.types.is_float_dtype(df["value"]) and df["value"].between(0, 100).all()
    assert (df["printed"].astype(float) == df["value"]).all() and (df["unit"] == "percent").all()
    assert not df.duplicated(["method", "dataset", "metric", "setting"]).any()
    others = df[~df["method"].isin(OURS)]
    assert (others["method"].str.startswith("other: ")).all()  # descriptive, never one of our method names


def test_table3_spot_values_and_blank_cells():
    t = "paper_insclr_table3_revisited"
    assert value(t, "InsCLR (ours)", "roxford5k", "mAP_medium") == 73.1
    assert value(t, "InsCLR (ours)", "rparis6k+r1m", "mAP_hard") == 29.2
    assert value(t, "R101 - DELG (Cao, Araujo, and Sim 2020)", "roxford5k+r1m", "mAP_hard") == 30.3
    assert value(t, "BYOL (Grill et al. 2020)", "roxford5k+r1m", "mAP_hard") == 0.1
    assert value(t, "SwAV (Caron et al. 2020)", "rparis6k+r1m", "mAP_medium") == 10.4
    df = load_reference(t)
    gldv2_clean = df[df.paper_label == "R101 - GeM (GLDv2-clean) (Weyand et al. 2020)"]
    assert sorted(gldv2_clean.dataset.unique()) == ["roxford5k", "rparis6k"]  # "—" under +R1M stays blank
    # the ImageNet R101-GeM row is Table 1's "ImageNet + PCA*" (whitened), so ours is the whitened pretrained row
    row = df[df.method == "pretrained"]
    assert set(row.setting) == {"whitening"} and value(t, row.paper_label.iloc[0], "roxford5k", "mAP_hard") == 17.7
    assert set(df[df.method == "insclr"].setting) == {""}


def test_table4_and_table5_spot_values():
    assert value("paper_insclr_table4_oxford_paris", "InsCLR", "oxford105k", "mAP") == 91.4
    assert value("paper_insclr_table4_oxford_paris", "(Iscen et al. 2018)", "paris106k", "mAP") == 78.0
    t5 = "paper_insclr_table5_gldv2_retrieval"
    assert value(t5, "ImageNet pretrained", "gldv2_retrieval", "mAP@100_public") == 0.89  # "Validation set"
    assert value(t5, "InsCLR", "gldv2_retrieval", "mAP@100_private") == 13.71  # "Test set"
    assert load_reference(t5).set_index("paper_label").loc["(Weyand et al. 2020)", "printed"].tolist() == \
        ["23.30", "25.57"]  # trailing zeros kept as printed
