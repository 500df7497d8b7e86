"""Test-session settings: tiny tensors run far faster on one intra-op thread than on two contended ones."""
import torch

torch.set_num_threads(1)


def isolate(folder, cache, monkeypatch):
    """Point the cache, results and run folders of ssml_lib at temporary ones (and quiet the progress bars)."""
    for key, value in (("SSML_CACHE", cache), ("SSML_RESULTS", folder / "results"), ("SSML_RUNS", folder / "runs"),
                       ("TQDM_DISABLE", "1")):
        monkeypatch.setenv(key, str(value))
    return folder
