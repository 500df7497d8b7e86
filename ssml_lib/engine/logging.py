"""Run output: the provenance header, one JSON line per epoch (``log.jsonl``), and the progress bar."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from tqdm import tqdm

from .. import progress
from ..io import atomic_write_text
from ..paths import standin_root

# Keys whose values depend on the machine and load, not on the computation; excluded when runs are compared.
TIMING_KEYS = ("wall_s", "images_per_s", "train_time_s")


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf; keep them readable
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def format_record(record: Mapping[str, Any]) -> str:
    return json.dumps(_json_safe(dict(record)), sort_keys=False)


class JsonlLog:
    """``out_dir/log.jsonl``: rewritten from the checkpoint's history on (re)start, then appended per epoch,
    so a run killed between writing its log line and its checkpoint never shows an epoch twice."""

    def __init__(self, path: str | os.PathLike, history: Iterable[Mapping[str, Any]] = ()):
        self.path = Path(path)
        atomic_write_text(self.path, "".join(format_record(r) + "\n" for r in history))

    def append(self, record: Mapping[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(format_record(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a ``log.jsonl`` (one dict per epoch)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> tqdm:
    """The epoch's bar on the main rank (:mod:`ssml_lib.progress`): in a notebook the cell's one progress line;
    in a terminal a tqdm bar, off when stderr is not a terminal (CI, logs) and under TQDM_DISABLE=1."""
    return progress.progress_bar(total=total, initial=initial, desc=desc, enabled=enabled,
                                 terminal_only_if_tty=True, leave=False)


def _standin_flag(train_set: Any) -> bool | None:
    root = getattr(train_set, "root", None)
    if root is None:
        return None
    try:
        return Path(root).resolve().is_relative_to(standin_root().resolve())
    except OSError:
        return None


def run_provenance(params: Mapping[str, Any], train_set: Any, standin: bool | None, extra: Mapping[str, Any]) -> dict:
    """The provenance record of a training run (ssml_lib.provenance), with the stand-in flag inferred from
    the dataset's root when the caller does not say; "unknown" is recorded rather than guessed."""
    from ..provenance import collect_provenance

    flag = standin if standin is not None else _standin_flag(train_set)
    record = collect_provenance(params, standin=bool(flag), data_fingerprint=None, wall_time_s=None, extra=extra)
    if flag is None:
        record["data"].update(standin=None, label="unknown (fit was not told whether the data are the stand-in)")
    return record


class RunRecord:
    """``provenance.json`` of a run (``provenance_resume_step<N>.json`` for each resumption): git SHA, every
    argument, packages, device; written at start and again with the training time at the end."""

    def __init__(self, out_dir: Path, cfg: Any, method: Any, train_set: Any, standin: bool | None, world_size: int,
                 optimizer: str, device: Any, amp_dtype: Any, resumed_from: int | None):
        from ..config import to_dict

        self.params = {"train": to_dict(cfg), "method": type(method).__name__,
                       "method_config": getattr(method, "cfg", None), "out_dir": str(out_dir), "world_size": world_size}
        extra = {"optimizer": optimizer, "device": str(device), "resumed_from_step": resumed_from,
                 "amp": str(amp_dtype) if amp_dtype is not None else "off"}
        self.record = run_provenance(self.params, train_set, standin, extra)
        name = "provenance.json" if resumed_from is None else f"provenance_resume_step{resumed_from}.json"
        self.path = Path(out_dir) / name
        self._write()

    def _write(self) -> None:
        atomic_write_text(self.path, json.dumps(_json_safe(self.record), indent=1, default=str))

    def announce(self, write=print) -> None:
        """Print the git SHA and every argument, sorted (DINO's start-of-run printout; ``fit`` shows it in a
        terminal and in logs, not in a notebook, where ``provenance.json`` holds the same)."""
        git = self.record.get("git", {})
        shown = {**self.params["train"], "method": self.params["method"], "out_dir": self.params["out_dir"],
                 **{k: self.record["extra"][k] for k in ("optimizer", "device", "amp")}}
        write(f"git: {git.get('commit')}{' (dirty tree)' if git.get('dirty') else ''}\n"
              + "\n".join(f"{k}: {shown[k]}" for k in sorted(shown)))

    def finish(self, train_time_s: float, global_step: int) -> None:
        self.record.update(wall_time_s=train_time_s, global_step=global_step)
        self._write()
