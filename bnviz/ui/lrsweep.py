"""The page's learning-rate sweep: the current network trained at every rate of present/lrrange.LR_GRID, one run at
a time, through the server's registry, each finished run kept in the store of finished runs.

A sweep runs on a server-side thread, one per config family (the config with its learning rate left out), shared
by every viewer of that family: a second press joins the sweep already under way. It holds one registry lease, so
it never occupies more than one training slot, and waits in the registry's queue like any training. Runs already
in the store are not trained again. The figure reads the store through :class:`PointsCache`, which keeps only each
run's points (a few floats per variant), keyed by the stored file: its path, inode and size.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import streamlit as st

from bnviz.config import ExperimentConfig
from bnviz.present import lrrange
from bnviz.present.lrrange import LrPoint
from bnviz.table.store import PAGE_ROWS, RunStore, StoreError

from . import runtime

log = logging.getLogger(__name__)
ENDED = ("finished", "stopped", "failed")
POLL_SECONDS = 0.2  # how often the sweep's thread looks at the run it waits for


class PointsCache:
    """The points of stored runs, by file (path, inode, size): a file replaced by a new run (the store renames a
    new file over it) is read again. Not by modification time: the store touches a file it reads, to evict it
    last. Bounded: the least recently used entries go first."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, int], tuple[LrPoint, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # stored runs read from disk (the tests count them)

    def points(self, store: RunStore, cfg: ExperimentConfig) -> tuple[LrPoint, ...]:
        """The points of the stored run of ``cfg`` (empty when the store lacks it or cannot read it)."""
        path = Path(store.path(cfg))
        try:
            st = path.stat()
            key = (str(path), st.st_ino, st.st_size)
        except OSError:
            return ()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        replay = store.get(cfg, max_rows=PAGE_ROWS)
        if replay is None:
            return ()
        points = lrrange.run_points(tuple(replay.snapshots), cfg)  # the replay itself is dropped here
        with self._lock:
            self.reads += 1
            self._items[key] = points
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return points

    def sweep(self, store: RunStore, cfg: ExperimentConfig) -> tuple[LrPoint, ...]:
        """The points of every stored run of the sweep of ``cfg``."""
        return tuple(p for c in lrrange.lr_configs(cfg) for p in self.points(store, c))


class SweepJob:
    """The sweep of one config family: trains the runs the store lacks, one at a time, on its own thread."""

    def __init__(self, registry, store: RunStore, cfg: ExperimentConfig) -> None:
        self.registry, self.store = registry, store
        self.configs = lrrange.lr_configs(cfg)
        self.state = "ready"  # ready, running, done, failed
        self.current: ExperimentConfig | None = None
        self.run = None  # the registry's Run being waited for
        self.trained: list[float] = []  # the rates this job trained (the others were in the store)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="bnviz-lr-sweep")

    def start(self) -> SweepJob:
        self.state = "running"
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        lease = self.registry.lease()
        try:
            for cfg in self.configs:
                if self._stop.is_set():
                    break
                if self.store.has(cfg):
                    continue
                self.current = cfg
                self.run = run = lease.view(cfg)
                while run.state not in ENDED and not self._stop.is_set():
                    lease.touch()
                    time.sleep(POLL_SECONDS)
                if run.state == "finished":
                    self.trained.append(cfg.lr)
                    self.registry.flush()  # the registry stores the runs it finishes: the next point is drawn now
                    if not self.store.has(cfg):
                        self.errors.append(f"lr {cfg.lr:g}: the store did not keep its run (the server's log says "
                                           "why)")
                elif run.state == "failed":
                    self.errors.append(f"lr {cfg.lr:g}: {getattr(run, 'error', None) or 'the training failed'}")
                elif not self._stop.is_set():  # stopped by the server (shut down, or restarted by its viewer)
                    self.errors.append(f"lr {cfg.lr:g}: its training was stopped before the end")
            self.state = "done"
        except (StoreError, OSError) as exc:
            log.warning("learning-rate sweep: %s", exc)
            self.errors.append(f"the store could not keep a run: {exc}")
            self.state = "failed"
        except Exception as exc:  # a sweep's failure is shown on the page, never raised there
            log.warning("learning-rate sweep failed", exc_info=True)
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.state = "failed"
        finally:
            self.current, self.run = None, None
            lease.close()

    def progress(self) -> str:
        """'4 of 9 runs stored · training lr=0.3, step 1,200 of 3,000'."""
        stored = sum(self.store.has(c) for c in self.configs)
        text = f"{stored} of {len(self.configs)} runs stored"
        cfg, run = self.current, self.run
        if cfg is not None and run is not None:
            if run.state == "ready":
                place = self.registry.queue_position(cfg)
                text += f" · lr={cfg.lr:g} waits for a training slot" + (f" (place {place} in the queue)"
                                                                         if place else "")
            else:
                text += f" · training lr={cfg.lr:g}, step {run.step:,} of {cfg.steps:,}"
        if self.errors:
            text += " · " + "; ".join(self.errors)
        return text


class Sweeps:
    """The server's sweeps, one per config family."""

    def __init__(self, registry, store: RunStore) -> None:
        self.registry, self.store = registry, store
        self._jobs: dict[ExperimentConfig, SweepJob] = {}
        self._lock = threading.Lock()

    def job(self, cfg: ExperimentConfig) -> SweepJob | None:
        """The sweep of ``cfg``'s family, running or ended (None: never started on this server)."""
        with self._lock:
            return self._jobs.get(lrrange.family(cfg))

    def start(self, cfg: ExperimentConfig) -> SweepJob:
        """Start the sweep of ``cfg``'s family, or join the one under way."""
        key = lrrange.family(cfg)
        with self._lock:
            job = self._jobs.get(key)
            if job is None or not job.alive:
                job = self._jobs[key] = SweepJob(self.registry, self.store, cfg).start()
            return job

    def stop_all(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop()


def store() -> RunStore:
    """The page's store of finished runs: the registry's, where it stores the runs it finishes."""
    return runtime.registry().store or RunStore()


@st.cache_resource
def cache() -> PointsCache:
    return PointsCache()


@st.cache_resource
def sweeps() -> Sweeps:
    return Sweeps(runtime.registry(), store())


def points(cfg: ExperimentConfig) -> tuple[LrPoint, ...]:
    """The stored points of the sweep of ``cfg`` (none for a watched model, which bnviz cannot train)."""
    if cfg.watched is not None:
        return ()
    try:
        return cache().sweep(store(), cfg)
    except OSError as exc:  # an unreadable store folder: the figure says nothing is stored
        log.warning("learning-rate sweep: %s", exc)
        return ()
