"""A bounded, evenly spaced store of snapshots: what the page draws from.

Memory stays bounded however long a run: the store keeps the snapshots whose index is a multiple of a
stride, plus always the latest one; when more than ``cap`` would be kept, the stride doubles and every
other kept snapshot goes, so what remains stays evenly spaced and the first snapshot (index 0) is kept
forever. Readers get an immutable tuple that the single writer replaces whole (copy on write), so a
read never sees a half-written snapshot and never waits for the training thread.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

import numpy as np

from bnviz.config import HISTORY_CAP
from bnviz.measure.snapshot import Snapshot


class Stepped(Protocol):
    """All a History reads of what it keeps: the training step."""

    @property
    def step(self) -> int: ...


S = TypeVar("S", bound=Stepped)


class History(Generic[S]):
    """Snapshots of one run, evenly thinned to at most ``cap`` (+1 for the latest).

    A page keeps Snapshots; the record command keeps only their steps, to thin its table as a page would.
    """

    def __init__(self, snapshot_every: int, cap: int = HISTORY_CAP) -> None:
        if cap < 2:
            raise ValueError(f"History cap must be at least 2, got {cap}")
        self.snapshot_every, self.cap = snapshot_every, cap
        self._stride = 1
        self._grid: tuple[S, ...] = ()  # snapshots on the stride grid
        self._tail: S | None = None  # the latest snapshot, when it is off the grid
        self._view: tuple[S, ...] = ()
        self._lock = threading.Lock()  # writers only; readers take self._view without it
        self.version = 0  # bumps on every append: a cheap "anything new?" for the page

    def _index(self, snap: S) -> int:
        # Snapshot index on the cadence grid; the final step (not a multiple) rounds up.
        return -(-snap.step // self.snapshot_every)

    def append(self, snap: S) -> None:
        """Add the newest snapshot (steps must increase)."""
        with self._lock:
            if self._view and snap.step <= self._view[-1].step:
                raise ValueError(f"snapshot step {snap.step} is not after {self._view[-1].step}")
            if self._index(snap) % self._stride == 0:
                grid = self._grid + (snap,)
                while len(grid) > self.cap:
                    self._stride *= 2
                    grid = tuple(s for s in grid if self._index(s) % self._stride == 0)
                self._grid, self._tail = grid, None
            else:
                self._tail = snap
            self._view = self._grid + ((self._tail,) if self._tail is not None else ())
            self.version += 1

    def snapshots(self) -> tuple[S, ...]:
        """All kept snapshots, oldest first (an immutable tuple: safe to hold while training goes on)."""
        return self._view

    def __len__(self) -> int:
        return len(self._view)

    def latest(self) -> S | None:
        """The newest snapshot, or None before the first."""
        view = self._view
        return view[-1] if view else None

    def steps(self) -> list[int]:
        """Steps of the kept snapshots."""
        return [s.step for s in self._view]

    def at(self, step: int) -> S:
        """The kept snapshot nearest to ``step`` (at or before it when possible)."""
        view = self._view
        if not view:
            raise LookupError("the history is empty")
        steps = np.array([s.step for s in view])
        i = int(np.searchsorted(steps, step, side="right")) - 1
        return view[max(i, 0)]

    def nbytes(self: History[Snapshot]) -> int:
        """Approximate memory held by the kept snapshots' arrays."""
        return sum(s.nbytes for s in self._view)

