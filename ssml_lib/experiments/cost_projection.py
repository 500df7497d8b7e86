"""Table 10's projected column: GPU hours of every thesis row at paper scale on the GPU the method benchmark
measured (``results/benchmarks/methods_cuda.json``), a projection, not a run.

Per row (method x dataset x init), from the row's paper-scale params file (``params/<table>/<method>.yaml``):

- training steps: Spreading and STML ``epochs x (train images // batch_size)``, each step 2 views of the batch;
  InsCLR the cycles of ``insclr_stages``, ``max_steps`` each (``impr_max_steps`` for the memory cycle where
  set), ``batch_size`` images a step;
- seconds per image: the measured step time / images per step of the method's benchmark case where it ran the
  row's backbone; otherwise the method's overhead there (step / backbone-only step) x the row's backbone's
  backbone-only time per image (from a case that ran it); x (row's image size / measured size)^2.

Counted: training steps only. Not counted: the per-epoch or per-cycle passes over the training set (STML's
neighbour sampler, InsCLR's candidate pools, Spreading's CUB neighbours), evaluation, data loading; nor the
batch-size and compile differences between the measured step and the row's. The thesis's hours include all of
those, on four A100s; so the two columns bound different things and are shown side by side, not rescaled.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd

from ..config_files import read_params_file
from ..data.base import EXPECTED_COUNTS
from ..paths import REPO_ROOT, results_dir, shown_path
from .tables import TABLES

MEASURED = "methods_cuda.json"  # eager steps at the papers' batches (the compiled file covers two cases only)
TRAIN_IMAGES = {"cub200": EXPECTED_COUNTS[("cub200", "train")], "cars196": EXPECTED_COUNTS[("cars196", "train")],
                "sop": EXPECTED_COUNTS[("sop", "train")],
                "gldv2_6pct": 239_979}  # the thesis's 6% of GLDv2 (12,586 classes)
CASES = {"spreading": "spreading", "stml": "stml", "base": "insclr_base", "impr": "insclr_impr"}
COLUMNS = ["method", "init", "dataset", "projected_h", "steps", "images", "ms_per_image", "basis", "params_file"]


def paper_table(dataset: str, init: str) -> Optional[str]:
    """The table whose rows train on ``dataset`` (thesis name) with ``init`` ('pretrained' / 'scratch')."""
    for spec in TABLES.values():
        name = "gldv2_6pct" if spec.train_dataset == "gldv2" else spec.train_dataset
        if name == dataset and ("pretrained" if spec.init == "imagenet" else "scratch") == init \
                and not spec.per_stage:
            return spec.name
    return None


def load_measured(bench_dir: str | Path | None = None) -> Optional[dict]:
    """{'cases': case -> row, 'device', 'timestamp', 'source'} from the method benchmark, or None if absent."""
    path = Path(bench_dir) if bench_dir is not None else results_dir() / "benchmarks"
    path = path / MEASURED
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        cases = {r["case"]: r for r in rec["rows"] if r.get("step_s") and r.get("backbone_step_s")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    prov = rec.get("provenance") or {}
    return {"cases": cases, "device": (prov.get("device") or {}).get("summary", "the measured GPU"),
            "timestamp": prov.get("timestamp_utc"), "source": shown_path(path)}


def _seconds_per_image(case: str, backbone: str, size: int, measured: dict) -> tuple[Optional[float], str]:
    cases = measured["cases"]
    if case not in cases:
        return None, f"no measured {case} step"
    c = cases[case]
    pixels = (size / c["resolution"]) ** 2
    if c["backbone"] == backbone:
        return c["step_s"] / c["images_per_step"] * pixels, f"{case} step on {backbone}"
    other = next((r for r in cases.values() if r["backbone"] == backbone), None)
    if other is None:
        return None, f"no measured {backbone} step"
    overhead = c["step_s"] / c["backbone_step_s"]
    per_image = other["backbone_step_s"] / other["images_per_step"]
    return per_image * overhead * pixels, (f"{case} overhead {overhead:.2f} ({c['backbone']}) x {backbone} "
                                          f"backbone step ({other['case']} case)")


def project_row(method: str, dataset: str, init: str, measured: dict) -> dict:
    """Projected GPU hours of one thesis row (NaN where a step or the params file is missing)."""
    table = paper_table(dataset, init)
    out = {"method": method, "init": init, "dataset": dataset, "projected_h": float("nan"), "steps": None,
           "images": None, "ms_per_image": None, "basis": "", "params_file": None}
    path = REPO_ROOT / "params" / str(table) / f"{method}.yaml"
    if table is None or not path.is_file():
        return {**out, "basis": "no paper-scale params file"}
    p = read_params_file(path)
    out["params_file"] = shown_path(path)
    if method == "insclr":
        stages = [(s, p["impr_max_steps"] if s == "impr" and "impr_max_steps" in p else p["max_steps"], p["batch_size"])
                  for s in p["insclr_stages"]]
    else:
        stages = [(method, p["epochs"] * (TRAIN_IMAGES[dataset] // p["batch_size"]), 2 * p["batch_size"])]
    seconds, steps, images, bases = 0.0, 0, 0, []
    for stage, n_steps, per_step in stages:
        s, basis = _seconds_per_image(CASES[stage], p["backbone"], p["image_size"], measured)
        if s is None:
            return {**out, "basis": basis}
        seconds += n_steps * per_step * s
        steps, images = steps + n_steps, images + n_steps * per_step
        bases.append(basis)
    return {**out, "projected_h": seconds / 3600, "steps": steps, "images": images,
            "ms_per_image": seconds / images * 1e3, "basis": "; ".join(dict.fromkeys(bases))}


def projection(reference: pd.DataFrame, bench_dir: str | Path | None = None) -> tuple[pd.DataFrame, Optional[dict]]:
    """One projected row per thesis cell of ``reference`` (the reference table: method, setting = init,
    dataset), and the measurement it used (None, and an empty frame, without a measurement)."""
    measured = load_measured(bench_dir)
    if measured is None:
        return pd.DataFrame(columns=COLUMNS), None
    ref = reference.rename(columns={"setting": "init"})
    cells = ref[["method", "init", "dataset"]].drop_duplicates().itertuples(index=False)
    rows = [project_row(m, d, i, measured) for m, i, d in cells]
    return pd.DataFrame(rows, columns=COLUMNS), {k: v for k, v in measured.items() if k != "cases"}


def projection_note(measured: Optional[dict]) -> str:
    if measured is None:
        return (f"Projected column: no GPU step times found (results/benchmarks/{MEASURED}; written by "
                "`python -m benchmarks.run --suite methods --device cuda`).")
    return (f"**Projected** = a projection, not a run: training steps only, at the paper's epochs, steps, batches "
            f"and dataset sizes (params/<table>/<method>.yaml), x the step times measured on "
            f"{measured['device']} ({measured['source']}, {measured['timestamp']}). It leaves out the passes over "
            "the training set between epochs or cycles, evaluation and data loading, which the thesis's hours "
            "(four A100s) include (ssml_lib/experiments/cost_projection.py).")


__all__ = ["MEASURED", "TRAIN_IMAGES", "load_measured", "paper_table", "project_row", "projection",
           "projection_note"]
