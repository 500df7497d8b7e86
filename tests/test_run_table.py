"""run_table (a table's rows through papermill, then its Markdown) and train_row (a row under torchrun)."""
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ssml_lib.errors import ConfigError
from ssml_lib.experiments.distributed_row import DDP_RECORD, incomplete_stages, row_run_dir
from ssml_lib.experiments.run_table import main, plan_table
from ssml_lib.experiments.train_row import coerce_value, format_value, parse_pairs

REPO = Path(__file__).resolve().parent.parent
T1 = "table1_cub_pretrained"
TINY = ["-p", "standin_size", "tiny", "-p", "pretrain_epochs", "1", "-p", "epochs", "1", "-p", "batch_size", "16"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # stand-in data and weights, generated once for the whole file


@pytest.fixture
def env(tmp_path, cache, monkeypatch):
    """Every path ssml_lib writes, in tmp dirs (papermill's kernels and torchrun's ranks inherit these)."""
    values = {"SSML_CACHE": str(cache), "SSML_RESULTS": str(tmp_path / "results"),
              "SSML_RUNS": str(tmp_path / "runs"), "TQDM_DISABLE": "1"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--no-log-output", *argv])
    return code, out.getvalue(), err.getvalue()


def lines_with(text, *words):
    return [line for line in text.splitlines() if all(w in line for w in words)]


# ---------------------------------------------------------------- parameter typing


@pytest.mark.parametrize("text,value", [("True", True), ("None", None), ("007", 7), ("1e-3", 0.001),
                                        ("0.5", 0.5), ("tiny", "tiny"), ("[7, 9]", [7, 9]), ("/data", "/data")])
def test_values_typed_like_papermill(text, value):
    assert coerce_value(text) == value and type(coerce_value(text)) is type(value)
    assert coerce_value(format_value(value)) == value  # what train_row is given reads back the same


def test_untypeable_values_refused():
    with pytest.raises(ConfigError, match="params file"):
        format_value("12")  # a string that the command line would turn into an int
    with pytest.raises(ConfigError, match="JSON"):
        coerce_value("[7, 9")


# ---------------------------------------------------------------- dry runs (nothing executed, nothing written)


def test_dry_run_standin_lists_one_papermill_command_per_method(env):
    code, out, _ = cli(T1, "--methods", "pretrained,spreading", "--dry-run", "-p", "standin_size", "tiny",
                       "-p", "spreading.temperature", "0.2")
    assert code == 0
    commands = lines_with(out, "papermill ", f"notebooks/{T1}.ipynb")
    assert len(commands) == 2 and not lines_with(out, "torchrun")
    executed = env / "results" / "standin" / "executed"
    for method, cmd in zip(("pretrained", "spreading"), commands):
        assert f"-p method {method}" in cmd and "-k python3" in cmd and "--no-progress-bar" in cmd
        assert "--log-output" in cmd and f"{executed}/{T1}__{method}.ipynb" in cmd
        assert "-p standin_size tiny" in cmd and "params_file" not in cmd  # stand-in: no paper params file
    assert "-p temperature 0.2" in commands[1] and "temperature" not in commands[0]  # scoped to spreading
    assert lines_with(out, "spreading: stand-in", "params/standin.yaml + params/standin/spreading.yaml")
    assert lines_with(out, "rebuild", f"standin/{T1}.md")
    assert not (env / "results").exists()


def test_dry_run_with_data_root_picks_params_files_and_torchrun(env):
    data, params = env / "data", env / "myparams"
    data.mkdir()
    (params / "table7_gldv2").mkdir(parents=True)
    (params / "table7_gldv2" / "insclr.yaml").write_text("epochs: 2\n")  # spreading has no file here
    code, out, _ = cli("table7_gldv2", "--methods", "pretrained,insclr,spreading", "--data-root", str(data),
                       "--params-dir", str(params), "--gpus", "2", "--device", "cpu", "--dry-run")
    assert code == 0
    papermill = {m: lines_with(out, "papermill ", f"-p method {m}")[0] for m in ("pretrained", "insclr", "spreading")}
    assert f"-p params_file {params}/table7_gldv2/insclr.yaml" in papermill["insclr"]
    assert "params_file" not in papermill["spreading"] and "params_file" not in papermill["pretrained"]
    assert lines_with(out, "spreading: real data", "default recipe")
    assert all(f"-p data_root {data}" in c and "-p device cpu" in c for c in papermill.values())
    assert all(f"{env}/results/executed/table7_gldv2__" in c for c in papermill.values())
    torchrun = lines_with(out, "torchrun --standalone --nproc_per_node 2 -m ssml_lib.experiments.train_row")
    assert [line.split()[7] for line in torchrun] == ["insclr", "spreading"]  # pretrained trains nothing
    assert all("--train-only" in line for line in torchrun)
    # train_row receives the notebook's whole namespace, so both resolve the same run folder
    plans = {p.method: p for p in plan_table("table7_gldv2", methods=["insclr"], data_root=str(data),
                                             params_dir=params, gpus=2, device="cpu")}
    cmd = plans["insclr"].train_command
    pairs = [cmd[i + 1:i + 3] for i, a in enumerate(cmd) if a == "-p"]
    assert parse_pairs(pairs) == {k: v for k, v in plans["insclr"].namespace.items() if k != "method"}
    assert plans["insclr"].files == [str(params / "table7_gldv2" / "insclr.yaml")]
    assert not (env / "results").exists()


def test_refused_parameters_are_reported_before_anything_runs(env):
    # a bad value for one method: refused, the other still planned; a dry run exits 1
    code, out, _ = cli(T1, "--methods", "pretrained,spreading", "--dry-run", "-p", "spreading.temperature", "abc")
    assert code == 1
    assert lines_with(out, "spreading: parameters refused", "temperature")
    assert lines_with(out, "papermill ", "-p method pretrained") and not lines_with(out, "papermill ", "spreading")
    # every method refused: nothing runs, exit 2
    code, out, err = cli(T1, "--methods", "pretrained,spreading", "-p", "lerning_rate", "0.1")
    assert code == 2 and "nothing was run" in err and len(lines_with(out, "lerning_rate")) == 2
    assert not (env / "results" / "standin" / "executed").exists()


@pytest.mark.parametrize("argv,match", [
    (["--methods", "pretrained,nosuch"], "nosuch"),
    (["-p", "nosuch.epochs", "1"], "not a method"),
    (["-p", "method", "spreading"], "--methods"),
    (["--gpus", "0"], "at least 1"),
    (["--data-root", "/a", "-p", "data_root", "/b"], "both"),
])
def test_bad_options_exit_2(env, argv, match):
    code, _, err = cli(T1, "--dry-run", *argv)
    assert code == 2 and match in err


def test_missing_data_root_and_missing_gpus_refused(env):
    plans = plan_table(T1, methods=["spreading"], data_root=str(env / "nowhere"))
    assert "data_root" in plans[0].error and "does not exist" in plans[0].error
    import torch

    if torch.cuda.device_count() < 64:
        plans = plan_table(T1, methods=["spreading"], gpus=64, device="auto", parameters={"standin_size": "tiny"})
        assert "--gpus 64" in plans[0].error and plans[0].train_command is None


# ---------------------------------------------------------------- real runs on the tiny stand-in


@pytest.mark.slow
def test_table_run_executes_notebooks_continues_after_a_failure_and_rebuilds_markdown(env):
    # supervised's batch does not fit the data (refused before its notebook runs: no executed copy), stml's
    # parameters are refused up front; the other two still run
    code, out, _ = cli(T1, "--methods", "supervised,pretrained,spreading,stml", *TINY,
                       "-p", "supervised.batch_size", "4096", "-p", "stml.bogus", "1")
    assert code == 1
    executed = env / "results" / "standin" / "executed"
    for method, failed in (("pretrained", False), ("spreading", False)):
        nb = nbformat.read(executed / f"{T1}__{method}.ipynb", as_version=4)
        assert bool(nb.metadata.papermill.get("exception")) is failed, method
        assert nb.metadata.papermill.parameters["method"] == method
        assert nb.metadata.papermill.parameters["standin_size"] == "tiny"
    assert not (executed / f"{T1}__stml.ipynb").exists() and not (executed / f"{T1}__supervised.ipynb").exists()
    assert lines_with(out, "FAILED", "supervised") and lines_with(out, "batch_size=4096")
    assert lines_with(out, "FAILED", "stml") and lines_with(out, "bogus")
    assert lines_with(out, "2/4 methods ok")
    md_path = env / "results" / "standin" / f"{T1}.md"
    assert lines_with(out, f"Markdown: {md_path}")
    md = md_path.read_text()
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and "(`" in line}
    for method in ("pretrained", "spreading"):  # ours filled in: "paper / ours" with a number after the slash
        cells = [c.strip() for c in rows[next(k for k in rows if f"(`{method}`)" in k)].split("|")[2:-1]]
        assert len(cells) == 6 and all(not c.endswith("/ —") for c in cells), cells  # + R@1 (pooled)
    supervised = next(v for k, v in rows.items() if "(`supervised`)" in k)
    assert "60.23 / —" in supervised  # paper's number, no result of ours
    assert sorted(p.name for p in (env / "results" / "standin" / T1).glob("*.csv")) == ["pretrained.csv",
                                                                                       "spreading.csv"]
    # the run folder distributed_row derives is the one the notebook trained into (torchrun relies on it)
    plan = plan_table(T1, methods=["spreading"], parameters=parse_pairs(zip(TINY[1::3], TINY[2::3])))[0]
    overrides = {k: v for k, v in plan.namespace.items() if k != "params_file"}
    run_dir = row_run_dir(T1, None, overrides)
    assert (run_dir / "train" / "stage.json").is_file() and incomplete_stages(T1, None, overrides) == []


def torchrun(*argv, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *argv]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


@pytest.mark.slow
def test_train_row_under_torchrun_trains_on_two_ranks_and_writes_results_once(env):
    proc = torchrun("-m", "ssml_lib.experiments.train_row", T1, "spreading", *TINY, "-p", "device", "cpu",
                    "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(lines_with(proc.stdout, "results in")) == 1  # rank 0 only
    folder = env / "results" / "standin" / T1
    assert sorted(p.name for p in folder.iterdir()) == ["spreading.csv", "spreading.json"]
    assert not list(folder.glob(".*"))  # no temporary files left by a second writer
    csv = (folder / "spreading.csv").read_text().splitlines()
    assert len(csv) == 1 + 6 and all(",spreading," in line for line in csv[1:])  # R@1,2,4,8, NMI, pooled R@1
    [run_dir] = (env / "runs" / "standin" / T1).iterdir()
    record = json.loads((run_dir / DDP_RECORD).read_text())
    assert record["world_size"] == 2 and record["backend"] == "gloo" and record["skipped"] == []
    assert len((run_dir / "train" / "log.jsonl").read_text().splitlines()) == 1  # one epoch, one writer
    prov = json.loads((folder / "spreading.json").read_text())
    assert prov["extra"]["training"]["out_dir"] == str(run_dir)


def test_incomplete_distributed_training_is_a_failure_and_the_notebook_is_not_run(env, monkeypatch):
    import ssml_lib.experiments.distributed_row as dr

    # a "training" that trains nothing: the notebook would retrain on one process, so it must not run
    monkeypatch.setattr(dr, "torchrun_command", lambda *a: [sys.executable, "-c", "pass"])
    code, out, _ = cli(T1, "--methods", "spreading", "--gpus", "2", "--device", "cpu", *TINY)
    assert code == 1
    assert lines_with(out, "FAILED", "spreading", "incomplete; the notebook was not run")
    assert not (env / "results" / "standin" / "executed" / f"{T1}__spreading.ipynb").exists()
    assert "No runs recorded yet" in (env / "results" / "standin" / f"{T1}.md").read_text()


@pytest.mark.slow
def test_table_run_with_two_processes_trains_under_torchrun_then_the_notebook_evaluates(env):
    code, out, _ = cli(T1, "--methods", "spreading", "--gpus", "2", "--device", "cpu", *TINY)
    assert code == 0, out
    nb = nbformat.read(env / "results" / "standin" / "executed" / f"{T1}__spreading.ipynb", as_version=4)
    assert not nb.metadata.papermill.get("exception")
    [run_dir] = (env / "runs" / "standin" / T1).iterdir()  # the notebook found the trained row, no new folder
    assert json.loads((run_dir / DDP_RECORD).read_text())["world_size"] == 2
    assert len((run_dir / "train" / "log.jsonl").read_text().splitlines()) == 1  # trained once, by torchrun
    prov = json.loads((env / "results" / "standin" / T1 / "spreading.json").read_text())
    assert prov["extra"]["training"]["out_dir"] == str(run_dir)
    assert "(`spreading`) | 46.54 / " in (env / "results" / "standin" / f"{T1}.md").read_text()
