"""Where the statistics are computed: inline, or in a worker process beside the training thread.

Statistics of a snapshot cost more than the training steps between two snapshots, and Python threads
would fight the training thread for the GIL (measured: a stats thread made training 9x slower). A worker
process uses the second core instead, so recording costs little more than training. Both sinks take WeightSnapshots
(copies of the weights: the training thread does nothing more) in step order, probe them
(probe.Prober) and summarize them (snapshot.Summarizer), and deliver Snapshots in the same order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import types
from typing import Callable

from .config import ExperimentConfig
from .snapshot import Snapshot, Summarizer

_STOP = None  # sentinel on the queues


class InlineSink:
    """Probe and summarize on the caller's thread: simplest, used by tests and tiny runs."""

    def __init__(self, config: ExperimentConfig, deliver: Callable[[Snapshot], None]) -> None:
        self._config = config
        self._prober = None
        self._summarizer = Summarizer(config.activation, config.units)
        self._deliver = deliver
        self.error: str | None = None

    def start(self, dataset) -> None:
        """Receive the run's data (loaded once, by the run)."""
        from .probe import Prober

        self._prober = Prober(self._config, dataset)

    def submit(self, ws) -> None:
        """Probe and summarize ``ws`` now and deliver it."""
        self._deliver(self._summarizer.summarize(self._prober.raw(ws)))

    def close(self, wait: bool = True) -> None:
        """Nothing to release."""


def _arrays_of(dataset) -> tuple:
    """A Dataset as plain numpy arrays for the queue. Torch tensors would cross as shared-memory file
    descriptors handed over by a background thread, which prints a traceback on the server's console
    when the worker is stopped before it picked them up (a visitor changing settings quickly)."""
    return (dataset.name, dataset.x_train.numpy(), dataset.y_train.numpy(), dataset.x_test.numpy(),
            dataset.y_test.numpy(), dataset.n_classes)


def _dataset_from(arrays: tuple):
    import torch

    from .data import Dataset

    name, *tensors, n_classes = arrays
    return Dataset(name, *(torch.from_numpy(a) for a in tensors), n_classes)


def _next(inbox):
    """The next message, waiting as long as the parent lives. A worker whose server died (killed, or gone
    without closing the queue) would otherwise wait forever, holding its memory: it exits instead."""
    parent = mp.parent_process()
    while True:
        try:
            return inbox.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                os._exit(0)  # nothing to flush to a parent that is gone


def _serve(config: ExperimentConfig, inbox, outbox) -> None:
    """Worker process main loop: take the data, then probe and summarize until the sentinel arrives.

    ``outbox`` is the write end of a pipe to the collector; each result is sent whole."""
    import torch

    from .probe import Prober

    torch.set_num_threads(1)
    summarizer = Summarizer(config.activation, config.units)
    arrays = _next(inbox)  # sent by the run once loaded: the worker never imports scikit-learn
    if arrays is _STOP:
        outbox.send(_STOP)
        return
    prober = Prober(config, _dataset_from(arrays))
    while True:
        ws = _next(inbox)
        if ws is _STOP:
            outbox.send(_STOP)
            return
        try:
            outbox.send(summarizer.summarize(prober.raw(ws)))
        except Exception as exc:  # reported to the run, which marks itself failed
            outbox.send(RuntimeError(f"statistics failed at step {ws.step}: {exc!r}"))


_START_LOCK = threading.Lock()


def _start_without_main(proc) -> None:
    """Start a spawned process without making it re-run the parent's ``__main__``.

    spawn re-imports the parent's main module in the child. Under Streamlit that module is the page
    script (app.py), which must never run outside a session. The worker needs nothing from it (its target
    lives in this module), so the main module is hidden while the child's preparation data is taken.
    """
    with _START_LOCK:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            proc.start()
        finally:
            sys.modules["__main__"] = main


class ProcessSink:
    """Probe and summarize in a spawned worker process; a collector thread delivers results in order.

    Only weight copies (a few hundred kB a snapshot) cross the process boundary; the probe's stage
    matrices (megabytes) are made in the worker. The queue is bounded, so a worker that falls behind
    slows the training down instead of letting memory grow.
    """

    def __init__(self, config: ExperimentConfig, deliver: Callable[[Snapshot], None], backlog: int = 32,
                 quick_first: bool = True) -> None:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and locks
        self._inbox = ctx.Queue(maxsize=backlog)
        # Results come back over a plain pipe whose write end only the worker holds, so that a worker that
        # ends, even mid-message, gives the collector an EOF instead of a read that waits forever.
        self._outbox, sender = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve, args=(config, self._inbox, sender), daemon=True,
                                 name="bnviz-stats")
        _start_without_main(self._proc)
        sender.close()  # the worker's copy is the only write end now
        self._deliver = deliver
        self.error: str | None = None
        self._config = config
        self._skip_step: int | None = None if quick_first else -1  # -1: no in-process first snapshot
        self._collector = threading.Thread(target=self._collect, daemon=True, name="bnviz-collect")
        self._collector.start()

    def start(self, dataset) -> None:
        """Hand the run's data to the worker (first message) and to the in-process first snapshot."""
        self._dataset = dataset
        self._inbox.put(_arrays_of(dataset))

    def submit(self, ws) -> None:
        """Queue ``ws`` for the worker (waits while ``backlog`` snapshots are already queued).

        The first snapshot is also summarized right here, so a page shows its first chart while the worker
        process is still importing (about 2-3 s); the worker summarizes it again to start its own state
        (stable bins, drift references) and that duplicate is dropped.
        """
        if self._skip_step is None:
            self._skip_step = ws.step
            first = InlineSink(self._config, self._deliver)
            first.start(self._dataset)
            first.submit(ws)
        while self.error is None:
            try:
                self._inbox.put(ws, timeout=0.5)
                return
            except queue.Full:
                if not self._proc.is_alive():
                    self.error = "the statistics worker died"

    def _collect(self) -> None:
        while True:
            try:
                item = self._outbox.recv()
            except (EOFError, OSError):  # the worker ended (terminated by close, or it died)
                self._proc.join(timeout=2)
                self.error = self.error or f"the statistics worker exited (code {self._proc.exitcode})"
                return
            if item is _STOP:
                return
            if isinstance(item, Exception):
                self.error = str(item)
            elif isinstance(item, Snapshot) and item.step != self._skip_step:
                self._deliver(item)

    def close(self, wait: bool = True) -> None:
        """Finish the queued snapshots (``wait``) or drop them, then end the worker process.

        Once the worker has delivered everything (its sentinel came back) there is nothing left for it to do,
        so it is terminated rather than waited for: its interpreter's teardown takes about half a second.
        """
        if wait and self._proc.is_alive():
            self._inbox.put(_STOP)
            self._collector.join()
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout=5)
        self._collector.join(timeout=5)  # with the worker gone its read ends at once (EOF)
        self._drain_inbox()
        # Release the pipes and the process's sentinel now rather than whenever the run is garbage collected
        # (the registry keeps finished runs): otherwise each of them holds a few descriptors.
        if not self._collector.is_alive():
            self._outbox.close()
            self._proc.close()

    def _drain_inbox(self, timeout: float = 5.0) -> None:
        """Close the inbox and let its feeder thread finish, with the worker gone.

        The feeder thread writes queued weight snapshots into a pipe that only the worker read. A snapshot
        is larger than a pipe holds, and this process keeps the pipe's read end open, so a feeder caught
        mid-write by the worker's end would block forever, holding a thread and two descriptors per stopped
        training. Reading (and discarding) from our end lets it reach the close sentinel and exit. Uses the
        queue's reader connection and feeder thread, which multiprocessing does not expose publicly.
        """
        q = self._inbox
        q.close()  # appends the sentinel: the feeder exits after what it still holds
        feeder, reader = getattr(q, "_thread", None), getattr(q, "_reader", None)
        deadline = time.monotonic() + timeout
        while feeder is not None and feeder.is_alive() and time.monotonic() < deadline:
            try:
                if reader is not None and reader.poll(0.05):
                    reader.recv_bytes()
            except (OSError, EOFError):  # the feeder closed the pipe on its way out
                break
        if feeder is not None:
            feeder.join(timeout=max(0.0, deadline - time.monotonic()))
        q.cancel_join_thread()
