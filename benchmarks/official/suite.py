"""``--suite official``: every block of ssml beside the official code it replaces, on the same inputs.

Each block imports the official function from the user's checkout (:mod:`.checkouts`), feeds both sides the
same synthetic inputs, checks that the outputs agree (each row says how), and times them side by side with one
thread each (:mod:`.timing`). Blocks whose checkout is missing are skipped; with none found, nothing runs and
:func:`~.checkouts.missing_message` says what to clone where.
"""
from __future__ import annotations

import json

import traceback
from typing import Callable

import torch

from . import blocks_eval, blocks_losses, blocks_memory, blocks_mining
from .checkouts import find_checkouts, missing_message
from .common import Context
from .timing import single_thread

POOL_SIZES = {True: (200, 400), False: (10_000, 20_000)}  # tiny, full: N for the candidate pool


def blocks(ctx: Context) -> list[tuple[str, str, Callable[[], dict]]]:
    """(block, repository it needs, callable) in running order; cheap blocks first."""
    pool = [(f"candidate_pool N={n}", "insclr", lambda n=n: blocks_mining.candidate_pool_block(ctx, n))
            for n in POOL_SIZES[ctx.tiny]]
    return [("spreading_loss", "spreading", lambda: blocks_losses.spreading(ctx)),
            ("stml_step", "stml", lambda: blocks_losses.stml_step(ctx)),
            ("insclr_memory_loss", "insclr", lambda: blocks_losses.insclr_memory_loss(ctx)),
            ("isl_mining", "isl", lambda: blocks_mining.isl_mining(ctx)),
            ("revisited_map", "revisitop", lambda: blocks_eval.revisited(ctx)),
            ("nmi", "spreading", lambda: blocks_eval.nmi_block(ctx)),
            ("insclr_memory_v2_mining", "insclr", lambda: blocks_memory.memory_v2(ctx)),
            *pool,
            ("recall_at_k", "spreading", lambda: blocks_eval.recall(ctx))]


def run_official(device: torch.device, root, *, tiny: bool = False, only: list[str] | None = None,
                 log: Callable = lambda *a: print(*a, flush=True),
                 on_rows: Callable | None = None) -> tuple[list[dict], dict]:
    """Rows of the blocks whose checkouts exist, and a summary (found / missing repositories, threads)."""
    found = find_checkouts(root)
    missing = sorted(k for k, v in found.items() if v is None)
    info = {"official_root": str(root) if root else None, "found": sorted(k for k, v in found.items() if v),
            "missing": missing}
    if missing:
        log(missing_message(root, found))
    ctx = Context(device=device, tiny=tiny, checkouts=found, budget_s=0.05 if tiny else 20.0, log=log)
    rows: list[dict] = []
    with single_thread() as threads:
        info["threads"] = threads
        for name, repo, fn in blocks(ctx):
            if found[repo] is None or (only and not any(name.startswith(o) for o in only)):
                continue
            log(f"  {name} ...")
            try:
                rows.append(fn())
            except Exception as exc:  # noqa: BLE001 - one block's failure is reported, the others still run
                rows.append({"block": name.split(" ")[0], "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc(limit=6)})
                log(f"    failed: {rows[-1]['error']}")
            else:
                r = rows[-1]
                log(f"    ssml {r['ours_s']:.4g} s, official {r['official_s']:.4g} s, ratio {r['ratio']:.2f}, "
                    f"agree {r['agree']}")
            if on_rows:
                on_rows(rows)
    pool_rows = [r for r in rows if r["block"] == "candidate_pool" and "error" not in r]
    if len(pool_rows) >= 2:
        max(pool_rows, key=lambda r: r["sizes"]["N"])["extrapolated"] = blocks_mining.extrapolate(pool_rows)
    return rows, info


def _key(row: dict) -> tuple:
    return row.get("block"), json.dumps(row.get("sizes"), sort_keys=True)


def merge_rows(previous: list[dict], new: list[dict]) -> list[dict]:
    """A rerun of some blocks (``--blocks``) replaces their rows (same block and sizes) in the previous file and
    keeps the others; each row carries its own ``measured_at``."""
    fresh = {_key(r) for r in new}
    names = [name.split(" ")[0] for name, _, _ in blocks(Context(device=torch.device("cpu"), tiny=True,
                                                                 checkouts={}))]
    kept = [r for r in previous if _key(r) not in fresh]
    order = {n: i for i, n in enumerate(dict.fromkeys(names))}
    return sorted(kept + new, key=lambda r: (order.get(r.get("block"), len(order)),
                                            (r.get("sizes") or {}).get("N", 0)))


def stamp(rows: list[dict], measured_at: dict) -> list[dict]:
    """Rows without a ``measured_at`` get this run's (commit, dirty flag, UTC time)."""
    return [r if "measured_at" in r else {**r, "measured_at": measured_at} for r in rows]


__all__ = ["POOL_SIZES", "blocks", "merge_rows", "run_official", "stamp"]
