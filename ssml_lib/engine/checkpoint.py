"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

Layout of ``last.pt`` (tensors and plain containers only, so no pickled classes are ever executed on load)::

    format     "ssml-train-v1"
    method     Method.state_dict(): parameters, buffers (memory banks) and get_extra_state() of every module
    optimizer  optimizer.state_dict()
    scheduler  LrSchedule.state_dict() (the schedule is a function of position; kept for inspection)
    sampler    {"epoch", "batches_done"}: where in which epoch's batch table training stands
    progress   {"epoch", "step_in_epoch", "global_step", "train_time_s", "epoch_time_s"}
    metrics    {"sums": {name: tensor}, "count": int} of the epoch in progress (None at an epoch boundary)
    rng        one capture_rng_state() per rank (python, numpy, torch CPU, CUDA)
    history    the per-epoch records written to log.jsonl so far
    config     the TrainConfig as a plain dict
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import SsmlError
from ..io import atomic_torch_save, torch_file_problem

FORMAT = "ssml-train-v1"


class CheckpointError(SsmlError, ValueError):
    """A checkpoint file cannot be used (unreadable, not an ssml training checkpoint, or unsafe)."""


def save_checkpoint(payload: dict, path: str | os.PathLike) -> Path:
    """Write ``payload`` (plus the format tag) to ``path`` in one rename; a crash leaves the old file."""
    return atomic_torch_save({"format": FORMAT, **payload}, path)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing anything but tensors and containers."""
    path = Path(path)
    fix = (f"Fix: delete {path} (or move it away); the run then starts this stage afresh. Checkpoints are written "
           "only by ssml_lib's training, never by hand.")
    try:
        problem = torch_file_problem(path)
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be opened ({exc}). {fix}") from None
    if problem is not None:
        raise CheckpointError(f"{path} is not a training checkpoint: {problem}. {fix}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found is None:
            raise CheckpointError(f"{path} cannot be read: it is truncated, corrupt or not a torch file. Fix: delete "
                                  "it (or move it away) to start a fresh run.") from None
        raise CheckpointError(f"{path} holds {found.group(1)}, not only tensors and plain containers, so it is not "
                              "loaded (that would run code from the file). Fix: only load checkpoints written by "
                              "ssml_lib; delete the file (or move it away) to start a fresh run.") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} cannot be read ({exc}). Fix: it is truncated or corrupt; delete it (or "
                              "move it away) to start a fresh run.") from None
    except Exception as exc:  # a damaged file fails inside torch's unpickler with any error (IndexError, KeyError)
        raise CheckpointError(f"{path} cannot be read as a torch file ({type(exc).__name__}: {exc}); it is "
                              f"corrupt. {fix}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ssml training checkpoint (format "
                              f"{ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt).__name__!r}, "
                              f"expected {FORMAT!r}). Fix: point out_dir at a fresh folder, or pass resume=False.")
    return ckpt


def load_method_weights(method: torch.nn.Module, path: str | os.PathLike, strict: bool = True) -> dict:
    """Load only the method state from a training checkpoint (e.g. to evaluate a finished run)."""
    ckpt = load_checkpoint(path)
    method.load_state_dict(ckpt["method"], strict=strict)
    return ckpt
