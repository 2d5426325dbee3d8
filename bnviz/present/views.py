"""Read series out of snapshots: the one place figures, claims and lessons get their numbers from.

Everything here is pure: a tuple of Snapshots in, numpy arrays out. A value that a snapshot does not
have (a diverged variant, a stage the variant lacks, a unit not tracked) reads as NaN, so a series keeps
one entry per snapshot and lines up with ``steps(snaps)``.
"""

from __future__ import annotations

import math

import numpy as np

from bnviz import stats
from bnviz.measure.snapshot import POOLED, LayerStats, Snapshot, StageStats


def steps(snaps: tuple[Snapshot, ...]) -> np.ndarray:
    """Steps of the snapshots, as int64."""
    return np.array([s.step for s in snaps], dtype=np.int64)


def layer_of(snap: Snapshot, variant: str, layer: int) -> LayerStats | None:
    """One layer of one variant, or None (diverged, refused, absent)."""
    v = snap.variants.get(variant)
    if v is None or layer >= len(v.layers):
        return None
    return v.layers[layer]


def stage_of(snap: Snapshot, variant: str, layer: int, stage: str) -> StageStats | None:
    """One stage of one layer of one variant, or None."""
    lay = layer_of(snap, variant, layer)
    return None if lay is None else lay.stages.get(stage)


def act_stage(snaps: tuple[Snapshot, ...], variant: str, layer: int) -> str | None:
    """The stage the activation of ``layer`` receives in ``variant`` (y when normalized before it, else x)."""
    for snap in reversed(snaps):
        lay = layer_of(snap, variant, layer)
        if lay is not None:
            return lay.act_stage
    return None


def unit_stat(snaps, variant: str, layer: int, stage: str, stat: str, unit: int = POOLED) -> np.ndarray:
    """One statistic (a name of stats.UNIT_STATS) of one unit over the snapshots."""
    col = stats.UNIT_STATS.index(stat)
    out = np.full(len(snaps), np.nan)
    for i, snap in enumerate(snaps):
        st = stage_of(snap, variant, layer, stage)
        if st is not None and unit in st.units:
            out[i] = st.table[st.units.index(unit), col]
    return out


def drift(snaps, variant: str, layer: int, stage: str, unit: int = POOLED, ref: str = "prev") -> np.ndarray:
    """Wasserstein-1 drift of a stage, to the previous snapshot (``ref="prev"``) or the first ("first")."""
    out = np.full(len(snaps), np.nan)
    for i, snap in enumerate(snaps):
        st = stage_of(snap, variant, layer, stage)
        if st is not None and unit in st.units:
            arr = st.drift_prev if ref == "prev" else st.drift_first
            out[i] = arr[st.units.index(unit)]
    return out


def train_stat(snaps, variant: str, name: str) -> np.ndarray:
    """loss, accuracy or test_accuracy of a variant over the snapshots."""
    out = np.full(len(snaps), np.nan)
    for i, snap in enumerate(snaps):
        v = snap.variants.get(variant)
        if v is not None:
            out[i] = getattr(v, name)
    return out


def diverged_at(snaps, variant: str) -> int | None:
    """The step at which ``variant`` diverged, if it did."""
    for snap in reversed(snaps):
        v = snap.variants.get(variant)
        if v is not None and v.diverged_at is not None:
            return v.diverged_at
    return None


def affine(snaps, variant: str, layer: int, which: str = "gamma") -> np.ndarray:
    """Full gamma (or beta) vectors over the snapshots: shape (len(snaps), width), NaN where absent."""
    rows, width = [], 0
    for snap in snaps:
        lay = layer_of(snap, variant, layer)
        vec = None if lay is None else (lay.gamma if which == "gamma" else lay.beta)
        rows.append(vec)
        if vec is not None:
            width = len(vec)
    out = np.full((len(snaps), width), np.nan)
    for i, vec in enumerate(rows):
        if vec is not None:
            out[i] = vec
    return out


def param_change(snaps, variant: str, layer: int, which: str) -> np.ndarray:
    """Relative change ||p_t - p_prev|| / ||p_prev|| of "weight", "gamma" or "beta" between snapshots."""
    out = np.full(len(snaps), np.nan)
    for i, snap in enumerate(snaps):
        lay = layer_of(snap, variant, layer)
        if lay is not None and which in lay.change:
            out[i] = lay.change[which]
    return out


def ics(snaps, variant: str, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, ||G - G'||, cos(G, G')) at the snapshots where the gradient shift was measured."""
    pts = [(s.step, *lay.ics) for s in snaps if (lay := layer_of(s, variant, layer)) is not None and lay.ics]
    if not pts:
        return np.empty(0, np.int64), np.empty(0), np.empty(0)
    arr = np.array(pts, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2]


def smoothness(snaps, variant: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, loss range, gradient change, effective beta) at the snapshots where the smoothness along the
    gradient was measured (measure/smooth.py) with some finite value: a network that was no longer finite
    there measured nothing, as its replay (whose table leaves NaN out) says too."""
    pts = [(s.step, v.smooth.loss_range, v.smooth.grad_change, v.smooth.beta) for s in snaps
           if (v := s.variants.get(variant)) is not None and v.smooth is not None]
    pts = [p for p in pts if np.isfinite(p[1:]).any()]
    if not pts:
        return np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0)
    arr = np.array(pts, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3]


def saturation(snaps, variant: str, layer: int, unit: int = POOLED) -> np.ndarray:
    """Fraction of saturated activation inputs over the snapshots."""
    out = np.full(len(snaps), np.nan)
    for i, snap in enumerate(snaps):
        lay = layer_of(snap, variant, layer)
        if lay is not None:
            units = next(iter(lay.stages.values())).units
            if unit in units:
                out[i] = lay.saturation[units.index(unit)]
    return out


def density(hist: stats.Histogram) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, probability density) of a histogram: counts / (total * width)."""
    total = hist.counts.sum()
    dens = hist.counts / (total * hist.width) if total else hist.counts.astype(float)
    return hist.centers, dens


def gaussian_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The density of N(mean, std^2) at x (zeros for std == 0)."""
    if not std > 0:
        return np.zeros_like(np.asarray(x, dtype=float))
    z = (np.asarray(x, dtype=float) - mean) / std
    return np.exp(-0.5 * z * z) / (std * math.sqrt(2 * math.pi))


def score_name(task: str) -> str:
    """What the test score of a run's ``task`` (config.ExperimentConfig.task) is called on the page."""
    return "test R²" if task == "regression" else "test accuracy"


def unit_noun(cfg) -> str:
    """What one unit of a hidden layer is called on the page: a neuron's ``unit``, a conv layer's ``channel``, or
    what a watched model's layers normalize (config.WatchedModel.noun)."""
    if cfg.watched is not None:
        return cfg.watched.noun
    return "channel" if cfg.architecture == "conv" else "unit"
