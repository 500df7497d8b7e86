"""Figure notebooks: neighbour grids, positive mining over training, and the compute-cost table."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from ssml_lib.errors import ConfigError, SsmlError
from ssml_lib.experiments.cost import build_cost_table, cost_records, cost_table, run_cost_notebook
from ssml_lib.experiments.figures import (MATCH_COLOUR, MISMATCH_COLOUR, QUERY_COLOUR, REJECTED_COLOUR,
                                          plot_mined_positives, plot_neighbours, plot_precision_curves)
from ssml_lib.experiments.neighbours import query_neighbours, run_neighbours_notebook
from ssml_lib.experiments.positive_mining import (MINING_RULES, pick_points, read_precision_curves,
                                                  read_snapshots, run_positive_mining_notebook)

TINY = dict(standin_size="tiny", device="cpu", seed=0)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    for var, sub in (("SSML_CACHE", "cache"), ("SSML_RESULTS", "results"), ("SSML_RUNS", "runs")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    return tmp_path


def _frames(ax):
    return [(p.get_label(), to_rgba(p.get_edgecolor())) for p in ax.patches if isinstance(p, Rectangle)]


def _img(v):
    return np.full((8, 8, 3), v, dtype=np.uint8)


# ---------------------------------------------------------------- pure plotting


def test_plot_neighbours_frames_match_classes():
    fig = plot_neighbours([_img(0), _img(50)], [[_img(1), _img(2), _img(3)], [_img(4), _img(5), _img(6)]],
                          [7, 9], [[7, 8, 7], [1, 9, 9]])
    axes = fig.axes
    assert len(axes) == 8  # 2 rows x (query + 3)
    want = [("query", QUERY_COLOUR), ("match", MATCH_COLOUR), ("mismatch", MISMATCH_COLOUR), ("match", MATCH_COLOUR),
            ("query", QUERY_COLOUR), ("mismatch", MISMATCH_COLOUR), ("match", MATCH_COLOUR), ("match", MATCH_COLOUR)]
    for ax, (kind, colour) in zip(axes, want):
        assert _frames(ax) == [(kind, to_rgba(colour))]
    assert [ax.get_title() for ax in axes] == ["7", "7", "8", "7", "9", "1", "9", "9"]  # class numbers above


def test_plot_neighbours_refuses_ragged_input():
    with pytest.raises(ConfigError, match="label"):
        plot_neighbours([_img(0)], [[_img(1), _img(2)]], [1], [[1]])
    with pytest.raises(ConfigError, match="one neighbour row per query"):
        plot_neighbours([_img(0), _img(1)], [[_img(1)]], [1, 2], [[1]])


def test_plot_mined_positives_frames_and_empty_points():
    fig = plot_mined_positives([_img(0)], [3], [[[_img(1), _img(2)], []]], [[[3, 4], []]],
                               point_names=["epoch 1", "epoch 5"], n_show=2)
    frames = [f for ax in fig.axes for f in _frames(ax)]
    assert frames == [("query", to_rgba(QUERY_COLOUR)), ("match", to_rgba(MATCH_COLOUR)),
                      ("mismatch", to_rgba(MISMATCH_COLOUR))]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "none" in texts and "epoch 1" in texts and "epoch 5" in texts
    with pytest.raises(ConfigError, match="training points"):
        plot_mined_positives([_img(0)], [3], [[[_img(1)]]], [[[3]]], point_names=["a", "b"])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["query / anchor", "same class", "another class"]


def test_plot_mined_positives_shows_turned_down_candidates_in_grey():
    fig = plot_mined_positives([_img(0)], [3], [[[]]], [[[]]], point_names=["epoch 1"], n_show=3,
                               rejected_images=[[[_img(1), _img(2)]]], rejected_labels=[[[3, 4]]])
    frames = [f for ax in fig.axes for f in _frames(ax)]
    assert [k for k, _ in frames] == ["query", "rejected", "rejected"]
    assert {c for k, c in frames if k == "rejected"} == {to_rgba(REJECTED_COLOUR)}
    assert "candidate turned down by the method's selection" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_query_neighbours_excludes_self_and_breaks_ties_by_index():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    queries, nbrs = query_neighbours(emb, n_queries=5, k=2, seed=0)
    assert queries.tolist() == [0, 1, 2, 3, 4]
    # 0, 1, 3 are identical: each one's neighbours are the other two in index order, never itself
    assert nbrs[:4].tolist() == [[1, 3], [0, 3], [4, 0], [0, 1]]
    assert nbrs[4].tolist() == [2, 0]
    with pytest.raises(ConfigError, match="too few"):
        query_neighbours(emb, n_queries=2, k=5, seed=0)


# ---------------------------------------------------------------- runs read back


def _write_log(folder: Path, records, index=None):
    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if index is not None:
        (folder / "stage.json").write_text(json.dumps({"index": index}))


def test_precision_curves_and_snapshots_from_hand_written_logs(tmp_path):
    run = tmp_path / "insclr-abc"
    # folder names sort cycle10 < cycle2 as text; natural order and stage.json indices must put cycle2 first
    _write_log(run / "cycle2_base", [{"epoch": 0, "pos_precision": 0.5, "mined_positives": {"4": [1, 2]}},
                                     {"epoch": 1, "pos_precision": "nan", "mined_positives": {"4": [2]}}], index=0)
    _write_log(run / "cycle10_impr", [{"epoch": 0, "pos_precision": None, "mined_positives": {"4": []}}])
    single = tmp_path / "spreading-x"
    _write_log(single / "train", [{"epoch": e, "pos_precision": 1.0} for e in range(3)])
    df = read_precision_curves({"insclr": run, "spreading": single})
    ins = df[df.method == "insclr"]
    assert ins["stage"].tolist() == ["cycle2_base", "cycle2_base", "cycle10_impr"]
    assert ins["cum_epoch"].tolist() == [1, 2, 3] and ins["epoch"].tolist() == [1, 2, 1]
    assert ins["pos_precision"].iloc[0] == 0.5 and ins["pos_precision"].iloc[1:].isna().all()
    assert df[df.method == "spreading"]["cum_epoch"].tolist() == [1, 2, 3]
    snaps = read_snapshots(run)
    assert [(s["stage"], s["epoch"], s["cum_epoch"], s["positives"]) for s in snaps] == [
        ("cycle2_base", 1, 1, {4: [1, 2]}), ("cycle2_base", 2, 2, {4: [2]}), ("cycle10_impr", 1, 3, {4: []})]
    fig = plot_precision_curves(df)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["InsCLR", "Spreading", "a new stage (cycle, round) begins", "no positive mined"]
    # the epochs without a positive are marked (x at 0), not dropped silently
    marks = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "x"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 3]
    # the x axis counts whole epochs
    assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())
    with pytest.raises(ConfigError, match="does not exist"):
        read_precision_curves({"stml": tmp_path / "missing"})


def test_pick_points():
    assert pick_points(10, 4) == [0, 3, 6, 9]
    assert pick_points(2, 4) == [0, 1]
    assert pick_points(0, 4) == []


def test_mining_rules_read_the_methods_state():
    anchors = torch.tensor([0, 2])
    stml = SimpleNamespace(neighbours=torch.tensor([[0, 5, 6], [1, 0, 2], [2, 3, 4]]))
    assert MINING_RULES["stml"](stml, None, anchors) == [[5, 6], [3, 4]]
    isl = SimpleNamespace(affinity=SimpleNamespace(table=torch.tensor([[3, -1], [-1, -1], [-1, 1]])))
    assert MINING_RULES["isl"](isl, None, anchors) == [[3], [1]]
    plain = SimpleNamespace(partner=torch.zeros(0, dtype=torch.int64))
    assert MINING_RULES["spreading"](plain, None, anchors) == [[0], [2]]  # the anchor's own second view
    swapped = SimpleNamespace(partner=torch.tensor([1, 1, 0]))
    assert MINING_RULES["spreading"](swapped, None, anchors) == [[1], [0]]


def test_insclr_rule_logs_accepted_and_turned_down_candidates():
    from ssml_lib.experiments.positive_mining import REJECTED_KEY, SNAPSHOT_KEY, snapshot_fn

    feats = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [1.0, 0.05]]), dim=1)
    insclr = SimpleNamespace(pool=torch.tensor([[1, 2], [0, 3], [3, 0], [1, 0]]), cfg=SimpleNamespace(num_neighbors=2),
                             _threshold=lambda: 0.9)
    ctx = SimpleNamespace(datasets={"noaug": list(range(4))},
                          embed=lambda subset: feats[torch.as_tensor(subset.indices)])
    rec = snapshot_fn("insclr", [0, 2])(insclr, ctx)
    assert rec[SNAPSHOT_KEY] == {"0": [1], "2": []}  # cos(0, 1) = 0.995 passes, cos(0, 2) = 0 and cos(2, .) fail
    assert rec[REJECTED_KEY] == {"0": [2], "2": [3, 0]}


# ---------------------------------------------------------------- cost table


def _provenance(path: Path, *, table, method, standin, wall, cuda=0, device="auto", training=None):
    rec = {"schema": 1, "timestamp_utc": "2024-01-01T00:00:00+00:00", "wall_time_s": wall,
           "params": {"run": {"table": table, "method": method, "device": device}},
           "device": {"cuda_count": cuda, "summary": f"{cuda}x A100" if cuda else "CPU (test, 2 cores)"},
           "data": {"standin": standin}, "extra": {"training": training} if training else {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


def test_cost_table_from_hand_written_provenance(isolated):
    res = isolated / "results"
    _provenance(res / "standin" / "table2_cub_scratch" / "spreading.json", table="table2_cub_scratch",
                method="spreading", standin=True, wall=7200.0)
    run = isolated / "runs" / "real" / "table7_gldv2" / "insclr-1"
    for stage in ("cycle1_base", "cycle2_impr"):
        (run / stage).mkdir(parents=True)
        (run / stage / "provenance.json").write_text(json.dumps({"params": {"world_size": 4}}))
        (run / stage / "stage.json").write_text(json.dumps({"train_time_s": 1800.0}))
    # trained before under torchrun on 4 GPUs (2 x 0.5 h), then loaded and evaluated by the notebook in 600 s
    _provenance(res / "table7_gldv2" / "insclr.json", table="table7_gldv2", method="insclr", standin=False,
                wall=600.0, cuda=4, training={"out_dir": str(run), "wall_time_s": 1.0})
    # trained in the row's own process on one GPU (run folder elsewhere): cost = the row's wall time
    _provenance(res / "table4_cars_scratch" / "spreading.json", table="table4_cars_scratch", method="spreading",
                standin=False, wall=3600.0, cuda=1, training={"out_dir": "/elsewhere/run", "wall_time_s": 3000.0})
    _provenance(res / "table1_cub_pretrained" / "stml.json", table="table1_cub_pretrained", method="stml",
                standin=False, wall=1800.0, cuda=1, device="cpu")  # GPU visible, run told to use the CPU
    (res / "figures").mkdir(parents=True)
    (res / "figures" / "fig.json").write_text(json.dumps({"wall_time_s": 1, "params": {"figure": "x"}}))
    (res / "benchmarks").mkdir()
    (res / "benchmarks" / "eval_cpu.json").write_text("{}")
    df = cost_records()
    got = {(r.method, r.dataset, r.init, r.data):
           (r.unit, r.devices, r.hours, None if np.isnan(r.train_h) else r.train_h)
           for r in df.itertuples()}
    assert got == {
        ("spreading", "cub200", "scratch", "stand-in"): ("CPU hours", 1, 2.0, None),
        ("insclr", "gldv2_6pct", "pretrained", "real"): ("GPU hours", 4, pytest.approx((599 + 4 * 3600) / 3600), 4.0),
        ("spreading", "cars196", "scratch", "real"): ("GPU hours", 1, 1.0, 3000 / 3600),
        ("stml", "cub200", "pretrained", "real"): ("CPU hours", 1, 0.5, None),
    }
    side = cost_table(df[df.data == "real"]).set_index(["method", "init", "dataset"])
    assert side.loc[("insclr", "pretrained", "gldv2_6pct"), "paper"] == 84.0
    assert side.loc[("insclr", "pretrained", "gldv2_6pct"), "hours"] == pytest.approx(4.1664, abs=1e-4)
    assert np.isnan(side.loc[("spreading", "scratch", "cub200"), "hours"])  # stand-in rows stay apart
    assert len(side) == 24  # every paper cell once: our real rows all fall on cells the paper has
    result = build_cost_table()
    assert (res / "standin" / "table10_cost.md").is_file() and (res / "table10_cost.md").is_file()
    standin_md = (res / "standin" / "table10_cost.md").read_text()
    assert "STAND-IN DATA" in standin_md and "CPU hours" in standin_md and "insclr.json" not in standin_md
    real_md = (res / "table10_cost.md").read_text()
    assert "3.5d = 84 h" in real_md and "GPU hours" in real_md and "825 h = 34d + 9h" in real_md
    assert (res / "standin" / "figures" / "table10_cost.png").stat().st_size > 0
    # the cost table's own records are not counted on a second build
    assert len(cost_records()) == 4 and set(result.tables) == {"standin", "real"}


def test_cost_notebook_refuses_unknown_parameters(isolated):
    with pytest.raises(ConfigError, match="includ"):
        run_cost_notebook({"includ": ["standin"]})
    result = run_cost_notebook({"include": ["standin"], "results_root": None})
    assert "STAND-IN DATA" in result.markdown and not result.paths  # no records: shown, nothing written


# ---------------------------------------------------------------- notebooks end to end (tiny stand-in)


def test_neighbours_notebook_end_to_end(isolated):
    ns = dict(method="spreading", datasets=["cub200"], init="scratch", n_queries=2, n_neighbours=3,
              data_root=None, params_file=None, epochs=1, batch_size=16, **TINY)
    result = run_neighbours_notebook(ns, progress=False)
    png = isolated / "results" / "standin" / "figures" / "fig20_21_neighbours_cub200_spreading_scratch.png"
    assert result.standin and result.paths["cub200_spreading"] == png and png.stat().st_size > 0
    rec = result.provenance["extra"]["rows"]["cub200_spreading"]
    assert len(rec["neighbours"]) == 2 and all(len(r) == 3 for r in rec["neighbours"])
    assert all(q not in row for q, row in zip(rec["queries"], rec["neighbours"]))
    # the table notebook's own run folder (same key), so the two share one training
    from ssml_lib.experiments.runner import resolve_params, run_dir_for

    row_params = {k: v for k, v in ns.items() if k not in ("datasets", "init", "n_queries", "n_neighbours",
                                                            "params_file")}
    same = run_dir_for("table2_cub_scratch", "spreading", True, resolve_params("table2_cub_scratch", None, row_params))
    assert rec["training"]["out_dir"] == str(same)
    frames = [f[0] for ax in result.figures["cub200_spreading"].axes for f in _frames(ax)]
    assert frames.count("query") == 2 and len(frames) == 8
    again = run_neighbours_notebook(ns, progress=False)  # the finished run is loaded, not trained again
    assert again.provenance["extra"]["rows"]["cub200_spreading"]["training"]["reused"]
    with pytest.raises(SsmlError, match="epoks"):
        run_neighbours_notebook({**ns, "epoks": 3}, progress=False)


def test_positive_mining_notebook_end_to_end(isolated):
    ns = dict(methods=["stml", "insclr"], table="table2_cub_scratch", n_anchors=2, n_points=2, n_show=2,
              params_dir=None, data_root=None,
              method_params={"stml": {"epochs": 2, "batch_size": 12, "num_neighbors": 3},
                             "insclr": {"max_steps": 2, "batch_size": 12, "pool_size": 5,
                                        "insclr_stages": ["base", "impr"]}}, **TINY)
    result = run_positive_mining_notebook(ns, progress=False)
    curves = result.tables["precision"]
    assert curves.groupby("method")["cum_epoch"].max().to_dict() == {"insclr": 2, "stml": 2}
    shown = result.provenance["extra"]["shown"]
    assert shown["insclr"]["points"] == ["cycle1_base ep 1", "cycle2_impr ep 1"]
    assert all(len(p) <= 2 for row in shown["stml"]["positives"] for p in row)
    run_dirs = result.provenance["extra"]["runs"]
    stml_log = Path(run_dirs["stml"]) / "train" / "log.jsonl"
    logged = [json.loads(line)["mined_positives"] for line in stml_log.read_text().splitlines()]
    anchors = shown["stml"]["anchors"]
    assert [sorted(map(int, d)) for d in logged] == [anchors, anchors]
    assert all(len(v) == 2 for d in logged for v in d.values())  # num_neighbors 3 = itself + 2
    for key in ("stml", "insclr", "precision"):
        assert result.paths[key].is_file() and str(result.paths[key]).endswith(".png")
    with pytest.raises(ConfigError, match="positive mining is defined"):
        run_positive_mining_notebook({**ns, "methods": ["pretrained"]}, progress=False)
