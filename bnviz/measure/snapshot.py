"""What one snapshot holds, raw and summarized, and the stateful summarizer between the two.

The prober (probe.Prober) turns a snapshot's weights into a ``RawSnapshot`` (stage matrices as float32
arrays); the ``Summarizer`` turns that into statistics (``Snapshot``). Both run inline or in a worker
process (see worker.py), because the statistics cost more than the training itself and Python threads
would fight the training thread for the GIL. The summarizer keeps the state that spans snapshots: the stable
histogram bins of every series and the sorted values of the previous and first snapshot (for drift).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from bnviz import stats

POOLED = -1  # the "unit" that stands for all units of a layer pooled together
QQ_POINTS = 64  # quantiles kept per series for Q-Q plots: (i + 0.5) / QQ_POINTS


@dataclass
class VariantStatus:
    """Where one variant stands: training, diverged at a step, or refused before it started."""

    state: str = "training"  # training | diverged | refused
    step: int | None = None  # step of divergence
    message: str = ""


@dataclass(frozen=True)
class Smoothness:
    """Santurkar et al.'s (2018, Sec. 3.1, Fig. 4) view of the loss landscape along the gradient at one step
    (measure/smooth.py: the step sizes and the definitions)."""

    loss_range: float  # max - min of the loss over the points w - eta * g (eta = 0 included)
    grad_change: float  # max over eta of ||g - g(w - eta * g)||: how far the gradient turns ("predictiveness")
    beta: float  # max over eta of ||g - g(w - eta * g)|| / ||eta * g||: the effective beta-smoothness


@dataclass
class RawVariant:
    """One variant at one snapshot, as probed on the training thread."""

    loss: float  # mean mini-batch loss since the previous snapshot
    accuracy: float  # on the probe set (training examples), in the probe's view: accuracy, or R² of a regression
    test_accuracy: float  # evaluation mode on the test split: accuracy, or R² of a regression
    diverged_at: int | None  # step at which loss or weights stopped being finite
    layers: list[dict[str, np.ndarray]]  # per hidden layer: stage -> (N, width) float32; [] once diverged
    act_stage: list[str]  # per layer: the stage the activation function receives
    gamma: list[np.ndarray | None]  # per layer: full gamma vector (None without a learned affine)
    beta: list[np.ndarray | None]
    change: list[dict[str, float]]  # per layer: relative change of weight/gamma/beta since previous snapshot
    ics: list[tuple[float, float]] | None  # per layer: (||G - G'||, cos(G, G')) when measured at this step
    smooth: Smoothness | None = None  # the whole network's, measured with ics on the same mini-batch


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
    smooth: Smoothness | None = None  # measured every ics_every steps, as the gradient shift


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


POOL_N = stats.SHAPIRO_MAX_N  # pooled statistics use at most this many of the N x width values


@functools.lru_cache(maxsize=32)
def _pool_positions(size: int) -> np.ndarray:
    """Fixed positions of the pooled subsample among ``size`` values (all of them when size <= POOL_N)."""
    if size <= POOL_N:
        return np.arange(size)
    return np.sort(np.random.default_rng(1).choice(size, POOL_N, replace=False))


def _sorted_quantiles(srt: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles of columns already sorted along axis 0: shape (columns, len(q))."""
    pos = q * (srt.shape[0] - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, srt.shape[0] - 1)
    t = (pos - i0)[:, None]
    return (srt[i0] * (1 - t) + srt[i1] * t).T


class Summarizer:
    """Turns RawSnapshots into Snapshots, keeping the state that spans snapshots.

    Pooled statistics (unit -1) of a stage with more than POOL_N values (e.g. 512 probe examples x 100
    units) are computed on a fixed random subsample of POOL_N of them, the same positions at every
    snapshot (Shapiro-Wilk's p-value is only defined up to 5,000 values anyway); so do the pooled
    histogram and saturation. Drift and all per-unit statistics use every probe example. The
    statistics of all series of a snapshot are computed in two vectorized calls, because per-call
    overhead, not arithmetic, dominates at these sizes.

    With ``distributions=False`` the histograms and quantiles, which only the page's figures and a replay
    need, are left out (``hists`` empty, ``quantiles`` NaN): the record command's plain table holds no
    distributions, and they are a fifth of a snapshot's cost.
    """

    def __init__(self, activation: str, units: tuple[int, ...], distributions: bool = True) -> None:
        self.activation = activation
        self.units = units
        self.distributions = distributions
        self._bins: dict[tuple, stats.StableBins] = {}
        self._prev: dict[tuple, np.ndarray] = {}  # sorted (N, width) of the previous snapshot
        self._first: dict[tuple, np.ndarray] = {}

    def summarize(self, raw: RawSnapshot) -> Snapshot:
        """Statistics of every variant, layer and stage of ``raw``."""
        jobs = []  # (token, layer, stage, matrix, units)
        for token, rv in raw.variants.items():
            for li, mats in enumerate(rv.layers):
                width = next(iter(mats.values())).shape[1]
                units = (POOLED, *(u for u in self.units if u < width))
                for stage, m in mats.items():
                    jobs.append((token, li, stage, np.asarray(m), units))
        sorted_ = [self._sort(m) for *_, m, _ in jobs]
        tables = self._tables(jobs, sorted_)
        stage_stats: dict[tuple, StageStats] = {}
        for (token, li, stage, m, units), table, srt in zip(jobs, tables, sorted_):
            stage_stats[token, li, stage] = self._stage((token, li, stage), m, units, table, srt)
        variants = {}
        for token, rv in raw.variants.items():
            layers = tuple(self._layer(token, li, rv, stage_stats) for li in range(len(rv.layers)))
            variants[token] = VariantSnapshot(rv.loss, rv.accuracy, rv.test_accuracy, rv.diverged_at, layers,
                                              rv.smooth)
        return Snapshot(raw.step, variants, sum(_nbytes(v.layers) for v in variants.values()))

    @staticmethod
    def _sort(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(every unit's sorted values (N, width), the pooled subsample, it sorted), or None if not finite.

        Sorting is most of the cost of a snapshot, so each series is sorted once here and everything that
        needs order statistics (moments and percentiles, Shapiro-Wilk, spacing entropy, drift, quantiles,
        histogram ranges) reads these arrays.
        """
        if not np.isfinite(m).all():
            return None
        flat = m.reshape(-1)
        pooled = flat[_pool_positions(flat.size)]
        return np.sort(m, axis=0), pooled, np.sort(pooled)

    @staticmethod
    def _tables(jobs, sorted_) -> list[np.ndarray]:
        """UNIT_STATS rows (pooled first, then tracked units) of every job, in batched calls on sorted data.

        Tracked units have probe_size <= 4096 values (config.LIMITS) and pooled series at most POOL_N, so
        every row fits Shapiro-Wilk's range and stats.describe_sorted applies (bit-identical to
        stats.describe_columns of the unsorted data).
        """
        out = [np.full((len(units), len(stats.UNIT_STATS)), np.nan) for *_, units in jobs]
        rows: dict[int, list[tuple[int, slice, np.ndarray, np.ndarray]]] = {}  # row length -> blocks
        for i, ((*_, m, units), srt) in enumerate(zip(jobs, sorted_)):
            if srt is None:
                continue
            full, pooled, pooled_sorted = srt
            middle = pooled[None, pooled.size // 2]  # the unsorted middle value (see stats.describe_sorted)
            rows.setdefault(pooled.size, []).append((i, slice(0, 1), pooled_sorted[None], middle))
            if len(units) > 1:
                tracked, n = list(units[1:]), m.shape[0]
                rows.setdefault(n, []).append((i, slice(1, None), full[:, tracked].T, m[n // 2, tracked]))
        for blocks in rows.values():
            table = stats.describe_sorted(np.concatenate([b[2] for b in blocks]),
                                          np.concatenate([b[3] for b in blocks]))
            k = 0
            for i, where, block, _ in blocks:
                out[i][where] = table[k:k + len(block)]
                k += len(block)
        return out

    def _layer(self, token: str, li: int, rv: RawVariant, stage_stats: dict) -> LayerStats:
        mats = rv.layers[li]
        stages = {name: stage_stats[token, li, name] for name in mats}
        units = next(iter(stages.values())).units
        z = mats[rv.act_stage[li]]
        saturation = np.full(len(units), np.nan)
        if np.isfinite(z).all():
            flat = z.reshape(-1)
            saturation[0] = stats.saturation(flat[_pool_positions(flat.size)], self.activation)
            if len(units) > 1:
                saturation[1:] = stats.saturation(z[:, list(units[1:])], self.activation)
        ics = rv.ics[li] if rv.ics is not None else None
        return LayerStats(stages, rv.act_stage[li], saturation, rv.gamma[li], rv.beta[li], rv.change[li], ics)

    def _stage(self, key: tuple, m: np.ndarray, units: tuple[int, ...], table: np.ndarray, srt) -> StageStats:
        q = (np.arange(QQ_POINTS) + 0.5) / QQ_POINTS
        nan = np.full(len(units), np.nan)
        if srt is None:  # overflowed activations: nothing meaningful to bin or compare
            self._prev.pop(key, None)
            return StageStats(units, table, nan, nan, (), np.full((len(units), QQ_POINTS), np.nan, np.float32))
        srt, pooled, pooled_sorted = srt
        prev = self._prev.get(key)
        first = self._first.setdefault(key, srt)
        self._prev[key] = srt
        tracked = list(units[1:])

        def drift(ref: np.ndarray | None) -> np.ndarray:
            if ref is None or ref.shape != srt.shape:
                return nan
            # W1 of two equal-size samples is the mean gap between their order statistics: what
            # stats.wasserstein1_columns computes, here on the sorted matrices this method keeps anyway.
            per_unit = np.abs(srt - ref).mean(axis=0, dtype=np.float64)
            return np.concatenate([[per_unit.mean()], per_unit[tracked]])

        if not self.distributions:
            return StageStats(units, table, drift(prev), drift(first), (),
                              np.full((len(units), QQ_POINTS), np.nan, np.float32))
        hists = tuple(self._bins.setdefault((*key, u), stats.StableBins()).histogram_sorted(
            pooled_sorted if u == POOLED else srt[:, u]) for u in units)
        quantiles = np.vstack([_sorted_quantiles(pooled_sorted[:, None], q), _sorted_quantiles(srt[:, tracked], q)])
        return StageStats(units, table, drift(prev), drift(first), hists, quantiles.astype(np.float32))
