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


# The ISL paper's Table 1, read again from its table lines when this test was written: (metric, architecture,
# row) -> the printed CIFAR-10, CIFAR-100, SVHN cells.
ISL = "paper_isl_table1"
ISL_PRINTED = {
    ("kNN", "alexnet", "ISL w/o HPE"): ["81.1", "49.2", "91.0"], ("kNN", "alexnet", "ISL"): ["82.8", "50.3", "91.8"],
    ("kNN", "resnet18", "ISL w/o HPE"): ["87.0", "52.1", "93.9"], ("kNN", "resnet18", "ISL"): ["87.8", "54.7", "94.2"],
    ("kNN", "resnet50", "ISL w/o HPE"): ["88.3", "56.7", "94.0"], ("kNN", "resnet50", "ISL"): ["88.9", "58.1", "94.5"],
    ("LC_conv5", "alexnet", "ISL"): ["85.8", "60.1", "93.9"],
    ("LC_conv5", "resnet18", "ISL w/o HPE"): ["89.2", "61.1", "94.4"],
    ("LC_conv5", "resnet18", "ISL"): ["90.7", "63.5", "94.5"],
    ("LC_conv5", "resnet50", "ISL w/o HPE"): ["91.0", "63.0", "94.9"],
    ("LC_conv5", "resnet50", "ISL"): ["91.5", "65.9", "95.2"],
}


def test_isl_table1_shape_columns_and_values():
    df = load_reference(ISL)
    assert list(df.columns) == COLUMNS and (df["table"] == ISL).all() and (df["method"] == "isl").all()
    got: dict = {}
    for _, r in df.iterrows():
        arch, _, hpe = r["setting"].partition("/")
        assert hpe in ("", "no_hpe") and r["paper_label"] == ("ISL w/o HPE" if hpe else "ISL")
        got.setdefault((r["metric"], arch, r["paper_label"]), []).append((r["dataset"], r["printed"]))
    assert {k: [p for _, p in v] for k, v in got.items()} == ISL_PRINTED
    assert all([d for d, _ in v] == ["cifar10", "cifar100", "svhn"] for v in got.values())
    assert (df["printed"].astype(float) == df["value"]).all() and (df["unit"] == "percent").all()
    assert not df.duplicated(["method", "dataset", "metric", "setting"]).any()
    assert df["source"].str.startswith("the ISL paper (Wang et al., ICCV 2021").all()
    assert (df["source"].str.contains("Weighted NN / FC") == (df["metric"] == "kNN")).all()


def test_isl_table1_agrees_with_what_the_paper_says():
    v = load_reference(ISL).set_index(["dataset", "metric", "setting"])["value"]
    for (dataset, metric, setting), value in v.items():
        if setting.endswith("/no_hpe"):  # "the HPE strategy also increases the accuracy"
            assert v[(dataset, metric, setting.split("/")[0])] >= value
    for dataset in ("cifar10", "cifar100", "svhn"):  # deeper networks score higher, in both protocols
        for metric in ("kNN", "LC_conv5"):
            assert v[(dataset, metric, "alexnet")] < v[(dataset, metric, "resnet18")] < v[(dataset, metric, "resnet50")]


# The Spreading paper's Tables 7 and 8 (Sec. 4.3, CIFAR-10 ablations), read again from its table lines when this
# test was written.
SPREADING_ABLATIONS = {
    "paper_spreading_table7_augmentation": {"Full": "83.6", "w/o R": "56.2", "w/o G": "79.3", "w/o C": "75.7",
                                            "w/o F": "82.6"},
    "paper_spreading_table8_sampling": {"Full": "83.6", "No DA": "37.4", "Hard": "83.2", "Easy": "57.5"},
}


def test_spreading_ablations_shape_columns_and_values():
    for table, printed in SPREADING_ABLATIONS.items():
        df = load_reference(table)
        assert list(df.columns) == COLUMNS and (df["table"] == table).all() and (df["method"] == "spreading").all()
        assert dict(zip(df["paper_label"], df["printed"])) == printed and list(df["paper_label"]) == list(printed)
        assert (df["printed"].astype(float) == df["value"]).all() and (df["unit"] == "percent").all()
        assert (df["dataset"] == "cifar10").all() and (df["metric"] == "kNN").all()
        assert not df.duplicated(["method", "dataset", "metric", "setting"]).any()
        assert df["source"].str.startswith("the Spreading paper (Ye et al. 2019").all()
        assert df["source"].iloc[0].split(", ", 1)[-1].startswith(f"Table {table[21]}: ")
        assert f"`{table}.csv`" in (REFERENCE_DIR / "README.md").read_text(encoding="utf-8")


def test_spreading_ablations_agree_with_table1_and_the_text():
    t1 = load_reference(TABLE).set_index("paper_label")["value"]
    t7, t8 = (load_reference(t).set_index("paper_label")["value"] for t in SPREADING_ABLATIONS)
    assert t7["Full"] == t8["Full"] == t1["Ours"]  # the full model is Table 1's
    assert t7.drop("Full").idxmin() == "w/o R" and (t7.drop("Full") < t7["Full"]).all()  # "all ... contribute"
    assert (t8["Full"], t8["No DA"]) == (83.6, 37.4)  # "drops significantly from 83.6% to 37.4%"
    assert t8["Easy"] < t8["Hard"] < t8["Full"]


# The Spreading paper's Table 2 (STL-10), read again from its table lines when this test was written:
# row label -> (training images, printed linear cell, printed kNN cell); "-" is a cell the paper leaves empty.
STL10 = "paper_spreading_table2_stl10"
STL10_PRINTED = {"RandomCNN": ("", "-", "22.4"), "k-MeansNet* [5]": ("105K", "60.1", "-"),
                 "HMP* [2]": ("105K", "64.5", "-"), "Satck* [54]": ("105K", "74.3", "-"),
                 "Exemplar* [8]": ("105K", "75.4", "-"), "NPSoftmax [46]": ("5K", "62.3", "66.8"),
                 "NCE [46]": ("5K", "61.9", "66.2"), "DeepCluster(100) [3]": ("5K", "56.5", "61.2"),
                 "Ours 5K": ("5K", "69.5", "74.1"), "Ours 105K": ("105K", "77.9", "81.6")}


def test_stl10_table2_transcription():
    df = load_reference(STL10)
    assert list(df.columns) == COLUMNS and (df["table"] == STL10).all() and (df["dataset"] == "stl10").all()
    got: dict = {}
    for _, r in df.iterrows():
        label = f"{r['paper_label']} {r['setting']}" if r["paper_label"] == "Ours" else r["paper_label"]
        cells = got.setdefault(label, {"setting": r["setting"], "linear": "-", "kNN": "-"})
        cells[r["metric"]] = r["printed"]
    assert {k: (v["setting"], v["linear"], v["kNN"]) for k, v in got.items()} == STL10_PRINTED
    assert list(got) == list(STL10_PRINTED)  # the paper's row order
    assert (df["printed"].astype(float) == df["value"]).all() and (df["unit"] == "percent").all()
    assert not df.duplicated(["method", "dataset", "metric", "setting"]).any()
    assert df["source"].str.startswith("the Spreading paper (Ye et al. 2019").all()
    assert df["source"].iloc[0].split(", ", 1)[-1].startswith("Table 2: Classification accuracy (%)")
    starred = df["paper_label"].str.contains("*", regex=False)  # "Results are taken from [33]"
    assert (df["source"].str.contains("taken by the paper from [33]", regex=False) == starred).all()


def test_stl10_table2_agrees_with_what_the_paper_says():
    v = load_reference(STL10).set_index(["method", "metric", "setting"])["value"]
    # "kNN: 74.1%, Linear: 69.5%" with 5K; "increases to 81.6%" and "from 69.5% to 77.9%" with 105K
    assert (v[("spreading", "kNN", "5K")], v[("spreading", "linear", "5K")]) == (74.1, 69.5)
    assert (v[("spreading", "kNN", "105K")], v[("spreading", "linear", "105K")]) == (81.6, 77.9)
    for images in ("5K", "105K"):  # "the best accuracy with both classifiers", with 5K and with 105K images
        rows = v[[s == images for _, _, s in v.index]]
        assert rows.groupby(level="metric").idxmax().map(lambda i: i[0]).eq("spreading").all()
    assert f"`{STL10}.csv`" in (REFERENCE_DIR / "README.md").read_text(encoding="utf-8")
