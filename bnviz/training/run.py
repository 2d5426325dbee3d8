"""A Run: the twin training loop in a background thread, writing snapshots to a History.

All variants train in lockstep on the same mini-batches, from the same initial weights. The thread's
surface is small and thread-safe: start, pause, resume, step, stop, and the History it fills. It never
calls Streamlit. A variant whose loss or weights stop being finite is marked diverged (a state, with its
step) and leaves the loop; the others go on.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import torch
from torch.nn import functional as F

from bnviz.config import HISTORY_CAP, ExperimentConfig
from bnviz.measure import probe
from bnviz.measure.snapshot import Snapshot, VariantStatus
from bnviz.measure.worker import InlineSink, ProcessSink, Recorder, lower_priority
from bnviz.table.history import History
from bnviz.table.record import TableFile, TableRecorder
from bnviz.training import data as data_mod
from bnviz.training.model import StateCopier, build_twins, make_optimizer, noise_generator

log = logging.getLogger(__name__)

STATES = ("ready", "running", "paused", "finished", "stopped", "failed")


class Batches:
    """Mini-batch indices in seeded epochs (reshuffled each epoch, last partial batch dropped)."""

    def __init__(self, n: int, batch: int, seed: int) -> None:
        self.n, self.batch = n, batch
        self._gen = torch.Generator().manual_seed(seed)
        self._perm = torch.empty(0, dtype=torch.int64)
        self._pos = 0
        self._peeked: torch.Tensor | None = None

    def _draw(self) -> torch.Tensor:
        if self._pos + self.batch > len(self._perm):
            self._perm, self._pos = torch.randperm(self.n, generator=self._gen), 0
        idx = self._perm[self._pos:self._pos + self.batch]
        self._pos += self.batch
        return idx

    def peek(self) -> torch.Tensor:
        """The next batch, without consuming it (the stream is the same whether or not one peeks)."""
        if self._peeked is None:
            self._peeked = self._draw()
        return self._peeked

    def next(self) -> torch.Tensor:
        """Consume the next batch."""
        idx = self.peek()
        self._peeked = None
        return idx


def _bn_kind(kind: str) -> bool:
    return kind.startswith("bn")


class Run:
    """Twin training of every variant of ``config`` in a background thread."""

    def __init__(self, config: ExperimentConfig, *, stats_in: str = "process", history_cap: int = HISTORY_CAP,
                 steps_per_second: float | None = None, quick_first: bool = True, backlog: int = 32,
                 distributions: bool = True, nice: int = 0, table: TableFile | Recorder | None = None) -> None:
        self.config = config
        self.history: History[Snapshot] = History(config.snapshot_every, history_cap)
        self.status = {token: VariantStatus() for token in config.variants}
        self.notes: list[str] = []  # documented clamps and refusals, for the page
        self.error: str | None = None
        self.steps_per_second = steps_per_second  # None: as fast as the CPU allows
        self._stats_mode = stats_in  # "process" (a worker process) or "inline"
        self._quick_first = quick_first  # summarize step 0 in-process too, for a page's first chart
        self._backlog = backlog  # weight snapshots queued for the worker before training waits for it
        self._distributions = distributions  # histograms and quantiles (figures, replays) in the snapshots
        self._nice = nice  # added to the training thread's (and its worker's) nice value: see lower_priority
        # With a table (the record command), the snapshots are encoded into it where they are made (a TableRecorder
        # the sink takes) and the file is written when training ends; self.history stays empty and self.written
        # counts the file's snapshots. Any other Recorder (a run folder's PartRecorder) is used as it is.
        self._table = table
        self.written: int | None = None
        self._state = "ready"
        self._step = 0
        self._cond = threading.Condition()
        self._paused = False
        self._pending = 0  # single steps requested while paused
        self._stop = False
        self._thread: threading.Thread | None = None

    # --- the thread-safe surface -------------------------------------------------------------------

    @property
    def state(self) -> str:
        """One of STATES."""
        return self._state

    @property
    def step(self) -> int:
        """Optimizer updates done so far."""
        return self._step

    def start(self, paused: bool = False) -> Run:
        """Start training in the background (optionally paused at step 0)."""
        with self._cond:
            if self._thread is not None:
                return self
            self._paused = paused
            self._state = "paused" if paused else "running"
            self._thread = threading.Thread(target=self._main, daemon=True, name=f"bnviz-run-{id(self):x}")
            self._thread.start()
        return self

    def pause(self) -> None:
        """Hold training after the current step."""
        with self._cond:
            self._paused = True
            if self._state == "running":
                self._state = "paused"
            self._cond.notify_all()

    def resume(self) -> None:
        """Continue training."""
        with self._cond:
            self._paused = False
            if self._state == "paused":
                self._state = "running"
            self._cond.notify_all()

    def step_once(self, n: int = 1) -> None:
        """While paused, train ``n`` more steps and stay paused."""
        with self._cond:
            self._pending += max(0, int(n))
            self._cond.notify_all()

    def stop(self, wait: bool = True, timeout: float | None = 30) -> None:
        """End training (the worker's queued statistics are dropped)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        """True while the training thread exists and has not ended."""
        return self._thread is not None and self._thread.is_alive()

    # --- the training thread ----------------------------------------------------------------------

    def _main(self) -> None:
        torch.set_num_threads(1)  # small matrices: one thread is fastest and leaves cores to others
        sink: ProcessSink | InlineSink | None = None
        try:
            recorder = (TableRecorder(self.config.snapshot_every, self._table) if isinstance(self._table, TableFile)
                        else self._table)
            # The worker process starts first: its imports overlap with loading the data and the models.
            if self._stats_mode == "process":
                sink = ProcessSink(self.config, self.history.append, backlog=self._backlog,
                                   quick_first=self._quick_first, distributions=self._distributions,
                                   nice=self._nice,  # the worker is nice from its start: its imports are heavy
                                   recorder=recorder)
            else:
                sink = InlineSink(self.config, self.history.append, self._distributions, recorder=recorder)
            self._sink = sink
            self._setup()
            sink.start(self.data)
            self._snapshot()
            # Step 0 comes at the caller's priority: a page that opens waits for it (its first chart). Measured on
            # this 2-core machine while the browser loaded the page: at nice +10 from the start, step 0 took from
            # 0.3 s to over the page's 1.5 s wait; at the page's priority 0.4-0.9 s (0.04 s on an idle server).
            lower_priority(self._nice)
            while self._step < self.config.steps and self._active():
                if not self._wait_turn():
                    break
                t0 = time.perf_counter()
                self._train_step()
                self._step += 1
                if self._step % self.config.snapshot_every == 0 or self._step == self.config.steps:
                    self._snapshot()
                    if sink.error and not self._stop:  # the worker died: say so now, not at the end
                        raise RuntimeError(sink.error)
                self._throttle(t0)
            if self._step and self._last_snap >= 0 and self._last_snap != self._step:
                self._snapshot()  # a stop or a divergence still leaves the final step recorded
            stopped = self._stop
            sink.close(wait=not stopped)
            self.written = sink.written
            sink = None
            if self._sink.error and not stopped:  # a stopped run's worker is terminated on purpose
                raise RuntimeError(self._sink.error)
            self._state = "stopped" if stopped else "finished"
        except Exception as exc:  # noqa: BLE001 - a failed run is a state with a message, not a crash of the server
            log.warning("run failed: %s", exc)
            self.error = f"{type(exc).__name__}: {exc}"
            self._state = "failed"
        finally:
            if sink is not None:
                sink.close(wait=False)

    def _setup(self) -> None:
        cfg = self.config
        self.data = data_mod.load(cfg)
        n_train = len(self.data.x_train)
        self.batch = min(cfg.batch, n_train)
        if self.batch < cfg.batch:
            self.notes.append(f"batch {cfg.batch} is larger than the {n_train} training examples: clamped to "
                              f"{n_train}")
        self.nets = build_twins(cfg, self.data.n_inputs, self.data.n_outputs)
        self._loss = F.mse_loss if cfg.task == "regression" else F.cross_entropy
        for net in self.nets.values():
            net.train()
        for token, net in self.nets.items():
            if self.batch < 2 and _bn_kind(net.kind):
                self.status[token] = VariantStatus(
                    "refused", None, f"{token}: batch norm needs at least 2 examples per batch to measure a "
                    "variance (PyTorch refuses one value per channel); use batch >= 2")
                self.notes.append(self.status[token].message)
        self.opts = {t: make_optimizer(cfg, n) for t, n in self.nets.items()}
        self.noise = {t: noise_generator(cfg, t) for t in self.nets}
        self.copiers = {t: StateCopier(n) for t, n in self.nets.items()}
        self.batches = Batches(n_train, self.batch, cfg.seed)
        self._sums = {t: [0.0, 0] for t in self.nets}  # mini-batch loss sum and count since the last snapshot
        self._last_snap = -1

    def _active(self) -> bool:
        return any(s.state == "training" for s in self.status.values())

    def _wait_turn(self) -> bool:
        with self._cond:
            while self._paused and self._pending == 0 and not self._stop:
                self._cond.wait(0.5)
            if self._stop:
                return False
            if self._paused:
                self._pending -= 1
            return True

    def _throttle(self, t0: float) -> None:
        rate = self.steps_per_second
        if rate:
            delay = 1.0 / rate - (time.perf_counter() - t0)
            if delay > 0:
                with self._cond:  # wakes early on pause/stop/speed change
                    self._cond.wait(delay)

    def _train_step(self) -> None:
        idx = self.batches.next()
        xb, yb = self.data.x_train[idx], self.data.y_train[idx]
        for token, net in self.nets.items():
            if self.status[token].state != "training":
                continue
            net.resample_noise(self.noise[token])  # nets stay in training mode; probes restore it
            loss = self._loss(net(xb), yb)
            value = loss.item()
            if not math.isfinite(value):
                self._diverge(token, f"loss became {value}")
                continue
            opt = self.opts[token]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums = self._sums[token]
            sums[0] += value
            sums[1] += 1

    def _diverge(self, token: str, why: str) -> None:
        step = self._step + 1
        self.status[token] = VariantStatus("diverged", step, f"{token} diverged at step {step}: {why}")
        log.info(self.status[token].message)

    def _snapshot(self) -> None:
        cfg, step = self.config, self._step
        ics_due = cfg.ics_every > 0 and step % cfg.ics_every == 0 and step < cfg.steps
        variants = {}
        for token in self.nets:
            state = None
            if self.status[token].state == "training":
                # numpy copies: torch tensors would cross to the worker as shared-memory segments, one per tensor
                state, finite = self.copiers[token].copy()
                if not finite:
                    self._diverge(token, "weights are no longer finite")
            status = self.status[token]
            loss_sum, count = self._sums[token]
            self._sums[token] = [0.0, 0]
            if status.state != "training":
                variants[token] = probe.WeightVariant(math.nan, status.step, None, None)
                continue
            ics_batch = self.batches.peek().numpy().copy() if ics_due else None  # measured by the prober
            variants[token] = probe.WeightVariant(loss_sum / count if count else math.nan, None, state, ics_batch)
        self._last_snap = step
        self._sink.submit(probe.WeightSnapshot(step, variants))
