"""The learning-rate sweep's points: one network trained at each rate of a fixed grid, each run summed up per
variant by its final test score, its mean test score over training and the step at which it diverged.

The grid spans half-decades from 0.001 to 10. On the ``lr-range`` preset (Figure 1's 3×100 network with ReLU,
1,000 steps) that is where the plain network goes from too slow (it stays near chance at 0.001) through its
best (0.1–0.3) to diverging (10); BN trains at every rate but the last. Pure: configs and snapshots in, points
out; the page's sweep (bnviz/ui/lrsweep.py) and claim C11 read the same points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bnviz.config import ExperimentConfig
from bnviz.measure.snapshot import Snapshot
from bnviz.present import summary, views

# Half-decades written as a teacher types them (1, 3, 10): a link carries lr=0.3, not lr=0.316.
LR_GRID: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class LrPoint:
    """One variant of the run at one learning rate."""

    lr: float
    token: str  # the variant
    final: float  # the latest finite test score, as the Training chart writes it (NaN: none)
    mean: float  # the test score's mean over the whole run; after a divergence it counts as 0
    diverged_at: int | None  # the step at which it diverged (None: it did not)


def lr_configs(cfg: ExperimentConfig, grid: Iterable[float] = LR_GRID) -> tuple[ExperimentConfig, ...]:
    """The configs of the sweep of ``cfg``: the same run at each learning rate of ``grid``."""
    return tuple(cfg.replace(lr=float(lr)) for lr in grid)


def family(cfg: ExperimentConfig) -> ExperimentConfig:
    """One config that stands for every run of the sweep of ``cfg`` (their common fields, lr fixed)."""
    return cfg.replace(lr=LR_GRID[0])


def mean_score(steps: np.ndarray, score: np.ndarray, diverged_at: int | None, end: int) -> float:
    """The mean test score over a run of ``end`` steps (C8's learning_area). A diverged variant scores 0 from its
    divergence to ``end``: a rate at which training blows up never counts as training well."""
    from bnviz.present.claims.benefit import learning_area  # here: the claims package imports this module

    steps, score = np.asarray(steps, dtype=float), np.asarray(score, dtype=float)
    if diverged_at is not None:
        score = np.where(np.isfinite(score), score, 0.0)
        if len(steps) and steps[-1] < end:  # the run stopped early: every variant diverged
            steps, score = np.r_[steps, end], np.r_[score, 0.0]
    return learning_area(steps, score)


def run_points(snaps: tuple[Snapshot, ...], cfg: ExperimentConfig) -> tuple[LrPoint, ...]:
    """The points of one run of the sweep (``cfg`` is the config it was trained or looked up under), one per
    variant of ``cfg``."""
    steps = views.steps(snaps)
    out = []
    for token in cfg.variants:
        acc = views.train_stat(snaps, token, "test_accuracy")
        d = views.diverged_at(snaps, token)
        out.append(LrPoint(float(cfg.lr), token, summary.final(acc), mean_score(steps, acc, d, cfg.steps), d))
    return tuple(out)


def by_variant(points: Iterable[LrPoint]) -> dict[str, list[LrPoint]]:
    """The points of each variant, by increasing learning rate."""
    out: dict[str, list[LrPoint]] = {}
    for p in sorted(points, key=lambda p: p.lr):
        out.setdefault(p.token, []).append(p)
    return out


def on_grid(lr: float, grid: Iterable[float] = LR_GRID) -> bool:
    """Whether ``lr`` is one of ``grid``'s rates."""
    return any(math.isclose(lr, g, rel_tol=1e-9) for g in grid)
