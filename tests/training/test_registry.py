"""The registry: one run per config shared by its viewers, a cap that queues, eviction, release."""

import time

import pytest

from bnviz.config import ExperimentConfig
from bnviz.table import record
from bnviz.training.registry import Registry

from ..helpers import wait_for

CFG = ExperimentConfig(widths=(8,), steps=100_000, snapshot_every=50, probe_size=32, ics_every=0)


@pytest.fixture
def registry():
    reg = Registry(max_running=2, stats_in="inline", steps_per_second=200)
    yield reg
    reg.stop_all()


def test_same_config_shares_one_run_and_different_configs_do_not(registry):
    a, b, c = registry.lease(), registry.lease(), registry.lease()
    ra, rb = a.view(CFG), b.view(CFG)
    rc = c.view(CFG.replace(seed=1))
    assert ra is rb and rc is not ra
    assert registry.viewers(CFG) == 2 and not a.sole_viewer()
    assert registry.started == 2 and len(registry) == 2


def test_cap_queues_and_starts_in_order_when_a_slot_frees(registry):
    leases = [registry.lease() for _ in range(3)]
    runs = [lease.view(CFG.replace(seed=i)) for i, lease in enumerate(leases)]
    assert wait_for(lambda: runs[0].alive and runs[1].alive)
    assert runs[2].state == "ready" and registry.queue_position(CFG.replace(seed=2)) == 1
    leases[0].close()  # its only viewer leaves: the training stops and frees its slot
    assert wait_for(lambda: not runs[0].alive)
    registry.tick()
    assert wait_for(lambda: runs[2].alive)
    assert runs[0].state == "stopped" and registry.queue_position(CFG.replace(seed=2)) is None


def test_last_viewer_leaving_stops_the_training(registry):
    a, b = registry.lease(), registry.lease()
    run = a.view(CFG)
    b.view(CFG)
    assert wait_for(lambda: run.step > 0)
    a.close()
    assert run.alive  # b still watches
    b.close()
    assert wait_for(lambda: not run.alive)
    assert len(registry) == 0


def test_switching_config_releases_the_previous_run(registry):
    a = registry.lease()
    first = a.view(CFG)
    second = a.view(CFG.replace(seed=5))
    assert wait_for(lambda: not first.alive) and second is not first
    assert registry.viewers(CFG) == 0


def test_eviction_frees_memory_of_unwatched_finished_runs():
    reg = Registry(max_running=2, stats_in="inline", memory_budget=1)  # any finished history is over budget
    try:
        short = CFG.replace(steps=60, snapshot_every=10)
        lease = reg.lease()
        run = lease.view(short)
        assert wait_for(lambda: run.state == "finished")
        assert reg.memory() > 0
        lease.view(short.replace(seed=9))  # stop watching the finished run
        assert reg.viewers(short) == 0
        reg.tick()
        assert short not in reg._entries  # evicted: least recently viewed, finished, unwatched
    finally:
        reg.stop_all()


@pytest.mark.slow
def test_restart_gives_a_fresh_identical_run(registry):
    short = CFG.replace(steps=60, snapshot_every=10)
    lease = registry.lease()
    run = lease.view(short)
    assert wait_for(lambda: run.state == "finished")
    again = lease.restart()
    assert again is not run
    assert wait_for(lambda: again.state == "finished")
    assert record.to_table(again.history.snapshots()).equals(record.to_table(run.history.snapshots()))


@pytest.mark.slow
def test_a_silent_viewer_is_released_by_the_heartbeat_fallback():
    reg = Registry(max_running=2, stats_in="inline", steps_per_second=200, heartbeat_timeout=0.6)
    try:
        quiet, alive = reg.lease(), reg.lease()
        run_q, run_a = quiet.view(CFG), alive.view(CFG.replace(seed=1))
        for _ in range(8):  # one viewer keeps touching, the other never does (its release was lost)
            alive.touch()
            time.sleep(0.15)
        # the reaper thread, not a page refresh, found the silent viewer: its training stopped
        assert wait_for(lambda: not run_q.alive, timeout=5) and run_q.state == "stopped"
        assert reg.viewers(CFG) == 0 and run_a.alive and reg.viewers(CFG.replace(seed=1)) == 1
        again = quiet.view(CFG)  # the tab comes back: it watches the same config, trained again
        assert again is not run_q and again.config == run_q.config and reg.viewers(CFG) == 1
        reaper = reg._reaper
    finally:
        reg.stop_all()
    assert wait_for(lambda: not reaper.is_alive(), timeout=15)  # no thread left behind


@pytest.mark.slow
def test_a_stopped_training_holds_its_slot_until_it_has_ended(monkeypatch):
    """Regression (seen in the load benchmark: three workers alive with a cap of two): a released run was
    dropped from the count at once, while its thread and worker were still ending, so a new training started
    beside it. The cap counts trainings that still use the machine."""
    from bnviz.training import run as run_mod

    ending = run_mod.Run._main

    def slow_to_end(self):
        ending(self)
        time.sleep(1.5)  # e.g. a worker process that takes a while to exit

    monkeypatch.setattr(run_mod.Run, "_main", slow_to_end)
    reg = Registry(max_running=1, stats_in="inline", steps_per_second=200)
    try:
        a, b = reg.lease(), reg.lease()
        ra = a.view(CFG)
        assert wait_for(lambda: ra.step > 0)
        a.close()
        rb = b.view(CFG.replace(seed=1))
        assert ra.alive and rb.state == "ready" and reg.running() == 1
        assert reg.queue_position(CFG.replace(seed=1)) == 1
        assert wait_for(lambda: not ra.alive)
        reg.tick()
        assert wait_for(lambda: rb.alive) and reg.running() == 1
    finally:
        reg.stop_all()


def test_runs_let_go_of_are_handed_to_on_drop_and_watched_ones_are_not():
    dropped = []
    reg = Registry(max_running=2, stats_in="inline", steps_per_second=200, on_drop=dropped.append)
    try:
        a, b = reg.lease(), reg.lease()
        ra = a.view(CFG)
        rb = b.view(CFG.replace(seed=1))
        assert wait_for(lambda: ra.step > 0 and rb.step > 0)
        a.close()  # its last viewer left: dropped
        assert dropped == [ra]
        old = rb
        b.restart()  # thrown away and started again: the old run is dropped, the new one is not
        assert dropped == [ra, old] and reg._entries[CFG.replace(seed=1)].run is not old
    finally:
        reg.stop_all()
