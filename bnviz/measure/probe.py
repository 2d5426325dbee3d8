"""Look inside the network without changing it: stages of every hidden layer, accuracy, gradient shift and
smoothness.

Probing must leave training exactly as it would be without it. The training thread only copies each
variant's weights (``WeightSnapshot``); the ``Prober`` computes everything from those copies with the numpy
re-implementation of the network (npnet.py), in the statistics worker process or inline. No module's
``forward`` runs (BatchNorm in training mode would update its running statistics), no random number is
drawn (bn_noisy's current scale and shift are read from its buffers), no gradient is touched. The tests
check the formulas against PyTorch's own modules and check that training is bit-identical with or without
probes. Nothing here imports PyTorch: the worker process does without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bnviz import stats
from bnviz.config import ExperimentConfig
from bnviz.measure import npconv, npnet, objective, smooth
from bnviz.measure.snapshot import RawSnapshot, RawVariant

VIEWS = ("train", "eval")  # probe-set batch statistics, or BN's running statistics


def activation_input(layer_stages: dict[str, np.ndarray], placement: str) -> str:
    """The stage the activation function receives: y before it (when normalized before), else x."""
    return "y" if ("y" in layer_stages and placement == "before") else "x"


def _relative_change(prev: np.ndarray, cur: np.ndarray) -> float:
    """||cur - prev|| / ||prev||; NaN when prev is (numerically) zero, e.g. beta at its initial 0."""
    base = float(np.linalg.norm(prev))
    if base < 1e-6 * max(1.0, prev.size ** 0.5):
        return math.nan
    return float(np.linalg.norm(cur - prev)) / base


def probe_indices(cfg: ExperimentConfig, n_train: int) -> np.ndarray:
    """The fixed probe set: ``cfg.probe_examples`` training examples chosen by the seed (sorted indices)."""
    idx = np.random.default_rng([cfg.seed, 2]).permutation(n_train)[:cfg.probe_examples]
    return np.sort(idx)


@dataclass(frozen=True)
class Arrays:
    """A dataset's splits as numpy arrays: what the prober needs, and cheap to send to a worker process."""

    x_train: np.ndarray  # (N_train, D) float32
    y_train: np.ndarray  # (N_train,) int64 labels, or (N_train, K) float32 regression targets
    x_test: np.ndarray
    y_test: np.ndarray

    @classmethod
    def of(cls, dataset) -> Arrays:
        """The arrays of a data.Dataset (its tensors share their memory with these arrays)."""
        return cls(dataset.x_train.numpy(), dataset.y_train.numpy(), dataset.x_test.numpy(),
                   dataset.y_test.numpy())


Layout = tuple[tuple[str, int, int, tuple[int, ...]], ...]  # (name, start, end, shape) in a flat array


class FlatState(Mapping):
    """A network's state (name -> array, as its state_dict) held as one flat array and views into it.

    What model.StateCopier makes at each snapshot. One flat array is one buffer to hand to the statistics
    worker: worker.ProcessSink writes it to the pipe as it is, without pickling it (measured for ioffe: the
    weights' transfer to an idle worker cost the training loop 2.1 % pickled, 0.8 % raw).
    """

    def __init__(self, flat: np.ndarray, layout: Layout) -> None:
        self.flat, self.layout = flat, layout
        self._views = {name: flat[start:end].reshape(shape) for name, start, end, shape in layout}

    def __getitem__(self, name: str) -> np.ndarray:
        return self._views[name]

    def __iter__(self):
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def __reduce__(self):  # pickled as the flat array once, not as one array per entry
        return FlatState, (self.flat, self.layout)


@dataclass
class WeightVariant:
    """One variant at a snapshot step, as the training thread hands it over: copies, nothing computed."""

    loss: float  # mean mini-batch loss since the previous snapshot (NaN at step 0)
    diverged_at: int | None  # set once the variant has left training
    state: Mapping[str, np.ndarray] | None  # state_dict copy as numpy arrays (None once it left training)
    ics_batch: np.ndarray | None  # indices of the next mini-batch when the gradient shift is due here


@dataclass
class WeightSnapshot:
    """All variants' weights at one step."""

    step: int
    variants: dict[str, WeightVariant]


class Prober:
    """Turns WeightSnapshots into RawSnapshots: the probe forward pass, accuracies, gamma/beta, changes."""

    def __init__(self, cfg: ExperimentConfig, arrays: Arrays) -> None:
        self.cfg = cfg
        self.data = arrays
        idx = probe_indices(cfg, len(arrays.x_train))
        self.probe_x, self.probe_y = arrays.x_train[idx], arrays.y_train[idx]
        self._prev: dict[str, list[dict[str, np.ndarray]]] = {}

    @staticmethod
    def _affine(state: Mapping[str, np.ndarray], depth: int, weight: str) -> list[dict[str, np.ndarray]]:
        out = []
        for i in range(depth):
            entry = {"weight": state[f"layers.{i}.{weight}.weight"]}
            if f"layers.{i}.norm.weight" in state:
                entry["gamma"] = state[f"layers.{i}.norm.weight"]
                entry["beta"] = state[f"layers.{i}.norm.bias"]
            out.append(entry)
        return out

    def raw(self, ws: WeightSnapshot) -> RawSnapshot:
        """Probe every variant of ``ws``."""
        return RawSnapshot(ws.step, {t: self._variant(t, wv) for t, wv in ws.variants.items()})

    def _variant(self, token: str, wv: WeightVariant) -> RawVariant:
        if wv.state is None:
            nan = math.nan
            return RawVariant(nan, nan, nan, wv.diverged_at, [], [], [], [], [], None)
        cfg, data = self.cfg, self.data
        net_class = npconv.NumpyConvNet if cfg.architecture == "conv" else npnet.NumpyMLP
        net = net_class(cfg, token, wv.state)
        test_acc = objective.score(cfg.task, net.logits_eval(data.x_test), data.y_test)
        layers, logits = net.forward(self.probe_x, cfg.view)
        if net_class is npconv.NumpyConvNet:  # a unit is a channel: its values over examples and positions
            layers = [{k: npconv.channel_series(z).T.astype(np.float32) for k, z in st.items()} for st in layers]
        acc = objective.score(cfg.task, logits, self.probe_y)  # on the probe set, as probed
        loss = wv.loss
        if math.isnan(loss):  # step 0: no mini-batch yet, the untrained network's loss on the probe set
            loss = objective.loss(cfg.task, logits, self.probe_y)
        act_stage = [activation_input(st, net.placement) for st in layers]
        now = self._affine(wv.state, len(layers), net_class.WEIGHT)
        prev = self._prev.get(token)
        change = [{k: _relative_change(p[k], c[k]) for k in c} if prev is not None else {}
                  for p, c in zip(prev or now, now)]
        self._prev[token] = now
        gamma = [c.get("gamma") for c in now]
        beta = [c.get("beta") for c in now]
        ics = landscape = None
        if wv.ics_batch is not None:  # Santurkar et al.'s measures on the batch the next step will use
            xb, yb = data.x_train[wv.ics_batch], data.y_train[wv.ics_batch]
            pairs = npnet.gradient_ics(cfg, token, wv.state, xb, yb, cfg.lr, net_class)
            ics = [stats.gradient_shift(g, g2) for g, g2 in pairs]
            landscape = smooth.smoothness(cfg, token, wv.state, xb, yb, cfg.lr, net_class)
        return RawVariant(loss, acc, test_acc, None, layers, act_stage, gamma, beta, change, ics, landscape)
