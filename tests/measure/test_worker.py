"""The statistics worker: the same statistics in a process as inline, weights across the pipe, failures
reported to the run, and a worker that stops, dies or loses its owner leaves no process, thread or file
descriptor behind."""

import math
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from bnviz.config import PRESETS
from bnviz.table import record
from bnviz.table.record import TableFile, TableRecorder
from bnviz.training import data
from bnviz.training.model import build_twins
from bnviz.training.run import Run

from ..helpers import TINY, wait_for
from ..helpers import finished_run as finished


def test_process_worker_gives_the_same_statistics_as_inline():
    inline = finished(TINY, stats_in="inline")
    proc = finished(TINY, stats_in="process")
    assert proc.history.steps() == inline.history.steps()
    assert record.to_table(proc.history.snapshots()).equals(record.to_table(inline.history.snapshots()))


@pytest.mark.parametrize("stats_in", ["inline", "process"])
def test_a_table_that_cannot_be_written_fails_the_run_with_a_message(stats_in, tmp_path):
    run = Run(TINY.replace(steps=20), stats_in=stats_in,
              table=TableFile(str(tmp_path / "gone" / "t.parquet"))).start()
    assert run.join(timeout=120)
    assert run.state == "failed" and "could not write" in run.error and "gone" in run.error
    assert run.written is None


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
    worker._send_snapshot(sender,
                          probe.WeightSnapshot(41, {"none": probe.WeightVariant(1.0, None, flat["none"], None)}))
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_statistics_worker_imports_neither_torch_nor_scikit_learn_nor_scipy_stats():
    code = ("import sys\n"
            "from bnviz import stats\nfrom bnviz.measure import worker\n"
            "import numpy as np\n"
            "x = np.sort(np.random.default_rng(0).standard_normal((3, 512)), axis=1)\n"
            "w, p = stats._shapiro_sorted(x, x[:, 256])\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn', 'pandas', 'streamlit')"
            " or (m.startswith('scipy.stats') and m != 'scipy.stats._ansari_swilk_statistics')]\n"
            "import scipy.stats\n"
            "ref = [scipy.stats.shapiro(r - r[256]) for r in x]\n"
            "assert all(wi == r.statistic and pi == r.pvalue for wi, pi, r in zip(w, p, ref)), (w, p, ref)\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ------------------------------------------------------------------------------------------------- stopping and dying

@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
