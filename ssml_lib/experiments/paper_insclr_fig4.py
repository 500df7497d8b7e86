"""The InsCLR paper's Figure 4 as data: in-batch positive selection, one training run per point.

The figure compares rules that decide which of a tuple's N_b pool neighbours stay positives (§3.2): *nn* (all
of them, no selection), a threshold T_b on the similarity of the augmented images ("augmented"), of the
unaugmented images ("noaug", the rule the paper keeps), the same divided by the tuple's largest similarity
("relative") and of unaugmented images averaged over scales ("multiscale"); and N_b in {1, 3, 5, 7} with the
unaugmented rule. Each point is InsCLR (switches of the one method, never a copy) with Table 1 row C's settings
(base cycles with a memory of random negatives and in-batch selection) and the point's rule, T_b and N_b; the
*nn* points are row B's settings. The number of tuples per batch stays that of N_b = 3 (the batch holds
tuples x (1 + N_b) images). Choices where the paper is silent are listed in docs/paper_insclr_ablations.md.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..config import read_params_file
from ..errors import ConfigError
from .paper_insclr_ablations import BASE_TABLE, AblationRow, layer_settings
from .row_refusals import PAPER_ROW

FIG4 = "paper_insclr_fig4_inbatch_selection"
RULES = ("nn", "augmented", "noaug", "relative", "multiscale")
SWEEPS = ("threshold", "num_neighbors")
PAPER_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)  # our choice: the figure's ticks are not in the text
PAPER_NUM_NEIGHBORS = (1, 3, 5, 7)  # paper §4.2
PAPER_FILE_ROW = f"{FIG4}/sweep"  # the paper-scale params file serves every point
STANDIN_STAGES = ("base",)  # stand-in: one base cycle a point (the paper-scale file: four)
_WHAT = {"nn": "all N_b neighbours are positives (no selection)",
         "augmented": "augmented-image similarity >= T_b", "noaug": "unaugmented similarity >= T_b",
         "relative": "unaugmented similarity / the tuple's largest >= T_b",
         "multiscale": "multi-scale unaugmented similarity >= T_b"}


def point_name(rule: str, threshold: Optional[float], num_neighbors: int) -> str:
    """``nn_nb3``, ``noaug_t065_nb3``: a results name (lower-case letters, digits, underscores)."""
    if rule == "nn":
        return f"nn_nb{num_neighbors}"
    return f"{rule}_t{round(threshold * 100):03d}_nb{num_neighbors}"


def point(rule: str, threshold: Optional[float], num_neighbors: int) -> AblationRow:
    """One point's InsCLR settings (row B's for ``nn``, row C's with the rule otherwise)."""
    if rule not in RULES:
        raise ConfigError(f"unknown selection rule {rule!r}. Fix: use some of {', '.join(RULES)}.")
    if rule != "nn" and not (isinstance(threshold, (int, float)) and -1.0 <= threshold <= 1.0):
        raise ConfigError(f"rule {rule!r} needs a threshold T_b in [-1, 1]. Fix: -p thresholds [0.65].")
    if not isinstance(num_neighbors, int) or num_neighbors < 1:
        raise ConfigError(f"N_b = {num_neighbors!r} is not a positive integer. Fix: -p num_neighbors [1, 3, 5, 7].")
    settings: dict[str, Any] = dict(method="insclr", base_memory=True, num_neighbors=num_neighbors,
                                    base_selection_threshold=None if rule == "nn" else float(threshold))
    if rule != "nn":
        settings["selection_rule"] = rule
    label = "nn" if rule == "nn" else f"{rule} T_b={threshold:g}"
    return AblationRow(f"{label}, N_b={num_neighbors}", _WHAT[rule], settings)


def sweep_points(rules: Sequence[str], thresholds: Sequence[float],
                 num_neighbors: Sequence[int]) -> list[tuple[str, Optional[float], int]]:
    """Every (rule, T_b, N_b) of the sweep; ``nn`` has no threshold, so one point per N_b."""
    if not rules or not num_neighbors or (any(r != "nn" for r in rules) and not thresholds):
        raise ConfigError("the sweep is empty. Fix: give rules, thresholds and num_neighbors, e.g. -p rules "
                          "['nn', 'noaug'] -p thresholds [0.6, 0.8] -p num_neighbors [3].")
    out = []
    for rule in dict.fromkeys(rules):
        for nb in dict.fromkeys(num_neighbors):
            for t in ([None] if rule == "nn" else dict.fromkeys(thresholds)):
                out.append((rule, t, int(nb)))
    return out


def point_parameters(rule: str, threshold: Optional[float], num_neighbors: int,
                     params_file: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """The flat parameters of one point: the params file, the overrides, then the point's settings (a value
    that contradicts them is refused). Stand-in: one base cycle unless ``insclr_stages`` is given."""
    spec = point(rule, threshold, num_neighbors)
    values = {**(read_params_file(params_file) if params_file else {}), **dict(overrides or {})}
    paper_row = values.pop(PAPER_ROW, None)
    if paper_row is not None:
        if paper_row != PAPER_FILE_ROW:
            raise ConfigError(f"these paper-scale settings are for {paper_row!r}, not Figure 4. Fix: use "
                              f"params/{FIG4}/sweep.yaml.")
        if values.get("data_root") is None:
            raise ConfigError(f"params/{FIG4}/sweep.yaml is the paper's scale (ResNet-101, 1.2M images) and needs "
                              "real data. Fix: -p data_root /data (stand-in runs take no params file).")
    if values.get("data_root") is None:
        values.setdefault("insclr_stages", list(STANDIN_STAGES))
    return layer_settings(f"Figure 4 point {point_name(rule, threshold, num_neighbors)!r}", spec, values,
                          "change the sweep (rules, thresholds, num_neighbors) instead")


def resolve_point(rule: str, threshold: Optional[float], num_neighbors: int, params_file: Optional[str] = None,
                  overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """:func:`~.row_params.resolve_params` of :data:`BASE_TABLE` for one point. The batch keeps the number of
    tuples of N_b = 3: ``batch_size`` (the N_b = 3 batch) becomes ``batch_size / 4 x (1 + N_b)``."""
    from .row_params import resolve_params

    params = point_parameters(rule, threshold, num_neighbors, params_file, overrides)
    resolved = resolve_params(BASE_TABLE, None, params)
    if num_neighbors != 3:
        batch = resolved["train"].batch_size
        if batch % 4:
            raise ConfigError(f"batch_size={batch} is not a whole number of N_b = 3 tuples (4 images). Fix: use a "
                              "multiple of 4; each point keeps that many tuples a batch.")
        resolved = resolve_params(BASE_TABLE, None, {**params, "batch_size": batch // 4 * (1 + num_neighbors)})
    return resolved


__all__ = ["FIG4", "PAPER_NUM_NEIGHBORS", "PAPER_THRESHOLDS", "RULES", "STANDIN_STAGES", "SWEEPS", "point",
           "point_name", "point_parameters", "resolve_point", "sweep_points"]
