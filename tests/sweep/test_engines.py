"""The local engine of a sweep: every run stored as a run trained directly would be, a rerun trains nothing, and a
run that fails, diverges, or meets a full disk or a corrupt file is dealt with while the others go on."""

import errno
import os

import pytest

from bnviz.config import PRESETS
from bnviz.sweep import engines, jobs, parse_grid, run
from bnviz.sweep.train import Result, train
from bnviz.table.store import RunStore, StoreError

from ..helpers import finished
from ..table.tables import assert_same_snapshot

TINY = ["steps=20", "every=10"]  # ioffe's network, 3 snapshots: about a second a run


def tiny_jobs(*specs):
    return jobs("ioffe", PRESETS["ioffe"].config, parse_grid([*TINY, *specs]))


def inline(queries, workers, deliver, fn=None):
    """The local engine without its processes: each run trained here, one after another (so that monkeypatches
    reach the training)."""
    for i, query in queries:
        deliver(i, train(query))


@pytest.fixture
def in_process(monkeypatch):
    monkeypatch.setattr(engines, "_local", inline)


def no_training(*args, **kw):
    raise AssertionError("the engine was asked to train")


@pytest.mark.slow
def test_a_sweep_stores_every_run_as_a_run_trained_directly(tmp_path):
    todo = tiny_jobs("seed=0-3")
    store = RunStore(tmp_path)
    heard, started = [], []
    out = run(todo, store, workers=2, on_outcome=heard.append, on_start=lambda *a: started.append(a))
    assert started == [(0, 4, 2)]
    assert [o.state for o in out] == ["stored"] * 4 and [o.job for o in out] == todo
    assert sorted(o.job.label for o in heard) == sorted(j.label for j in todo)
    assert all(o.seconds > 0 and o.error is None and not o.diverged for o in out)
    for job in todo:
        got = store.get(job.config)
        want = finished(job.config)  # a Run with its statistics inline: not the sweep's path
        assert got is not None and got.config == job.config
        assert [s.step for s in got.snapshots] == [s.step for s in want] == [0, 10, 20]
        for g, w in zip(got.snapshots, want, strict=True):
            assert_same_snapshot(g, w, hists=False, ics_rel=1e-12)
    assert store.skipped == []

    heard.clear()
    started.clear()
    again = run(todo, store, on_outcome=heard.append, on_start=lambda *a: started.append(a))
    assert [o.state for o in again] == ["skipped"] * 4 and all(o.seconds == 0 for o in again)
    assert started == [(4, 0, 1)] and len(heard) == 4


@pytest.mark.slow
def test_a_rerun_of_stored_runs_trains_nothing(tmp_path, in_process, monkeypatch):
    todo = tiny_jobs("seed=5")
    store = RunStore(tmp_path)
    assert [o.state for o in run(todo, store)] == ["stored"]
    monkeypatch.setattr(engines, "_local", no_training)
    assert [o.state for o in run(todo, store)] == ["skipped"]


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, in_process, monkeypatch):
    from bnviz.training.run import Run

    setup = Run._setup

    def fails_for_seed_1(self):
        if self.config.seed == 1:
            raise RuntimeError("no memory left for the weights\nsecond line")
        setup(self)

    monkeypatch.setattr(Run, "_setup", fails_for_seed_1)
    todo = tiny_jobs("seed=0-2")
    store = RunStore(tmp_path)
    out = run(todo, store)
    assert [o.state for o in out] == ["stored", "failed", "stored"]
    assert out[1].error == "RuntimeError: no memory left for the weights"
    assert store.failure(todo[1].config) == out[1].error
    assert store.get(todo[1].config) is None and store.failure(todo[0].config) is None

    monkeypatch.setattr(Run, "_setup", setup)  # a rerun retries the failed run alone
    again = run(todo, store)
    assert [o.state for o in again] == ["skipped", "stored", "skipped"]
    assert store.failure(todo[1].config) is None and store.get(todo[1].config) is not None


@pytest.mark.slow
def test_a_diverging_run_is_stored_with_where_it_diverged(tmp_path, in_process):
    todo = tiny_jobs("activation=relu", "lr=0.1,1000")
    store = RunStore(tmp_path)
    calm, wild = run(todo, store)
    assert calm.state == wild.state == "stored" and calm.diverged == {}
    assert set(wild.diverged) == {"none", "bn"} and all(1 <= s <= 20 for s in wild.diverged.values())
    replay = store.get(wild.job.config)
    assert replay is not None
    last = replay.snapshots[-1]
    assert {t: v.diverged_at for t, v in last.variants.items()} == wild.diverged


@pytest.mark.slow
def test_a_full_disk_stops_the_sweep_with_the_runs_stored_so_far_kept(tmp_path, in_process, monkeypatch):
    store = RunStore(tmp_path / "runs")
    write, calls = RunStore._write, []

    def full_after_one(self, path, data):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(self, path, data)

    monkeypatch.setattr(RunStore, "_write", full_after_one)
    todo = tiny_jobs("seed=0-2")
    with pytest.raises(StoreError) as err:
        run(todo, store)
    assert str(err.value) == f"could not store the run in {tmp_path / 'runs'}: No space left on device"
    monkeypatch.setattr(RunStore, "_write", write)
    assert store.get(todo[0].config) is not None and store.get(todo[1].config) is None
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [store.path(todo[0].config).name]  # no partial file


@pytest.mark.slow
def test_a_corrupt_file_in_the_store_is_named_and_trained_again(tmp_path, in_process):
    todo = tiny_jobs("seed=7")
    store = RunStore(tmp_path)
    tmp_path.joinpath(store.path(todo[0].config).name).write_bytes(b"PAR1 half a table")
    (out,) = run(todo, store)
    assert out.state == "stored"
    assert store.skipped == [f"Skipped {store.path(todo[0].config).name} in the store of runs: it cannot be read "
                             f"({store.skipped[0].split('(', 1)[1]}"]
    assert store.get(todo[0].config) is not None


def dies_on_seed_1(query):
    """A worker's function that kills its process for seed 1 (as the kernel's OOM killer would)."""
    if "seed=1&" in query:
        os._exit(9)
    return Result("finished", 0.1, data=b"table of " + query.encode())


@pytest.mark.slow
def test_a_worker_that_dies_fails_only_the_runs_in_flight(tmp_path):
    got = {}
    queries = [(i, f"preset=ioffe&seed={i}&steps=5") for i in range(4)]
    engines._local(queries, 1, lambda i, r: got.__setitem__(i, r), fn=dies_on_seed_1)
    assert sorted(got) == [0, 1, 2, 3]
    assert got[1].state == "failed" and got[1].error == engines.DIED
    assert [got[i].data for i in (0, 2, 3)] == [b"table of " + q.encode() for i, q in queries if i != 1]


def test_unknown_engine_and_bad_workers_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown engine 'spark'; choose one of: local, ray"):
        run([], RunStore(tmp_path), engine="spark")
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        run([], RunStore(tmp_path), workers=0)
    with pytest.raises(ValueError, match="an address names a Ray cluster"):
        run([], RunStore(tmp_path), address="127.0.0.1:6379")
