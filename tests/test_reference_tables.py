"""The thesis's Tables 1-10, transcribed once into results/reference/*.csv: shape, names and spot values.

Spot values were read again from the thesis text (seed 004) when these tests were written.
"""
import pandas as pd
import pytest

from ssml_lib.results import REFERENCE_DIR, load_reference, reference_tables

R8 = ["R@1", "R@2", "R@4", "R@8", "NMI"]
RSOP = ["R@1", "R@10", "R@100", "NMI"]
MAPS = ["mAP_easy", "mAP_medium", "mAP_hard"]
ALL5 = ["pretrained", "supervised", "spreading", "insclr", "stml"]
SSL3 = ["spreading", "insclr", "stml"]
EXPECTED = {  # table: (methods, metrics, datasets)
    "table1_cub_pretrained": (ALL5, R8, ["cub200"]),
    "table2_cub_scratch": (SSL3, R8, ["cub200"]),
    "table3_cars_pretrained": (ALL5, R8, ["cars196"]),
    "table4_cars_scratch": (SSL3, R8, ["cars196"]),
    "table5_sop_pretrained": (ALL5, RSOP, ["sop"]),
    "table6_sop_scratch": (SSL3, RSOP, ["sop"]),
    "table7_gldv2": (ALL5, MAPS, ["roxford5k", "rparis6k"]),
    "table8_insclr_cycles": (["pretrained", "insclr"], MAPS, ["roxford5k", "rparis6k"]),
    "table9_gldv2_scratch": (SSL3, MAPS, ["roxford5k", "rparis6k"]),
    "table10_cost": (SSL3, ["gpu_hours"], ["cub200", "cars196", "sop", "gldv2_6pct"]),
}
# the method papers' own tables (tests/test_reference_paper_tables.py, tests/test_reference_paper_insclr.py)
PAPER_TABLES = ["paper_spreading_table1_cifar10", "paper_isl_table1"]
PAPER_TABLES += ["paper_insclr_table3_revisited", "paper_insclr_table4_oxford_paris",
                 "paper_insclr_table5_gldv2_retrieval", "paper_insclr_table1_ablation",
                 "paper_insclr_table2_memory_mining"]
PAPER_TABLES += ["paper_spreading_table7_augmentation", "paper_spreading_table8_sampling"]
PAPER_TABLES += ["paper_spreading_table2_stl10"]
PAPER_TABLES += ["paper_insclr_fig4_inbatch_selection"]  # the numbers Figure 4's caption prints
PAPER_TABLES += ["paper_insclr_table6_instre"]
PAPER_TABLES += ["paper_spreading_table3_cub", "paper_spreading_table4_sop", "paper_spreading_table5_cars",
                 "paper_spreading_table6_sop_scratch"]
COLUMNS = ["table", "method", "paper_label", "dataset", "metric", "value", "printed", "unit", "setting", "source"]


def value(table, method, dataset, metric, setting=""):
    df = load_reference(table)
    hit = df[(df.method == method) & (df.dataset == dataset) & (df.metric == metric) & (df.setting == setting)]
    assert len(hit) == 1, (table, method, dataset, metric, setting)
    return hit["value"].iloc[0]


def test_every_table_present_and_nothing_else():
    assert reference_tables() == sorted([*EXPECTED, *PAPER_TABLES])
    assert (REFERENCE_DIR / "README.md").is_file()


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_table_shape_names_and_ranges(table):
    df = load_reference(table)
    methods, metrics, datasets = EXPECTED[table]
    assert list(df.columns) == COLUMNS
    assert (df["table"] == table).all()
    assert list(dict.fromkeys(df["method"])) == methods
    assert list(dict.fromkeys(df["metric"])) == metrics
    assert list(dict.fromkeys(df["dataset"])) == datasets
    assert pd.api.types.is_float_dtype(df["value"]) and df["value"].notna().all()
    assert not df.duplicated(["method", "dataset", "metric", "setting"]).any()
    assert df["source"].str.startswith("the thesis (Self-supervised Metric Learning), Table ").all()
    assert df["source"].str.contains(f"Table {int(table.split('_')[0][5:])}:").all()
    if table != "table10_cost":
        assert (df["unit"] == "percent").all() and df["value"].between(0, 100).all()
        # the printed cell is the value, digit for digit
        assert (df["printed"].astype(float) == df["value"]).all()


def test_spot_values_checked_against_the_thesis_text():
    assert value("table1_cub_pretrained", "pretrained", "cub200", "R@1") == 39.2
    assert value("table1_cub_pretrained", "insclr", "cub200", "R@8") == 63.01  # despite the stray bold 0
    assert value("table1_cub_pretrained", "insclr", "cub200", "NMI") == 43.05
    assert value("table2_cub_scratch", "insclr", "cub200", "R@8") == 16.9
    assert value("table3_cars_pretrained", "supervised", "cars196", "R@1") == 81.61
    assert value("table4_cars_scratch", "spreading", "cars196", "NMI") == 20.42
    assert value("table5_sop_pretrained", "insclr", "sop", "NMI") == 96.42
    assert value("table6_sop_scratch", "stml", "sop", "R@1") == 41.34
    assert value("table7_gldv2", "insclr", "roxford5k", "mAP_medium") == 65.46
    assert value("table7_gldv2", "supervised", "rparis6k", "mAP_hard") == 58.6
    assert value("table8_insclr_cycles", "insclr", "rparis6k", "mAP_hard", "cycle3") == 30.16
    assert value("table9_gldv2_scratch", "stml", "rparis6k", "mAP_hard") == 5.8
    assert value("table10_cost", "insclr", "gldv2_6pct", "gpu_hours", "pretrained") == 3.5 * 24


def test_blank_cells_of_the_thesis_stay_blank():
    for table in ("table1_cub_pretrained", "table3_cars_pretrained", "table5_sop_pretrained"):
        df = load_reference(table)
        assert df[(df.method == "supervised") & (df.metric == "NMI")].empty
    df = load_reference("table7_gldv2")
    sup = df[df.method == "supervised"]
    assert sorted(sup.metric.unique()) == ["mAP_hard", "mAP_medium"]
    assert value("table7_gldv2", "supervised", "roxford5k", "mAP_medium") == 76.0


def test_cross_table_consistency():
    # Table 8's last cycle and first row are Table 7's InsCLR and pre-trained rows
    for ds in ("roxford5k", "rparis6k"):
        for m in MAPS:
            assert value("table8_insclr_cycles", "insclr", ds, m, "cycle4") == value("table7_gldv2", "insclr", ds, m)
            assert value("table8_insclr_cycles", "pretrained", ds, m) == value("table7_gldv2", "pretrained", ds, m)
    # the cycles only get better at Medium on rOxford5k, as the thesis's text says
    med = [value("table8_insclr_cycles", "insclr", "roxford5k", "mAP_medium", f"cycle{c}") for c in range(1, 5)]
    assert med == sorted(med)
    # Table 10's printed total is "34d + 9h", which holds only with 24-hour days
    assert load_reference("table10_cost")["value"].sum() == 34 * 24 + 9
    # the text quotes InsCLR's R@1 on CUB: "drops to 29.63" from 39.2
    assert value("table1_cub_pretrained", "insclr", "cub200", "R@1") == 29.63
