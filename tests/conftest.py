"""Test-session settings: tiny tensors run far faster on one intra-op thread than on two contended ones; run
folders in a temporary folder."""
import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _runs_outside_the_repository(tmp_path_factory):
    """Training run folders of every test go to a temporary folder (a test may point SSML_RUNS elsewhere), so no
    test reuses a run folder another test session left in the repository's runs/."""
    old = os.environ.get("SSML_RUNS")
    os.environ["SSML_RUNS"] = str(tmp_path_factory.mktemp("runs"))
    yield
    if old is None:
        os.environ.pop("SSML_RUNS", None)
    else:
        os.environ["SSML_RUNS"] = old


def isolate(folder, cache, monkeypatch):
    """Point the cache, results and run folders of ssml_lib at temporary ones (and quiet the progress bars)."""
    for key, value in (("SSML_CACHE", cache), ("SSML_RESULTS", folder / "results"), ("SSML_RUNS", folder / "runs"),
                       ("TQDM_DISABLE", "1")):
        monkeypatch.setenv(key, str(value))
    return folder
