"""Where the statistics are computed: inline, or in a worker process beside the training thread.

Statistics of a snapshot cost more than the training steps between two snapshots, and Python threads
would fight the training thread for the GIL (measured: a stats thread made training 9x slower). A worker
process uses the second core instead, so recording costs little more than training. Both sinks take WeightSnapshots
(copies of the weights: the training thread does nothing more) in step order, probe them
(probe.Prober) and summarize them (snapshot.Summarizer), and deliver Snapshots in the same order.

Given a ``recorder`` (a Recorder, made by whoever starts the sink: the record command's table), a sink delivers
nothing: the recorder takes each snapshot where it was made and writes its file when the sink closes, so nothing
travels back to the training process (see benchmarks/README.md for what recording costs).

``bnviz.watch`` probes someone else's model with that model's own forward pass, so its snapshots arrive as
RawSnapshots: ``raw_process_sink`` (a ProcessSink serving ``_serve_raw``) and ``InlineRawSink`` only summarize them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bnviz.config import ExperimentConfig
from bnviz.measure.probe import Arrays, FlatState, Layout, Prober, WeightSnapshot
from bnviz.measure.snapshot import RawSnapshot, Snapshot, Summarizer

_STOP = None  # sentinel on the queues
log = logging.getLogger(__name__)


class Recorder(Protocol):
    """Where a sink's snapshots go instead of back to its caller. It is made in the process that starts the sink
    and pickled to the worker, so it holds only its settings until ``prepare``, which runs where the snapshots
    are made, once, before the first ``append``."""

    where: str  # what it writes, for messages: a file's path

    def prepare(self) -> None: ...

    def append(self, snap: Snapshot) -> None: ...

    def write(self) -> int:
        """Write what was appended, whole; returns how many snapshots it holds."""
        ...


class InlineSink:
    """Probe and summarize on the caller's thread: simplest, used by tests and tiny runs."""

    def __init__(self, config: ExperimentConfig, deliver: Callable[[Snapshot], None],
                 distributions: bool = True, recorder: Recorder | None = None) -> None:
        self._config = config
        self._prober: Prober | None = None  # set by start()
        self._summarizer = Summarizer(config.activation, config.units, distributions)
        self._recorder = recorder
        if recorder is not None:
            recorder.prepare()
        self._deliver = deliver if recorder is None else recorder.append
        self.error: str | None = None
        self.written: int | None = None  # snapshots the recorder wrote, once written

    def start(self, dataset) -> None:
        """Receive the run's data (loaded once, by the run)."""
        self._prober = Prober(self._config, Arrays.of(dataset))

    def submit(self, ws) -> None:
        """Probe and summarize ``ws`` now and deliver it."""
        assert self._prober is not None, "start() receives the data before the first submit()"
        self._deliver(self._summarizer.summarize(self._prober.raw(ws)))

    def close(self, wait: bool = True) -> None:
        """Write the recorder's file (``wait``, with a recorder); nothing to release."""
        if wait and self._recorder is not None and self.written is None and self.error is None:
            try:
                self.written = self._recorder.write()
            except Exception as exc:  # noqa: BLE001
                self.error = _write_failed(self._recorder, exc)


@dataclass(frozen=True)
class _Raw:
    """A variant's FlatState on the pipe: its flat array follows as a raw message."""

    layout: Layout
    dtype: str
    nbytes: int


@dataclass(frozen=True)
class _Framed:
    """A WeightSnapshot on the pipe, its variants in ``raws`` sent with no state: their flat weights follow it
    as raw messages, in the order of ``raws``."""

    snapshot: WeightSnapshot
    raws: dict[str, _Raw]


def _send_snapshot(conn, ws: WeightSnapshot) -> None:
    """Send ``ws`` with each variant's flat weights as a raw message after it: written from the array's own
    memory, where pickling would copy it twice more on the training process's side."""
    flats, raws, variants = [], {}, {}
    for token, wv in ws.variants.items():
        if isinstance(wv.state, FlatState):
            flats.append(wv.state.flat)
            raws[token] = _Raw(wv.state.layout, wv.state.flat.dtype.str, wv.state.flat.nbytes)
            wv = dataclasses.replace(wv, state=None)
        variants[token] = wv
    conn.send(_Framed(dataclasses.replace(ws, variants=variants), raws))
    for flat in flats:
        conn.send_bytes(flat)


def _receive(conn):
    """The next message, a WeightSnapshot's flat weights read back into its FlatStates."""
    item = conn.recv()
    if not isinstance(item, _Framed):
        return item
    for token, raw in item.raws.items():
        buf = bytearray(raw.nbytes)  # a fresh, writable buffer: the prober keeps earlier weights
        conn.recv_bytes_into(buf)
        item.snapshot.variants[token].state = FlatState(np.frombuffer(buf, dtype=raw.dtype), raw.layout)
    return item.snapshot


def _next(inbox):
    """The next message. The server holds the only write end of ``inbox``, so when it is gone (closed, or
    killed) the read ends with EOF and the worker exits instead of holding its memory."""
    try:
        return _receive(inbox)
    except (EOFError, OSError):
        os._exit(0)  # nothing to flush to a parent that is gone


@dataclass(frozen=True)
class _Written:
    snapshots: int  # the worker's recorder wrote this many snapshots


def _write_failed(recorder: Recorder, exc: Exception) -> str:
    return f"could not write {recorder.where}: {exc}"


def _finish(outbox, recorder: Recorder | None) -> None:
    """The worker's last answers: what ``recorder`` wrote (or why it could not), then the sentinel. None: a snapshot
    was missed, so nothing is written."""
    if recorder is not None:
        try:
            outbox.send(_Written(recorder.write()))
        except Exception as exc:  # noqa: BLE001
            outbox.send(RuntimeError(_write_failed(recorder, exc)))
    outbox.send(_STOP)


def _serve(config: ExperimentConfig, inbox, outbox, distributions: bool, recorder: Recorder | None = None) -> None:
    """Worker process main loop: take the data, then probe and summarize until the sentinel arrives.

    ``outbox`` is the write end of a pipe to the collector; each result is sent whole. With a ``recorder``, the
    results go into it instead, and the sentinel has its file written first. The worker never
    imports PyTorch or scikit-learn: the data come as numpy arrays and the probe is numpy (npnet.py)."""
    summarizer = Summarizer(config.activation, config.units, distributions)
    arrays = _next(inbox)  # sent by the run once loaded: the worker never imports scikit-learn
    if arrays is _STOP:
        outbox.send(_STOP)
        return
    prober = Prober(config, arrays)
    if recorder is not None:
        recorder.prepare()
    failed = False  # a snapshot could not be summarized: the recorder would miss it, so it is not written
    while True:
        ws = _next(inbox)
        if ws is _STOP:
            _finish(outbox, recorder if not failed else None)
            return
        try:
            snap = summarizer.summarize(prober.raw(ws))
            if recorder is None:
                outbox.send(snap)
            else:
                recorder.append(snap)
        except Exception as exc:  # noqa: BLE001 - reported to the run, which marks itself failed
            failed = True
            outbox.send(RuntimeError(f"statistics failed at step {ws.step}: {exc!r}"))


def _serve_raw(config: ExperimentConfig, inbox, outbox, distributions: bool, recorder: Recorder) -> None:
    """Worker process main loop for snapshots probed already (``bnviz.watch``: the model's own forward pass made
    them, on the training side): summarize each RawSnapshot into ``recorder`` until the sentinel arrives, then
    have it write the rest. Failures are reported as in ``_serve``."""
    summarizer = Summarizer(config.activation, config.units, distributions)
    failed = False
    try:
        recorder.prepare()
    except Exception as exc:  # noqa: BLE001
        failed = True
        outbox.send(RuntimeError(_write_failed(recorder, exc)))
    while True:
        raw = _next(inbox)
        if raw is _STOP:
            _finish(outbox, recorder if not failed else None)
            return
        if failed:
            continue
        try:
            recorder.append(summarizer.summarize(raw))
        except Exception as exc:  # noqa: BLE001 - reported to the watcher, which warns
            failed = True
            outbox.send(RuntimeError(f"statistics failed at step {raw.step}: {exc!r}"))


class InlineRawSink:
    """Summarize RawSnapshots on the caller's thread into a recorder: ``_serve_raw`` without the process (tests,
    and a caller that has no second core to spare)."""

    def __init__(self, config: ExperimentConfig, recorder: Recorder, distributions: bool = True) -> None:
        self._summarizer = Summarizer(config.activation, config.units, distributions)
        self._recorder = recorder
        self.error: str | None = None
        self.written: int | None = None
        try:
            recorder.prepare()
        except Exception as exc:  # noqa: BLE001
            self.error = _write_failed(recorder, exc)

    def submit(self, raw: RawSnapshot) -> None:
        if self.error is None:
            try:
                self._recorder.append(self._summarizer.summarize(raw))
            except Exception as exc:  # noqa: BLE001
                self.error = f"statistics failed at step {raw.step}: {exc!r}"

    def close(self, wait: bool = True) -> None:
        if wait and self.written is None and self.error is None:
            try:
                self.written = self._recorder.write()
            except Exception as exc:  # noqa: BLE001
                self.error = _write_failed(self._recorder, exc)


def raw_process_sink(config: ExperimentConfig, recorder: Recorder, backlog: int = 2) -> ProcessSink:
    """A ProcessSink whose worker takes RawSnapshots (``submit``) and summarizes them into ``recorder``.
    ``backlog`` is small: a raw snapshot holds every layer's stage values (megabytes). The worker runs at nice +10,
    its imports included: the user's training keeps the cores it uses, and the worker's fraction of a second per
    snapshot fits between snapshots all the same (benchmarks/README.md, bench_watch)."""
    return ProcessSink(config, _nothing, backlog=backlog, recorder=recorder, serve=_serve_raw, nice=10)


def _nothing(snap: Snapshot) -> None:
    """A recorder's sink delivers nothing back."""


def lower_priority(nice: int, tid: int | None = None) -> None:
    """Raise the nice value of thread ``tid`` (default: the calling thread) by ``nice`` (Linux; elsewhere
    nothing happens).

    On Linux the nice value belongs to each thread, and the threads and processes a thread starts later
    inherit it. A nice training thread and its statistics worker leave the page's own work (scripts,
    websockets) and, on a machine shared with a browser, the browser the CPU first; training takes what is
    left. Raising a nice value needs no privilege (lowering it again would).
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id() if tid is None else tid
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:  # a sandbox that forbids it, or a worker already gone: normal priority
        log.info("could not lower the training priority: %s", exc)


_START_LOCK = threading.Lock()


# One math thread in the worker: it has one core to itself beside the training thread (OpenBLAS would
# otherwise start a thread per core for the probe's matrix products and compete with training).
_WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _start_without_main(proc) -> None:
    """Start a spawned process without making it re-run the parent's ``__main__``, with _WORKER_ENV.

    spawn re-imports the parent's main module in the child. Under Streamlit that module is the page
    script (app.py), which must never run outside a session. The worker needs nothing from it (its target
    lives in this module), so the main module is hidden while the child's preparation data is taken. The
    child inherits the environment at its start, before it imports numpy, so the thread limits are set
    for that moment only.
    """
    with without_main():
        proc.start()


@contextlib.contextmanager
def without_main():
    """While it lasts, processes spawned here neither re-run the parent's ``__main__`` nor start more than one
    numeric thread (see _start_without_main); for a process pool, around each submit (the pool spawns then)."""
    with _START_LOCK:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        saved = {k: os.environ.get(k) for k in _WORKER_ENV}
        os.environ.update(_WORKER_ENV)
        try:
            yield
        finally:
            sys.modules["__main__"] = main
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


_CLOSE = object()  # tells the sender thread to end


class ProcessSink:
    """Probe and summarize in a spawned worker process; a collector thread delivers results in order.

    Only weight copies (a few hundred kB a snapshot) cross the process boundary; the probe's stage
    matrices (megabytes) are made in the worker. Both directions are plain pipes, each with a single writer:
    a sender thread feeds the worker from a bounded queue (so a worker that falls behind slows training
    down instead of letting memory grow), and the worker answers the collector thread. Whichever side
    ends, even mid-message, the other gets an EOF or a broken pipe instead of a read or write that waits
    forever, so a stop leaves no thread or descriptor behind. With a ``recorder``, the worker answers only once,
    when closed: with the number of snapshots it wrote (``written``), or with why it could not. ``serve`` is the
    worker's main loop (``_serve``, or ``_serve_raw`` for RawSnapshots).
    """

    def __init__(self, config: ExperimentConfig, deliver: Callable[[Snapshot], None], backlog: int = 32,
                 quick_first: bool = True, distributions: bool = True, nice: int = 0,
                 recorder: Recorder | None = None, serve: Callable = _serve) -> None:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and locks
        worker_in, self._inbox = ctx.Pipe(duplex=False)
        self._outbox, worker_out = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=serve, args=(config, worker_in, worker_out, distributions, recorder),
                                 daemon=True, name="bnviz-stats")
        _start_without_main(self._proc)
        lower_priority(nice, self._proc.pid)  # its one thread: the threads it starts later inherit the value
        worker_in.close()  # the worker's copies are now the only read end of the inbox ...
        worker_out.close()  # ... and the only write end of the outbox
        self._pending: queue.Queue = queue.Queue(maxsize=backlog)
        self._deliver = deliver
        self.error: str | None = None
        self.written: int | None = None  # snapshots the recorder wrote, once the worker has written them
        self._config = config
        # -1: no in-process first snapshot (none is wanted, or a recorder takes the snapshots)
        self._skip_step: int | None = None if quick_first and recorder is None else -1
        self._sender = threading.Thread(target=self._send, daemon=True, name="bnviz-send")
        self._collector = threading.Thread(target=self._collect, daemon=True, name="bnviz-collect")
        self._sender.start()
        self._collector.start()

    def start(self, dataset) -> None:
        """Hand the run's data to the worker (first message) and to the in-process first snapshot."""
        self._dataset = dataset
        self._pending.put(Arrays.of(dataset))

    def submit(self, ws) -> None:
        """Queue ``ws`` for the worker (waits while ``backlog`` snapshots are already queued).

        The first snapshot is also summarized right here, so a page shows its first chart while the worker
        process is still starting; the worker summarizes it again to start its own state (stable bins,
        drift references) and that duplicate is dropped.
        """
        if self._skip_step is None:
            self._skip_step = ws.step
            first = InlineSink(self._config, self._deliver)  # the page's first chart: with distributions
            first.start(self._dataset)
            first.submit(ws)
        while self.error is None:
            try:
                self._pending.put(ws, timeout=0.5)
                return
            except queue.Full:
                if not self._proc.is_alive():
                    self.error = "the statistics worker died"

    def _send(self) -> None:
        while True:
            item = self._pending.get()
            if item is _CLOSE:
                return
            try:
                if isinstance(item, WeightSnapshot):
                    _send_snapshot(self._inbox, item)
                else:
                    self._inbox.send(item)
            except OSError:  # broken pipe: the worker ended; close() drops the rest
                return

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
            elif isinstance(item, _Written):
                self.written = item.snapshots
            elif isinstance(item, Snapshot) and item.step != self._skip_step:
                self._deliver(item)

    def close(self, wait: bool = True) -> None:
        """Finish the queued snapshots (``wait``) or drop them, then end the worker process and the threads.

        Once the worker has delivered everything (its sentinel came back) there is nothing left for it to do,
        so it is terminated rather than waited for: its interpreter's teardown takes about half a second.
        """
        if wait and self._proc.is_alive():
            self._pending.put(_STOP)
            self._collector.join()
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout=5)
        # With the worker gone, a send in progress fails (broken pipe) and a read ends (EOF) at once.
        while True:  # drop what was never sent, then wake the sender if it waits for more
            try:
                self._pending.get_nowait()
            except queue.Empty:
                break
        self._pending.put(_CLOSE)
        self._sender.join(timeout=5)
        self._collector.join(timeout=5)
        # Release the pipes and the process's sentinel now rather than whenever the run is garbage collected
        # (the registry keeps finished runs): otherwise each of them holds a few descriptors.
        if not self._sender.is_alive():
            self._inbox.close()
        if not self._collector.is_alive():
            self._outbox.close()
            self._proc.close()
