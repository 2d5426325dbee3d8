"""Claims judged by what BN's benefit is: C8 (Santurkar et al.: not a reduction of internal covariate shift),
from the test score over training, the drift of noisy BN, and the gradient shift ‖G − G′‖."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bnviz.present import summary, views
from bnviz.present.claims.record import Claim, Judged, RunView, configured, not_measured
from bnviz.present.numbers import fmt, times
from bnviz.present.numbers import score as score_text

C8_ACC, C8_DRIFT, C8_ICS = 0.03, 1.5, 0.8  # 3 points of test score; 1.5x drift; BN's ‖G − G′‖ >= 0.8x none's
C8_LEVELS = (0.9, 0.95)  # test scores whose first crossing the board reports for each variant


@dataclass(frozen=True)
class C8Numbers:
    area_bn: float  # the test score's mean over training (area under its curve / steps): the rule's figure
    area_noisy: float
    area_gap: float  # BN minus noisy BN
    acc_bn: float  # latest test score: accuracy, or R² of a regression
    acc_noisy: float
    acc_gap: float  # BN minus noisy BN
    drift_bn: float
    drift_noisy: float
    drift_ratio: float
    acc_none: float | None = None
    ics_bn: float | None = None  # Santurkar's ‖G − G′‖, mean over layers and steps (summary.gradient_shift)
    ics_none: float | None = None
    ics_ratio: float | None = None
    cos_bn: float | None = None
    cos_none: float | None = None
    ics_steps: tuple[int, ...] = ()
    reach_bn: tuple[int | None, ...] = ()  # first step at each of C8_LEVELS (None: not reached)
    reach_noisy: tuple[int | None, ...] = ()
    score: str = "test accuracy"  # views.score_name: or "test R²"
    finished: bool = True  # whether the run had reached its last step (else the scores are "so far")


def learning_area(steps: np.ndarray, score: np.ndarray) -> float:
    """The mean of a test score over training: the area under its curve (trapezoids) / the steps it spans.

    Two variants that both end at the ceiling tie on their final score; this counts how soon each got there.
    A score below 0 (an R² worse than predicting the mean) counts as 0. NaN with fewer than 2 points.
    """
    steps, score = np.asarray(steps, dtype=float), np.clip(np.asarray(score, dtype=float), 0, None)
    if len(steps) < 2 or steps[-1] <= steps[0]:
        return math.nan
    return float(np.sum((score[1:] + score[:-1]) / 2 * np.diff(steps)) / (steps[-1] - steps[0]))


def first_reach(steps: np.ndarray, score: np.ndarray, level: float) -> int | None:
    """The first step at which ``score`` is at least ``level`` (None: never)."""
    hit = np.flatnonzero(np.asarray(score) >= level)
    return int(steps[hit[0]]) if len(hit) else None


def _reach_text(level: float, a: int | None, b: int | None, tokens: tuple[str, str]) -> str:
    said = [f"{t} {'step ' + format(s, ',') if s is not None else 'never'}" for t, s in zip(tokens, (a, b))]
    return f"{level:.0%} first at " + ", ".join(said)


def shift_note(shift: summary.GradientShift, labels: dict) -> str:
    """The gradient shift as the board and the Stability chart quote it."""
    return (f"‖G − G′‖, mean over layers at {len(shift.steps)} steps: "
            + ", ".join(f"{labels.get(t, t)} {fmt(v)}" for t, v in shift.l2.items())
            + "; cosine " + ", ".join(f"{labels.get(t, t)} {fmt(v)}" for t, v in shift.cos.items()))


def _c8(r: RunView) -> Judged:
    bn, noisy = r.find(("bn",), "before") or r.find(("bn",)), r.find(("bn_noisy",))
    if bn is None or noisy is None:
        return not_measured(C8.needs_why)
    too_few = r.too_few()
    if too_few:
        return too_few
    score = views.score_name(r.cfg.task)
    curve = {t: views.train_stat(r.snaps, t, "test_accuracy") for t in (bn, noisy)}
    acc = {t: summary.final(curve[t]) for t in (bn, noisy)}
    area = {t: learning_area(r.steps, curve[t]) for t in (bn, noisy)}
    L = r.last_layer
    d_bn = summary.drift_per_snapshot(r.snaps, bn, L, views.act_stage(r.snaps, bn, L) or "y")
    d_noisy = summary.drift_per_snapshot(r.snaps, noisy, L, views.act_stage(r.snaps, noisy, L) or "y")
    if any(math.isnan(v) for v in (acc[bn], acc[noisy], area[bn], area[noisy], d_bn, d_noisy)):
        return not_measured(f"no finite {score} or drift: {r.why_missing(noisy)}; {r.why_missing(bn)}")
    gap, area_gap = acc[bn] - acc[noisy], area[bn] - area[noisy]
    d_ratio = summary.ratio(d_noisy, d_bn)
    as_well, unstable = area_gap <= C8_ACC, d_ratio > C8_DRIFT
    reach = {t: tuple(first_reach(r.steps, curve[t], level) for level in C8_LEVELS) for t in (bn, noisy)}
    finished = int(r.steps[-1]) >= r.cfg.steps
    regression = r.cfg.task == "regression"

    def pct(x: float | None) -> str:
        return score_text(x, regression)

    numbers: dict[str, float] = dict(area_bn=area[bn], area_noisy=area[noisy], area_gap=area_gap, acc_bn=acc[bn],
                                     acc_noisy=acc[noisy], acc_gap=gap, drift_bn=d_bn, drift_noisy=d_noisy,
                                     drift_ratio=d_ratio)  # C8Numbers' measured floats
    ics_steps: tuple[int, ...] = ()
    none = r.find(("none",))
    if none is not None:
        numbers["acc_none"] = summary.final(views.train_stat(r.snaps, none, "test_accuracy"))
    latest = ", ".join(f"{t} {pct(numbers[k])}" for t, k in ((bn, "acc_bn"), (noisy, "acc_noisy"), (none, "acc_none"))
                       if t is not None)
    figure = (f"{score} over training (mean, the area under the curve): {bn} {pct(area[bn])}, {noisy} "
              f"{pct(area[noisy])} (gap {area_gap * 100:.1f} points); "
              + "; ".join(_reach_text(lv, a, b, (bn, noisy)) for lv, a, b in zip(C8_LEVELS, reach[bn], reach[noisy]))
              + f"; {'at the end' if finished else f'so far (step {int(r.steps[-1]):,})'}: {latest}; drift of the "
              f"last layer's activation input per snapshot / std over {r.span()}: {noisy} {fmt(d_noisy)} vs {bn} "
              f"{fmt(d_bn)} (ratio {fmt(d_ratio)})")
    ics_says = None
    shift = summary.gradient_shift(r.snaps, (bn, none), len(r.cfg.widths)) if none is not None else None
    if shift is not None:
        i_bn, i_none = shift.l2[bn], shift.l2[none]
        i_ratio = summary.ratio(i_bn, i_none)
        ics_says = i_ratio >= C8_ICS
        numbers.update(ics_bn=i_bn, ics_none=i_none, ics_ratio=i_ratio, cos_bn=shift.cos[bn],
                       cos_none=shift.cos[none])
        ics_steps = shift.steps
        figure += f"; gradient shift {shift_note(shift, {})} (ratio {fmt(i_ratio)})"
    noisy_says = as_well if unstable else None  # noise that did not destabilize tests nothing
    votes = [v for v in (noisy_says, ics_says) if v is not None]
    parts = []
    if noisy_says is None:
        parts.append(f"The injected noise barely moved the distributions (noisy BN drifted {times(d_ratio)} as "
                     "much as BN), so the noisy-BN test is inconclusive.")
    else:
        parts.append(f"Noisy BN's distributions drifted {times(d_ratio)} as much as BN's, and its {score} "
                     f"over training was {abs(area_gap) * 100:.1f} points {'below' if area_gap > 0 else 'above'} "
                     f"BN's{': about as well' if as_well else ': clearly worse'}.")
    if ics_says is not None:
        parts.append(f"BN's gradient shift ‖G − G′‖ is {times(numbers['ics_ratio'])} none's"
                     f"{', not smaller' if ics_says else ', smaller'} (cosine of G and G′: "
                     f"{fmt(numbers['cos_bn'])} with BN vs {fmt(numbers['cos_none'])} without).")
    if votes and all(votes):
        verdict = "supported"
    elif votes and not any(votes):
        verdict = "refuted"
    else:
        verdict = "mixed"
    measured = C8Numbers(**numbers, ics_steps=ics_steps, reach_bn=reach[bn], reach_noisy=reach[noisy], score=score,
                         finished=finished)
    return Judged(verdict, figure, " ".join(parts), area_gap, measured)


C8 = Claim(
    "C8", "BN's benefit is not less covariate shift (Santurkar)", "santurkar", "stability",
    needs=lambda c: configured(c, ("bn",)) and configured(c, ("bn_noisy",)),
    needs_why="needs bn and bn_noisy trained side by side (and none, for the gradient shift): open the "
              "santurkar preset",
    thresholds={"score": C8_ACC, "drift": C8_DRIFT, "ics": C8_ICS},
    rule=f"supported if noisy BN trains about as well as BN (its test score's mean over training, the area "
         f"under its learning curve, within {C8_ACC * 100:.0f} points of BN's, so that a tie at the ceiling does "
         f"not decide it) while drifting > {C8_DRIFT}x more, and BN's gradient shift ‖G − G′‖ is not smaller "
         f"than none's (>= {C8_ICS}x); refuted if both point the other way; mixed otherwise (the score is test "
         "accuracy, or R² of a regression, counted as 0 below 0)",
    meaning={
        "supported": ("So a steady input distribution is not what makes BN work: noisy BN trains about as well with "
                      "less stable distributions, and BN does not even reduce the gradient shift. Santurkar et al. "
                      "credit a smoother loss landscape instead."),
        "refuted": "In this run the evidence points the other way: stability and BN's benefit go together here.",
        "mixed": "The evidence is split in this run: one test says stability is not what helps, the other does not.",
    },
    twins="BN against noisy BN and against no normalization",
    judge=_c8,
)


# Smoother: BN's median below half of none's. BN's β-smoothness relative to none's varies by a factor of about 1.7
# (one standard deviation) between seeds on santurkar.
C10_FACTOR = 2.0
SMOOTHNESS = (("loss_range", "the loss's variation along the gradient"),
              ("grad_change", "the gradient's change along it (gradient predictiveness)"),
              ("beta", "the effective β-smoothness"))


@dataclass(frozen=True)
class C10Numbers:
    bn: dict[str, float]  # quantity -> BN's median over the snapshots where it was measured
    none: dict[str, float]
    ratios: dict[str, float]  # quantity -> BN's / none's
    smoother: tuple[str, ...]  # the quantities on which BN is smoother by more than C10_FACTOR
    tokens: tuple[str, str]  # (BN's token, none's)


def _c10(r: RunView) -> Judged:
    bn, none = r.find(("bn",), "before") or r.find(("bn",)), r.find(("none",))
    if bn is None or none is None:
        return not_measured(C10.needs_why)
    measured = {t: summary.smoothness(r.snaps, t) for t in (bn, none)}
    if any(m is None for m in measured.values()):
        return not_measured(f"needs Santurkar's smoothness at 2 or more steps (measured every {r.cfg.ics_every} "
                            "steps, with the gradient shift): let the run go on")
    m_bn, m_none = measured[bn], measured[none]
    assert m_bn is not None and m_none is not None
    values = {t: {q: float(getattr(m, q)) for q, _ in SMOOTHNESS} for t, m in ((bn, m_bn), (none, m_none))}
    ratios = {q: summary.ratio(values[bn][q], values[none][q]) for q, _ in SMOOTHNESS}
    if any(math.isnan(v) for v in ratios.values()):
        return not_measured(f"no finite smoothness: {r.why_missing(bn)}; {r.why_missing(none)}")
    smoother = tuple(q for q, _ in SMOOTHNESS if ratios[q] < 1 / C10_FACTOR)
    verdict = "supported" if len(smoother) == len(SMOOTHNESS) else "refuted" if not smoother else "mixed"
    figure = "medians over the measured steps, BN vs none: " + "; ".join(
        f"{words} {fmt(values[bn][q])} vs {fmt(values[none][q])} (ratio {fmt(ratios[q])})" for q, words in SMOOTHNESS)
    names = dict(SMOOTHNESS)
    if verdict == "supported":
        detail = (f"Along the gradient, BN's loss varied {times(ratios['loss_range'])} as much as without "
                  f"normalization, its gradient changed {times(ratios['grad_change'])} as much, and its effective "
                  f"β-smoothness was {times(ratios['beta'])} none's: a smoother landscape.")
    elif verdict == "refuted":
        detail = ("Along the gradient, BN's landscape was not smoother on any of the three measures: "
                  + ", ".join(f"{names[q]} {times(ratios[q])} none's" for q, _ in SMOOTHNESS) + ".")
    else:
        detail = ("BN was smoother on " + ", ".join(names[q] for q in smoother) + " only: "
                  + ", ".join(f"{names[q]} {times(ratios[q])} none's" for q, _ in SMOOTHNESS) + ".")
    return Judged(verdict, figure, detail, ratios["beta"],
                  C10Numbers(values[bn], values[none], ratios, smoother, (bn, none)))


C10 = Claim(
    "C10", "BN makes the loss landscape smoother (Santurkar)", "santurkar", "stability",
    needs=lambda c: configured(c, ("bn",)) and configured(c, ("none",)),
    needs_why="needs bn and none trained side by side: open the santurkar preset",
    thresholds={"factor": C10_FACTOR},
    rule=f"at the steps where the gradient shift is measured, step from the weights along the gradient (sizes "
         f"a multiple of the learning rate) and take the loss's variation, the gradient's change and the "
         f"effective β-smoothness; supported if BN's median of all three is below 1/{C10_FACTOR:g} of none's; "
         "refuted if none of them is; mixed otherwise",
    meaning={
        "supported": ("So this is what BN does instead of fixing a distribution: along the direction training "
                      "moves, the loss and its gradient change less, so the gradient predicts the next step "
                      "better and larger steps are safe (Santurkar et al.)."),
        "refuted": ("In this run BN's loss landscape was not smoother along the gradient than without "
                    "normalization: Santurkar's explanation does not show here."),
        "mixed": "The landscape was smoother with BN on some measures only: the evidence is split in this run.",
    },
    twins="BN against no normalization",
    judge=_c10,
)
