"""Under torch.distributed, rank 0 watches and every other rank does nothing: two processes on gloo train a model
wrapped in DistributedDataParallel, watched in the plain way.

DistributedDataParallel refuses SyncBatchNorm on CPU modules ("SyncBatchNorm layers only work with GPU modules"), so
the model here has BatchNorm2d and GroupNorm; test_values.py checks what the watcher records of a SyncBatchNorm."""

import contextlib
import json
import pickle
import socket
import sys
import time
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as tmp
from torch import nn

import bnviz
from bnviz.table.parts import open_run

STEPS, EVERY = 5, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    return model


def _rank_main(rank: int, port: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = nn.parallel.DistributedDataParallel(_model())
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        gen = torch.Generator().manual_seed(10 + rank)
        probe = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
        out = f"{folder}/rank{rank}"
        with bnviz.watch(model, probe, out, every=EVERY) as rec:
            for _ in range(STEPS):
                loss = model(torch.randn(4, 1, 8, 8, generator=gen)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.step(loss=loss.item())
        params = [p.detach().clone() for p in model.parameters()]
        with open(f"{folder}/params{rank}.pkl", "wb") as f:
            pickle.dump(params, f)
        with open(f"{folder}/watcher{rank}.json", "w") as f:
            json.dump({"active": rec.active, "config": rec.config is not None}, f)
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def _empty_main():
    """spawn re-runs the parent's ``__main__`` in each child. After the page's AppTests in the same session that is
    app.py, which exits outside a Streamlit session, so the ranks start with an empty one (as measure.worker starts
    its worker)."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@pytest.mark.slow
def test_rank_zero_records_the_ddp_model_and_rank_one_does_nothing(tmp_path):
    with _empty_main():
        ctx = tmp.start_processes(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2, join=False,
                                  start_method="spawn")
    deadline = time.monotonic() + 240
    try:
        while not ctx.join(timeout=1):
            assert time.monotonic() < deadline, "the two ranks did not finish: a hang"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    assert json.loads((tmp_path / "watcher0.json").read_text()) == {"active": True, "config": True}
    assert json.loads((tmp_path / "watcher1.json").read_text()) == {"active": False, "config": False}
    assert not (tmp_path / "rank1").exists()
    run = open_run(tmp_path / "rank0")
    snaps, config = run.poll(), run.config
    assert run.finished and config.watched.names == ("1", "4") and config.watched.kinds == ("BatchNorm2d", "GroupNorm")
    assert [s.step for s in snaps] == [0, 2, 4, 5]
    assert all(len(s.variants["bn"].layers) == 2 for s in snaps)
    p0 = pickle.loads((tmp_path / "params0.pkl").read_bytes())
    p1 = pickle.loads((tmp_path / "params1.pkl").read_bytes())
    assert all(torch.equal(a, b) for a, b in zip(p0, p1))  # DDP kept the ranks in step
