"""Concurrent builds of one cached thing take turns (ssml_lib.io.file_lock): two processes asking for the same
stand-in folder, or the same stand-in pre-trained weights, at once build it once; the later one waits and reuses
it. (nbval's workers and users' parallel notebooks used to build such things side by side.)"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from ssml_lib.data.standin.output import MARKER, build_atomically
from ssml_lib.experiments import standin_pretrain

fork = pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")


def _slow_writer(log: Path):
    def write(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.6)  # long enough that the other process asks while this one builds
        (tmp / "data.txt").write_text("x")
    return write


def _build(top: str, log: str) -> None:
    assert build_atomically(Path(top), {"v": 1}, _slow_writer(Path(log))) == Path(top)


def _run_two(target, *args) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=target, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0


@fork
def test_two_processes_build_one_standin_folder_once(tmp_path):
    top, log = tmp_path / "cub", tmp_path / "writes.log"
    _run_two(_build, str(top), str(log))
    assert len(log.read_text().split()) == 1  # the second found it built
    assert (top / MARKER).is_file() and (top / "data.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cub", "writes.log"]  # no partials, no lock file
    build_atomically(top, {"v": 2}, _slow_writer(log))  # other parameters: rebuilt under the same lock
    assert len(log.read_text().split()) == 2


def _weights(log: str) -> None:
    def fake_pretrain(settings, out, device, progress):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.6)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"w")
    standin_pretrain._pretrain = fake_pretrain  # this forked child's copy only
    assert standin_pretrain.standin_pretrained_weights(progress=False).read_bytes() == b"w"


@fork
def test_two_processes_pretrain_the_same_weights_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_CACHE", str(tmp_path / "cache"))
    log = tmp_path / "trainings.log"
    _run_two(_weights, str(log))
    assert len(log.read_text().split()) == 1
