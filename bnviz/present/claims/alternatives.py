"""C9, the questioner's claim: for some data another distribution than the Gaussian would serve better.

Judged on normalizations that impose a shape (``bn_gauss``, ``bn_uniform``, ``bn_laplace``: BN's standardization,
then each value's rank in the batch mapped to that quantile of the target), trained from the same initial weights
on the same mini-batches: the imposed shape is the only difference between them. Plain ``bn`` keeps whatever shape
its input had. The figure is the test score's mean over training (the area under the learning curve, as C8 reads
it), so that a tie at the ceiling does not decide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bnviz.present import summary, views
from bnviz.present.claims.benefit import learning_area
from bnviz.present.claims.record import Claim, Judged, RunView, configured, not_measured
from bnviz.present.numbers import score as score_text

GAUSS, OTHERS = "bn_gauss", ("bn_uniform", "bn_laplace")
C9_GAP = 0.01  # a shape serves better when its mean test score over training is this much higher (1 point)


@dataclass(frozen=True)
class C9Numbers:
    areas: dict[str, float]  # token -> the test score's mean over training, for every shape compared and bn
    finals: dict[str, float]  # token -> the latest test score
    best: str  # the non-Gaussian shape with the highest area
    references: tuple[str, ...]  # the Gaussian ones it is compared with: bn_gauss, and bn where trained
    gaps: dict[str, float]  # reference -> area of ``best`` minus the reference's
    score: str = "test accuracy"
    finished: bool = True


def _c9(r: RunView) -> Judged:
    gauss = r.find((GAUSS,), "before") or r.find((GAUSS,))
    others = [t for t in (r.find((k,), "before") or r.find((k,)) for k in OTHERS) if t is not None]
    if gauss is None or not others:
        return not_measured(C9.needs_why)
    too_few = r.too_few()
    if too_few:
        return too_few
    bn = r.find(("bn",), r.placement(gauss))
    references = tuple(t for t in (gauss, bn) if t is not None)
    tokens = (*others, *references)
    curves = {t: views.train_stat(r.snaps, t, "test_accuracy") for t in tokens}
    areas = {t: learning_area(r.steps, curves[t]) for t in tokens}
    finals = {t: summary.final(c) for t, c in curves.items()}
    missing = [t for t in tokens if math.isnan(areas[t])]
    if missing:
        return not_measured(f"no finite test score: {'; '.join(r.why_missing(t) for t in missing)}")
    best = max(others, key=lambda t: areas[t])
    gaps = {ref: areas[best] - areas[ref] for ref in references}
    beats = [ref for ref in references if gaps[ref] > C9_GAP]
    verdict = "supported" if len(beats) == len(references) else "refuted" if not beats else "mixed"
    regression = r.cfg.task == "regression"
    score = views.score_name(r.cfg.task)
    finished = int(r.steps[-1]) >= r.cfg.steps

    def pct(x: float) -> str:
        return score_text(x, regression)

    figure = (f"{score} over training (mean, the area under the curve): "
              + ", ".join(f"{t} {pct(areas[t])}" for t in tokens)
              + f"; {'at the end' if finished else f'so far (step {int(r.steps[-1]):,})'}: "
              + ", ".join(f"{t} {pct(finals[t])}" for t in tokens))
    said = "; ".join(f"{abs(g) * 100:.1f} points {'above' if g > 0 else 'below'} {ref}" for ref, g in gaps.items())
    if verdict == "supported":
        detail = (f"On this data {best} trained better than the imposed Gaussian and than BN's own shape: its "
                  f"{score} over training averaged {pct(areas[best])}, {said}.")
    elif verdict == "refuted":
        detail = (f"On this data no other shape beat the Gaussian: the best, {best}, averaged {pct(areas[best])} "
                  f"{score} over training, {said}.")
    else:
        detail = (f"On this data {best} averaged {pct(areas[best])} {score} over training, {said}: better than "
                  f"{', '.join(beats)} only.")
    return Judged(verdict, figure, detail, max(gaps.values()),
                  C9Numbers(areas, finals, best, references, gaps, score, finished))


C9 = Claim(
    "C9", "For some data another shape than the Gaussian serves better", "shapes", "training",
    needs=lambda c: configured(c, (GAUSS,)) and configured(c, OTHERS),
    needs_why="needs bn_gauss and bn_uniform or bn_laplace trained side by side (and bn, for BN's own shape): "
              "open the shapes preset",
    thresholds={"gap": C9_GAP},
    rule=f"supported if a normalization that imposes a non-Gaussian shape (uniform or Laplace) has a mean test "
         f"score over training more than {C9_GAP * 100:.0f} point above both the one that imposes the Gaussian "
         "and plain BN; refuted if it is above neither by that much; mixed otherwise (the score is test accuracy, "
         "or R² of a regression, counted as 0 below 0)",
    meaning={
        "supported": ("So the Gaussian is not the best shape for every data: here a layer input forced into another "
                      "shape trained better. The Gaussian is the natural default (the shape sums of many inputs "
                      "take, C5, and the one two moments describe, C4), not a law."),
        "refuted": ("So on this data the Gaussian served at least as well as the other shapes: forcing a uniform or "
                    "heavy-tailed input did not help, and BN, which fixes only two moments, loses nothing by "
                    "leaving the shape alone."),
        "mixed": ("So the evidence is split: another shape beat one of the Gaussian variants but not the other. On "
                  "this data the choice of shape matters little."),
    },
    twins="normalizations that impose different shapes",
    judge=_c9,
)
