"""The Spreading paper's Table 1 (weighted kNN accuracy on CIFAR-10) and Figure 3 (that accuracy per epoch).

A row is trained by ``fit_method`` on the CIFAR-10 training set (the embedded stand-in without ``data_root``) and
scored after every epoch, and before the first, by the weighted kNN classifier (k = 200, sigma = 0.1: docs/
protocols.md) of the test images over the training images, both embedded with the test transform. Rows:
``pretrained`` (the untrained network: the paper's RandomCNN), ``spreading``, ``npsoftmax``, ``nce``, ``triplet``
and ``triplet_hard``. The paper's other rows (DeepCluster, Exemplar CNN) show its number and no run of ours.

Settings, later layers winning: the method's code defaults; on the stand-in :data:`STANDIN` (and
:data:`TINY`), at paper scale ``params/paper_spreading_table1_cifar10/<row>.yaml`` (real data only); then the
notebook's ``epochs``, ``device`` and ``seed``. Unknown names are refused before any work. :class:`PaperTable`
holds what differs between such tables; the ISL paper's Table 1 (``paper_isl``) resolves its rows the same way.
"""
from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import torch
import yaml

from ..engine.config import TrainConfig
from ..errors import ConfigError
from ..paths import REPO_ROOT, results_dir, runs_dir, standin_results_base
from .cli_values import coerce_value
from .paper_cifar_run import Row, evaluate_row, open_cifar10, row_digest, train_row

TABLE = "paper_spreading_table1_cifar10"
PARAMS_DIR = REPO_ROOT / "params" / TABLE
# row -> (registry method, the row's fixed method settings, the reference CSV's setting column)
ROWS: dict[str, tuple[str, dict, str]] = {
    "pretrained": ("pretrained", {}, ""),
    "spreading": ("spreading", {}, ""),
    "npsoftmax": ("npsoftmax", {}, ""),
    "nce": ("nce", {}, ""),
    "triplet": ("triplet", {"triplet_mining": "all"}, ""),
    "triplet_hard": ("triplet", {"triplet_mining": "hard"}, "hard"),
}
# The paper's CIFAR recipe "for all competing methods" (Sec. 4.1): SGD, momentum 0.9, decay 5e-4, lr 0.03,
# x0.1 at 60% and 80% of the run (epochs 120 and 160 of 200). On the stand-in (our choice): convnet4 (the project's
# CPU network) and a CPU-seconds length, batch 64; the milestones follow the epochs (:func:`standin_milestones`).
# The stand-in's lr is the paper's / 10: of 0.001, 0.003, 0.01 and 0.03 (Spreading and NPSoftmax, 3 epochs;
# docs/paper_tables.md) 0.003 gave Spreading the best stand-in kNN accuracy; 0.03 fell below the untrained network.
RECIPE = dict(optimizer="sgd", lr=0.03, momentum=0.9, weight_decay=5.0e-4, schedule="multistep",
              schedule_unit="epoch", gamma=0.1)
STANDIN = dict(RECIPE, lr=0.003, backbone="convnet4", embedding_size=128, epochs=3, batch_size=64)
TINY = dict(epochs=1, batch_size=24)
MODEL_KEYS = ("backbone", "embedding_size", "knn_k", "knn_temperature")
MODEL_DEFAULTS = dict(backbone="resnet18_cifar", embedding_size=128, knn_k=200, knn_temperature=0.1)
FILE_ONLY = ("method", "paper_row")


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """What differs between the small-image tables of the method papers (this one; ``paper_isl``)."""
    name: str
    rows: Mapping[str, tuple[str, dict, str]]  # row -> (registry method, fixed method settings, reference setting)
    standin: Mapping[str, Any]  # the stand-in recipe of every row
    tiny: Mapping[str, Any]  # over it at standin_size tiny
    model_defaults: Mapping[str, Any]  # the model/eval keys and their defaults
    needs: str  # what paper scale needs, for its refusal without data_root
    standin_method: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per method
    paper_table: str = "Table 1"  # the paper's table, in the report
    paper_figure: str = "Figure 3"  # the paper's figure of the per-epoch curves; "": the paper has none
    dataset: str = "cifar10"  # the stand-in whose size sets NCE's stand-in noise count

    @property
    def params_dir(self) -> Path:
        return REPO_ROOT / "params" / self.name

    def params_file(self, row: str) -> Path:
        return self.params_dir / f"{row}.yaml"


SPREADING = PaperTable(TABLE, ROWS, STANDIN, TINY, MODEL_DEFAULTS,
                       "(ResNet18, 200 epochs) and needs the real CIFAR-10: pass data_root (the folder holding "
                       "cifar-10-batches-py/).")


def standin_milestones(epochs: int) -> list[int]:
    """The paper's milestones (0.6 and 0.8 of 200 epochs) scaled to ``epochs``: [2] for 3, [3, 4] for 5."""
    return sorted({max(1, round(0.6 * epochs)), max(1, round(0.8 * epochs))})


def standin_nce_k(size: str, dataset: str = "cifar10") -> int:
    """NCE's noise count on the stand-in: the official share of the training set (4,096 of 50,000 images), so the
    few hundred stand-in images are not each drawn as noise many times per row, their own row among them (STL-10:
    the share of its labelled training images)."""
    from ..data.standin.sizes import resolve_size

    return max(1, round(4096 / 50000 * 10 * resolve_size(dataset, size).train_per_class))


def params_file(row: str) -> Path:
    return PARAMS_DIR / f"{row}.yaml"


def _split(method: str, values: Mapping[str, Any], where: str,
           table: PaperTable = SPREADING) -> tuple[dict, dict, dict]:
    """(method config keys, TrainConfig keys, model/eval keys) of ``values``; anything else is refused."""
    from ..methods.schedule import method_config_class

    names = {f.name for f in dataclasses.fields(method_config_class(method))}
    train = {f.name for f in dataclasses.fields(TrainConfig)}
    out: tuple[dict, dict, dict] = ({}, {}, {})
    for key, value in values.items():
        if key in names:
            out[0][key] = value
        elif key in train:
            out[1][key] = value
        elif key in table.model_defaults:
            out[2][key] = value
        elif key not in FILE_ONLY:
            raise ConfigError(f"unknown parameter {key!r} ({where}) for the {method!r} row of {table.name}. Valid: "
                              f"{', '.join(sorted(names | train | set(table.model_defaults)))}.")
    return out


def resolve_row(row: str, *, data_root: Optional[str] = None, paper_scale: bool = False,
                standin_size: str = "default", overrides: Optional[Mapping[str, Any]] = None,
                table: PaperTable = SPREADING) -> Row:
    """The checked settings of one row of ``table`` (see the module docstring for the layers)."""
    from ..methods.schedule import method_config, train_config

    if row not in table.rows:
        raise ConfigError(f"unknown row {row!r} of {table.name}; the rows are: {', '.join(table.rows)}.")
    method, fixed, setting = table.rows[row]
    path = table.params_file(row)
    if paper_scale and data_root is None:
        raise ConfigError(f"paper_scale runs {path.name} {table.needs}")
    if paper_scale:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if values.get("paper_row") != f"{table.name}/{row}" or values.get("method") != method:
            raise ConfigError(f"{path} names another row ({values.get('paper_row')!r}).")
        layers = [(values, str(path))]
    else:
        layers = [(table.standin, "the stand-in recipe"), (table.standin_method.get(method, {}),
                                                           f"the stand-in recipe of {method}")]
        layers += [(table.tiny, "standin_size tiny")] if standin_size == "tiny" else []
    layers.append(({k: v for k, v in dict(overrides or {}).items() if v is not None}, "the notebook's parameters"))
    fixed_m, _, fixed_o = _split(method, fixed, f"the row {row!r}", table)  # method and model/eval settings
    mcfg, tcfg, model = dict(fixed_m), {}, dict(table.model_defaults, **fixed_o)
    for values, where in layers:
        m, t, o = _split(method, values, where, table)
        mcfg.update(m), tcfg.update(t), model.update(o)
    mcfg.update(fixed_m), model.update(fixed_o)  # the row is what it names (e.g. triplet_hard mines hard negatives)
    if not paper_scale and "milestones" not in tcfg:
        tcfg["milestones"] = standin_milestones(int(tcfg["epochs"]))
    if not paper_scale and method == "nce" and "nce_k" not in mcfg:
        mcfg["nce_k"] = standin_nce_k(standin_size, table.dataset)
    if method == "pretrained":
        tcfg = {k: v for k, v in tcfg.items() if k in ("device", "seed", "batch_size")}
    return Row(name=row, method=method, setting=setting, method_cfg=method_config(method, mcfg),
               train_cfg=train_config(method, tcfg), model=model)


def _as_rows(method: Any, rows: Mapping[str, Any] = ROWS) -> list[str]:
    """A row name or a list of them; papermill's ``-p method '["a", "b"]'`` arrives as the JSON text."""
    if isinstance(method, str) and method.startswith("["):
        method = coerce_value(method)
    names = [method] if isinstance(method, str) else list(method or [])
    if not names:
        raise ConfigError(f"method names no row; use one or a list of: {', '.join(rows)}.")
    return names


@contextmanager
def one_thread(on: bool) -> Iterator[None]:
    """The stand-in's small convolutions on one CPU thread: on a shared 2-core CPU a convnet4 step of 128 images at
    32 px took 0.28 s on one thread and 1.34 s on two (the test suite sets one thread for the same reason)."""
    before = torch.get_num_threads()
    if on:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


NOTEBOOK_PARAMS = ("method", "epochs", "paper_scale", "data_root", "standin_size", "device", "seed")


def run_paper_cifar_notebook(params: Mapping[str, Any], table: PaperTable = SPREADING):
    """The notebook's one call: resolve every row of ``table`` (Table 1 here; the ablations' Tables 7 and 8:
    ``paper_spreading_ablations``), open the data, train and score each row, then the table beside the paper's
    and the per-epoch curves (Figure 3). Returns a ``FigureResult`` for ``show_figures``."""
    from .paper_cifar_report import report

    params = {k: params.get(k) for k in NOTEBOOK_PARAMS}  # a notebook passes globals(): only its parameters
    data_root, size = params.get("data_root"), params.get("standin_size") or "default"
    paper_scale = bool(params.get("paper_scale", False))
    overrides = {k: params.get(k) for k in ("epochs", "device", "seed")}
    rows = [resolve_row(r, data_root=data_root, paper_scale=paper_scale, standin_size=size, overrides=overrides,
                        table=table) for r in _as_rows(params.get("method"), table.rows)]
    train_set, test_set, standin = open_cifar10(data_root, size, seed=int(params.get("seed") or 0))
    kind = f"standin-{size}" if standin else "real"
    results = []
    for row in rows:
        start = time.perf_counter()
        folder = runs_dir() / table.name / kind / f"{row.name}-{row_digest(row, train_set.data_id)}"
        with one_thread(standin and (row.train_cfg.device == "cpu" or not torch.cuda.is_available())):
            history = train_row(row, train_set, test_set, folder, standin=standin)
        results.append(evaluate_row(row, history, time.perf_counter() - start))
        print(f"{row.name}: kNN top-1 {results[-1]['knn_top1']:.1f}% after {results[-1]['epochs']} epochs "
              f"({results[-1]['wall_s']:.0f} s)", flush=True)
    base = standin_results_base(size) if standin else results_dir()
    return report(table.name, results, standin=standin, size=size if standin else None, base=base,
                  params=params, paper_table=table.paper_table, paper_figure=table.paper_figure)
