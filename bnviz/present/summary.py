"""A run's summaries: one definition for each number that the board, chart titles and subtitles, lessons and
the report quote, computed from the snapshots up to the shown step.

Drift conventions: the Wasserstein-1 distance of a layer's stage (the mean over units of each unit's W1, as
the summarizer stores it) in units of that stage's pooled standard deviation, so that stages of different
scales compare.

- *Per snapshot* (:func:`drift_per_snapshot`): W1 to the previous snapshot / std at the same snapshot,
  averaged over the second half of the snapshots (steps >= last step / 2), once the first fast transient
  is over.
- *From the first* (:func:`drift_from_first`): W1 from the first snapshot to the latest / std at the first
  snapshot, so that a growing scale (of x without BN, or of y through γ) counts as movement instead of
  shrinking its own yardstick.

Pure: snapshots in, floats and arrays out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bnviz.measure.snapshot import POOLED, Smoothness
from bnviz.present import views
from bnviz.present.numbers import steps_span

MIN_SNAPS = 4  # a drift needs successive snapshots, and a "second half" at least two of them


def nanmean(a) -> float:
    """The mean of the finite values (NaN if none)."""
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def nanstd(a) -> float:
    """The standard deviation of the finite values (NaN if none)."""
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.std()) if a.size else math.nan


def nanmedian(a) -> float:
    """The median of the values that are not NaN (an infinity counts; NaN if none)."""
    a = np.asarray(a, dtype=float)
    a = a[~np.isnan(a)]
    return float(np.median(a)) if a.size else math.nan


def ratio(a: float, b: float) -> float:
    """a / b for non-negative measures: 1 when both are 0, inf when only b is, NaN when either is missing."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def final(series: np.ndarray) -> float:
    """The last finite value of a series (NaN if none)."""
    ok = np.flatnonzero(np.isfinite(series))
    return float(series[ok[-1]]) if ok.size else math.nan


def window(snaps) -> np.ndarray:
    """Which snapshots the per-snapshot drift averages over: the second half of the steps."""
    steps = views.steps(snaps)
    return steps >= steps[-1] / 2 if len(steps) else steps.astype(bool)


def window_text(snaps) -> str:
    """The window of :func:`window` in words: 'steps 1,500–3,000'."""
    s = views.steps(snaps)[window(snaps)]
    return steps_span(int(s[0]), int(s[-1])) if len(s) else "no steps"


def relative_drift(snaps, token: str, layer: int, stage: str, ref: str = "prev") -> np.ndarray:
    """W1 drift of a stage (pooled over units) in units of its pooled std, one value per snapshot.

    To the previous snapshot (``ref="prev"``): divided by the std at the same snapshot. To the first snapshot
    (``ref="first"``): divided by the first snapshot's std.
    """
    d = views.drift(snaps, token, layer, stage, POOLED, ref)
    sd = views.unit_stat(snaps, token, layer, stage, "std", POOLED)
    if ref == "first":
        sd = np.full_like(sd, sd[0] if len(sd) else np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, d / sd, np.nan)


def drift_per_snapshot(snaps, token: str, layer: int, stage: str) -> float:
    """The relative drift to the previous snapshot, averaged over :func:`window` (NaN without enough data)."""
    if len(snaps) < 2:
        return math.nan
    return nanmean(relative_drift(snaps, token, layer, stage)[window(snaps)])


def drift_from_first(snaps, token: str, layer: int, stage: str) -> float:
    """The relative drift from the first snapshot to the latest one that has it."""
    return final(relative_drift(snaps, token, layer, stage, "first"))


@dataclass(frozen=True)
class GradientShift:
    """Santurkar et al.'s gradient shift of some variants, averaged over every layer at the common steps."""

    l2: dict  # token -> mean ||G - G'|| over layers and steps
    cos: dict  # token -> mean cosine of G and G'
    steps: tuple[int, ...]  # the steps at which every layer of every variant has it


def gradient_shift(snaps, tokens, n_layers: int) -> GradientShift | None:
    """The gradient shift of ``tokens`` at the steps where every layer of all of them was measured (None: no
    such step). The same steps for every variant, so that their means compare."""
    per = {t: [views.ics(snaps, t, layer) for layer in range(n_layers)] for t in tokens}
    measured = [set(st.tolist()) for t in per for st, _, _ in per[t]]
    common = set.intersection(*measured) if measured else set()
    if not common:
        return None

    def mean_at(t: str, k: int) -> float:  # k = 1: ||G - G'||, 2: cosine
        return nanmean([v for series in per[t] for s, v in zip(series[0], series[k]) if s in common])

    return GradientShift({t: mean_at(t, 1) for t in tokens}, {t: mean_at(t, 2) for t in tokens},
                         tuple(sorted(common)))


def smoothness(snaps, token: str) -> Smoothness | None:
    """Santurkar et al.'s smoothness of ``token`` over the run: the median of each quantity (loss range, gradient
    change, effective beta) over the snapshots where it was measured; None with fewer than 2 of them."""
    at, *series = views.smoothness(snaps, token)
    if len(at) < 2:
        return None
    return Smoothness(*(nanmedian(s) for s in series))


def layer_normality(snap, token: str, layer: int, stage: str = "x") -> tuple[float, float]:
    """(median W, median KL) over the tracked units of one stage of one layer at one snapshot (NaN: none)."""
    st = views.stage_of(snap, token, layer, stage)
    if st is None or len(st.units) < 2:
        return math.nan, math.nan
    units = [u for u in st.units if u != POOLED]
    return (nanmedian([st.stat("shapiro_w", u) for u in units]),
            nanmedian([st.stat("kl_gaussian", u) for u in units]))
