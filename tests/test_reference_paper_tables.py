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


# The Spreading paper's Tables 3-6 (unseen test classes), read again from its table lines when this test was
# written: row label -> the printed cells (R@1, R@2, R@4, R@8, NMI for CUB / Cars; R@1, R@10, R@100, NMI for SOP).
SPREADING_UNSEEN = {
    "paper_spreading_table3_cub": {
        "Initial (FC)": "39.2 52.1 66.1 78.2 51.4", "Lifted [32]": "43.6 56.6 68.6 79.6 56.5",
        "Clustering[38]": "48.2 61.4 71.8 81.9 59.2", "Triplet+ [13]": "45.9 57.7 69.6 79.8 58.1",
        "Smart+ [13]": "49.8 62.3 74.1 83.3 59.9", "Cyclic [25]": "40.8 52.8 65.1 76.0 52.6",
        "Exemplar [8]": "38.2 50.3 62.8 75.0 45.0", "NCE [46]": "39.2 51.4 63.7 75.8 45.1",
        "DeepCluster[3]": "42.9 54.1 65.6 76.2 53.0", "MOM [21]": "45.3 57.8 68.6 78.4 55.0",
        "Ours": "46.2 59.0 70.1 80.2 55.4"},
    "paper_spreading_table4_sop": {
        "Initial (FC)": "40.8 56.7 72.1 84.0", "Exemplar [8]": "45.0 60.3 75.2 85.0", "NCE [46]": "46.6 62.3 76.8 85.8",
        "DeepCluster[3]": "34.6 52.6 66.8 82.8", "MOM [21]": "43.3 57.2 73.2 84.4", "Ours": "48.9 64.0 78.0 86.0"},
    "paper_spreading_table5_cars": {
        "Initial (FC)": "35.1 47.4 60.0 72.0 38.3", "Exemplar [8]": "36.5 48.1 59.2 71.0 35.4",
        "NCE [46]": "37.5 48.7 59.8 71.5 35.6", "DeepCluster[3]": "32.6 43.8 57.0 69.5 38.5",
        "MOM [21]": "35.5 48.2 60.6 72.4 38.6", "Ours": "41.3 52.3 63.6 74.9 35.8"},
    "paper_spreading_table6_sop_scratch": {
        "Random": "18.4 29.4 46.0 79.8", "Exemplar [8]": "31.5 46.7 64.2 82.9", "NCE [46]": "34.4 49.0 65.2 84.1",
        "MOM [21]": "16.3 27.6 44.5 80.6", "Ours": "39.7 54.9 71.0 84.7"},
}
UNSEEN_DATASET = {"paper_spreading_table3_cub": "cub200", "paper_spreading_table4_sop": "sop",
                  "paper_spreading_table5_cars": "cars196", "paper_spreading_table6_sop_scratch": "sop"}


def test_spreading_unseen_tables_transcription():
    for table, rows in SPREADING_UNSEEN.items():
        df = load_reference(table)
        assert list(df.columns) == COLUMNS and (df["table"] == table).all() and (df["unit"] == "percent").all()
        assert (df["dataset"] == UNSEEN_DATASET[table]).all()
        assert list(dict.fromkeys(df["paper_label"])) == list(rows)  # the paper's row order
        metrics = ["R@1", "R@2", "R@4", "R@8", "NMI"] if "R@2" in set(df["metric"]) else ["R@1", "R@10", "R@100", "NMI"]
        for label, cells in rows.items():
            got = df[df["paper_label"] == label]
            assert list(got["metric"]) == metrics and " ".join(got["printed"]) == cells, (table, label)
        assert (df["printed"].astype(float) == df["value"]).all()
        assert not df.duplicated(["method", "dataset", "metric", "setting"]).any()
        assert df["source"].str.startswith("the Spreading paper (Ye et al. 2019").all()
        assert f"`{table}.csv`" in (REFERENCE_DIR / "README.md").read_text(encoding="utf-8")


def test_spreading_unseen_row_names_and_supervised_marks():
    for table in SPREADING_UNSEEN:
        df = load_reference(table).drop_duplicates("paper_label").set_index("paper_label")
        first = "Random" if table.endswith("scratch") else "Initial (FC)"
        assert df.loc[first, "method"] == "pretrained" and df.loc["Ours", "method"] == "spreading"
        assert df.loc["NCE [46]", "method"] == "nce" and df.loc["MOM [21]", "method"] == "mom"
        supervised = set(df.index[df["setting"] == "supervised"])
        assert supervised == ({"Lifted [32]", "Clustering[38]", "Triplet+ [13]", "Smart+ [13]"}
                              if table.endswith("cub") else set())
        assert set(df["setting"]) <= {"", "supervised"}


def test_spreading_unseen_tables_agree_with_what_the_paper_says():
    r1 = {t: load_reference(t).query("metric == 'R@1' and setting == ''").set_index("paper_label")["value"]
          for t in SPREADING_UNSEEN}
    for table, v in r1.items():  # "the proposed method is the clear winner" (R@1, unsupervised rows)
        assert v.idxmax() == "Ours", table
    # Table 6: "MOM fails": below the random network
    assert r1["paper_spreading_table6_sop_scratch"]["MOM [21]"] < r1["paper_spreading_table6_sop_scratch"]["Random"]
    # Table 3's Initial (FC) row is the thesis's Table 1 "ImageNet pre-trained" row, number for number
    thesis = load_reference("table1_cub_pretrained").query("method == 'pretrained'")["value"].tolist()
    assert load_reference("paper_spreading_table3_cub").query("method == 'pretrained'")["value"].tolist() == thesis
