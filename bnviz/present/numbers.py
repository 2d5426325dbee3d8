"""How a number is written anywhere bnviz shows one: the board, chart titles and subtitles, lessons, the report.

One home, so that the same quantity reads the same on every surface a class compares (a verdict and the chart
its button opens quote identical digits).
"""

from __future__ import annotations

import math


def fmt(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, 'inf', or 'n/a' (None or NaN)."""
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:#.{digits}g}"  # '#' keeps trailing zeros (1.00, not 1): the precision stays visible
    return text[:-1] if text.endswith(".") else text


def sci(x: float | None) -> str:
    """A tiny number (1.3e-15): 'n/a' for None or NaN, 'inf' for an infinity."""
    if x is None or math.isnan(x):
        return "n/a"
    return fmt(x) if math.isinf(x) else f"{x:.1e}"


def pct(x: float | None) -> str:
    """A score as a percentage with one decimal (99.4%), or 'n/a'."""
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{float(x):.1%}"


def score(x: float | None, regression: bool = False) -> str:
    """A test score: accuracy as a percentage (99.4%), R² of a regression with 3 significant digits (0.723)."""
    return fmt(x) if regression else pct(x)


def times(ratio: float | None) -> str:
    """A ratio of two measures as a class reads it aloud: '2.1×', '14×'; 'n/a' when unknown."""
    if ratio is None or math.isnan(ratio):
        return "n/a"
    if math.isinf(ratio):
        return "∞×"
    return f"{ratio:.2g}×" if ratio < 10 else f"{ratio:.0f}×"


def as_much(ratio: float | None, what: str = "") -> str:
    """'2.1× as much as', 'as much as' (within 5%), for prose that compares two measures."""
    if ratio is not None and math.isfinite(ratio) and abs(ratio - 1) < 0.05:
        return f"as much {what}as".replace("  ", " ")
    return f"{times(ratio)} as much {what}as".replace("  ", " ")


def kl(x: float) -> str:
    """A KL divergence on a chart: '∞' for a point mass (no density), '–' when unknown, else as :func:`fmt`."""
    if math.isnan(x):
        return "–"
    return "∞" if math.isinf(x) else fmt(x)


def wpk(w: float, p: float, kl_: float, kl_sep: str = "  ") -> str:
    """The normality line written on every histogram, e.g. ``W=0.993  p=0.12  KL=0.00412`` (``kl_sep="<br>"``:
    KL on a line of its own, for a narrow cell)."""
    return f"W={fmt(w)}  p={p:.2g}{kl_sep}KL={kl(kl_)}"


def steps_span(first: int, last: int) -> str:
    """'steps 1,500–3,000'."""
    return f"steps {first:,}–{last:,}"
