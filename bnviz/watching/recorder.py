"""``Watcher``: snapshots of a model's normalization layers taken inside its own training loop, summarized in the
statistics worker and written to a run folder in parts as they come."""

from __future__ import annotations

import atexit
import collections
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bnviz.config import WATCH_VALUES, ExperimentConfig, WatchedModel
from bnviz.measure import worker
from bnviz.measure.probe import _relative_change
from bnviz.measure.snapshot import RawSnapshot, RawVariant
from bnviz.watching.layers import ACTIVATION_NAMES, Norm, fan_in, find_norms, unwrap
from bnviz.watching.probe import Prober

VIEWS = ("train", "eval")
MAX_PROBE_SIZE = 4096  # config.LIMITS' probe_size: what the config of a watched run can say

RecorderFactory = Callable[[str, ExperimentConfig], worker.Recorder]


def _rank() -> int:
    """This process's rank under torch.distributed (0 without it)."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _check_folder(out: Path) -> None:
    """Make ``out`` and write a file in it, or fail now, in plain words, rather than after the first snapshot."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        test = out / ".bnviz-write-test"
        test.write_bytes(b"")
        test.unlink()
    except OSError as exc:
        raise OSError(f"bnviz.watch cannot write its run folder {out}: {exc.strerror or exc}") from None


def _part_recorder(folder: str, config: ExperimentConfig) -> worker.Recorder:
    from bnviz.table.parts import PartRecorder

    return PartRecorder(folder, config)


def watched_config(model: nn.Module, prober: Prober, every: int, units: tuple[int, ...],
                   view: str) -> ExperimentConfig:
    """The config of a watched run (steps grow as the run does: a reader takes the last step it has seen)."""
    layers = prober.layers
    norms = [layer.norm for layer in layers]
    followers = [type(layer.follower).__name__ if layer.follower is not None else "" for layer in layers]
    common = collections.Counter(f for f in followers if f).most_common(1)
    watched = WatchedModel(
        model=type(model).__name__, names=tuple(n.name for n in norms), kinds=tuple(n.kind for n in norms),
        fan_ins=tuple(fan_in(layer.feeder) for layer in layers),
        values=tuple(min(layer.n_rows, WATCH_VALUES) for layer in layers), activations=tuple(followers))
    return ExperimentConfig(
        watched=watched, widths=tuple(n.units for n in norms),
        variants=("bn" if any(n.batch_stats for n in norms) else "ln",),
        activation=ACTIVATION_NAMES.get(common[0][0], "identity") if common else "identity",
        placement="before", units=units, snapshot_every=every, steps=1,
        probe_size=max(8, min(prober.examples, MAX_PROBE_SIZE)), view=view, ics_every=0)


class Watcher:
    """Watches ``model``'s normalization layers (``bnviz.watch`` makes one; see its docstring)."""

    def __init__(self, model: nn.Module, probe: Any, out: str | Path, every: int = 50, *,
                 layers: Sequence[nn.Module | str] | None = None, units: tuple[int, ...] = (0, 1, 2, 3, 4),
                 view: str = "train", inline: bool = False, recorder: RecorderFactory | None = None) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every={every!r}: a snapshot every how many steps must be a whole number, 1 or more")
        if view not in VIEWS:
            raise ValueError(f"view={view!r} is not one of {', '.join(VIEWS)}")
        inner = unwrap(model)  # a DDP model is probed through .module: no collectives
        norms = [Norm(name, m) for name, m in find_norms(inner, layers)]
        self.every = every
        self.active = _rank() == 0  # other ranks train on; rank 0 records
        self.steps = 0  # step() calls so far
        self.closed = False
        self.config: ExperimentConfig | None = None
        self.folder = Path(out)
        if not self.active:
            return
        try:
            self._prober = Prober(inner, norms, probe, view)
        except Exception as exc:  # whatever the model raised, said in one line
            raise ValueError(f"the model rejects the probe batch: {type(exc).__name__}: {exc}") from exc
        if not self._prober.layers:
            raise ValueError("the probe batch reaches none of the model's normalization layers")
        self.config = watched_config(inner, self._prober, every, units, view)  # ValueError for bad units
        _check_folder(self.folder)
        make = recorder or _part_recorder
        rec = make(str(self.folder), self.config)
        self._sink: worker.InlineRawSink | worker.ProcessSink = (
            worker.InlineRawSink(self.config, rec) if inline else worker.raw_process_sink(self.config, rec))
        self._losses: list[float] = []
        self._score = self._test_score = math.nan
        self._prev: list[dict[str, np.ndarray]] | None = None
        self._taken = -1  # the step of the last snapshot
        self._warned = False
        atexit.register(self.close)  # a script that never closes it still gets its last snapshots written
        self._snapshot()  # step 0: the model as it enters

    # --- the loop's side --------------------------------------------------------------------------------------

    def step(self, loss: float | None = None, score: float | None = None, test_score: float | None = None) -> None:
        """One training step done: keep its loss (and score, test score); every ``every``-th takes a snapshot."""
        if not self.active or self.closed:
            return
        self.steps += 1
        if loss is not None:
            self._losses.append(float(loss))
        if score is not None:
            self._score = float(score)
        if test_score is not None:
            self._test_score = float(test_score)
        if self.steps % self.every == 0:
            self._snapshot()

    def close(self, final: bool = True) -> None:
        """Take the final snapshot (``final``, if the last step has none), let the worker write everything, and end
        it. Called on leaving the ``with`` block (without the final probe when the block raised), else when the
        interpreter exits."""
        if not self.active or self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        if final and self._taken != self.steps and self._sink.error is None:
            self._snapshot()
        self._sink.close(wait=True)
        self._warn()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(final=exc_type is None)

    # --- a snapshot -------------------------------------------------------------------------------------------

    def _snapshot(self) -> None:
        if self._sink.error is not None:
            self._warn()
            return
        probed = self._prober.run()
        now = [{k: v for k, v in (("weight", w), ("gamma", g), ("beta", b)) if v is not None}
               for w, g, b in zip(probed.weights, probed.gamma, probed.beta)]
        change = [{k: _relative_change(p[k], c[k]) for k in c} for p, c in zip(self._prev, now)] \
            if self._prev is not None else [{} for _ in now]
        self._prev = now
        loss = sum(self._losses) / len(self._losses) if self._losses else math.nan
        self._losses.clear()
        variant = RawVariant(loss, self._score, self._test_score, None, probed.layers, ["y"] * len(probed.layers),
                             probed.gamma, probed.beta, change, None)
        assert self.config is not None
        token = self.config.variants[0]
        self._sink.submit(RawSnapshot(self.steps, {token: variant}))
        self._taken = self.steps

    def _warn(self) -> None:
        if self._sink.error is not None and not self._warned:
            self._warned = True
            warnings.warn(f"bnviz.watch stopped recording into {self.folder}: {self._sink.error}", RuntimeWarning,
                          stacklevel=3)


def watch(model: nn.Module, probe: Any, out: str | Path, every: int = 50, *,
          layers: Sequence[nn.Module | str] | None = None, units: tuple[int, ...] = (0, 1, 2, 3, 4),
          view: str = "train", inline: bool = False, recorder: RecorderFactory | None = None) -> Watcher:
    """Watch ``model``'s normalization layers inside its own training loop; use as a context manager and call
    ``step(loss=..., score=..., test_score=...)`` once per training step.

    ``probe`` is a fixed batch (a tensor, a tuple of positional inputs or a dict of keyword inputs) pushed through
    the model at step 0 and every ``every`` steps, and at the end. Per normalization layer (found by type, or the
    modules or module paths in ``layers``) each snapshot keeps the module's input x, its normalization x_hat, its
    output y and the output a of the activation module right after it; they are summarized in a worker process
    (``inline``: on this thread) and written to the run folder ``out`` in parts as they come
    (``python -m bnviz view out`` follows it). ``view="eval"`` normalizes with the running statistics. Watching
    changes nothing in the training, bit for bit; under torch.distributed ranks other than 0 do nothing.
    Raises ValueError for ``every < 1``, a model without normalization layers and a probe the model rejects,
    and OSError for a folder that cannot be written, all before the first snapshot. ``recorder`` makes what
    the snapshots go into (default: the run folder's ``PartRecorder``).
    """
    return Watcher(model, probe, out, every, layers=layers, units=units, view=view, inline=inline,
                   recorder=recorder)
