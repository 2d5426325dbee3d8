"""A run folder followed live: what the page reads in place of a Run it trains itself.

:class:`FollowedRun` has the attributes the page reads from a Run or a ReplayedRun (config, history, step, state,
status, notes, error, alive) and ``refresh()``, which reads the parts written since the last call (at most once a
second, whoever calls). :func:`follow` gives the one FollowedRun of a folder that every session shares.
"""

from __future__ import annotations

import os
import threading
import time

from bnviz.config import ExperimentConfig
from bnviz.measure.snapshot import Snapshot, VariantStatus
from bnviz.table.history import History
from bnviz.table.parts import NoRun, open_run

REFRESH_SECONDS = 1.0  # the folder is listed at most this often, however many sessions ask


class FollowedRun:
    """A run folder, finished or still being written by another process, dressed as a Run. It never trains:
    its state is "running" until done.json is there and every part has been read, then "finished". A run
    recorded into the folder again replaces the history with its own."""

    def __init__(self, folder) -> None:
        self.folder = os.fspath(folder)
        self._follower = open_run(self.folder)  # raises NoRun
        self._lock = threading.Lock()
        self._polled = -float("inf")
        self.error: str | None = None
        first = self._poll()
        config = self._follower.config
        if config is None:
            raise NoRun(f"the folder {self.folder} holds no snapshot yet, and its run.json names no model")
        self.config: ExperimentConfig = config
        self.history: History[Snapshot] = History(config.snapshot_every)
        self._generation = self._follower.generation
        for snap in first:
            self.history.append(snap)
        self.status: dict[str, VariantStatus] = {}
        self._update()

    def _poll(self) -> tuple[Snapshot, ...]:
        self._polled = time.monotonic()
        try:
            snaps = self._follower.poll()
        except Exception as exc:  # noqa: BLE001 - shown on the page; the snapshots read so far stay
            self.error = f"reading {self.folder} failed: {exc}"
            return ()
        if not os.path.isdir(self.folder):
            self.error = f"the folder {self.folder} is gone"
        return snaps

    def refresh(self) -> None:
        """Read the parts written since the last refresh into the history. At most once every REFRESH_SECONDS;
        a call while another thread refreshes returns at once."""
        if time.monotonic() - self._polled < REFRESH_SECONDS or not self._lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._polled < REFRESH_SECONDS:
                return
            snaps = self._poll()
            config = self._follower.config
            if self._follower.generation != self._generation and config is not None:  # recorded again: start over
                self.history = History(config.snapshot_every)
                self._generation = self._follower.generation
            for snap in snaps:
                self.history.append(snap)
            self._update()
        finally:
            self._lock.release()

    def _update(self) -> None:
        config = self._follower.config
        if config is not None:
            self.config = config
        latest = self.history.latest()
        status = {}
        for token in self.config.variants:
            d = latest.variants[token].diverged_at if latest is not None and token in latest.variants else None
            status[token] = (VariantStatus("diverged", d, f"{token} diverged at step {d}") if d is not None
                             else VariantStatus())
        self.status = status

    @property
    def step(self) -> int:
        latest = self.history.latest()
        return latest.step if latest is not None else 0

    @property
    def state(self) -> str:
        return "finished" if self._follower.finished else "running"

    @property
    def alive(self) -> bool:
        return not self._follower.finished and self.error is None

    @property
    def notes(self) -> list[str]:
        """What the page should say about the folder: how its config was read, and each part skipped."""
        return [*self._follower.notes, *self._follower.skipped]


_RUNS: dict[str, FollowedRun] = {}
_RUNS_LOCK = threading.Lock()


def follow(folder) -> FollowedRun:
    """The FollowedRun of ``folder`` (one per real path, shared by every session); raises NoRun."""
    key = os.path.realpath(os.fspath(folder))
    with _RUNS_LOCK:
        run = _RUNS.get(key)
        if run is None:
            run = _RUNS[key] = FollowedRun(folder)
        return run
