"""Process-wide runs: one Run per configuration, a cap on trainings at once, eviction by memory.

A run is a pure function of its config, so every viewer of a link can watch the same Run: thirty
students on one link cost one training. Viewers hold a Lease (one per browser session); when the last
viewer of an unfinished run leaves, its training stops. At most ``max_running`` trainings run at once;
the others wait in a queue (state "queued") and start in order as slots free up. When the histories held
exceed ``memory_budget`` bytes, finished runs that nobody watches go first, least recently viewed first.

Leaving is normally signalled (the page's session-scoped cache releases the lease within a second of
the tab closing). As a fallback, a viewer that has not shown a sign of life (``Lease.touch``, which the
page calls on every refresh and from a slow heartbeat) for ``heartbeat_timeout`` seconds is treated as
gone: a reaper thread checks every few seconds, so a lost release cannot keep a training alive. A tab
that comes back after that simply watches its run again, restarted: the run is a pure function of its
config, so it is the same run.

With a store of finished runs (``store``, a :class:`~bnviz.table.store.RunStore`), a link that nobody here
watches is looked up there first: a stored run is shown as a :class:`~bnviz.table.replay.StoredRun`, with no
training and no slot. Each run that finishes here (diverged variants included; not a stopped or failed one) is
stored once, by a background thread at low priority, so that the next server or replica that opens the link
shows it at once. A restart (the page's "train it again") always trains.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TypedDict

from bnviz.config import HISTORY_CAP, ExperimentConfig
from bnviz.measure.worker import lower_priority
from bnviz.table.replay import StoredRun
from bnviz.table.store import PAGE_ROWS, RunStore, StoreError, run_bytes
from bnviz.training.run import Run

log = logging.getLogger(__name__)
DEFAULT_MEMORY_BUDGET = 256 << 20  # bytes of snapshot histories kept across all runs
# Seconds without a sign of life after which a viewer counts as gone. Only a fallback for a lost release
# (closing a tab releases within a second), so it is long: the page's refresh timers run in the browser,
# and a browser starved of CPU (30 headless pages on the server's own 2 cores) was seen silent for over
# 120 s while still open, which stopped and restarted its link's training.
HEARTBEAT_TIMEOUT = 300.0
STORE_NICE = 10  # at least this much is added to the storing thread's nice value: it comes after pages and training


class _RunOptions(TypedDict):
    """What the registry passes to every Run it starts, besides the config."""

    stats_in: str
    history_cap: int
    steps_per_second: float | None
    nice: int


@dataclass
class Entry:
    """A run and who watches it."""

    run: Run | StoredRun
    viewers: set[int] = field(default_factory=set)
    last_viewed: float = field(default_factory=time.monotonic)
    queued_at: float | None = None
    stored: bool = False  # in the store already (opened from it, or handed to the storing thread)


class Registry:
    """One Run per config, shared by its viewers; thread-safe."""

    def __init__(self, max_running: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 stats_in: str = "process", history_cap: int = HISTORY_CAP, steps_per_second: float | None = None,
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT, on_drop=None, nice: int = 0,
                 store: RunStore | None = None) -> None:
        self.max_running = max_running or os.cpu_count() or 1
        self.memory_budget = memory_budget
        self.heartbeat_timeout = heartbeat_timeout
        self._on_drop = on_drop  # called with each Run the registry lets go of (the page frees its figures)
        self._seen: dict[int, float] = {}  # viewer -> last sign of life (time.monotonic)
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()
        self._run_kw: _RunOptions = dict(stats_in=stats_in, history_cap=history_cap, steps_per_second=steps_per_second,
                            nice=nice)
        self._entries: dict[ExperimentConfig, Entry] = {}
        self._stopping: list[Run] = []  # let go of, still ending (thread, worker): they hold a slot until then
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.started = 0  # trainings started since creation (the load benchmark reads it)
        self.store = store
        self._to_store: queue.Queue[tuple[RunStore, ExperimentConfig, Run]] = queue.Queue()
        self._storer: threading.Thread | None = None

    # --- viewers ------------------------------------------------------------------------------------

    def lease(self) -> Lease:
        """A handle for one viewer (one browser session)."""
        return Lease(self, next(self._ids))

    def _acquire(self, config: ExperimentConfig, viewer: int, stored: bool = True) -> Run | StoredRun:
        """The run of ``config``, now watched by ``viewer``: the live one, else the stored one (when ``stored``),
        else a new training, queued."""
        found: StoredRun | None = None
        skipped: list[str] = []
        if stored and self.store is not None and self._missing(config):
            found, skipped = self._open_stored(config)  # outside the lock: parsing a large table takes a while
        with self._lock:
            entry = self._entries.get(config)
            if entry is None or entry.run.state in ("stopped", "failed"):
                if found is not None:
                    entry = Entry(found, stored=True)
                else:
                    run = Run(config, **self._run_kw)
                    run.notes.extend(f"{why} The run trains here and replaces it when it finishes." for why in skipped)
                    entry = Entry(run, queued_at=time.monotonic())
                self._entries[config] = entry
            entry.viewers.add(viewer)
            entry.last_viewed = self._seen[viewer] = time.monotonic()
            self._schedule()
            if self._reaper is None:
                self._closing = threading.Event()
                self._reaper = threading.Thread(target=self._reap_loop, args=(self._closing,), daemon=True,
                                                name="bnviz-reaper")
                self._reaper.start()
            return entry.run

    def _release(self, config: ExperimentConfig, viewer: int) -> None:
        with self._lock:
            entry = self._entries.get(config)
            if entry is None:
                return
            entry.viewers.discard(viewer)
            self._seen.pop(viewer, None)
            if not entry.viewers and entry.run.state not in ("finished",):
                del self._entries[config]
                self._let_go(entry.run)  # nobody watches: stop training now; its slot frees when it has ended
            self._schedule()

    def _missing(self, config: ExperimentConfig) -> bool:
        with self._lock:
            entry = self._entries.get(config)
            return entry is None or entry.run.state in ("stopped", "failed")

    def _open_stored(self, config: ExperimentConfig) -> tuple[StoredRun | None, list[str]]:
        """The stored run of ``config`` (None when the store does not hold it), and the store's sentences about a
        file under its key that it skipped (corrupt, or another run's)."""
        assert self.store is not None
        if not self.store.has(config):
            return None, []
        name = self.store.path(config).name
        seen = len(self.store.skipped)
        replay = self.store.get(config, max_rows=PAGE_ROWS)
        if replay is None:
            return None, [why for why in self.store.skipped[seen:] if name in why]
        return StoredRun(replay, config), []

    def restart(self, config: ExperimentConfig, viewer: int) -> Run | StoredRun:
        """Throw the run of ``config`` away and train it again from step 0 (same config: same run)."""
        with self._lock:
            entry = self._entries.pop(config, None)
            if entry is not None:
                self._let_go(entry.run)
            run = self._acquire(config, viewer, stored=False)
            if entry is not None:
                self._entries[config].viewers |= entry.viewers
            return run

    def viewers(self, config: ExperimentConfig) -> int:
        """How many viewers watch the run of ``config``."""
        with self._lock:
            entry = self._entries.get(config)
            return len(entry.viewers) if entry else 0

    def queue_position(self, config: ExperimentConfig) -> int | None:
        """1-based place of ``config``'s run in the queue, or None if it is not waiting."""
        with self._lock:
            waiting = sorted((e.queued_at, c) for c, e in self._entries.items()
                             if e.run.state == "ready" and e.queued_at is not None)
            for i, (_, c) in enumerate(waiting, 1):
                if c == config:
                    return i
            return None

    # --- scheduling and memory ----------------------------------------------------------------------

    def _drop(self, run: Run | StoredRun) -> None:
        if self._on_drop is not None:
            try:
                self._on_drop(run)
            except Exception as exc:  # noqa: BLE001 - freeing a cache must never break releasing a viewer
                log.warning("registry on_drop failed: %r", exc)

    def _let_go(self, run: Run | StoredRun) -> None:
        """Stop ``run`` without waiting (it keeps its slot until it has ended) and let the page forget it."""
        run.stop(wait=False)
        if isinstance(run, Run) and run.alive:
            self._stopping.append(run)
        self._drop(run)

    def running(self) -> int:
        """Trainings whose thread is alive (running or paused), including stopped ones still ending."""
        with self._lock:
            self._stopping = [r for r in self._stopping if r.alive]
            return sum(1 for e in self._entries.values() if e.run.alive) + len(self._stopping)

    def _schedule(self) -> None:
        """Start queued runs while slots are free; evict unwatched finished runs over the budget."""
        with self._lock:
            free = self.max_running - self.running()
            waiting = sorted((e.queued_at, id(e), e) for e in self._entries.values()
                             if e.run.state == "ready" and e.queued_at is not None)
            for _, _, entry in waiting[:max(free, 0)]:
                entry.run.start()
                entry.queued_at = None
                self.started += 1
            self._hand_finished_to_store()
            self._evict()

    # --- the store of finished runs -----------------------------------------------------------------

    def _hand_finished_to_store(self) -> None:
        """Queue each run that finished here since the last call for storing (once each)."""
        if self.store is None:
            return
        for config, entry in self._entries.items():
            if not entry.stored and entry.run.state == "finished" and isinstance(entry.run, Run):
                entry.stored = True
                self._to_store.put((self.store, config, entry.run))
                if self._storer is None:
                    self._storer = threading.Thread(target=self._store_loop, daemon=True, name="bnviz-storer")
                    self._storer.start()

    def _store_loop(self) -> None:
        lower_priority(max(self._run_kw["nice"], STORE_NICE))
        while True:
            store, config, run = self._to_store.get()
            try:
                self._put(store, config, run)
            finally:
                self._to_store.task_done()

    @staticmethod
    def _put(store: RunStore, config: ExperimentConfig, run: Run) -> None:
        try:
            store.put(config, run_bytes(config, run.history.snapshots()))
        except StoreError as exc:  # the page goes on showing the run from memory; put left no partial file
            log.warning("finished run not stored: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a run that cannot be written must not end the storing thread
            log.warning("finished run not stored: %r", exc)

    def flush(self, timeout: float = 60.0) -> bool:
        """Hand the runs finished so far to the store and wait until they are written (tests, a sweep's end);
        True when everything handed over was written (or failed with its message logged) in time."""
        with self._lock:
            self._hand_finished_to_store()
        deadline = time.monotonic() + timeout
        while self._to_store.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def tick(self) -> None:
        """Let finished runs hand their slot to queued ones (the page calls this on every refresh)."""
        self.reap()
        self._schedule()

    def touch(self, viewer: int) -> None:
        """A sign of life from ``viewer`` (see the module docstring)."""
        with self._lock:
            if viewer in self._seen:
                self._seen[viewer] = time.monotonic()

    def reap(self) -> list[int]:
        """Release the viewers silent for longer than ``heartbeat_timeout``; returns them."""
        with self._lock:
            cutoff = time.monotonic() - self.heartbeat_timeout
            gone = [v for v, t in self._seen.items() if t < cutoff]
            for viewer in gone:
                for config in [c for c, e in self._entries.items() if viewer in e.viewers]:
                    self._release(config, viewer)
                self._seen.pop(viewer, None)
            return gone

    def _reap_loop(self, closing: threading.Event) -> None:
        period = max(min(self.heartbeat_timeout / 4, 10.0), 0.05)
        while not closing.wait(period):
            self.tick()  # also starts queued runs once a stopped one has ended, even with no page refreshing

    def memory(self) -> int:
        """Bytes held by all histories."""
        with self._lock:
            return sum(e.run.history.nbytes() for e in self._entries.values())

    def _evict(self) -> None:
        total = self.memory()
        if total <= self.memory_budget:
            return
        idle = sorted((e.last_viewed, c) for c, e in self._entries.items()
                      if not e.viewers and not e.run.alive)
        for _, config in idle:
            if total <= self.memory_budget:
                break
            run = self._entries.pop(config).run
            total -= run.history.nbytes()
            self._drop(run)

    def stop_all(self) -> None:
        """Stop every run and the reaper (tests and shutdown)."""
        with self._lock:
            self._closing.set()
            self._reaper = None
            runs = [e.run for e in self._entries.values()] + self._stopping
            self._entries.clear()
            self._stopping = []
        for run in runs:
            run.stop(wait=True, timeout=10)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class Lease:
    """One viewer's hold on the run it watches; closing it (tab closed) lets the run go."""

    def __init__(self, registry: Registry, viewer: int) -> None:
        self.registry, self.viewer = registry, viewer
        self.config: ExperimentConfig | None = None

    def view(self, config: ExperimentConfig) -> Run | StoredRun:
        """Watch the run of ``config`` (opening it from the store, or starting or queueing it), leaving the previous
        one."""
        if self.config is not None and self.config != config:
            self.registry._release(self.config, self.viewer)
        self.config = config
        return self.registry._acquire(config, self.viewer)

    def restart(self) -> Run | StoredRun | None:
        """Train the watched run again from step 0 (a stored one too)."""
        return None if self.config is None else self.registry.restart(self.config, self.viewer)

    def sole_viewer(self) -> bool:
        """True when nobody else watches this run (then this viewer may pause or reset the training)."""
        return self.config is not None and self.registry.viewers(self.config) <= 1

    def touch(self) -> None:
        """Say this viewer is still here (the page calls it on every refresh and from a heartbeat)."""
        self.registry.touch(self.viewer)

    def close(self) -> None:
        """Leave (idempotent)."""
        if self.config is not None:
            self.registry._release(self.config, self.viewer)
            self.config = None
