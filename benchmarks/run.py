"""The one benchmark entry point. Usage (from the repository root):

    python -m benchmarks.run --suite all|methods|input|retrieval [--device auto|cpu|cuda] [--scale auto|paper|cpu]
                             [--quick] [--tiny] [--methods spreading stml ...] [--compile] [--threads N]
                             [--out results/benchmarks]
    python -m benchmarks.run --suite official --official-root DIR [--tiny] [--device cpu|cuda] [--blocks ...]

Writes ``<suite>_<device kind>.json`` (rows + provenance: device, torch/CUDA versions, profile, batch,
resolution, dtype) under ``--out`` and re-renders ``README.md`` there from every JSON file present, so CPU
and GPU figures sit side by side. ``--suite official`` (not part of ``all``) times ssml's building blocks
beside the official code, imported from local checkouts under ``--official-root`` (benchmarks/official/);
without them it says what to clone where and skips.

``--scale cpu`` (the default on a CPU) uses smaller backbones, batches and
resolution than the papers so that it finishes; the tables say which profile each row ran under.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from ssml_lib.io import atomic_write_text  # noqa: E402
from ssml_lib.paths import results_dir  # noqa: E402
from ssml_lib.provenance import collect_provenance  # noqa: E402

from ._measure import resolve_device  # noqa: E402
from .report import render_readme  # noqa: E402

SUITES = ("methods", "input", "retrieval")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=("all",) + SUITES + ("official",), default="all")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda[:i]")
    ap.add_argument("--scale", choices=("auto", "paper", "cpu"), default="auto",
                    help="method profile: paper backbones/batches/224 px, or cpu (smaller); auto: by device")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions; on a CPU, retrieval sizes capped at "
                                                         "1/16 of full scale (full size extrapolated)")
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds); numbers are meaningless")
    ap.add_argument("--methods", nargs="*", default=None, help="cases or method names (default: all)")
    ap.add_argument("--compile", action="store_true", help="methods suite: torch.compile the models first "
                                                           "(written to methods_<device>_compiled.json)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--official-root", default=None,
                    help="official suite: folder holding <owner>+<name>/ checkouts of the official repositories")
    ap.add_argument("--blocks", nargs="*", default=None, help="official suite: block names (default: all)")
    ap.add_argument("--out", default=str(results_dir() / "benchmarks"))
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    profile = args.scale if args.scale != "auto" else ("paper" if device.type == "cuda" else "cpu")
    out_dir = Path(args.out)
    suites = SUITES if args.suite == "all" else (args.suite,)
    written = {}
    official_info: dict = {}
    if args.suite == "official":
        from .official.checkouts import find_checkouts, missing_message

        found = find_checkouts(args.official_root)
        if not any(found.values()):
            print(missing_message(args.official_root, found), flush=True)
            print("[official] skipped: no checkout found", flush=True)
            return written
        official_info.update(official_root=str(args.official_root), found=sorted(k for k, v in found.items() if v),
                             missing=sorted(k for k, v in found.items() if not v))
    for suite in suites:
        print(f"[{suite}] on {device} (profile {profile}{', quick' if args.quick else ''}"
              f"{', tiny' if args.tiny else ''})", flush=True)
        t0 = time.perf_counter()
        suffix = ("_compiled" if args.compile and suite == "methods" else "") + ("_tiny" if args.tiny else "")
        path = out_dir / f"{suite}_{device.type}{suffix}.json"

        def save(rows: list[dict], partial: bool = False) -> None:
            params = {"suite": suite, "device": str(device), "profile": profile, "quick": args.quick,
                      "tiny": args.tiny, "methods": args.methods, "compile": args.compile,
                      "torch_threads": torch.get_num_threads(), "partial": partial}
            if suite == "official":
                params.update(profile="official code side by side", blocks=args.blocks, **official_info)
            record = {"suite": suite, "rows": rows, "provenance": collect_provenance(
                params, standin=True, data_fingerprint=None, wall_time_s=time.perf_counter() - t0,
                extra={"torch": torch.__version__, "cuda": torch.version.cuda,
                       "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                       "profile_note": _profile_note(profile) if suite != "official" else
                       "one thread each side (torch, BLAS, faiss); the same inputs; medians of alternating repeats",
                       "note": "wall-clock on a machine that may be shared with other jobs; data are synthetic"})}
            if suite == "official":
                record["rows"] = _official_rows(path, rows, args.blocks, record["provenance"])
            atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")

        if suite == "official":
            from .official.suite import run_official

            rows, info = run_official(device, args.official_root, tiny=args.tiny, only=args.blocks,
                                      on_rows=lambda rows: save(rows, partial=True))
            official_info.update(info, torch_threads=1)
        else:
            rows = _run_suite(suite, device, profile, args, lambda rows: save(rows, partial=True))
        save(rows)
        written[suite] = path
        print(f"wrote {path}", flush=True)
    readme = render_readme(out_dir)
    print(f"wrote {readme}")
    return written


def _official_rows(path: Path, rows: list[dict], blocks, provenance: dict) -> list[dict]:
    """This run's rows stamped with its commit and time; with ``--blocks``, merged into the previous file's."""
    from .official.suite import merge_rows, stamp

    rows = stamp(rows, {**provenance["git"], "timestamp_utc": provenance["timestamp_utc"]})
    if not blocks or not path.is_file():
        return rows
    previous = json.loads(path.read_text(encoding="utf-8"))
    provenance["merged_into"] = {"previous_git": previous.get("provenance", {}).get("git"),
                                 "previous_timestamp_utc": previous.get("provenance", {}).get("timestamp_utc"),
                                 "rerun_blocks": list(blocks)}
    return merge_rows(stamp(previous.get("rows", []), {**previous.get("provenance", {}).get("git", {}),
                                                       "timestamp_utc": previous.get("provenance", {})
                                                       .get("timestamp_utc")}), rows)


def _profile_note(profile: str) -> str:
    if profile == "paper":
        return "the papers' backbones, batches and 224 px (spreading/stml GoogLeNet, insclr ResNet-101, isl ResNet-18)"
    return ("CPU profile: smaller than the papers so that it finishes (64 px; batch 16/15/32 items; InsCLR on "
            "ResNet-18, 128-d, bank 4,096) -- overhead ratios on a CPU weigh the loss against a slower backbone "
            "and do not transfer to GPUs")


def _run_suite(suite: str, device: torch.device, profile: str, args, on_rows=None) -> list[dict]:
    """The suite's rows; ``on_rows(rows)`` after each methods case (a partial file survives a timeout)."""
    if suite == "methods":
        from .methods import run_methods

        cases = args.methods or (["spreading", "isl_round0"] if args.tiny else None)
        return run_methods(device, profile, quick=args.quick or args.tiny, cases=cases, tiny=args.tiny,
                           compile=args.compile, on_rows=on_rows)
    if suite == "input":
        from .input_pipeline import run_input

        return run_input(device, profile, quick=args.quick or args.tiny, on_rows=on_rows)
    from .retrieval import run_retrieval

    return run_retrieval(device, quick=args.quick, tiny=args.tiny)


if __name__ == "__main__":
    main()
