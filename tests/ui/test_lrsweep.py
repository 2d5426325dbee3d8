"""The page's learning-rate sweep: its job trains only the runs the store lacks, one at a time through the registry,
stores each, and the figure shows each point once its run is stored; the Learning rates panel in AppTest."""

import threading
import time

import pytest

from bnviz.config import PRESETS
from bnviz.present import figures, lrrange
from bnviz.table.store import RunStore, run_bytes
from bnviz.training.registry import Registry
from bnviz.ui import lrsweep

from .pages import open_page

TINY = dict(steps=20, snapshot_every=10)


@pytest.fixture(scope="module")
def tiny(small_run):
    """A real run of none and bn (the session's small run): its table stands in for every run of a sweep."""
    return small_run.config, small_run.history.snapshots()


class FakeRun:
    """A run that waits one look in the queue, trains for two, then has finished; its snapshots are a real run's."""

    def __init__(self, cfg, snaps, registry):
        self.config, self.snaps, self.registry, self.looks = cfg, snaps, registry, 0
        self.history = self
        self.step = 0

    def snapshots(self):
        return self.snaps

    @property
    def state(self):
        self.looks += 1
        state = "ready" if self.looks == 1 else "running" if self.looks <= 3 else "finished"
        with self.registry.lock:
            self.registry.running.discard(self) if state == "finished" else self.registry.running.add(self)
            self.registry.most = max(self.registry.most, len(self.registry.running))
        return state


class FakeRegistry:
    def __init__(self, snaps, store, seen):
        self.snaps, self.store, self.seen = snaps, store, seen
        self.viewed, self.running, self.most, self.lock = [], set(), 0, threading.Lock()
        self.cache = lrsweep.PointsCache()

    def lease(self):
        registry = self

        class Lease:
            def view(self, cfg):
                registry.viewed.append(cfg)
                registry.last = cfg
                registry.seen.append(len(registry.store_points()))  # what the figure shows as this run starts
                return FakeRun(cfg, registry.snaps, registry)

            def touch(self):
                pass

            def close(self):
                registry.closed = True

        return Lease()

    def queue_position(self, cfg):
        return 1

    def flush(self):  # as the Registry does: its finished run goes to the store
        self.store.put(self.last, run_bytes(self.last, self.snaps))

    def store_points(self):
        return self.cache.sweep(self.store, self.viewed[0])


@pytest.mark.slow
def test_the_job_trains_only_missing_rates_one_at_a_time_and_the_figure_grows(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(lrsweep, "POLL_SECONDS", 0.001)
    cfg, snaps = tiny
    store = RunStore(tmp_path)
    configs = lrrange.lr_configs(cfg)
    for c in (configs[2], configs[5]):  # two rates already stored
        store.put(c, run_bytes(c, snaps))
    seen: list[int] = []
    registry = FakeRegistry(snaps, store, seen)
    job = lrsweep.SweepJob(registry, store, cfg).start()
    job._thread.join(30)
    assert job.state == "done" and not job.errors
    missing = [c for i, c in enumerate(configs) if i not in (2, 5)]
    assert registry.viewed == missing  # in the grid's order, the stored ones skipped
    assert job.trained == [c.lr for c in missing]
    assert registry.most == 1 and registry.closed
    assert all(store.has(c) for c in configs)
    # each run starts once the one before it is stored: the figure has one rate more each time
    assert [n // len(cfg.variants) for n in seen] == list(range(2, 9))
    points = lrsweep.PointsCache().sweep(store, cfg)
    fig = figures.lr_range(points, cfg.variants, lr=cfg.lr)
    means = [t for t in fig.data if t.name.endswith("mean over training")]
    assert len(means) == 2 and all(list(t.x) == list(lrrange.LR_GRID) for t in means)
    assert job.progress().startswith("9 of 9 runs stored")


def test_the_points_cache_reads_a_stored_run_once_until_it_is_replaced(tiny, tmp_path):
    cfg, snaps = tiny
    store, cache = RunStore(tmp_path), lrsweep.PointsCache()
    assert cache.points(store, cfg) == ()
    store.put(cfg, run_bytes(cfg, snaps))
    first = cache.points(store, cfg)
    assert first == lrrange.run_points(snaps, cfg) and cache.reads == 1
    assert cache.points(store, cfg) is first and cache.reads == 1
    store.put(cfg, run_bytes(cfg, snaps))  # a new file renamed over it: read again
    assert cache.points(store, cfg) == first and cache.reads == 2


@pytest.mark.slow
def test_a_sweep_holds_one_training_slot_of_the_real_registry_and_a_second_start_joins_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BNVIZ_STATS_IN", "inline")
    cfg = PRESETS["lr-range"].config.replace(**TINY)
    store = RunStore(tmp_path)
    registry = Registry(max_running=2, stats_in="inline", store=store)
    sweeps = lrsweep.Sweeps(registry, store)
    most, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            most[0] = max(most[0], registry.running())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        job = sweeps.start(cfg)
        assert sweeps.start(cfg.replace(lr=3.0)) is job  # the same family: joined
        assert sweeps.job(cfg.replace(lr=0.3)) is job
        job._thread.join(120)
    finally:
        done.set()
        watcher.join()
        registry.stop_all()
    assert job.state == "done" and not job.errors, job.errors
    assert most[0] == 1
    assert all(store.has(c) for c in lrrange.lr_configs(cfg))
    assert sorted(job.trained) == list(lrrange.LR_GRID)
    again = sweeps.start(cfg)  # every run stored: nothing is trained
    again._thread.join(30)
    assert again is not job and again.trained == [] and again.state == "done"


# -------------------------------------------------------------------------------------------- the page

@pytest.fixture
def run_store():
    for resource in (lrsweep.cache, lrsweep.sweeps):
        resource.clear()
    yield lrsweep.store()  # the page's registry's, empty for each test (tests/ui/conftest.py)
    lrsweep.sweeps().stop_all()
    for resource in (lrsweep.cache, lrsweep.sweeps):
        resource.clear()


@pytest.mark.slow
def test_the_learning_rates_panel_shows_stored_points_and_sweeps_the_rest(run_store, tiny):
    snaps = tiny[1]
    cfg = PRESETS["lr-range"].config.replace(**TINY)  # the page's run
    stored = lrrange.lr_configs(cfg)[4]
    run_store.put(stored, run_bytes(stored, snaps))
    at = open_page({"preset": "lr-range", "panel": "lr-range", "steps": "20", "every": "10"})
    assert not at.exception, at.exception
    (fig,) = [c for c in at.get("plotly_chart") if "learning rate" in c.proto.spec]
    assert '"x":[0.1]' in fig.proto.spec.replace(" ", "")  # the one stored rate
    (button,) = [b for b in at.button if b.label == "Sweep the learning rate"]
    button.click().run()
    job = lrsweep.sweeps().job(cfg)
    assert job is not None
    job._thread.join(120)
    at.run()
    assert not at.exception, at.exception
    assert job.state == "done" and 0.1 not in job.trained and len(job.trained) == 8
    caption = " ".join(c.value for c in at.caption)
    assert "9 of 9 runs stored" in caption
    (fig,) = [c for c in at.get("plotly_chart") if "learning rate" in c.proto.spec]
    assert "trains well" in fig.proto.spec  # every rate stored: the title is C11's rule
    at.session_state["panel"] = "evidence"
    at.run()
    text = " ".join(str(m.value) for m in at.markdown)
    assert "**C11**" in text and "not measured" not in text.split("**C11**")[1].split("**")[0]
