"""What the ISL paper's figure notebooks share (Figures 3 and 4, the appendix's mined positives): ISL trained on
CIFAR-10 (the paper's setting for all three: "CIFAR-10 with AlexNet") through Table 1's row machinery
(:mod:`~ssml_lib.experiments.paper_isl`), with a figure's own measurement logged after every backbone epoch.

Each figure is a :class:`~ssml_lib.experiments.paper_cifar.PaperTable` of one row, ``isl``: on the stand-in Table
1's recipe (convnet4, its ISL schedule) plus the figure's own stand-in settings; at paper scale
``params/<figure>/isl.yaml`` (AlexNet for CIFAR, the official settings; real data only). The figure's own keys
(set sizes, sweep values) are keys of the table's model defaults, so the params file can hold them.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from ..paths import results_dir, runs_dir, standin_results_base
from .paper_cifar import PaperTable, one_thread, resolve_row
from .paper_cifar_run import Row, open_small, row_digest, train_row
from .paper_isl import MODEL_DEFAULTS, ROWS, STANDIN, STANDIN_ISL, TINY

DATASET = "cifar10"
COMMON_PARAMS = ("epochs", "paper_scale", "data_root", "standin_size", "device", "seed")
NEEDS = ("(AlexNet on CIFAR-10, the paper's recipe, hundreds of epochs) and needs the real dataset: pass data_root "
         "(the folder holding cifar-10-batches-py/).")


def figure_table(name: str, figure_keys: Mapping[str, Any], standin_isl: Mapping[str, Any]) -> PaperTable:
    """One-row table ``name``: ``isl`` with Table 1's stand-in recipe and ``standin_isl`` over its ISL layer."""
    return PaperTable(name, {"isl": ROWS["isl"]}, STANDIN, TINY, {**MODEL_DEFAULTS, **figure_keys}, NEEDS,
                      standin_method={"isl": {**STANDIN_ISL, **standin_isl}})


class FigureRun:
    """The figure's data (opened once) and its ISL trainings (each setting trained once per call)."""

    def __init__(self, table: PaperTable, params: Mapping[str, Any]):
        self.table, self.params = table, dict(params)
        self.data_root, self.size = params.get("data_root"), params.get("standin_size") or "tiny"
        self.paper_scale = bool(params.get("paper_scale", False))
        self.seed = int(params.get("seed") or 0)
        self.train_set, self.test_set, self.standin = open_small(DATASET, self.data_root, self.size, seed=self.seed)
        self.kind = f"standin-{self.size}" if self.standin else "real"
        self._done: dict[str, dict] = {}

    def row(self, overrides: Optional[Mapping[str, Any]] = None) -> Row:
        base = {k: self.params.get(k) for k in ("epochs", "device", "seed")}
        # the figure's keys the notebook sets: in the row (and its run folder's digest) like any other setting
        base.update({k: v for k, v in self.params.items() if k in self.table.model_defaults and v is not None})
        network = self.params.get("network")
        return resolve_row("isl", data_root=self.data_root, paper_scale=self.paper_scale, standin_size=self.size,
                           overrides={"backbone": network, **base, **dict(overrides or {})}, table=self.table)

    def train(self, row: Row, epoch_eval: Optional[Callable[[Any, Any], dict]] = None) -> dict:
        """{'row', 'history', 'wall_s'} of ``row``; a setting already trained in this call is not trained again."""
        digest = row_digest(row, self.train_set.data_id)
        if digest not in self._done:
            start = time.perf_counter()
            folder = runs_dir() / self.table.name / self.kind / DATASET / f"{row.name}-{digest}"
            cpu = row.train_cfg.device == "cpu" or not torch.cuda.is_available()
            with one_thread(self.standin and cpu):
                history = train_row(row, self.train_set, self.test_set, folder, standin=self.standin,
                                    epoch_eval=epoch_eval)
            self._done[digest] = {"row": row, "history": history, "wall_s": time.perf_counter() - start,
                                  "run_dir": folder}
        return self._done[digest]

    def figure_setting(self, key: str) -> Any:
        """A figure key: the notebook's value, else the params file's (paper scale), else the table's default."""
        return self.row().model[key]


    def save(self, figures: Mapping[str, Any], tables: Mapping[str, Any], *, trainings: Sequence[dict],
             extra: Optional[Mapping[str, Any]] = None) -> dict:
        """Each figure's PNG, each table's CSV and one provenance JSON (settings, wall times, run folders), in
        ``figures/`` of the stand-in's results folder (git-ignored) or of ``results/`` for real data."""
        from ..io import atomic_write_text
        from ..paths import shown_path
        from ..provenance import collect_provenance
        from .paper_cifar_run import config_dict
        from .figures import save_figure

        base = (standin_results_base(self.size) if self.standin else results_dir()) / "figures"
        paths = {k: save_figure(fig, base / f"{self.table.name}_{k}.png") for k, fig in figures.items()}
        paths.update({f"{k}_csv": atomic_write_text(base / f"{self.table.name}_{k}.csv", t.to_csv(index=False))
                      for k, t in tables.items()})
        runs = [{"method_config": config_dict(t["row"].method_cfg), "train_config": config_dict(t["row"].train_cfg),
                 "model": dict(t["row"].model), "wall_s": t["wall_s"], "run_dir": shown_path(t["run_dir"])}
                for t in trainings]
        provenance = collect_provenance({"figure": self.table.name, "notebook": self.params}, standin=self.standin,
                                        data_fingerprint=self.train_set.data_id,
                                        wall_time_s=sum(t["wall_s"] for t in trainings),
                                        extra={"dataset": DATASET, "trainings": runs, **dict(extra or {})})
        paths["provenance"] = atomic_write_text(base / f"{self.table.name}.json",
                                                json.dumps(provenance, indent=2, default=str) + "\n")
        return {"paths": paths, "provenance": provenance}

    def data_note(self) -> str:
        what = f"stand-in (`{self.size}`): synthetic CIFAR-10 in the real layout" if self.standin else "CIFAR-10"
        networks = ", ".join(sorted({t["row"].model["backbone"] for t in self._done.values()}))
        note = f"Data: {what}; network {networks}, seed {self.seed}."
        if self.standin:
            note += (" **STAND-IN DATA**: a small network and a few CPU epochs on a synthetic set, not comparable "
                     "with the paper's numbers; they show that the measurement runs end to end.")
        return note


__all__ = ["COMMON_PARAMS", "DATASET", "FigureRun", "figure_table"]
