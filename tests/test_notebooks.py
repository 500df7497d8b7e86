"""The committed notebooks against their generator (tools/make_notebooks.py): the drift check compares content,
so JupyterLab's rewrite of display metadata on open/autosave passes it, and a real change does not."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "make_notebooks.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("make_notebooks", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def check(tool, capsys):
    """``make_notebooks.py --check --out FOLDER``, in process: (exit code, what it printed)."""
    def run(folder: Path) -> SimpleNamespace:
        capsys.readouterr()
        code = tool.main(["--check", "--out", str(folder)])
        return SimpleNamespace(returncode=code, stdout=capsys.readouterr().out, stderr="")
    return run


@pytest.fixture(scope="module")
def generated(tool, tmp_path_factory) -> Path:
    """Fresh notebooks written by the generator with --out (the documented place for copies to work on)."""
    folder = tmp_path_factory.mktemp("nb")
    assert tool.main(["--out", str(folder)]) == 0
    return folder


def lab_save(nb: dict, *, executed: bool) -> str:
    """What JupyterLab 4 writes when it opens and autosaves a notebook: the running kernel's display name, its
    full language_info, execution_count on every code cell, UI state and (when cells ran with timing recorded)
    execution timestamps in cell metadata; sources as lists of lines, keys sorted, one-space indent."""
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb["metadata"]["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python",
        "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3", "version": "3.12.3"}
    for i, cell in enumerate(nb["cells"]):
        cell["source"] = cell["source"].splitlines(keepends=True) if isinstance(cell["source"], str) else cell["source"]
        if cell["cell_type"] == "markdown":
            cell["metadata"]["jp-MarkdownHeadingCollapsed"] = True
            continue
        cell["execution_count"] = i if executed else None
        cell["metadata"].update(collapsed=False, scrolled=True, jupyter={"source_hidden": False}, trusted=True)
        if executed:
            cell["metadata"]["execution"] = {"iopub.execute_input": "2026-01-05T10:00:00.000001Z",
                                             "iopub.status.busy": "2026-01-05T10:00:00.000000Z",
                                             "iopub.status.idle": "2026-01-05T10:00:01.000000Z",
                                             "shell.execute_reply": "2026-01-05T10:00:01.000000Z"}
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def rewrite(folder: Path, name: str, change) -> None:
    path = folder / f"{name}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(change(nb) or json.dumps(nb, indent=1), encoding="utf-8")


def test_committed_notebooks_match_their_generator(check):
    out = check(REPO / "notebooks")  # test_experiments runs the same check through the command line
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("executed", [False, True], ids=["opened", "cells-run-without-output"])
def test_drift_check_passes_after_a_jupyterlab_metadata_rewrite(generated, check, tmp_path, executed):
    for path in generated.glob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        (tmp_path / path.name).write_text(lab_save(nb, executed=executed), encoding="utf-8")
    assert (tmp_path / "table1_cub_pretrained.ipynb").read_text() != (generated / "table1_cub_pretrained.ipynb").read_text()
    out = check(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def _edit_source(nb):
    source = "".join(nb["cells"][1]["source"])
    nb["cells"][1]["source"] = source.replace('method = "pretrained"', 'method = "stml"')


def _drop_tag(nb):
    nb["cells"][1]["metadata"]["tags"] = []


def _add_output(nb):
    nb["cells"][3]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hello\n"}]


def _add_cell(nb):
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "extra", "metadata": {}, "outputs": [],
                        "source": "print(1)"})


def _rename_kernel(nb):
    nb["metadata"]["kernelspec"]["name"] = "somewhere-else"


@pytest.mark.parametrize("change, reason", [
    (_edit_source, "cell 1 differs (source)"), (_drop_tag, "cell 1 differs (tags)"),
    (_add_output, "holds outputs from a run"), (_add_cell, "5 cells, expected 4"),
    (_rename_kernel, "kernel 'somewhere-else'"),
], ids=["source", "parameters-tag", "outputs", "extra-cell", "kernel-name"])
def test_drift_check_fails_on_a_real_content_change(generated, check, tmp_path, change, reason):
    for path in generated.glob("*.ipynb"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert check(tmp_path).returncode == 0
    rewrite(tmp_path, "table1_cub_pretrained", change)
    out = check(tmp_path)
    assert out.returncode == 1
    assert "table1_cub_pretrained.ipynb" in out.stdout and reason in out.stdout, out.stdout


def test_a_missing_notebook_is_drift(generated, check, tmp_path):
    for path in generated.glob("*.ipynb"):
        if path.name != "table7_gldv2.ipynb":
            (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    out = check(tmp_path)
    assert out.returncode == 1 and "table7_gldv2.ipynb: missing" in out.stdout


# ---------------------------------------------------------------- what an executed notebook shows

NOISE = ("TqdmWarning", "IProgress not found", '{"epoch"', "git: ", "batch_size:", "checkpoint_every_steps")


@pytest.mark.slow
def test_an_executed_table_notebook_shows_parameters_one_progress_line_and_the_table(tmp_path, monkeypatch):
    """One training row on the tiny stand-in through papermill, as the demo and run_table execute it: no stream
    output at all (no tqdm refreshes, no TqdmWarning, no TrainConfig dump, no raw JSON log lines), one progress
    line in the running cell, then the table."""
    papermill = pytest.importorskip("papermill")
    for name in ("SSML_CACHE", "SSML_RUNS", "SSML_RESULTS"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # tools/test.sh sets it; the bar is what is checked here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "table1_cub_pretrained.ipynb"), str(out),
                               parameters=dict(method="spreading", standin_size="tiny", pretrain_epochs=1,
                                               epochs=1, batch_size=16), kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path))
    nb = json.loads(out.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    streams = [(i, "".join(o.get("text", ""))) for i, c in enumerate(code) for o in c["outputs"]
               if o["output_type"] == "stream"]
    assert streams == [], "stream output in the executed notebook"
    text = json.dumps(nb)
    assert not [n for n in NOISE if n in text]
    run_cell = next(c for c in code if "run_notebook_row" in "".join(c["source"]))
    assert [o["output_type"] for o in run_cell["outputs"]] == ["display_data"]  # the one progress line
    line = "".join(run_cell["outputs"][0]["data"]["text/plain"])
    assert "100%" in line and "\n" not in line.strip()
    show_cell = code[-1]
    shown = "".join("".join(o["data"].get("text/markdown", "")) for o in show_cell["outputs"])
    assert "STAND-IN DATA" in shown and "| Spreading (`spreading`) |" in shown
