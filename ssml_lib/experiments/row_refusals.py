"""Refusals of a row's parameters that say what was meant: a paper-scale params file used for another table,
another method or without ``data_root``, and another method's settings given to this one."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping, Optional, Sequence

from ..config import RunConfig, read_params_file
from ..errors import ConfigError
from ..paths import REPO_ROOT
from .row_model import ModelConfig

# A paper-scale file (params/<table>/<method>.yaml) names its row with this key, so that it is refused in another
# table's notebook, for another method and without data_root, whether given as params_file or with papermill -f
# (which injects the file's keys as notebook variables: the file's path is then unknown).
PAPER_ROW = "paper_row"


def _paper_row(files: Sequence, params: Mapping[str, Any]) -> Optional[tuple[str, str, str]]:
    """(table, method, where it came from) of the paper-scale settings among the parameters, or None."""
    value = source = None
    for f in files:
        found = read_params_file(f).get(PAPER_ROW)
        if found is not None:
            value, source = found, f"from params file {f}"
    if params.get(PAPER_ROW) is not None:
        value, source = params[PAPER_ROW], "from the notebook's parameters, as papermill -f injects a params file"
    if value is None:
        return None
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{PAPER_ROW} ({source}) must be '<table>/<method>', got {value!r}. Fix: it names the "
                          "row a paper-scale file is for, e.g. 'table7_gldv2/insclr'; drop it from your own files.")
    return parts[0], parts[1], source


def _check_paper_row_table(row: tuple[str, str, str], table: str) -> None:
    ptable, pmethod, source = row
    if ptable == table:
        return
    own = REPO_ROOT / "params" / table / f"{pmethod}.yaml"
    instead = (f"use this table's own file, params/{table}/{pmethod}.yaml" if own.is_file() else
               f"{table} has no {pmethod} row (no params/{table}/{pmethod}.yaml)")
    raise ConfigError(f"the paper-scale settings of {ptable} / {pmethod} ({PAPER_ROW}: {ptable}/{pmethod}, "
                      f"{source}) were given to {table}: another table's network, data and schedule would run "
                      f"here. Fix: {instead}, or run notebooks/{ptable}.ipynb with that file; for a stand-in "
                      "run give no params file.")


def _check_paper_row_use(row: tuple[str, str, str], table: str, method: str, user: Mapping[str, Any]) -> None:
    ptable, pmethod, source = row
    if pmethod != method:
        own = REPO_ROOT / "params" / table / f"{method}.yaml"
        instead = f"use params/{table}/{method}.yaml" if own.is_file() else f"give no params file for {method}"
        raise ConfigError(f"the paper-scale settings of {ptable} / {pmethod} ({source}) were given with "
                          f"method={method!r}. Fix: -p method {pmethod}, or {instead}.")
    if user.get("data_root") is None:
        scale = [f"{user[k]}" for k in ("backbone",) if k in user]
        scale += [f"at {user['image_size']} px" for k in ("image_size",) if k in user]
        length = [f"{user[k]} {k.replace('max_', '')}" for k in ("epochs", "max_steps") if k in user]
        what = " ".join(scale + (["for " + " / ".join(length)] if length else []))
        raise ConfigError(f"the paper-scale settings of {table} / {method} ({source}) are for real data only, "
                          f"but no data_root was given: on the stand-in they would run "
                          f"{what or 'the paper-scale recipe'} on small synthetic images. Fix: pass -p data_root "
                          f"<the folder holding the datasets> for a real run; for a stand-in run give no params "
                          f"file (the stand-in applies this row's method settings from params/{table}/{method}.yaml "
                          "by itself).")


def _other_valid_keys(method: str) -> list[str]:
    """Names that are valid for this row besides RunConfig's and ModelConfig's: TrainConfig's and the method's."""
    from ..engine import TrainConfig
    from ..methods.schedule import method_config_class

    return [f.name for f in fields(TrainConfig)] + [f.name for f in fields(method_config_class(method))]


def _refuse_other_methods(table: str, method: str, rest: Mapping[str, Any], from_files: Mapping[str, Any],
                          files: Sequence) -> None:
    """A name that is not this row's but another method's setting: say so (the file is another method's)."""
    from ..config import _routes
    from ..methods import METHODS
    from ..methods.schedule import method_config_class

    known = set(_routes(RunConfig)) | set(_routes(ModelConfig)) | {"run", "model"}
    owners: dict[str, list[str]] = {}
    for key in rest:
        head = str(key).partition(".")[0]
        if head in known:
            continue
        found = [m for m in METHODS if m != method and head in {f.name for f in fields(method_config_class(m))}]
        if found:
            owners[str(key)] = found
    if not owners:
        return
    common = set.intersection(*(set(v) for v in owners.values()))
    likely = [m for m in METHODS if m in common] or sorted({m for v in owners.values() for m in v})
    names = ", ".join(map(repr, owners))
    in_files = [k for k in owners if k in from_files]
    where = "; ".join(f"{', '.join(map(repr, keys))} {label}" for keys, label in (
        (in_files, f"in {files[-1] if len(files) == 1 else 'the params files'}"),
        ([k for k in owners if k not in in_files], "in the notebook's parameters, e.g. from papermill -f")) if keys)
    own = REPO_ROOT / "params" / table / f"{method}.yaml"
    instead = f"params/{table}/{method}.yaml is {method}'s own file" if own.is_file() else \
        f"params/standin/{method}.yaml shows {method}'s settings"
    raise ConfigError(f"{names} {'is a setting' if len(owners) == 1 else 'are settings'} of method "
                      f"{' or '.join(map(repr, likely))}, not of {method!r}, the method this row runs ({where}): "
                      f"the parameters are another method's (a params file is for one method). Fix: -p method "
                      f"{likely[0]} to run that method, or leave {'it' if len(owners) == 1 else 'them'} out "
                      f"({instead}).")
