"""What one snapshot holds, raw and summarized, and the stateful summarizer between the two.

The training thread only probes and copies (``RawSnapshot``: stage matrices as float32 arrays); the
``Summarizer`` turns them into statistics (``Snapshot``), either inline or in a worker process
(see worker.py), because the statistics cost more than the training itself and Python threads would
fight the training thread for the GIL. The summarizer keeps the state that spans snapshots: the stable
histogram bins of every series and the sorted values of the previous and first snapshot (for drift).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import stats

POOLED = -1  # the "unit" that stands for all units of a layer pooled together
QQ_POINTS = 64  # quantiles kept per series for Q-Q plots: (i + 0.5) / QQ_POINTS


@dataclass
class RawVariant:
    """One variant at one snapshot, as probed on the training thread."""

    loss: float  # mean mini-batch loss since the previous snapshot
    accuracy: float  # mean mini-batch accuracy since the previous snapshot
    test_accuracy: float  # evaluation mode on the test split
    diverged_at: int | None  # step at which loss or weights stopped being finite
    layers: list[dict[str, np.ndarray]]  # per hidden layer: stage -> (N, width) float32; [] once diverged
    act_stage: list[str]  # per layer: the stage the activation function receives
    gamma: list[np.ndarray | None]  # per layer: full gamma vector (None without a learned affine)
    beta: list[np.ndarray | None]
    change: list[dict[str, float]]  # per layer: relative change of weight/gamma/beta since previous snapshot
    ics: list[tuple[float, float]] | None  # per layer: (||G - G'||, cos(G, G')) when measured at this step


@dataclass
class RawSnapshot:
    """Everything the training thread hands over at one step."""

    step: int
    variants: dict[str, RawVariant]


@dataclass(frozen=True)
class StageStats:
    """Statistics of one stage of one layer: pooled and tracked units in rows (units[0] is POOLED)."""

    units: tuple[int, ...]
    table: np.ndarray  # (len(units), len(stats.UNIT_STATS)) float64
    drift_prev: np.ndarray  # (len(units),) Wasserstein-1 to the previous snapshot; pooled: mean over all units
    drift_first: np.ndarray  # (len(units),) Wasserstein-1 to the first snapshot
    hists: tuple[stats.Histogram, ...]  # one per unit, on stable bins
    quantiles: np.ndarray  # (len(units), QQ_POINTS) float32

    def stat(self, name: str, unit: int = POOLED) -> float:
        """One statistic (a name of stats.UNIT_STATS) of one unit."""
        return float(self.table[self.units.index(unit), stats.UNIT_STATS.index(name)])


@dataclass(frozen=True)
class LayerStats:
    """One hidden layer of one variant at one snapshot."""

    stages: dict[str, StageStats]
    act_stage: str  # which stage the activation receives
    saturation: np.ndarray  # (len(units),) fraction of saturated activation inputs; pooled first
    gamma: np.ndarray | None  # full vectors (width,), float32
    beta: np.ndarray | None
    change: dict[str, float]
    ics: tuple[float, float] | None


@dataclass(frozen=True)
class VariantSnapshot:
    """One variant at one snapshot."""

    loss: float
    accuracy: float
    test_accuracy: float
    diverged_at: int | None
    layers: tuple[LayerStats, ...]  # empty once diverged


@dataclass(frozen=True)
class Snapshot:
    """All variants at one step; immutable once built, so readers never see it half-written."""

    step: int
    variants: dict[str, VariantSnapshot]
    nbytes: int = field(default=0, compare=False)


def _nbytes(layers: tuple[LayerStats, ...]) -> int:
    total = 0
    for layer in layers:
        for s in layer.stages.values():
            total += s.table.nbytes + s.drift_prev.nbytes + s.drift_first.nbytes + s.quantiles.nbytes
            total += sum(h.counts.nbytes for h in s.hists) + 64 * len(s.hists)
        total += sum(v.nbytes for v in (layer.gamma, layer.beta) if v is not None) + 256
    return total


class Summarizer:
    """Turns RawSnapshots into Snapshots, keeping the state that spans snapshots."""

    def __init__(self, activation: str, units: tuple[int, ...]) -> None:
        self.activation = activation
        self.units = units
        self._bins: dict[tuple, stats.StableBins] = {}
        self._prev: dict[tuple, np.ndarray] = {}  # sorted (N, width) of the previous snapshot
        self._first: dict[tuple, np.ndarray] = {}

    def summarize(self, raw: RawSnapshot) -> Snapshot:
        """Statistics of every variant, layer and stage of ``raw``."""
        variants = {token: self._variant(token, rv) for token, rv in raw.variants.items()}
        return Snapshot(raw.step, variants, sum(_nbytes(v.layers) for v in variants.values()))

    def _variant(self, token: str, rv: RawVariant) -> VariantSnapshot:
        layers = tuple(self._layer((token, i), rv, i) for i in range(len(rv.layers)))
        return VariantSnapshot(rv.loss, rv.accuracy, rv.test_accuracy, rv.diverged_at, layers)

    def _layer(self, key: tuple, rv: RawVariant, i: int) -> LayerStats:
        mats = rv.layers[i]
        width = next(iter(mats.values())).shape[1]
        units = (POOLED, *(u for u in self.units if u < width))
        stages = {name: self._stage((*key, name), m, units) for name, m in mats.items()}
        z = mats[rv.act_stage[i]]
        sat_units = stats.saturation(z[:, list(units[1:])], self.activation) if len(units) > 1 else []
        saturation = np.concatenate([[stats.saturation(z.ravel(), self.activation)], np.atleast_1d(sat_units)])
        ics = rv.ics[i] if rv.ics is not None else None
        return LayerStats(stages, rv.act_stage[i], saturation.astype(np.float64), rv.gamma[i], rv.beta[i],
                          rv.change[i], ics)

    def _stage(self, key: tuple, m: np.ndarray, units: tuple[int, ...]) -> StageStats:
        m = np.asarray(m, dtype=np.float64)  # (N, width)
        cols = m[:, list(units[1:])]
        pooled = m.ravel()
        table = np.vstack([stats.describe(pooled), stats.describe_columns(cols)]) if cols.shape[1] else \
            stats.describe(pooled)[None, :]
        srt = np.sort(m, axis=0)
        prev = self._prev.get(key)
        first = self._first.setdefault(key, srt)
        self._prev[key] = srt

        def drift(ref: np.ndarray | None) -> np.ndarray:
            if ref is None or ref.shape != srt.shape:
                return np.full(len(units), np.nan)
            per_unit = np.mean(np.abs(srt - ref), axis=0)  # W1 of equal-size samples: mean |sorted diff|
            return np.concatenate([[per_unit.mean()], per_unit[list(units[1:])]])

        hists = []
        for j, u in enumerate(units):
            bins = self._bins.setdefault((*key, u), stats.StableBins())
            hists.append(bins.histogram(pooled if u == POOLED else m[:, u]))
        q = (np.arange(QQ_POINTS) + 0.5) / QQ_POINTS
        quantiles = np.vstack([np.quantile(pooled, q), np.quantile(cols, q, axis=0).T if cols.shape[1] else
                               np.empty((0, QQ_POINTS))]).astype(np.float32)
        return StageStats(units, table, drift(prev), drift(first), tuple(hists), quantiles)
