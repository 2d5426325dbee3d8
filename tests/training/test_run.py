"""Runs: twins, determinism, probe-free equivalence, divergence, pause/step, priority."""

import math
import sys
import threading
import time

import pytest
import torch
from torch.nn import functional as F

from bnviz.config import ExperimentConfig
from bnviz.table import record
from bnviz.training import data
from bnviz.training.model import build_twins, init_linears
from bnviz.training.run import Run

from ..helpers import TINY, wait_for
from ..helpers import finished_run as finished


def weights(run):
    return {t: {k: v.clone() for k, v in net.state_dict().items()} for t, net in run.nets.items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for t in a:
        for k in a[t]:
            assert torch.equal(a[t][k], b[t][k]), (t, k)


def test_plain_variant_matches_an_independent_pytorch_loop():
    """The 'none' twin equals a hand-written loop: same init rule, same seeded batches, plain SGD."""
    cfg = TINY.replace(variants=("none", "bn"))
    run = finished(cfg)
    ds = data.load(cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the run's thread: the same summation order, hence the same bits
    net = torch.nn.Sequential(torch.nn.Linear(ds.n_inputs, 16), torch.nn.Sigmoid(), torch.nn.Linear(16, 12),
                              torch.nn.Sigmoid(), torch.nn.Linear(12, ds.n_outputs))
    init_linears([net[0], net[2], net[4]], torch.Generator().manual_seed(cfg.seed))
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    perm, pos = torch.empty(0, dtype=torch.int64), 0
    for _ in range(cfg.steps):
        if pos + cfg.batch > len(perm):
            perm, pos = torch.randperm(len(ds.x_train), generator=gen), 0
        idx = perm[pos:pos + cfg.batch]
        pos += cfg.batch
        loss = F.cross_entropy(net(ds.x_train[idx]), ds.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    mine = run.nets["none"]
    for a, b in zip(mine.linears(), [net[0], net[2], net[4]]):
        assert torch.equal(a.weight, b.weight)


def test_same_seed_same_run_bit_identical():
    a, b = finished(TINY), finished(TINY)
    assert_same_weights(weights(a), weights(b))
    ta, tb = record.to_table(a.history.snapshots()), record.to_table(b.history.snapshots())
    assert len(ta) > 1000
    assert ta.equals(tb)


def test_different_seed_different_run():
    a, b = finished(TINY), finished(TINY.replace(seed=1))
    assert not torch.equal(a.nets["none"].layers[0].linear.weight, b.nets["none"].layers[0].linear.weight)


@pytest.mark.slow
@pytest.mark.parametrize("base", [
    TINY, TINY.replace(architecture="conv", widths=(4, 3), steps=30, probe_size=16),
    TINY.replace(variants=("bn_gauss", "bn_uniform@after", "bn_laplace")),
    TINY.replace(variants=("bn_gauss", "bn_laplace@after"), architecture="conv", widths=(4, 3), steps=30,
                 probe_size=16)], ids=["mlp", "conv", "mlp-shapes", "conv-shapes"])
def test_snapshot_cadence_does_not_change_training(base):
    every_step = finished(base.replace(snapshot_every=1, ics_every=1))
    once = finished(base.replace(snapshot_every=base.steps, ics_every=0))
    assert len(every_step.history) == base.steps + 1 and len(once.history) == 2
    # every step but the last probed the gradient shift and the smoothness along the gradient too
    assert all(v.smooth is not None for s in every_step.history.snapshots()[:-1] for v in s.variants.values())
    assert_same_weights(weights(every_step), weights(once))
    for t in once.nets:  # running statistics (BN's moments, a shape variant's quantiles) are state too
        for la, lb in zip(every_step.nets[t].layers, once.nets[t].layers):
            if la.norm is not None:
                buffers = dict(lb.norm.named_buffers())
                for name, buf in la.norm.named_buffers():
                    assert torch.equal(buf, buffers[name]), (t, name)


def test_first_and_final_steps_recorded():
    run = finished(TINY.replace(steps=55))
    assert run.history.steps()[0] == 0 and run.history.steps()[-1] == 55


def test_divergence_is_a_state_and_the_others_go_on():
    cfg = ExperimentConfig(widths=(32, 32), activation="identity", variants=("none", "bn"), lr=3.0,
                           steps=40, snapshot_every=10, probe_size=64, optimizer="sgd")
    run = finished(cfg)
    assert run.status["none"].state == "diverged"
    assert isinstance(run.status["none"].step, int) and 1 <= run.status["none"].step <= 40
    assert run.status["bn"].state == "training"
    last = run.history.latest()
    assert last.step == 40
    assert last.variants["none"].diverged_at == run.status["none"].step
    assert last.variants["none"].layers == ()
    assert math.isfinite(last.variants["bn"].test_accuracy)
    table = record.to_table(run.history.snapshots())
    assert set(table[table.stat == "diverged_at"].value) == {run.status["none"].step}


def test_batch_of_one_refuses_bn_but_trains_the_rest():
    cfg = TINY.replace(batch=1, steps=10, variants=("none", "bn"))
    run = finished(cfg)
    assert run.status["bn"].state == "refused" and "at least 2" in run.status["bn"].message
    assert run.status["none"].state == "training"
    assert torch.equal(run.nets["bn"].layers[0].linear.weight, build_twins(
        cfg, run.data.n_inputs, run.data.n_outputs)["bn"].layers[0].linear.weight)  # never trained


@pytest.mark.slow
def test_pause_holds_and_single_step_advances():
    run = Run(TINY.replace(steps=10_000, snapshot_every=50), stats_in="inline").start(paused=True)
    try:
        time.sleep(0.5)
        assert run.step == 0 and run.state == "paused"
        run.step_once(3)
        deadline = time.time() + 10
        while run.step < 3 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        assert run.step == 3
        n = len(run.history)
        time.sleep(0.3)
        assert len(run.history) == n  # paused: no new snapshots
        run.resume()
        deadline = time.time() + 10
        while run.step < 200 and time.time() < deadline:
            time.sleep(0.02)
        assert run.step >= 200
    finally:
        run.stop()
    assert run.state == "stopped" and not run.alive


@pytest.mark.parametrize("preset_cfg", [
    ExperimentConfig(dataset="moons", widths=(8,), steps=20, snapshot_every=10, probe_size=32),
    ExperimentConfig(dataset="features", input_dist="student-t", widths=(8, 8), activation="relu",
                     variants=("bn@after", "ln"), steps=20, snapshot_every=10, probe_size=32, optimizer="adam",
                     lr=0.01),
])
def test_other_datasets_and_variants_train(preset_cfg):
    run = finished(preset_cfg)
    assert run.history.latest().step == 20


def _nice_of(path: str) -> int:
    """Field 19 of /proc/.../stat: the nice value (after the command name, which may hold spaces)."""
    with open(path) as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_nice_run_records_step_0_at_the_callers_priority_then_lowers_itself():
    import os

    own = os.getpriority(os.PRIO_PROCESS, 0)
    run = Run(TINY, stats_in="inline", nice=5)
    seen = []  # (step, nice of the thread that delivered it): inline, that is the training thread
    append = run.history.append

    def record(snap):
        seen.append((snap.step, _nice_of(f"/proc/self/task/{threading.get_native_id()}/stat")))
        append(snap)

    run.history.append = record
    run.start()
    assert run.join(timeout=60) and run.state == "finished"
    assert seen[0] == (0, own)  # a page that opens waits for step 0: it comes at the page's priority
    assert len(seen) >= 3 and all(n == min(19, own + 5) for _, n in seen[1:])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_nice_run_lowers_its_training_thread_and_worker_only():
    import os

    own = os.getpriority(os.PRIO_PROCESS, 0)
    run = Run(TINY.replace(steps=1_000_000), stats_in="process", steps_per_second=200, nice=5).start()
    try:
        assert wait_for(lambda: len(run.history) >= 2, timeout=60)
        tid = run._thread.native_id
        assert _nice_of(f"/proc/self/task/{tid}/stat") == min(19, own + 5)
        assert _nice_of(f"/proc/{run._sink._proc.pid}/stat") == min(19, own + 5)  # the worker too, from its start
        assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the server's own threads keep theirs
        assert _nice_of(f"/proc/self/task/{threading.get_native_id()}/stat") == own
    finally:
        run.stop()
