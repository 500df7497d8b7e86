"""Train one table row from the command line, under ``torchrun`` for several GPUs (or as one process).

    torchrun --standalone --nproc_per_node 4 -m ssml_lib.experiments.train_row table7_gldv2 insclr \\
        -p data_root /data -p params_file params/table7_gldv2/insclr.yaml

Every rank trains (DDP); rank 0 then evaluates and writes ``results/<table>/<method>.csv`` and the table's
Markdown once (see :mod:`ssml_lib.experiments.distributed_row`). ``--train-only`` stops after the training:
``run_table --gpus N`` uses it and then runs the table notebook, which finds the trained row and evaluates it.
``-p NAME VALUE`` takes the notebook's parameters with papermill's ``-p`` typing (``True``/``False``/``None``,
then int, then float, else a string); a value in brackets (``[7, 9]``) is read as a JSON list.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import ConfigError, SsmlError
from .cli_values import coerce_value, format_value, parse_pairs  # noqa: F401  (run_table imports them from here)
from .distributed_row import _rank_from_env, run_distributed_row, row_run_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssml_lib.experiments.train_row",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", help="a table notebook's name, e.g. table1_cub_pretrained")
    parser.add_argument("method", help="the row, e.g. spreading")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                        help="a notebook parameter or config field (repeatable), e.g. -p epochs 1")
    parser.add_argument("--params-file", default=None, help="a params YAML (same as -p params_file FILE)")
    parser.add_argument("--train-only", action="store_true",
                        help="train, but leave evaluation and results to the table notebook")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = parse_pairs(args.parameter)
        if "method" in overrides and overrides["method"] != args.method:
            raise ConfigError(f"the method is given twice ({args.method!r} and -p method "
                              f"{overrides['method']!r}). Fix: drop -p method.")
        params_file = overrides.pop("params_file", None) or args.params_file
        overrides["method"] = args.method
        result = run_distributed_row(args.table, params_file, overrides, evaluate=not args.train_only,
                                     progress=not args.no_progress)
    except SsmlError as exc:
        print(f"train_row: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if _rank_from_env() == 0:
        if result is not None:
            print(f"{args.table}/{args.method}: results in {result.paths['csv']} (Markdown: {result.paths['md']})")
        elif args.method == "pretrained":
            print(f"{args.table}/pretrained: nothing to train (the notebook evaluates the initial network)")
        else:
            print(f"{args.table}/{args.method}: trained in {row_run_dir(args.table, params_file, overrides)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
