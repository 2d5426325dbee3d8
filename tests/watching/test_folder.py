"""The watcher writes a run folder that the reader follows: bnviz.watch with its default recorder
(table.parts.PartRecorder) in the worker process, read back with table.parts.open_run, also while the loop runs and
after it is killed."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

import bnviz

from ..helpers import wait_for
from .models import TinyResNet

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_run_folder_holds_every_snapshot_with_the_layer_names(tmp_path):
    from bnviz.table.parts import open_run

    torch.manual_seed(0)
    model = TinyResNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = tmp_path / "run"
    with bnviz.watch(model, torch.randn(6, 1, 8, 8), out, every=2) as rec:
        for _ in range(9):
            loss = model(torch.randn(8, 1, 8, 8)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss.item())
    follower = open_run(out)
    snaps = follower.poll()
    assert [s.step for s in snaps] == [0, 2, 4, 6, 8, 9]
    assert follower.finished and follower.skipped == []
    cfg = follower.config
    assert cfg.watched == rec.config.watched and cfg.steps == 9
    assert [cfg.layer_name(i) for i in range(3)] == ["bn", "layer1.0.bn1", "layer1.0.bn2"]
    assert all(len(s.variants["bn"].layers) == 3 for s in snaps)


LOOP = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {root!r})
    import bnviz
    from tests.watching.models import TinyResNet
    torch.manual_seed(0)
    model = TinyResNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with bnviz.watch(model, torch.randn(6, 1, 8, 8), {out!r}, every=1) as rec:
        for step in range(100000):
            loss = model(torch.randn(8, 1, 8, 8)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            rec.step(loss=loss.item())
            time.sleep(0.01)
""")


@pytest.mark.slow
def test_a_loop_killed_mid_run_leaves_every_finished_part_readable(tmp_path):
    from bnviz.table.parts import open_run

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", LOOP.format(root=str(ROOT), out=str(out))], cwd=ROOT,
                            start_new_session=True)
    try:
        assert wait_for(lambda: len(list(out.glob("part-*.parquet"))) >= 3, timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the loop and its statistics worker, at once
        proc.wait(timeout=30)
    time.sleep(0.2)
    follower = open_run(out)
    snaps = follower.poll()
    in_parts = sum(len(set(pq.read_table(p, columns=["step"]).column("step").to_pylist()))
                   for p in out.glob("part-*.parquet"))
    assert len(snaps) == in_parts >= 3 and follower.skipped == [] and not follower.finished
    steps = [s.step for s in snaps]
    assert steps == list(range(len(steps)))


UNCLOSED = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {root!r})
    import bnviz
    from tests.watching.models import TinyResNet
    model = TinyResNet()
    rec = bnviz.watch(model, torch.randn(6, 1, 8, 8), {out!r}, every=2)
    for step in range(5):
        model(torch.randn(8, 1, 8, 8))
        rec.step()
""")


@pytest.mark.slow
def test_a_script_that_never_closes_the_watcher_still_finishes_its_run(tmp_path):
    from bnviz.table.parts import open_run

    out = tmp_path / "run"
    script = UNCLOSED.format(root=str(ROOT), out=str(out))
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=300)
    follower = open_run(out)
    assert [s.step for s in follower.poll()] == [0, 2, 4, 5] and follower.finished
