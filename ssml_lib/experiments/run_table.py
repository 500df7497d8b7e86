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
import ast
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..errors import ConfigError, SsmlError
from ..paths import REPO_ROOT
from .train_row import format_value, parse_pairs
from .tables import get_table

KERNEL = "python3"


@dataclass
class MethodPlan:
    table: str
    method: str
    notebook: Path
    output: Path                          # the executed copy
    parameters: dict                      # what papermill injects
    namespace: dict                       # the notebook's parameters after injection (defaults + injected)
    params_file: Optional[str]
    standin: bool
    results_dir: Optional[str]            # -p output_dir, else None (the default results folders)
    train_command: Optional[list] = None  # torchrun command (--gpus N > 1), else None
    files: list = field(default_factory=list)  # the params files the runner will read, in order
    error: Optional[str] = None           # why the parameters were refused (the notebook is not run)
    size: Optional[str] = None            # the stand-in size (None on real data)


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


def notebook_defaults(notebook: Path) -> dict:
    """The literal defaults of a notebook's ``parameters`` cell (what the kernel has before injection)."""
    import logging

    import papermill

    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.WARNING)  # inspect_notebook announces the notebook at INFO, as if it ran it
    try:
        found = papermill.inspect_notebook(str(notebook))
    finally:
        logger.setLevel(level)
    return {name: ast.literal_eval(p["default"]) for name, p in found.items()}


def _split_scoped(parameters: Mapping[str, Any]) -> tuple[dict, dict]:
    from ..methods import METHODS

    common, scoped = {}, {}
    for key, value in parameters.items():
        if "." in key:
            method, name = key.split(".", 1)
            if method not in METHODS:
                raise ConfigError(f"-p {key}: {method!r} is not a method ({', '.join(METHODS)}). Fix: write "
                                  "-p METHOD.NAME VALUE, e.g. -p spreading.temperature 0.2.")
            scoped.setdefault(method, {})[name] = value
        elif key == "method":
            raise ConfigError("-p method: the methods come from --methods. Fix: --methods a,b.")
        else:
            common[key] = value
    return common, scoped


def _shown(path: Path | str) -> str:
    from ..paths import shown_path

    return shown_path(path)


def _executed_dir(standin: bool, results_dir: Optional[str], size: Optional[str] = None) -> Path:
    from ..results import results_base

    return results_base(standin=standin, results_dir=results_dir, size=size) / "executed"


def plan_table(table: str, *, methods: Optional[Sequence[str]] = None, data_root: Optional[str] = None,
               params_dir: str | Path = "params", standin_size: Optional[str] = None, gpus: int = 1,
               device: Optional[str] = None, parameters: Optional[Mapping[str, Any]] = None) -> list[MethodPlan]:
    """What :func:`run_table` would run, with each method's parameters checked (``plan.error`` if refused)."""
    from ..methods import METHODS
    from .distributed_row import check_gpus, resolve_row, torchrun_command

    spec = get_table(table)
    chosen = list(methods) if methods else list(spec.methods)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or len(set(chosen)) != len(chosen):
        raise ConfigError(f"--methods {','.join(chosen)}: unknown or repeated {unknown or 'names'}. Fix: choose "
                          f"from the rows of {table}: {','.join(spec.methods)}.")
    if gpus < 1:
        raise ConfigError(f"--gpus {gpus}: need at least 1. Fix: --gpus 1 (one process) or N > 1 (torchrun).")
    notebook = REPO_ROOT / "notebooks" / f"{table}.ipynb"
    if not notebook.is_file():
        raise ConfigError(f"{notebook} is missing. Fix: python tools/make_notebooks.py.")
    defaults = notebook_defaults(notebook)
    common, scoped = _split_scoped(parameters or {})
    given = {k: v for k, v in (("data_root", data_root), ("standin_size", standin_size), ("device", device))
             if v is not None}
    clash = [k for k in given if k in common and common[k] != given[k]]
    if clash:
        raise ConfigError(f"{clash} given both as an option and with -p. Fix: give each once.")
    plans = []
    for method in chosen:
        injected = {"method": method, **given, **common, **scoped.get(method, {})}
        # None in a parameters cell means "not given" (run_notebook_row drops it too)
        namespace = {k: v for k, v in {**defaults, **injected}.items() if v is not None}
        params_file = namespace.get("params_file")
        if namespace.get("data_root") is not None and params_file is None:
            candidate = Path(params_dir) / table / f"{method}.yaml"
            candidate = candidate if candidate.is_absolute() else REPO_ROOT / candidate
            if candidate.is_file():
                params_file = injected["params_file"] = namespace["params_file"] = _shown(candidate)
        results_dir = namespace.get("output_dir")
        standin = namespace.get("data_root") is None
        size = namespace.get("standin_size") or "default"
        plan = MethodPlan(table, method, notebook,
                          _executed_dir(standin, results_dir, size) / f"{table}__{method}.ipynb",
                          injected, namespace, params_file, standin, results_dir, size=size if standin else None)
        try:  # the notebook's own check (run_notebook_row), before anything runs
            overrides = {k: v for k, v in namespace.items() if k != "params_file"}
            resolved = resolve_row(table, params_file, overrides)
            plan.files = resolved["files"]
            if resolved["standin"] and not standin:  # stand-in folders given as data_root: stand-in results
                plan.standin, plan.size = True, resolved["run"].data.standin_size
                plan.output = _executed_dir(True, results_dir, plan.size) / plan.output.name
            root = namespace.get("data_root")
            if root is not None and not Path(root).expanduser().is_dir():
                raise ConfigError(f"data_root {root!r} does not exist. Fix: --data-root <folder holding the "
                                  "datasets' own folders>, or leave it out for the stand-in.")
            check_gpus(namespace.get("device"), gpus)
            if gpus > 1 and method != "pretrained":
                plan.train_command = torchrun_command(table, method, namespace, gpus)
        except SsmlError as exc:
            plan.error = f"{type(exc).__name__}: {exc}"
        plans.append(plan)
    return plans


def papermill_command(plan: MethodPlan) -> list:
    """The papermill CLI equivalent of the Python call run_table makes (for --dry-run and logs)."""
    cmd = ["papermill", _shown(plan.notebook), _shown(plan.output), "-k", KERNEL, "--no-progress-bar",
           "--log-output", "--cwd", str(REPO_ROOT)]
    for name, value in plan.parameters.items():
        if isinstance(value, (list, tuple, dict)):  # papermill's -p has no lists: YAML instead
            cmd += ["-y", f"{name}: {json.dumps(value)}"]
        else:
            cmd += ["-p", name, format_value(value)]
    return cmd


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
