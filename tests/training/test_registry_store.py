"""The registry with a store of finished runs: a run finished here is stored once, in the background; a link that
nobody here watches opens from the store with no training; replicas on one folder share their finished runs; a
corrupt file is named and the run trains; a full disk leaves the run in memory and no file."""

import errno
import logging
import os

import pytest

from bnviz import config as C
from bnviz.table import store as store_mod
from bnviz.table.replay import StoredRun
from bnviz.table.store import RunStore, run_key
from bnviz.training.registry import Registry
from bnviz.training.run import Run

from ..helpers import DIVERGES, wait_for
from ..table.tables import assert_same_snapshot

CFG = C.PRESETS["ioffe"].config.replace(steps=60, snapshot_every=20)  # the real network, 4 snapshots
LONG = CFG.replace(steps=100_000)


def registry_on(folder, **kw) -> Registry:
    return Registry(stats_in="inline", store=RunStore(folder), **kw)


@pytest.fixture
def registries():
    made: list[Registry] = []

    def make(folder, **kw):
        made.append(registry_on(folder, **kw))
        return made[-1]

    yield make
    for reg in made:
        reg.stop_all()


def finish(reg: Registry, cfg=CFG):
    """A lease watching the run of ``cfg`` in ``reg``, trained to its end and handed to the store."""
    lease = reg.lease()
    run = lease.view(cfg)
    assert run.join(timeout=120) and run.state == "finished", run.error
    assert reg.flush()
    return lease, run


@pytest.mark.slow
def test_a_finished_run_is_stored_under_its_key_and_a_replica_opens_it_without_training(registries, tmp_path):
    first = registries(tmp_path)
    _, live = finish(first)
    assert isinstance(live, Run) and first.started == 1
    assert os.listdir(tmp_path) == [f"{run_key(CFG)}.parquet"]  # whole, under its key; no temporary file

    second = registries(tmp_path)  # another server on the same folder
    a, b = second.lease(), second.lease()
    shown = a.view(CFG)
    assert b.view(CFG) is shown  # two viewers, one stored run
    assert isinstance(shown, StoredRun) and second.started == 0 and second.running() == 0
    assert shown.state == "finished" and not shown.alive and shown.join() and shown.config == CFG
    assert shown.step == live.step == 60
    want = live.history.snapshots()  # what the training's worker computed
    got = shown.history.snapshots()
    assert [s.step for s in got] == [s.step for s in want] == [0, 20, 40, 60]
    for g, w in zip(got, want):
        assert_same_snapshot(g, w, hists=False)
    assert {t: s.state for t, s in shown.status.items()} == {t: s.state for t, s in live.status.items()}


@pytest.mark.slow
def test_a_stored_run_does_nothing_on_the_transport_and_restart_trains_it_live(registries, tmp_path):
    finish(registries(tmp_path))
    reg = registries(tmp_path)
    lease = reg.lease()
    shown = lease.view(CFG)
    shown.pause(), shown.resume(), shown.step_once(5), shown.stop()
    assert shown.state == "finished" and shown.step == 60 and reg.started == 0
    again = lease.restart()
    assert isinstance(again, Run) and reg.started == 1 and lease.view(CFG) is again
    assert again.join(timeout=120) and again.state == "finished"
    assert [s.step for s in again.history.snapshots()] == [s.step for s in shown.history.snapshots()]


@pytest.mark.slow
def test_a_run_opened_from_the_store_is_not_stored_again(registries, tmp_path, monkeypatch):
    finish(registries(tmp_path))
    puts = []
    monkeypatch.setattr(RunStore, "put", lambda self, cfg, data: puts.append(cfg))
    reg = registries(tmp_path)
    assert isinstance(reg.lease().view(CFG), StoredRun)
    reg.tick()
    assert reg.flush() and puts == []


def test_a_run_whose_variant_diverged_is_stored_and_reopens_diverged(registries, tmp_path):
    _, live = finish(registries(tmp_path), DIVERGES)
    assert live.status["none"].state == "diverged"
    shown = registries(tmp_path).lease().view(DIVERGES)
    assert isinstance(shown, StoredRun) and shown.step == live.step
    assert shown.status["none"].state == "diverged" and shown.status["none"].step == live.status["none"].step
    assert shown.status["bn"].state == live.status["bn"].state == "training"


def test_a_stopped_run_is_not_stored(registries, tmp_path):
    reg = registries(tmp_path, steps_per_second=200)
    left, watched = reg.lease(), reg.lease()
    run = left.view(LONG)
    held = watched.view(LONG.replace(seed=1))
    assert wait_for(lambda: run.step > 0 and held.step > 0)
    left.close()  # its only viewer leaves: the training stops
    held.stop()  # stopped while still watched
    assert wait_for(lambda: not run.alive and not held.alive) and run.state == held.state == "stopped"
    reg.tick()
    assert reg.flush() and os.listdir(tmp_path) == []


@pytest.mark.slow
def test_a_corrupt_file_under_the_key_is_named_and_the_run_trains_and_replaces_it(registries, tmp_path):
    store = RunStore(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    store.path(CFG).write_bytes(b"PAR1 this is not a table PAR1")
    reg = registries(tmp_path)
    _, run = finish(reg)
    assert isinstance(run, Run) and reg.started == 1
    (note,) = [n for n in run.notes if "store of runs" in n]
    assert note.startswith(f"Skipped {run_key(CFG)}.parquet in the store of runs: it cannot be read (")
    assert note.endswith("The run trains here and replaces it when it finishes.")
    replaced = RunStore(tmp_path).get(CFG)  # the finished run's put replaced the corrupt file
    assert replaced is not None and [s.step for s in replaced.snapshots] == [0, 20, 40, 60]


@pytest.mark.slow
def test_a_full_disk_leaves_the_run_in_memory_and_no_file(registries, tmp_path, monkeypatch, caplog):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_mod.os, "fsync", full)
    reg = registries(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bnviz.training.registry"):
        lease, run = finish(reg)
    assert os.listdir(tmp_path) == []  # nothing partial
    assert f"could not store the run in {tmp_path}: {os.strerror(errno.ENOSPC)}" in caplog.text
    assert lease.view(CFG) is run and run.state == "finished" and len(run.history) == 4  # still shown from memory


@pytest.mark.slow
def test_a_stored_run_of_more_rows_than_a_page_reads_is_trained_instead_and_named(registries, tmp_path, monkeypatch):
    first = registries(tmp_path)
    finish(first)
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(RunStore(tmp_path).path(CFG)).metadata.num_rows
    monkeypatch.setattr("bnviz.training.registry.PAGE_ROWS", rows - 1)
    second = registries(tmp_path)
    run = second.lease().view(CFG)
    assert isinstance(run, Run) and second.started == 1  # trained: the stored table is not read
    (note,) = [n for n in run.notes if "store of runs" in n]
    assert note.startswith(f"Not opened {run_key(CFG)}.parquet from the store of runs: its table has {rows:,} rows, "
                           f"more than a page reads at once ({rows - 1:,}).")
    monkeypatch.setattr("bnviz.training.registry.PAGE_ROWS", rows)
    assert isinstance(registries(tmp_path).lease().view(CFG), StoredRun)  # at the limit: opened
