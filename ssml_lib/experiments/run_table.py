"""Run every row of a thesis table through its notebook, headless, and rebuild the table's Markdown.

    python -m ssml_lib.experiments.run_table table1_cub_pretrained                     # stand-in, all rows
    python -m ssml_lib.experiments.run_table table7_gldv2 --data-root /data --gpus 4   # paper scale, DDP
    python -m ssml_lib.experiments.run_table table1_cub_pretrained --methods pretrained,spreading \\
        -p standin_size tiny -p epochs 1 -p spreading.temperature 0.2 --dry-run

For each method, ``notebooks/<table>.ipynb`` is executed by papermill (kernel ``python3``, no progress bar,
cell output logged) into ``results/executed/<table>__<method>.ipynb`` (stand-in runs:
``runs/results/standin-<size>/executed/``, or ``results/standin/executed/`` when recording, so stand-in and real
copies never mix). With ``--data-root`` (paper scale)
``<params-dir>/<table>/<method>.yaml`` is given as ``params_file`` when it exists; on the stand-in the runner
layers ``params/standin*.yaml`` itself. ``-p NAME VALUE`` goes to every method (papermill's typing);
``-p METHOD.NAME VALUE`` to that method only.

Every method's parameters are checked (the same typed configs the notebook uses) before any notebook runs:
methods with bad parameters are reported and skipped; if none is left, nothing runs (exit 2). A method that
fails while running does not stop the others; failures are listed at the end and the exit status is 1. The
table's Markdown (``results/<table>.md``, stand-in: beside its CSVs) is rebuilt from the CSVs at the end.
Paths follow ``SSML_RESULTS``/``SSML_RUNS``/``SSML_CACHE``, which the kernels inherit; in CI set
``TQDM_DISABLE=1`` so progress bars do not flood the logged cell output.

Multi-GPU (``--gpus N``, N > 1): a notebook kernel cannot be started by torchrun, so each trained row runs in
two steps. First ``torchrun --standalone --nproc_per_node N -m ssml_lib.experiments.train_row <table> <method>
--train-only`` with the notebook's full parameter set trains every stage with DDP into the run folder that the
notebook's runner derives from the same parameters. Then the notebook is executed as usual: the runner finds
every stage complete, skips the training, loads the trained weights, evaluates on one device and writes the
results, so evaluation and results always come from the notebook and are written once (``--standalone``:
one node). If the training did not complete, the notebook is not run (it would retrain on one device) and the
method is reported as failed.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import ConfigError, SsmlError
from ..paths import REPO_ROOT
from .table_plan import (KERNEL, MethodPlan, _executed_dir, _shown, notebook_defaults,  # noqa: F401 (re-exported)
                         papermill_command, plan_table)
from .train_row import parse_pairs

@dataclass
class MethodOutcome:
    method: str
    ok: bool
    seconds: float
    output: Optional[Path]
    message: str = ""


@dataclass
class TableRun:
    table: str
    plans: list
    outcomes: list
    markdown: list                        # the rebuilt Markdown files

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if not o.ok]


def _execute(plan: MethodPlan, *, log_output: bool, execution_timeout: Optional[int]) -> Optional[str]:
    """Execute the notebook into ``plan.output``; None on success, else the notebook's exception."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    plan.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(plan.notebook), str(plan.output), parameters=plan.parameters,
                                   kernel_name=KERNEL, progress_bar=False, log_output=log_output,
                                   cwd=str(REPO_ROOT), execution_timeout=execution_timeout)
    except PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel start-up, timeouts, I/O: still one method's failure, not the table's
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_data(plan: MethodPlan) -> Optional[str]:
    """What the notebook's runner checks before any work (datasets, gnd files, every image, the method's settings
    against the training set), here, so a refused row leaves no executed notebook; None when it may run."""
    from .distributed_row import preflight_row

    try:
        preflight_row(plan.table, plan.params_file, {k: v for k, v in plan.namespace.items() if k != "params_file"})
    except SsmlError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def rebuild_markdown(table: str, *, standin: bool, results_dir: Optional[str] = None,
                     size: Optional[str] = None) -> Path:
    """Write ``<table>.md`` from every CSV of the table (stand-in or real); return its path."""
    from ..io import atomic_write_text
    from ..results import render_table, table_dir

    path = table_dir(table, standin=standin, results_dir=results_dir, size=size).parent / f"{table}.md"
    atomic_write_text(path, render_table(table, results_dir, standin=standin, size=size))
    return path


def run_table(table: str, *, dry_run: bool = False, log_output: bool = True,
              execution_timeout: Optional[int] = None, out=None, **plan_options) -> TableRun:
    """Plan (see :func:`plan_table`), then run every valid method and rebuild the Markdown."""
    from .distributed_row import train_with_torchrun

    out = out or sys.stdout
    plans = plan_table(table, **plan_options)
    say = lambda *lines: print(*lines, sep="\n", file=out, flush=True)  # noqa: E731
    outcomes = []
    for plan in plans:
        if plan.error:
            say(f"[{table}] {plan.method}: parameters refused, not run. {plan.error}")
            outcomes.append(MethodOutcome(plan.method, False, 0.0, None, f"parameters refused: {plan.error}"))
    runnable = [p for p in plans if not p.error]
    if dry_run:
        say(f"# run from {REPO_ROOT}")
        for plan in runnable:
            files = " + ".join(_shown(f) for f in plan.files) or "none (the method's default recipe)"
            say(f"# {plan.method}: {'stand-in' if plan.standin else 'real data'}; params files: {files}")
            if plan.train_command:
                say(shlex.join(["torchrun", *plan.train_command[3:]]))
            say(shlex.join(papermill_command(plan)))
        for standin in sorted({p.standin for p in runnable}):
            md = _executed_dir(standin, runnable[0].results_dir, runnable[0].size).parent / f"{table}.md"
            say(f"# then rebuild {_shown(md)} from the CSVs")
        return TableRun(table, plans, outcomes, [])
    for plan in plans:
        if plan.error:  # an executed copy from an earlier run would misreport this one
            plan.output.unlink(missing_ok=True)
    if not runnable:
        raise ConfigError(f"no method of {table} has valid parameters; nothing was run (messages above).")
    refused = set()
    for plan in runnable:
        start = time.time()
        why = _check_data(plan)
        if why is not None:  # nothing of this row is run or written (an older executed copy would misreport)
            plan.output.unlink(missing_ok=True)
            refused.add(plan.method)
            say(f"[{table}] {plan.method}: data or settings refused, not run. {why}")
            outcomes.append(MethodOutcome(plan.method, False, time.time() - start, None, f"refused: {why}"))
            continue
        say(f"[{table}] {plan.method}: running -> {_shown(plan.output)}")
        error = train_with_torchrun(plan.train_command, plan.table, plan.params_file, plan.namespace) \
            if plan.train_command else None
        if error is None:
            error = _execute(plan, log_output=log_output, execution_timeout=execution_timeout)
        seconds = time.time() - start
        outcomes.append(MethodOutcome(plan.method, error is None, seconds, plan.output if plan.output.is_file()
                                      else None, error or ""))
        say(f"[{table}] {plan.method}: {'done' if error is None else 'FAILED'} in {seconds:.0f} s"
            + (f": {error}" if error else ""))
    ran = [p for p in runnable if p.method not in refused]
    markdown = [rebuild_markdown(table, standin=s, results_dir=r, size=z)  # refused rows wrote nothing: nor here
                for s, r, z in dict.fromkeys((p.standin, p.results_dir, p.size) for p in ran)]
    order = {p.method: i for i, p in enumerate(plans)}
    outcomes.sort(key=lambda o: order[o.method])
    say("", f"{table}: {len(outcomes) - sum(not o.ok for o in outcomes)}/{len(outcomes)} methods ok")
    for o in outcomes:
        where = _shown(o.output) if o.output else "no executed notebook"
        say(f"  {'ok    ' if o.ok else 'FAILED'} {o.method:<12} {o.seconds:6.0f} s  {where}"
            + (f"\n         {o.message}" if o.message else ""))
    say(*(f"Markdown: {_shown(p)}" for p in markdown))
    return TableRun(table, plans, outcomes, markdown)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssml_lib.experiments.run_table",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", help="e.g. table1_cub_pretrained (a notebook in notebooks/)")
    parser.add_argument("--methods", default=None, help="comma-separated rows (default: all rows of the table)")
    parser.add_argument("--data-root", default=None, help="folder holding the real datasets (default: stand-in)")
    parser.add_argument("--params-dir", default="params", help="where <table>/<method>.yaml are (paper scale)")
    parser.add_argument("--standin-size", default=None, help="stand-in scale: tiny or default (notebook default)")
    parser.add_argument("--gpus", type=int, default=1, help="processes per row; > 1 trains under torchrun (DDP)")
    parser.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"), help="the notebooks' device")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                        help="a parameter for every method, or METHOD.NAME for one (repeatable)")
    parser.add_argument("--execution-timeout", type=int, default=None, help="seconds per cell (default: none)")
    parser.add_argument("--no-log-output", dest="log_output", action="store_false",
                        help="do not stream the notebooks' cell output")
    parser.add_argument("--dry-run", action="store_true", help="check the parameters and print the commands")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log_output and not args.dry_run:  # papermill logs the cells' output at INFO, as its CLI shows it
        import logging

        logger = logging.getLogger("papermill")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        report = run_table(args.table, dry_run=args.dry_run, log_output=args.log_output,
                           execution_timeout=args.execution_timeout,
                           methods=args.methods.split(",") if args.methods else None, data_root=args.data_root,
                           params_dir=args.params_dir, standin_size=args.standin_size, gpus=args.gpus,
                           device=args.device, parameters=parse_pairs(args.parameter))
    except SsmlError as exc:
        print(f"run_table: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
