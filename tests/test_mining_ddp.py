"""CPU gloo DDP: bank writes are gathered from every rank; samplers read rank / world size themselves."""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssml_lib.mining import FeatureMemory, NeighbourBatchSampler


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        bank = FeatureMemory(6, 2)
        idx = torch.tensor([rank, rank + 3])
        bank.write(idx, torch.full((2, 2), float(rank + 1)))
        table = torch.stack([torch.arange(8), (torch.arange(8) + 1) % 8], 1)
        sampler = NeighbourBatchSampler(table, 2, seed=0)  # num_replicas / rank from the process group
        torch.save({"bank": bank.features.clone(), "written": bank.written.clone(),
                    "batches": list(sampler), "rank": sampler.rank}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_gloo_bank_gather_and_sampler_split(tmp_path):
    world = 2
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    res = [torch.load(tmp_path / f"{r}.pt") for r in range(world)]
    want = torch.tensor([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
    for r in res:
        assert torch.equal(r["bank"], want)  # every rank holds both ranks' writes
        assert r["written"].tolist() == [True, True, False, True, True, False]
    assert [r["rank"] for r in res] == [0, 1]
    full = NeighbourBatchSampler(torch.stack([torch.arange(8), (torch.arange(8) + 1) % 8], 1), 2,
                                 seed=0, num_replicas=1, rank=0).global_batches(0).tolist()
    assert sorted(res[0]["batches"] + res[1]["batches"]) == sorted(full)
    assert len(res[0]["batches"]) == len(res[1]["batches"]) == 2
