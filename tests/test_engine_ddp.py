"""Two-process gloo DDP on CPU: gather_with_grad's values and gradients, and a DDP fit that agrees with a
single-process fit over the same global batches (mean-reduced losses, DDP gradient averaging)."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import TensorDataset

from ssml_lib.engine import TIMING_KEYS, TrainConfig, fit, gather_with_grad
from ssml_lib.engine.distributed import rank, world_size
from ssml_lib.methods.base import Method

WORLD = 2


def toy_data() -> TensorDataset:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(48, 6, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


class Classifier(Method):
    """Cross-entropy, mean over the local batch: DDP's averaging gives the global-batch mean."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch):
        x, y = batch
        return {"loss": nn.functional.cross_entropy(self(x), y)}


class InBatchContrastive(Classifier):
    """Each local anchor against every embedding of the global batch (needs gather_with_grad's gradient)."""

    def training_step(self, batch):
        x, _ = batch
        z = nn.functional.normalize(self(x), dim=1)
        everyone = gather_with_grad(z)
        own = torch.arange(len(z)) + rank() * len(z)  # this rank's rows inside the global batch
        logits = z @ everyone.T / 0.5 + 0.1 * x[:, :1]  # an input-dependent term keeps the positive non-trivial
        return {"loss": nn.functional.cross_entropy(logits, (own + 1) % len(everyone))}


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**dict(epochs=2, batch_size=16, lr=0.2, optimizer="sgd", momentum=0.9, weight_decay=1e-3,
                                 deterministic=True, log_every=2, device="cpu"), **kw})


def local_loss_for_gather(x_local: torch.Tensor) -> torch.Tensor:
    """A loss on rank r: its rows against all gathered rows, non-linear in both."""
    everyone = gather_with_grad(x_local)
    return torch.logsumexp(x_local @ everyone.T, dim=1).mean() + (everyone ** 3).sum() * 0.01


def gather_inputs() -> torch.Tensor:
    return torch.randn(WORLD * 3, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def worker(r: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=r, world_size=WORLD)
    try:
        full = gather_inputs()
        x = full[r * 3:(r + 1) * 3].clone().requires_grad_(True)
        gathered = gather_with_grad(x)
        loss = local_loss_for_gather(x)
        loss.backward()
        results = {"gathered": gathered.detach(), "grad": x.grad, "world": world_size()}
        for name, method_cls in (("classifier", Classifier), ("contrastive", InBatchContrastive)):
            torch.manual_seed(0)
            m = method_cls()
            res = fit(m, toy_data(), cfg(), os.path.join(out_dir, name))
            results[name] = {"state": m.state_dict(), "history": res.history}
        torch.save(results, os.path.join(out_dir, f"rank{r}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_gather_with_grad_values_and_gradients(ddp_results):
    _, ranks = ddp_results
    full = gather_inputs().requires_grad_(True)
    # single-process reference: the sum over ranks of each rank's loss, each rank owning 3 rows
    total = sum(torch.logsumexp(full[r * 3:(r + 1) * 3] @ full.T, dim=1).mean() + (full ** 3).sum() * 0.01
                for r in range(WORLD))
    total.backward()
    for r, res in enumerate(ranks):
        assert res["world"] == WORLD
        torch.testing.assert_close(res["gathered"], full.detach())
        torch.testing.assert_close(res["grad"], full.grad[r * 3:(r + 1) * 3])


@pytest.mark.parametrize("name,method_cls", [("classifier", Classifier), ("contrastive", InBatchContrastive)])
def test_ddp_fit_matches_single_process(ddp_results, tmp_path, name, method_cls):
    out, ranks = ddp_results
    torch.manual_seed(0)
    single = method_cls()
    ref = fit(single, toy_data(), cfg(), tmp_path)
    for r in range(WORLD):  # ranks stay in sync, and equal the single process on the same global batches
        for key, value in single.state_dict().items():
            torch.testing.assert_close(ranks[r][name]["state"][key], value, rtol=1e-5, atol=1e-6)
    ddp_losses = [h["loss"] for h in ranks[0][name]["history"]]
    assert ddp_losses == pytest.approx([h["loss"] for h in ref.history], rel=1e-5)
    assert set(ranks[0][name]["history"][0]) - set(TIMING_KEYS) == {"epoch", "step", "lr", "loss"}
    assert (out / name / "last.pt").exists() and (out / name / "log.jsonl").read_text().count("\n") == 2
