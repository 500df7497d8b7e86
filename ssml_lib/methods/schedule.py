"""``fit_method``: the one entry the table runner calls to train any method, single- or multi-stage.

Conventions every method class follows (``METHODS[name]``):

- ``Config``: a frozen :class:`ssml_lib.config.Config` subclass with the method's hyper-parameters; its field
  names never reuse RunConfig's or TrainConfig's (notebook parameters share one flat namespace).
- ``train_defaults``: a dict of TrainConfig values of the official recipe (optimiser, lr, schedule, epochs,
  batch); :func:`train_config` lays the caller's overrides over them.
- constructor ``MethodClass(model, cfg, *, train_transform, test_transform)``; the method keeps the model as
  ``self.model`` so its weights live in the method's state_dict.
- optional classmethod ``stages(cfg) -> list[Stage]``: without it, one stage named ``train``. ``[]`` means
  no training at all (the ``pretrained`` row).
- optional classmethod ``validate(cfg, train_cfg, train_set)``: raise ConfigError for settings that cannot
  work with this data (batch vs. NN lists, pool size vs. images); called once per stage before any write.

Each stage is trained by ``engine.fit`` in ``out_dir/<stage name>/`` by a freshly built method around the same
model, so the model carries over from stage to stage. Before the fit, ``method.stage_info`` is set to a
:class:`StageInfo` (its folder and the earlier stages' folders), where a stage writes and reads its artefacts
(features, candidate pools, checkpoints). A finished stage leaves ``stage.json``; on a re-run it is skipped and
only its weights are loaded, so an interrupted schedule resumes in the stage it was in (and inside that
stage at the engine's last checkpoint). A finished stage whose TrainConfig changed since (e.g. a larger
``max_steps`` or more ``epochs``) is handed to the engine again, which continues it from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import torch

from ..config import Config, load_config, read_params_file, to_dict
from ..engine import CheckpointError, TrainConfig, derive_seed, fit, load_checkpoint
from ..errors import ConfigError
from ..io import atomic_write_text
from . import METHODS
from .base import Method
from .views import Transformed

STAGE_RECORD = "stage.json"


@dataclass(frozen=True)
class Stage:
    """One fit of a schedule: its folder name, TrainConfig overrides, and the method config it runs with."""

    name: str
    train: Mapping[str, Any] = field(default_factory=dict)
    cfg: Any = None  # None: the method config given to fit_method


@dataclass(frozen=True)
class StageInfo:
    index: int
    name: str
    out_dir: Path
    previous_dirs: tuple[Path, ...]  # earlier stages' folders, in order (their artefacts are there)
    stage_names: tuple[str, ...]  # every stage of the schedule


@dataclass
class StageRun:
    name: str
    out_dir: Path
    log_path: Path
    checkpoint: Path
    history: list[dict]
    wall_time_s: float  # training time the engine measured (summed over resumed pieces)
    skipped: bool  # already complete before this call


@dataclass
class MethodRun:
    """What ``fit_method`` returns. Evaluate with ``method`` (its forward gives the retrieval embedding;
    ``model`` alone may return several heads, e.g. STML's (g, f))."""

    name: str
    model: torch.nn.Module
    method: Method
    stages: list[StageRun]
    wall_time_s: float  # this call's wall time
    out_dir: Path
    info: dict = field(default_factory=dict)  # what the caller adds (e.g. the head's initialisation record)

    @property
    def log_paths(self) -> list[Path]:
        return [s.log_path for s in self.stages]

    @property
    def history(self) -> list[dict]:
        """Every stage's per-epoch records, each with its ``stage`` name (``pos_precision`` is the
        precision of mined positives where the method mines)."""
        return [{"stage": s.name, **r} for s in self.stages for r in s.history]

    @property
    def train_time_s(self) -> float:
        return sum(s.wall_time_s for s in self.stages)


def method_class(name: str) -> type[Method]:
    return METHODS[name]  # ConfigError for unknown names


def method_config_class(name: str) -> type[Config]:
    cls = method_class(name)
    cfg_cls = getattr(cls, "Config", None)
    if not (isinstance(cfg_cls, type) and issubclass(cfg_cls, Config)):
        raise ConfigError(f"method {name!r} ({cls.__name__}) has no Config class attribute (a frozen "
                          "ssml_lib.config.Config subclass). Fix: define one on the method class.")
    return cfg_cls


def method_config(name: str, params: Optional[Mapping[str, Any] | Config] = None, params_file: Any = None) -> Config:
    """The method's config from params file(s) and overrides (unknown keys and wrong types refused)."""
    cfg_cls = method_config_class(name)
    if isinstance(params, cfg_cls):
        return params
    if isinstance(params, Config):
        raise ConfigError(f"method {name!r} needs a {cfg_cls.__name__}, got a {type(params).__name__}. Fix: pass "
                          f"the method's own config (method_config_class({name!r})) or a dict.")
    return load_config(cfg_cls, params_file, dict(params or {}))


def train_config(name: str, overrides: Optional[Mapping[str, Any]] = None, params_file: Any = None) -> TrainConfig:
    """TrainConfig of the method's official recipe (``train_defaults``), then the TrainConfig keys of the params
    file(s), then ``overrides`` (strict: every override must be a TrainConfig field)."""
    defaults = dict(getattr(method_class(name), "train_defaults", {}) or {})
    return load_config(TrainConfig, None, {**defaults, **_train_keys(params_file), **dict(overrides or {})})


def _train_keys(params_file: Any) -> dict:
    """The TrainConfig fields of params file(s) that also hold run and method keys (load_configs checks those)."""
    if params_file is None:
        return {}
    files = [params_file] if isinstance(params_file, (str, os.PathLike)) else list(params_file)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    out: dict = {}
    for f in files:
        out.update({k: v for k, v in read_params_file(f).items() if k in names})
    return out


def method_stages(name: str, cfg: Config) -> list[Stage]:
    cls = method_class(name)
    stages = cls.stages(cfg) if hasattr(cls, "stages") else [Stage("train")]
    names = [s.name for s in stages]
    if len(set(names)) != len(names) or any(not n or "/" in n or n.startswith(".") for n in names):
        raise ConfigError(f"{cls.__name__}.stages gave stage names {names}; they must be distinct folder names. "
                          "Fix the method's stages().")
    return list(stages)


def _stage_configs(stages: list[Stage], cfg: Config, tcfg: TrainConfig) -> list[tuple[Stage, Config, TrainConfig]]:
    return [(s, s.cfg if s.cfg is not None else cfg,
             dataclasses.replace(tcfg, **dict(s.train)) if s.train else tcfg) for s in stages]


def _validate_stages(name: str, stage_cfgs: list, train_set: Any) -> None:
    validate = getattr(method_class(name), "validate", None)
    if validate is not None:
        for _, scfg, stcfg in stage_cfgs:
            validate(scfg, stcfg, train_set)


def check_method_data(name: str, method_cfg: Any, train_cfg: TrainConfig, train_set: Any) -> None:
    """Every stage's settings against ``train_set`` (batch vs. images and classes, NN lists, pools), as
    :func:`fit_method` checks them; raises ConfigError and writes nothing. For checks before other work."""
    cfg = method_config(name, method_cfg)
    _validate_stages(name, _stage_configs(method_stages(name, cfg), cfg, train_cfg), train_set)


@contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    if progress:
        yield
        return
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old


def build_method(name: str, model: torch.nn.Module, cfg: Config, *, train_transform: Callable,
                 test_transform: Callable, seed: int = 0, stage_index: int = 0) -> Method:
    """Construct the method; random initialisations inside constructors (new heads, teachers) are seeded
    from ``(seed, stage_index)`` without touching the caller's global RNG."""
    cls = method_class(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, stage_index))
        return cls(model, cfg, train_transform=train_transform, test_transform=test_transform)


def _load_model_weights(model: torch.nn.Module, path: Path) -> None:
    """The model's weights from a finished stage's checkpoint (the method's ``model.*`` entries); banks and
    tables of that stage's method are not needed by the next one."""
    state = load_checkpoint(path)["method"]
    weights = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit this model ({str(exc).splitlines()[0]}). Fix: use a fresh "
                              "out_dir for a different backbone, or pass resume=False.") from None


def fit_method(name: str, *, model: torch.nn.Module, train_set: Any, method_cfg: Any = None,
               train_cfg: Optional[TrainConfig] = None, out_dir: str | os.PathLike, train_transform: Callable,
               test_transform: Callable, datasets: Optional[Mapping[str, Any]] = None,
               eval_fn: Optional[Callable] = None, progress: bool = True, resume: bool = True,
               standin: Optional[bool] = None) -> MethodRun:
    """Train method ``name`` (every stage of its schedule) on ``train_set`` (items ``(PIL image, label, index)``).

    ``method_cfg``: the method's Config, a dict of its parameters, or None (defaults). ``train_cfg``: None means
    :func:`train_config` (the official recipe). ``datasets`` join ``{'noaug': Transformed(train_set,
    test_transform)}`` as ``ctx.datasets``. All inputs are checked before anything is written.
    """
    start = time.perf_counter()
    cfg = method_config(name, method_cfg)
    tcfg = train_config(name) if train_cfg is None else train_cfg
    if not isinstance(tcfg, TrainConfig):
        raise ConfigError(f"train_cfg must be a TrainConfig or None, got {type(tcfg).__name__}. Fix: "
                          f"ssml_lib.methods.schedule.train_config({name!r}, overrides).")
    for what, tf in (("train_transform", train_transform), ("test_transform", test_transform)):
        if not callable(tf):
            raise ConfigError(f"{what} must be callable (ssml_lib.data.build_transform(...)), got "
                              f"{type(tf).__name__}.")
    stages = method_stages(name, cfg)
    stage_cfgs = _stage_configs(stages, cfg, tcfg)
    _validate_stages(name, stage_cfgs, train_set)  # the configs against the data, before any write
    extra = {"noaug": Transformed(train_set, test_transform), **dict(datasets or {})}
    out_dir = Path(out_dir)
    runs: list[StageRun] = []
    method = build_method(name, model, cfg, train_transform=train_transform, test_transform=test_transform,
                          seed=tcfg.seed) if not stages else None
    names = tuple(s.name for s in stages)
    with _quiet(progress):
        for i, (stage, scfg, stcfg) in enumerate(stage_cfgs):
            sdir = out_dir / stage.name
            method = build_method(name, model, scfg, train_transform=train_transform, test_transform=test_transform,
                                  seed=stcfg.seed, stage_index=i)
            method.stage_info = StageInfo(i, stage.name, sdir, tuple(out_dir / n for n in names[:i]), names)
            record = sdir / STAGE_RECORD
            rec = json.loads(record.read_text(encoding="utf-8")) if resume and record.is_file() else None
            if rec is not None and rec.get("train_config") == to_dict(stcfg):  # finished with these settings
                _load_model_weights(model, sdir / "last.pt")
                runs.append(StageRun(stage.name, sdir, sdir / "log.jsonl", sdir / "last.pt", rec["history"],
                                     rec["train_time_s"], skipped=True))
                continue
            result = fit(method, train_set, stcfg, sdir, eval_fn=eval_fn, resume=resume, datasets=extra,
                         standin=standin)
            train_time = float(result.history[-1].get("train_time_s", 0.0)) if result.history else 0.0
            if result.completed:
                atomic_write_text(record, json.dumps({
                    "stage": stage.name, "index": i, "global_step": result.global_step, "train_time_s": train_time,
                    "method_config": to_dict(scfg), "train_config": to_dict(stcfg),
                    "history": result.history}, indent=1, default=str))
            runs.append(StageRun(stage.name, sdir, sdir / "log.jsonl", result.checkpoint, result.history, train_time,
                                 skipped=False))
    method.eval()
    return MethodRun(name=name, model=model, method=method, stages=runs, wall_time_s=time.perf_counter() - start,
                     out_dir=out_dir)


__all__ = ["MethodRun", "Stage", "StageInfo", "StageRun", "build_method", "check_method_data", "fit_method",
           "method_config", "method_config_class", "method_stages", "train_config"]
