"""Optimisers and learning-rate schedules for the four methods' official recipes.

Decay conventions (each method's official recipe: docs/methods.md):

- ``sgd``: ``p -= lr * (momentum buffer of g + wd * p)``: L2 decay enters the gradient, on every parameter.
- ``adam``: coupled L2 (``g + wd * p`` goes through Adam's moments) on weights; parameters whose name ends in
  ``bias`` get no decay, as InsCLR's optimiser builds it. Unnamed parameters count as weights.
- ``adamw``: decoupled decay ``p -= lr * wd * p`` outside the moments, on every parameter.
- ``adamp``: STML uses clovaai's AdamP from the ``adamp`` package (a dependency of ssml_lib) with
  nesterov=True and its other defaults: decoupled decay, plus a projection that removes the radial component
  of updates to scale-invariant weights.

A schedule is a pure function of (epoch, global step), so its "state" in a checkpoint is just that position.
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Iterable

import torch

from ..errors import ConfigError
from .config import TrainConfig


def _named(params: Iterable[Any], group_name: str) -> list[tuple[str, torch.nn.Parameter]]:
    out = []
    for j, item in enumerate(params):
        name, p = item if isinstance(item, tuple) else (f"{group_name}.{j}", item)
        if not isinstance(p, torch.Tensor):
            raise ConfigError(f"param group {group_name!r} holds {type(p).__name__}, not a tensor. Fix: give "
                              "parameters or (name, parameter) pairs, e.g. list(model.named_parameters()).")
        if p.requires_grad:
            out.append((name, p))
    return out


def torch_param_groups(groups: list[dict], cfg: TrainConfig) -> list[dict]:
    """Turn a method's ``param_groups(cfg)`` into torch groups with ``lr``, ``base_lr`` and ``weight_decay``.

    Each input dict has ``params`` (parameters or (name, parameter) pairs) and optionally ``name``, ``lr``
    (absolute) or ``lr_scale`` (× cfg.lr), and ``weight_decay``. Frozen parameters are dropped.
    """
    out, seen = [], set()
    for i, g in enumerate(groups):
        unknown = set(g) - {"params", "name", "lr", "lr_scale", "weight_decay"}
        if unknown:
            raise ConfigError(f"param group {i} has unknown keys {sorted(unknown)}. Fix: use params, name, lr, "
                              "lr_scale, weight_decay.")
        name = str(g.get("name", f"group{i}"))
        named = _named(g["params"], name)
        for _, p in named:
            if id(p) in seen:
                raise ConfigError(f"a parameter appears in two param groups (second: {name!r}). Fix: put each "
                                  "parameter in exactly one group.")
            seen.add(id(p))
        lr = float(g["lr"]) if "lr" in g else cfg.lr * float(g.get("lr_scale", 1.0))
        wd = float(g.get("weight_decay", cfg.weight_decay))
        if cfg.optimizer == "adam" and wd > 0:  # InsCLR: L2 on weights, none on biases
            parts = [(name, [p for n, p in named if not n.endswith("bias")], wd),
                     (f"{name}.bias", [p for n, p in named if n.endswith("bias")], 0.0)]
        else:
            parts = [(name, [p for _, p in named], wd)]
        out += [{"params": ps, "name": n, "lr": lr, "base_lr": lr, "weight_decay": w} for n, ps, w in parts if ps]
    if not out:
        raise ConfigError("the method has no trainable parameters (all frozen or no groups). Fix: unfreeze the "
                          "parameters to train, or use the 'pretrained' method, which does not train.")
    return out


def build_optimizer(groups: list[dict], cfg: TrainConfig) -> tuple[torch.optim.Optimizer, str]:
    """The optimiser named by ``cfg.optimizer`` over ``groups``, and a one-line description of what was built."""
    tg = torch_param_groups(groups, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(tg, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay), \
            f"SGD(momentum={cfg.momentum}, L2 weight_decay={cfg.weight_decay} on all parameters)"
    if cfg.optimizer == "adam":
        return torch.optim.Adam(tg, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay), \
            f"Adam(betas={cfg.betas}, coupled L2 weight_decay={cfg.weight_decay} on weights, 0 on biases)"
    if cfg.optimizer == "adamp":
        try:
            from adamp import AdamP
        except ImportError as exc:
            raise ImportError("optimizer='adamp' needs the adamp package, a dependency of ssml_lib that is missing "
                              "from this environment. Fix: pip install adamp (or reinstall ssml_lib).") from exc
        return AdamP(tg, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, nesterov=True), \
            f"AdamP(betas={cfg.betas}, decoupled weight_decay={cfg.weight_decay}, nesterov, projection)"
    return torch.optim.AdamW(tg, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay), \
        f"AdamW(betas={cfg.betas}, decoupled weight_decay={cfg.weight_decay} on all parameters)"


class LrSchedule:
    """lr of each group = its ``base_lr`` × :meth:`factor` (see TrainConfig for the formulas)."""

    def __init__(self, cfg: TrainConfig):
        self.kind, self.unit, self.milestones = cfg.schedule, cfg.schedule_unit, tuple(cfg.milestones)
        self.gamma, self.warmup = cfg.gamma, cfg.warmup
        self.length = cfg.epochs if cfg.schedule_unit == "epoch" else (cfg.max_steps or 0)

    def factor(self, epoch: int, step: int) -> float:
        """Multiplier for the step with 0-based global index ``step``, taken in 0-based ``epoch``."""
        t = epoch if self.unit == "epoch" else step
        if self.kind == "multistep":
            f = self.gamma ** bisect.bisect_right(self.milestones, t)
        elif self.kind == "cosine":
            f = 0.5 * (1.0 + math.cos(math.pi * min(t, self.length) / self.length))
        else:
            f = 1.0
        if step < self.warmup:
            f *= (step + 1) / self.warmup
        return f

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> float:
        f = self.factor(epoch, step)
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        return f

    def state_dict(self) -> dict:
        return {"kind": self.kind, "unit": self.unit, "milestones": list(self.milestones), "gamma": self.gamma,
                "warmup": self.warmup, "length": self.length}
