"""One table row trained under ``torchrun`` (DDP), then evaluated and written once, by rank 0.

``run_table_row`` is written for one process: every rank would evaluate and write the results, and each
stage's ``fit`` would create and destroy its own process group. Here the row is split in two phases:

1. **Training, every rank.** The process group is created once for the whole row (so the stages' ``fit``
   calls join it instead of creating their own). Rank 0 first generates what is shared on disk (stand-in
   data, stand-in "ImageNet" weights, the GLDv2 subset file), then the other ranks read it. All ranks then
   train through the runner's own ``train_row``, into the run folder that ``run_table_row`` would use; rank 0
   adds ``distributed.json`` there (world size, device, backend, wall time: what GPU-hour costs need).
2. **Evaluation, rank 0 only, after the group is gone.** Rank 0 calls ``run_table_row`` itself: every stage
   of the row is complete in its run folder, so the runner skips training, loads the trained weights,
   evaluates and writes the CSV, provenance and Markdown exactly once. The other ranks return.

Phase 2 is the same resume path a table notebook takes when run after the training, which is how
``run_table --gpus N`` uses this module (``evaluate=False`` here, then the notebook). The run folder is the
runner's hash of the resolved configs, so both phases and the notebook must resolve the parameters the same
way: :func:`resolve_row` mirrors ``run_table_row`` (and a test checks that the folders agree).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import torch.distributed as dist

from ..config import EvalConfig
from ..errors import ConfigError
from ..io import atomic_write_text
from ..paths import REPO_ROOT
from .tables import get_table

ParamsFile = Optional[str | Path]
DDP_RECORD = "distributed.json"  # in the run folder: world size, device, backend and wall time of the training


def resolve_row(table: str, params_file: ParamsFile = None, overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """The row's resolved configs exactly as ``run_table_row`` resolves them (the table's K set included)."""
    from .runner import resolve_params

    spec = get_table(table)
    resolved = resolve_params(table, params_file, overrides)
    run = resolved["run"]
    if run.eval.ks == EvalConfig().ks and spec.ks != run.eval.ks:
        resolved["run"] = replace(run, eval=replace(run.eval, ks=spec.ks))
    return resolved


def row_run_dir(table: str, params_file: ParamsFile = None, overrides: Optional[Mapping[str, Any]] = None) -> Path:
    """The folder ``run_table_row`` trains this row into (checkpoints, logs, stage records)."""
    from .runner import run_dir_for

    resolved = resolve_row(table, params_file, overrides)
    return run_dir_for(table, resolved["run"].method, resolved["standin"], resolved)


def incomplete_stages(table: str, params_file: ParamsFile = None,
                      overrides: Optional[Mapping[str, Any]] = None) -> list[str]:
    """Stages of the row without a finished-stage record (empty: training is complete, or nothing to train)."""
    from ..methods.schedule import STAGE_RECORD, method_stages

    resolved = resolve_row(table, params_file, overrides)
    if resolved["run"].method == "pretrained":
        return []
    out = row_run_dir(table, params_file, overrides)
    return [s.name for s in method_stages(resolved["run"].method, resolved["method"])
            if not (out / s.name / STAGE_RECORD).is_file()]


def _rank_from_env() -> int:
    return int(os.environ.get("RANK", "0"))


def train_distributed(table: str, params_file: ParamsFile = None, overrides: Optional[Mapping[str, Any]] = None, *,
                      progress: bool = True) -> Optional[Path]:
    """Phase 1 on every rank: train the row's method (all stages) under the process group torchrun describes.

    Also works as a single process. Returns the run folder, or None for ``pretrained`` (nothing to train).
    """
    from ..engine.distributed import all_gather_object, barrier, init_distributed
    from .datasets import dataset_root
    from .preflight import check_row_data
    from .runner import initial_model, train_row

    spec = get_table(table)
    resolved = resolve_row(table, params_file, overrides)  # every rank checks the parameters before any work
    run, mcfg = resolved["run"], resolved["model"]
    if run.method == "pretrained":
        return None
    standin = resolved["standin"]
    info = init_distributed(run.device)
    try:
        def prepare():
            roots = {name: dataset_root(name, run.data.data_root, standin_size=run.data.standin_size,
                                        standin_seed=run.data.standin_seed)
                     for name in dict.fromkeys((spec.train_dataset, *spec.eval_datasets))}
            # every dataset, image and setting checked before any work (rank 0 writes the GLDv2 subset file and
            # the image checks' cache; the other ranks read them)
            data = check_row_data(spec, resolved, roots, standin=standin)
            model, _ = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size, seed=run.seed,
                                     image_size=run.data.image_size, device=info.device, method=run.method,
                                     progress=progress and info.is_main)
            return roots, model, data

        # rank 0 writes the shared files first (the stand-in generator clears other writers' partial folders);
        # its outcome is gathered rather than waited for at a barrier, so a failure there stops every rank
        error, prepared = None, None
        if info.is_main:
            try:
                prepared = prepare()
            except Exception as exc:  # re-raised below, on every rank
                error = f"{type(exc).__name__}: {exc}"
        errors = all_gather_object(error)
        if errors[0] is not None:
            if info.is_main:
                raise ConfigError(f"preparing {table}/{run.method} failed on rank 0: {errors[0]}")
            raise ConfigError(f"rank 0 failed to prepare {table}/{run.method}; see its message.")
        roots, model, data = prepared if prepared is not None else prepare()
        start = time.time()
        method_run = train_row(spec, resolved, model, roots, standin=standin, device=info.device,
                               progress=progress and info.is_main, data=data)
        barrier()  # every rank done before the group goes (rank 0 then evaluates alone)
        out_dir = Path(method_run.out_dir)
        if info.is_main:  # how the row was trained (the stages' own records do not say): for GPU-hour costs
            atomic_write_text(out_dir / DDP_RECORD, json.dumps({
                "world_size": info.world_size, "device": str(info.device),
                "backend": dist.get_backend() if info.world_size > 1 else None,
                "wall_time_s": time.time() - start, "stages": [s.name for s in method_run.stages],
                "skipped": [s.name for s in method_run.stages if s.skipped]}, indent=1) + "\n")
        return out_dir
    finally:
        if info.created_group:
            dist.destroy_process_group()


def torchrun_command(table: str, method: str, namespace: Mapping[str, Any], gpus: int) -> list:
    """``torchrun`` (as ``python -m torch.distributed.run``) of ``train_row --train-only`` with the notebook's
    whole parameter namespace, so that both resolve the same run folder."""
    from .cli_values import format_value

    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus),
            "-m", "ssml_lib.experiments.train_row", table, method, "--train-only"]
    for name, value in namespace.items():
        if name != "method":
            args += ["-p", name, format_value(value)]
    return args


def check_gpus(device: Optional[str], gpus: int) -> None:
    """Refuse more GPU processes than visible devices (CPU processes, ``device='cpu'``, are not limited)."""
    if gpus <= 1 or device == "cpu":
        return
    import torch

    visible = torch.cuda.device_count()
    if visible < gpus:
        raise ConfigError(f"--gpus {gpus} but {visible} CUDA device(s) are visible. Fix: --gpus {visible or 1}, "
                          "or --device cpu for CPU processes (gloo).")


def train_with_torchrun(command: Sequence[str], table: str, params_file: ParamsFile,
                        namespace: Mapping[str, Any]) -> Optional[str]:
    """Run ``command`` (see :func:`torchrun_command`); None when every stage of the row completed, else why not."""
    code = subprocess.run(list(command), cwd=REPO_ROOT).returncode
    if code != 0:
        return f"torchrun training exited with status {code} (its output is above)"
    missing = incomplete_stages(table, params_file, {k: v for k, v in namespace.items() if k != "params_file"})
    if missing:
        return f"torchrun training left stages {missing} incomplete; the notebook was not run"
    return None


@contextmanager
def _single_process_env() -> Iterator[None]:
    """Hide torchrun's variables, so nothing after the training tries to form a process group again."""
    keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK")
    saved = {k: os.environ.pop(k) for k in keys if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def run_distributed_row(table: str, params_file: ParamsFile = None, overrides: Optional[Mapping[str, Any]] = None,
                        *, evaluate: bool = True, progress: bool = True):
    """Train on every rank, then (``evaluate=True``) evaluate and write the results on rank 0 only.

    Returns the ``RowResult`` on rank 0 when evaluating, else None.
    """
    from .runner import run_table_row

    train_distributed(table, params_file, overrides, progress=progress)
    if _rank_from_env() != 0 or not evaluate:
        return None
    missing = incomplete_stages(table, params_file, overrides)
    if missing:  # the runner would train them again, on one process: refuse instead
        raise ConfigError(f"training of {table} ended with stages {missing} incomplete in "
                          f"{row_run_dir(table, params_file, overrides)}. Fix: run the same command again; it "
                          "resumes from the last checkpoint.")
    with _single_process_env():
        return run_table_row(table, params_file, overrides, progress=progress)


def preflight_row(table: str, params_file: Any = None, overrides: Optional[Mapping[str, Any]] = None):
    """:func:`~.preflight.check_row_data` (a ``RowData``) of a row from its parameters, as ``run_table_row``
    resolves them (the stand-in is generated into the cache where needed; nothing else is written)."""
    from .datasets import dataset_root
    from .preflight import check_row_data

    spec = get_table(table)
    resolved = resolve_row(table, params_file, overrides)
    run = resolved["run"]
    roots = {name: dataset_root(name, run.data.data_root, standin_size=run.data.standin_size,
                                standin_seed=run.data.standin_seed)
             for name in dict.fromkeys((spec.train_dataset, *spec.eval_datasets))}
    return check_row_data(spec, resolved, roots, standin=resolved["standin"])


__all__ = ["check_gpus", "incomplete_stages", "preflight_row", "resolve_row", "row_run_dir", "run_distributed_row",
           "torchrun_command", "train_distributed", "train_with_torchrun"]
