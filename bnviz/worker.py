"""Where the statistics are computed: inline, or in a worker process beside the training thread.

Statistics of a snapshot cost more than the training steps between two snapshots, and Python threads
would fight the training thread for the GIL (measured: a stats thread made training 9x slower). A worker
process uses the second core instead, so recording costs little more than training. Both sinks take
RawSnapshots in step order and deliver Snapshots to a callback in the same order.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from typing import Callable

from .snapshot import RawSnapshot, Snapshot, Summarizer

_STOP = None  # sentinel on the queues


class InlineSink:
    """Summarize on the caller's thread: simplest, used by tests and tiny runs."""

    def __init__(self, activation: str, units: tuple[int, ...], deliver: Callable[[Snapshot], None]) -> None:
        self._summarizer = Summarizer(activation, units)
        self._deliver = deliver
        self.error: str | None = None

    def submit(self, raw: RawSnapshot) -> None:
        """Summarize ``raw`` now and deliver it."""
        self._deliver(self._summarizer.summarize(raw))

    def close(self, wait: bool = True) -> None:
        """Nothing to release."""


def _serve(activation: str, units: tuple[int, ...], inbox, outbox) -> None:
    """Worker process main loop: summarize until the sentinel arrives."""
    summarizer = Summarizer(activation, units)
    while True:
        raw = inbox.get()
        if raw is _STOP:
            outbox.put(_STOP)
            return
        try:
            outbox.put(summarizer.summarize(raw))
        except Exception as exc:  # reported to the run, which marks itself failed
            outbox.put(RuntimeError(f"statistics failed at step {raw.step}: {exc!r}"))


class ProcessSink:
    """Summarize in a spawned worker process; a collector thread delivers results in order."""

    def __init__(self, activation: str, units: tuple[int, ...], deliver: Callable[[Snapshot], None]) -> None:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and locks
        self._inbox, self._outbox = ctx.Queue(maxsize=64), ctx.Queue()
        self._proc = ctx.Process(target=_serve, args=(activation, units, self._inbox, self._outbox),
                                 daemon=True, name="bnviz-stats")
        self._proc.start()
        self._deliver = deliver
        self.error: str | None = None
        self._collector = threading.Thread(target=self._collect, daemon=True, name="bnviz-collect")
        self._collector.start()

    def submit(self, raw: RawSnapshot) -> None:
        """Queue ``raw`` for the worker (blocks only if 64 snapshots are already waiting)."""
        while self.error is None:
            try:
                self._inbox.put(raw, timeout=0.5)
                return
            except queue.Full:
                if not self._proc.is_alive():
                    self.error = "the statistics worker died"

    def _collect(self) -> None:
        while True:
            try:
                item = self._outbox.get(timeout=0.5)
            except queue.Empty:
                if not self._proc.is_alive():
                    self.error = self.error or f"the statistics worker exited (code {self._proc.exitcode})"
                    return
                continue
            if item is _STOP:
                return
            if isinstance(item, Exception):
                self.error = str(item)
                continue
            self._deliver(item)

    def close(self, wait: bool = True) -> None:
        """Finish the queued snapshots (``wait``) or drop them, then end the worker process."""
        if wait and self._proc.is_alive():
            try:
                self._inbox.put(_STOP, timeout=5)
            except queue.Full:
                pass
            self._collector.join()
        if self._proc.is_alive():
            if not wait:
                self._proc.terminate()
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
        self._inbox.cancel_join_thread()
        self._inbox.close()
        self._outbox.close()
