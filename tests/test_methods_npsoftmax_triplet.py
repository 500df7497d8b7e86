"""The CIFAR baseline methods on the tiny stand-in CIFAR-10: npsoftmax updates exactly its batch's bank rows by
the momentum rule; triplet trains with either mining, and the switch changes only the mining."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from ssml_lib.data import open_torchvision_dataset
from ssml_lib.data.standin import make_standin
from ssml_lib.data.transforms import cifar_transform
from ssml_lib.engine import derive_seed
from ssml_lib.errors import ConfigError
from ssml_lib.methods import METHODS
from ssml_lib.methods.schedule import fit_method, method_config, train_config
from ssml_lib.mining import FeatureMemory
from ssml_lib.models import build_model


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    top = make_standin("cifar10", tmp_path_factory.mktemp("data"), "tiny")
    return open_torchvision_dataset("cifar10", top.parent, "train")


def run(name, data, out_dir, method_cfg=None, **train):
    torch.manual_seed(0)
    model = build_model("convnet4", pooling="avg", head="linear", embedding_size=8)
    tc = train_config(name, {"epochs": 1, "max_steps": 1, "batch_size": 16, "log_every": 1, "device": "cpu",
                             "shuffle": False, **train})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_method(name, model=model, train_set=data, method_cfg=method_cfg, train_cfg=tc, out_dir=out_dir,
                          train_transform=cifar_transform(True), test_transform=cifar_transform(False),
                          progress=False)


def test_registered_with_the_papers_recipe():
    for name in ("npsoftmax", "triplet"):
        tc = train_config(name)
        assert (tc.lr, tc.batch_size, tc.epochs, tc.milestones, tc.weight_decay) == (0.03, 128, 200, (120, 160), 5e-4)
    assert METHODS["npsoftmax"].Config().temperature == 0.1 and METHODS["triplet"].Config().margin == 0.5


def test_npsoftmax_updates_only_the_batch_rows_by_momentum(cifar, tmp_path):
    out = run("npsoftmax", cifar, tmp_path)
    bank = out.method.memory
    start = FeatureMemory(len(cifar), 8, init="uniform",
                          generator=torch.Generator().manual_seed(derive_seed(0, 8))).features
    changed = (bank.features != start).any(dim=1)
    assert int(changed.sum()) == 16  # one step of 16 images
    assert torch.allclose(bank.features[changed].norm(dim=1), torch.ones(16), atol=1e-5)
    assert torch.equal(bank.features[~changed], start[~changed])
    assert torch.isfinite(torch.tensor(out.stages[0].history[0]["loss"]))


def test_npsoftmax_bank_row_is_the_normalised_momentum_average():
    from ssml_lib.losses import npsoftmax_loss  # noqa: F401 - the loss the method uses

    cls = METHODS["npsoftmax"]
    model = build_model("convnet4", pooling="avg", head="linear", embedding_size=8)
    method = cls(model, cls.Config(memory_momentum=0.5), train_transform=None, test_transform=None)
    method.memory = FeatureMemory(4, 8, init="uniform", generator=torch.Generator().manual_seed(1))
    old = method.memory.features.clone()
    f = F.normalize(torch.randn(2, 8), dim=1)
    method._pending = (torch.tensor([1, 3]), f)
    method.on_after_step(0, None)
    assert torch.allclose(method.memory.features[[1, 3]], F.normalize(0.5 * old[[1, 3]] + 0.5 * f, dim=1))
    assert torch.equal(method.memory.features[[0, 2]], old[[0, 2]]) and method._pending is None


@pytest.mark.parametrize("mining", ["all", "hard"])
def test_triplet_trains_with_either_mining(cifar, tmp_path, mining):
    out = run("triplet", cifar, tmp_path, {"triplet_mining": mining})
    assert out.method.cfg.triplet_mining == mining
    assert torch.isfinite(torch.tensor(out.stages[0].history[0]["loss"]))


def test_triplet_switch_names_only_the_mining_and_bad_values_are_refused():
    a, b = method_config("triplet", {}), method_config("triplet", {"triplet_mining": "hard"})
    assert {k: v for k, v in vars(a).items() if k != "triplet_mining"} == \
        {k: v for k, v in vars(b).items() if k != "triplet_mining"}
    with pytest.raises(ConfigError):
        method_config("triplet", {"triplet_mining": "semihard"})
    with pytest.raises(ConfigError, match="margin"):
        method_config("triplet", {"margin": 0.0})
    with pytest.raises(ConfigError, match="memory_momentum"):
        method_config("npsoftmax", {"memory_momentum": 1.0})


class Killed(RuntimeError):
    pass


def test_npsoftmax_resumes_exactly_with_its_memory_bank(cifar, tmp_path, monkeypatch):
    """Killed inside the second epoch and resumed: the same log and the same bank as the uninterrupted run."""
    settings = dict(epochs=2, max_steps=None, batch_size=40, deterministic=True, checkpoint_every_steps=1)
    whole = run("npsoftmax", cifar, tmp_path / "whole", **settings)
    cls, calls = METHODS["npsoftmax"], {"n": 0}
    original = cls.training_step

    def dying_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # the second step of epoch 2 (3 steps an epoch)
            raise Killed("simulated kill")
        return original(self, batch)

    monkeypatch.setattr(cls, "training_step", dying_step)
    with pytest.raises(Killed):
        run("npsoftmax", cifar, tmp_path / "killed", **settings)
    monkeypatch.setattr(cls, "training_step", original)
    resumed = run("npsoftmax", cifar, tmp_path / "killed", **settings)
    untimed = [[{k: v for k, v in r.items() if k in ("epoch", "step", "loss", "lr")} for r in m.stages[0].history]
               for m in (whole, resumed)]
    assert untimed[0] == untimed[1]
    torch.testing.assert_close(whole.method.memory.features, resumed.method.memory.features, rtol=0, atol=0)


def test_nce_fixes_its_normaliser_once_and_keeps_it(cifar, tmp_path):
    out = run("nce", cifar, tmp_path, {"nce_k": 32}, max_steps=2)
    z = float(out.method.nce_z)
    assert z > 0 and "nce_z" in out.method.state_dict()
    assert int((out.method.memory.features.norm(dim=1) - 1).abs().lt(1e-5).sum()) == 32  # two steps of 16
    with pytest.raises(ConfigError, match="nce_k"):
        method_config("nce", {"nce_k": 0})
