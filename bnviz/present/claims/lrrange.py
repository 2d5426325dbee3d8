"""C11 (Ioffe & Szegedy §3.3, Bjorck et al. 2018): BN lets the network train well over a wider range of learning
rates. Judged on the points of a learning-rate sweep (:mod:`bnviz.present.lrrange`): one run cannot measure it.

A rate *trains well* for a variant when that variant did not diverge there and its mean test score over training
is within C11_MARGIN of the best mean score any variant reached, without diverging, at any rate of the sweep. The best
of the sweep, not each variant's own: a network that learns nothing at every rate would otherwise be "within reach
of its best" everywhere. A variant's *width* is the longest run of neighbouring grid rates that train well, in decades
(log10 of its highest rate over its lowest; 0 for one rate or none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bnviz.present import views
from bnviz.present.claims.record import Claim, Judged, RunView, configured, not_measured
from bnviz.present.lrrange import LR_GRID, LrPoint, by_variant, on_grid
from bnviz.present.numbers import fmt
from bnviz.present.numbers import score as score_text

C11_MARGIN = 0.05  # trains well: mean test score over training within 5 points of the sweep's best
C11_WIDER = 0.9  # decades: at least two half-decade steps of the grid (0.477 + 0.523 for a 1-3-10 pair)
C11_SAME = 0.25  # decades: less than half a grid step wider counts as not wider
GRID_TEXT = ", ".join(f"{g:g}" for g in LR_GRID)
SWEEP_COMMAND = "python -m bnviz sweep --preset lr-range --grid lr=" + ",".join(f"{g:g}" for g in LR_GRID)


@dataclass(frozen=True)
class C11Numbers:
    best: float  # the best mean test score over training of any variant at any rate where it did not diverge
    best_at: tuple[str, float]  # (variant, rate) where it was reached
    good: dict[str, tuple[float, ...]]  # variant -> the rates at which it trains well
    spans: dict[str, tuple[float, float] | None]  # variant -> (lowest, highest) rate of its widest run
    widths: dict[str, float]  # variant -> its width in decades
    diverged: dict[str, tuple[float, ...]]  # variant -> the rates at which it diverged
    tokens: tuple[str, str]  # (BN's token, none's)
    wider: float  # BN's width minus none's, in decades
    score: str = "test accuracy"


def trains_well(p: LrPoint, best: float) -> bool:
    """Whether rate ``p.lr`` trains ``p.token`` well: it did not diverge and its mean is within the margin."""
    return p.diverged_at is None and math.isfinite(p.mean) and p.mean >= best - C11_MARGIN - 1e-12


def widest(good: Iterable[float], grid: Sequence[float] = LR_GRID) -> tuple[float, float] | None:
    """The longest run of neighbouring ``grid`` rates among ``good`` as (lowest, highest); the lower one of two
    equally long runs; None when no rate is good."""
    flags = [any(math.isclose(g, x, rel_tol=1e-9) for x in good) for g in grid]
    best: tuple[int, int] | None = None
    i = 0
    while i < len(grid):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(grid) and flags[j + 1]:
            j += 1
        if best is None or j - i > best[1] - best[0]:
            best = (i, j)
        i = j + 1
    return None if best is None else (grid[best[0]], grid[best[1]])


def width(span: tuple[float, float] | None) -> float:
    """A run of rates' width in decades (0 for none)."""
    return 0.0 if span is None else math.log10(span[1] / span[0])


def measure(points: Iterable[LrPoint], bn: str, none: str,
            grid: Sequence[float] = LR_GRID) -> C11Numbers | None:
    """C11's numbers from the sweep's ``points`` (only rates of ``grid`` count); None unless both variants have
    a point at every rate of ``grid``."""
    per = by_variant(p for p in points if on_grid(p.lr, grid))
    if any(len({p.lr for p in per.get(t, [])}) < len(grid) for t in (bn, none)):
        return None
    pts = [p for t in (bn, none) for p in per[t]]
    finite = [p for p in pts if math.isfinite(p.mean) and p.diverged_at is None]
    top = max(finite, key=lambda p: p.mean) if finite else None
    best = top.mean if top is not None else math.nan
    good = {t: tuple(p.lr for p in per[t] if trains_well(p, best)) for t in (bn, none)}
    spans = {t: widest(good[t], grid) for t in (bn, none)}
    widths = {t: width(spans[t]) for t in (bn, none)}
    diverged = {t: tuple(p.lr for p in per[t] if p.diverged_at is not None) for t in (bn, none)}
    return C11Numbers(best, (top.token, top.lr) if top else ("", math.nan), good, spans, widths, diverged,
                      (bn, none), widths[bn] - widths[none])


def rule_verdict(n: C11Numbers) -> str:
    """C11's rule on measured numbers."""
    return "supported" if n.wider >= C11_WIDER - 1e-9 else "refuted" if n.wider < C11_SAME else "mixed"


def span_text(span: tuple[float, float] | None) -> str:
    """'0.01–3', '0.3', or 'no rate'."""
    if span is None:
        return "no rate"
    return f"{span[0]:g}" if span[0] == span[1] else f"{span[0]:g}–{span[1]:g}"


def headline(n: C11Numbers, label: Callable[[str], str] = str) -> str:
    """What the sweep's figure says, through C11's rule only (``label``: how the figure names a variant)."""
    bn, none = (label(t) for t in n.tokens)
    said = {"supported": "trains well over a wider range of learning rates",
            "mixed": "trains well over a range of learning rates only slightly wider",
            "refuted": "trains well over no wider a range of learning rates"}[rule_verdict(n)]
    w_bn, w_none = (fmt(n.widths[t]) for t in n.tokens)
    return f"{bn} {said}: {w_bn} decades, {none} {w_none}"


def note(n: C11Numbers, regression: bool = False, label: Callable[[str], str] = str) -> str:
    """The figure's subtitle: the sweep's best and each variant's range (the board quotes the same)."""
    return (f"trains well: no divergence and mean {n.score} over training within {C11_MARGIN * 100:g} points of "
            f"the sweep's best, {score_text(n.best, regression)} ({label(n.best_at[0])} at lr {n.best_at[1]:g}); "
            + "; ".join(f"{label(t)}: {span_text(n.spans[t])} ({fmt(n.widths[t])} decades)" for t in n.tokens))


def judge_c11(r: RunView, points: tuple[LrPoint, ...] = ()) -> Judged:
    bn, none = r.find(("bn",), "before") or r.find(("bn",)), r.find(("none",))
    if bn is None or none is None:
        return not_measured(C11.needs_why)
    if not points:
        return not_measured(
            f"needs this network trained at each learning rate of {GRID_TEXT}: press \"Sweep the learning rate\" "
            f"on the Learning rates panel (or, for the lr-range preset, run: {SWEEP_COMMAND})")
    n = measure(points, bn, none)
    if n is None:
        have = min(len({p.lr for p in points if p.token == t and on_grid(p.lr)}) for t in (bn, none))
        return not_measured(f"{have} of the sweep's {len(LR_GRID)} learning rates are stored so far: let the sweep "
                            "finish (\"Sweep the learning rate\" on the Learning rates panel)")
    regression = r.cfg.task == "regression"
    n = C11Numbers(**{**n.__dict__, "score": views.score_name(r.cfg.task)})
    verdict = rule_verdict(n)
    figure = note(n, regression) + f"; {bn} wider by {fmt(n.wider)} decades"
    gone = "; ".join(f"{t} at lr {', '.join(f'{x:g}' for x in n.diverged[t])}" for t in (bn, none) if n.diverged[t])
    detail = (f"Within {C11_MARGIN * 100:g} points of the best mean {n.score} over training "
              f"({score_text(n.best, regression)}), {bn} trained well at lr {span_text(n.spans[bn])} "
              f"({fmt(n.widths[bn])} decades) and {none} at {span_text(n.spans[none])} ({fmt(n.widths[none])} "
              f"decades)." + (f" Diverged: {gone}." if gone else ""))
    return Judged(verdict, figure, detail, n.wider, n)


C11 = Claim(
    "C11", "BN trains well over a wider range of learning rates", "lr-range", "lr-range",
    needs=lambda c: configured(c, ("bn",)) and configured(c, ("none",)),
    needs_why="needs bn and none trained side by side at every rate of the sweep: open the lr-range preset",
    thresholds={"margin": C11_MARGIN, "wider": C11_WIDER, "same": C11_SAME},
    rule=f"a learning rate of the sweep ({GRID_TEXT}) trains a variant well if it did not diverge there and its "
         f"mean test score over training is within {C11_MARGIN * 100:g} points of the best mean any variant "
         f"reached at any rate without diverging; a variant's width is its longest run of neighbouring such rates, "
         f"in decades; "
         f"supported if BN's width exceeds none's by >= {C11_WIDER:g} decades (two grid steps); refuted if by "
         f"less than {C11_SAME:g} (not wider); mixed in between",
    meaning={
        "supported": ("So BN widens the range of learning rates that train well: with it, a rate far from the best "
                      "one still trains, where the plain network is too slow or blows up (Ioffe & Szegedy §3.3; "
                      "Bjorck et al. find that the larger rates BN allows are most of its benefit)."),
        "refuted": "In this sweep BN did not train well over a wider range of learning rates than the plain network.",
        "mixed": "BN's range of good learning rates is wider in this sweep, but by less than two grid steps.",
    },
    twins="BN against no normalization, at every learning rate of a sweep",
    judge=judge_c11,
)
