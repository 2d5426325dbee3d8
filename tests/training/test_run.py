"""Runs: twins, determinism, probe-free equivalence, divergence, pause/step, bounded history."""

import math
import sys
import threading
import time

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from bnviz.config import PRESETS, ExperimentConfig
from bnviz.measure.snapshot import Snapshot, VariantSnapshot
from bnviz.table import record
from bnviz.table.history import History
from bnviz.table.record import TableFile, TableRecorder
from bnviz.training import data
from bnviz.training.model import build_twins, init_linears
from bnviz.training.run import Run

from ..helpers import TINY, wait_for


def finished(cfg, **kw):
    run = Run(cfg, stats_in=kw.pop("stats_in", "inline"), **kw).start()
    assert run.join(timeout=120), "run did not finish"
    assert run.state == "finished", run.error
    return run


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


@pytest.mark.parametrize("base", [TINY, TINY.replace(architecture="conv", widths=(4, 3), steps=30, probe_size=16)],
                         ids=["mlp", "conv"])
def test_snapshot_cadence_does_not_change_training(base):
    every_step = finished(base.replace(snapshot_every=1, ics_every=1))
    once = finished(base.replace(snapshot_every=base.steps, ics_every=0))
    assert len(every_step.history) == base.steps + 1 and len(once.history) == 2
    assert_same_weights(weights(every_step), weights(once))
    for t in once.nets:  # BN running statistics are state too
        for la, lb in zip(every_step.nets[t].layers, once.nets[t].layers):
            if la.norm is not None:
                assert torch.equal(la.norm.running_mean, lb.norm.running_mean)


def test_process_worker_gives_the_same_statistics_as_inline():
    inline = finished(TINY, stats_in="inline")
    proc = finished(TINY, stats_in="process")
    assert proc.history.steps() == inline.history.steps()
    assert record.to_table(proc.history.snapshots()).equals(record.to_table(inline.history.snapshots()))


@pytest.mark.parametrize("stats_in", ["inline", "process"])
def test_a_table_recorded_where_the_statistics_are_made_is_the_historys_table(stats_in, tmp_path):
    """The record command's path: snapshots encoded one by one where they are made (thinned to the cap as a
    History thins them, the final step kept) and written when training ends, with nothing sent back. The file
    must hold exactly the table a History of the same run gives, and the share link as metadata."""
    import pandas as pd
    import pyarrow.parquet as pq

    cfg = TINY.replace(steps=95, snapshot_every=5)
    ref = finished(cfg, stats_in="inline", history_cap=4)
    assert ref.history.steps() == [0, 40, 80, 95]  # thinned to every 8th snapshot, plus the final step
    out = tmp_path / "t.parquet"
    run = finished(cfg, stats_in=stats_in, table=TableFile(str(out), query="preset=x", cap=4))
    assert run.written == 4 and len(run.history) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), record.to_table(ref.history.snapshots()))
    assert pq.read_schema(out).metadata[b"bnviz.query"] == b"preset=x"
    csv = tmp_path / "t.csv"
    finished(cfg, stats_in=stats_in, table=TableFile(str(csv), quantiles=True, cap=4))
    back = pd.read_csv(csv)
    want = record.to_table(ref.history.snapshots(), quantiles=True)
    assert len(back) == len(want) and (back.stat == want.stat.astype(str)).all()
    np.testing.assert_allclose(back.value, want.value, rtol=1e-15)


@pytest.mark.parametrize("stats_in", ["inline", "process"])
def test_a_table_that_cannot_be_written_fails_the_run_with_a_message(stats_in, tmp_path):
    run = Run(TINY.replace(steps=20), stats_in=stats_in,
              table=TableFile(str(tmp_path / "gone" / "t.parquet"))).start()
    assert run.join(timeout=120)
    assert run.state == "failed" and "could not write" in run.error and "gone" in run.error
    assert run.written is None


def test_a_failed_write_leaves_an_earlier_file_whole_and_no_partial_file(tmp_path, monkeypatch):
    from bnviz.table import record

    out = tmp_path / "t.parquet"
    out.write_bytes(b"yesterday's table")

    def disk_full(table, path, query=None):
        with open(path, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(record, "write_table", disk_full)
    run = Run(TINY.replace(steps=20), stats_in="inline", table=TableFile(str(out))).start()
    assert run.join(timeout=120)
    assert run.state == "failed" and "No space left on device" in run.error
    assert out.read_bytes() == b"yesterday's table" and sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_weights_cross_the_pipe_as_raw_bytes_and_arrive_whole_and_writable():
    """ProcessSink writes each variant's flat weights to the pipe from the array's own memory, after the
    snapshot's other fields; the worker reads them back into fresh, writable FlatStates. A variant that left
    training (no state) and a plain dict of arrays (pickled as before) pass through as they are."""
    import multiprocessing as mp

    from bnviz.measure import probe, worker
    from bnviz.training.model import StateCopier

    cfg = TINY
    ds = data.load(cfg)
    nets = build_twins(cfg, ds.n_inputs, ds.n_outputs)
    flat = {t: StateCopier(n).copy()[0] for t, n in nets.items()}
    plain = {k: v.numpy().copy() for k, v in nets["bn"].state_dict().items() if v.is_floating_point()}
    ws = probe.WeightSnapshot(40, {
        "none": probe.WeightVariant(0.5, None, flat["none"], np.arange(7)),
        "bn": probe.WeightVariant(0.25, None, plain, None),
        "bn_noisy": probe.WeightVariant(math.nan, 31, None, None),
    })
    receiver, sender = mp.Pipe(duplex=False)
    worker._send_snapshot(sender, ws)
    worker._send_snapshot(sender, probe.WeightSnapshot(41, {"none": probe.WeightVariant(1.0, None, flat["none"], None)}))
    got, nxt = worker._receive(receiver), worker._receive(receiver)
    assert got.step == 40 and nxt.step == 41 and not receiver.poll(0.1)  # nothing left over on the pipe
    none = got.variants["none"]
    assert isinstance(none.state, probe.FlatState) and none.loss == 0.5 and list(none.ics_batch) == list(range(7))
    assert sorted(none.state) == sorted(flat["none"])
    for k in flat["none"]:
        np.testing.assert_array_equal(none.state[k], flat["none"][k])
        assert none.state[k].dtype == flat["none"][k].dtype and none.state[k].flags.writeable
    assert not np.shares_memory(none.state.flat, nxt.variants["none"].state.flat)
    assert got.variants["bn"].state.keys() == plain.keys()
    for k in plain:
        np.testing.assert_array_equal(got.variants["bn"].state[k], plain[k])
    assert got.variants["bn_noisy"].state is None and got.variants["bn_noisy"].diverged_at == 31


def test_a_worker_that_cannot_summarize_a_snapshot_reports_it_and_writes_no_table(tmp_path, monkeypatch):
    """The worker's loop, run here in a thread: a snapshot whose statistics fail is reported to the run, and
    the table, which would miss it, is not written when the run closes."""
    import multiprocessing as mp

    from bnviz.measure import probe, worker
    from bnviz.training.model import StateCopier

    cfg = TINY.replace(variants=("none", "bn"))
    ds = data.load(cfg)
    copiers = {t: StateCopier(n) for t, n in build_twins(cfg, ds.n_inputs, ds.n_outputs).items()}

    def weights(step):
        return probe.WeightSnapshot(step, {t: probe.WeightVariant(1.0, None, c.copy()[0], None)
                                           for t, c in copiers.items()})

    real = worker.Summarizer.summarize

    def summarize(self, raw):
        if raw.step == 10:
            raise FloatingPointError("overflow in the probe")
        return real(self, raw)

    monkeypatch.setattr(worker.Summarizer, "summarize", summarize)
    out = tmp_path / "t.parquet"
    inbox_r, inbox_w = mp.Pipe(duplex=False)
    outbox_r, outbox_w = mp.Pipe(duplex=False)
    recorder = TableRecorder(cfg.snapshot_every, TableFile(str(out)))
    thread = threading.Thread(target=worker._serve, args=(cfg, inbox_r, outbox_w, False, recorder))
    thread.start()
    for item in (probe.Arrays.of(ds), weights(0), weights(10), weights(20), worker._STOP):
        inbox_w.send(item)
    thread.join(timeout=60)
    replies = []
    while outbox_r.poll(1):
        replies.append(outbox_r.recv())
    assert len(replies) == 2 and replies[1] is worker._STOP
    assert isinstance(replies[0], RuntimeError) and "step 10" in str(replies[0]) and "overflow" in str(replies[0])
    assert not out.exists() and list(tmp_path.iterdir()) == []


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


def _snap(step):
    return Snapshot(step, {"none": VariantSnapshot(0.0, 0.0, 0.0, None, ())}, nbytes=1000)


def test_history_stays_bounded_and_evenly_spaced():
    h = History(snapshot_every=5, cap=64)
    for k in range(10_000):
        h.append(_snap(5 * k))
        assert len(h) <= 65
    steps = np.array(h.steps())
    assert steps[0] == 0 and steps[-1] == 5 * 9_999
    grid = np.diff(steps[:-1])
    assert len(set(grid)) == 1  # evenly spaced (the latest may sit off the grid)
    assert h.nbytes() <= 65 * 1000


def test_history_of_a_long_real_run_is_bounded():
    run = finished(TINY.replace(steps=400, snapshot_every=1, ics_every=0, variants=("bn",)), history_cap=32)
    assert len(run.history) <= 33
    assert run.history.steps()[0] == 0 and run.history.steps()[-1] == 400


def test_readers_never_see_a_half_written_history():
    run = Run(TINY.replace(steps=150, snapshot_every=1, ics_every=0), stats_in="inline", history_cap=16).start()
    seen = 0
    while run.alive:
        snaps = run.history.snapshots()
        steps = [s.step for s in snaps]
        assert steps == sorted(steps) and all(isinstance(s, Snapshot) for s in snaps)
        seen += 1
        time.sleep(0.002)  # a reader that never yields the GIL would starve the training thread
    assert run.state == "finished" and seen > 0


@pytest.mark.parametrize("preset_cfg", [
    ExperimentConfig(dataset="moons", widths=(8,), steps=20, snapshot_every=10, probe_size=32),
    ExperimentConfig(dataset="features", input_dist="student-t", widths=(8, 8), activation="relu",
                     variants=("bn@after", "ln"), steps=20, snapshot_every=10, probe_size=32, optimizer="adam",
                     lr=0.01),
])
def test_other_datasets_and_variants_train(preset_cfg):
    run = finished(preset_cfg)
    assert run.history.latest().step == 20


def test_stopping_a_run_with_a_worker_process_is_a_stop_not_a_failure(caplog, monkeypatch):
    """The worker is terminated on purpose when a run stops (its last viewer left): no error, no warning."""
    import logging

    from bnviz.measure import worker

    close = worker.ProcessSink.close

    def close_then_linger(self, wait=True):  # give the collector time to notice the terminated worker
        close(self, wait)
        time.sleep(1.2)

    monkeypatch.setattr(worker.ProcessSink, "close", close_then_linger)
    caplog.set_level(logging.INFO)
    run = Run(TINY.replace(steps=1_000_000), stats_in="process", steps_per_second=200)
    run.start()
    assert wait_for(lambda run=run: len(run.history) >= 3, timeout=60)
    run.stop()
    assert run.state == "stopped" and run.error is None and not run.alive
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_worker_whose_server_died_exits_instead_of_holding_its_memory(tmp_path):
    """Kill -9 the process that owns a run: its statistics worker notices within seconds and exits."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from bnviz.config import PRESETS\nfrom bnviz.training.run import Run\n"
        "r = Run(PRESETS['ioffe'].config.replace(steps=1_000_000, widths=(8,)), stats_in='process', "
        "steps_per_second=50)\nr.start()\n"
        "while len(r.history) < 3: time.sleep(0.1)\nprint('ready', flush=True)\ntime.sleep(600)\n")
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "ready"
        children = Path(f"/proc/{owner.pid}/task").glob("*/children")
        workers = [int(c) for f in children for c in f.read_text().split()]
        workers = [w for w in workers if "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()]
        assert workers, "the run has a worker process"
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() and
                                         Path(f"/proc/{w}/stat").read_text().split()[2] != "Z" for w in workers):
        time.sleep(0.2)
    assert not any(Path(f"/proc/{w}").exists() and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"
                   for w in workers)


def _open_fds() -> list[str]:
    import gc
    import os

    gc.collect()  # descriptors of earlier tests' objects that are only waiting for the collector
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return out


def _feeders() -> list[threading.Thread]:
    """Threads that move snapshots to and from statistics workers (ours, and multiprocessing's)."""
    names = ("bnviz-send", "bnviz-collect", "QueueFeederThread")
    return [t for t in threading.enumerate() if t.name in names and t.is_alive()]


def test_stopping_a_run_mid_backlog_leaves_no_thread_or_file_descriptor_behind():
    """Regression (seen in the churn benchmark): a stop terminated the worker while a thread was writing a
    weight snapshot (229 kB, more than a pipe holds) to it; with nobody left to read, the writer blocked
    forever, holding a thread and the pipe's descriptors for every stopped training."""
    feeders_before, fds_after_first = len(_feeders()), None
    for i in range(4):
        # a snapshot every step: the worker falls behind at once, so the backlog is full when the run stops
        run = Run(PRESETS["ioffe"].config.replace(steps=1_000_000, snapshot_every=1), stats_in="process")
        run.start()
        assert wait_for(lambda run=run: len(run.history) >= 3, timeout=60)
        run.stop()
        assert run.state == "stopped" and not run.alive
        if i == 0:  # the first worker also starts multiprocessing's resource tracker (one pipe, kept)
            fds_after_first = _open_fds()
    deadline = time.time() + 10
    while len(_feeders()) > feeders_before and time.time() < deadline:
        time.sleep(0.1)
    assert len(_feeders()) == feeders_before
    fds = _open_fds()
    assert len(fds) <= len(fds_after_first), "\n".join(sorted(fds)) + " vs\n" + "\n".join(sorted(fds_after_first))


def test_a_worker_killed_mid_run_fails_the_run_with_a_message_instead_of_hanging():
    import os
    import signal

    run = Run(TINY.replace(steps=1_000_000), stats_in="process", steps_per_second=200).start()
    try:
        assert wait_for(lambda: len(run.history) >= 2, timeout=60)
        os.kill(run._sink._proc.pid, signal.SIGKILL)
        assert run.join(timeout=30), "the run noticed its dead worker and ended"
        assert run.state == "failed"
        assert "statistics worker exited (code -9)" in run.error
    finally:
        run.stop()
    assert not _feeders()


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
