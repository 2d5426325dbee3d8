"""The evidence board: every claim of docs/claims.md judged by numbers measured in the current run.

A verdict is computed, never written in advance: each claim (one :class:`~record.Claim` record) has a rule with
its thresholds, the run's snapshots give the numbers, and its judge says "supported" or "refuted" as the
numbers fall. Missing evidence (a variant the run does not train, too few snapshots, a diverged twin) reads
"not measured", with the preset that would measure it. Pure: snapshots in, verdicts out.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable

from bnviz.config import ExperimentConfig
from bnviz.measure.snapshot import Snapshot
from bnviz.present.claims import alternatives, benefit, drift, lrrange, shape, sums
from bnviz.present.claims.record import Claim, Judged, RunView, Verdict, not_measured
from bnviz.present.lrrange import LrPoint

log = logging.getLogger(__name__)

CLAIMS: tuple[Claim, ...] = (drift.C1, drift.C2, shape.C3, shape.C4, sums.C5, shape.C6, drift.C7, benefit.C8,
                             alternatives.C9, benefit.C10, lrrange.C11)
BY_ID = {c.id: c for c in CLAIMS}


def verdict(claim: Claim, judged: Judged) -> Verdict:
    """The board's verdict on ``claim`` from what its judge found."""
    return Verdict(claim.id, claim.title, judged.verdict, judged.figure, claim.rule, judged.detail, claim.panel,
                   judged.value, judged.numbers, claim.preset)


def watched_why(claim: Claim, cfg: ExperimentConfig) -> str | None:
    """Why a watched model's run cannot measure ``claim``, or None when it can."""
    w = cfg.watched
    if w is None:
        return None
    if claim.twins:
        return (f"compares twins ({claim.twins}): copies of one network trained from the same start on the same "
                f"batches. A watched training is one network; bnviz trains such twins side by side in its "
                f"{claim.preset} preset, on a page that follows no run folder")
    if not claim.needs(cfg):
        kinds = ", ".join(dict.fromkeys(w.kinds))
        return (f"needs batch norm, which standardizes each {w.noun} over the batch: this model's normalization "
                f"layers ({kinds}) standardize each example by its own statistics")
    return None


def judge(claim: Claim, run: RunView) -> Verdict:
    """``claim`` judged on ``run``; 'not measured' where the config lacks what it needs. Never raises."""
    try:
        why = watched_why(claim, run.cfg)
        if why is not None:
            return verdict(claim, not_measured(why))
        if not claim.needs(run.cfg):
            return verdict(claim, not_measured(claim.needs_why))
        if not run.snaps:
            return verdict(claim, not_measured("no snapshot yet: start the run"))
        return verdict(claim, claim.judge(run))
    except Exception as exc:  # one broken claim must not take the board down
        log.warning("evidence board: %s failed: %s", claim.id, exc, exc_info=True)
        return verdict(claim, not_measured(f"could not be computed ({type(exc).__name__}: {exc})"))


def evidence(snaps: tuple[Snapshot, ...] = (), config: ExperimentConfig | None = None,
             lr_points: Iterable[LrPoint] = ()) -> list[Verdict]:
    """Verdicts on every claim (in order) from a run's snapshots; never raises. ``lr_points``: the points of the
    learning-rate sweep of this config (present/lrrange.py), which C11 judges; without them it is not measured."""
    cfg = config if config is not None else ExperimentConfig()
    try:
        run = RunView(tuple(snaps or ()), cfg)
    except Exception as exc:  # noqa: BLE001 - malformed input: every claim is unmeasured, the board still draws
        log.warning("evidence board: %s", exc)
        return [verdict(c, not_measured(f"could not read the snapshots ({type(exc).__name__}: {exc})"))
                for c in CLAIMS]
    points = tuple(lr_points or ())
    return [judge(_with_points(c, points), run) for c in CLAIMS]


def _with_points(claim: Claim, points: tuple[LrPoint, ...]) -> Claim:
    """``claim``, judging the sweep's ``points`` where it reads them (C11)."""
    if claim.id != lrrange.C11.id:
        return claim
    return dataclasses.replace(claim, judge=functools.partial(lrrange.judge_c11, points=points))
