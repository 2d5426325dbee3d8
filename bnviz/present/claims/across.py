"""Verdicts across seeds: one configuration judged at several seeds, per claim how many seeds gave each verdict and
the median and range of its main figure (``Verdict.value``). Pure: the verdicts of each seed in, sentences out.

A seed's verdicts come from ``board.evidence`` at its run's final step; a seed whose run failed has none and is
counted and named as failed. The figure is written as the claim's judge writes it (through
:mod:`bnviz.present.numbers`), named as the claim's rule names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bnviz.present.claims.record import VERDICTS, Verdict
from bnviz.present.numbers import fmt, sci, times


def _ratio(x: float) -> str:
    """A ratio as the board says it aloud (2 significant digits, whole above 10), without its sign: '0.44', '3.0',
    '21'. Trailing zeros stay, so that a median and its range read at one precision."""
    return fmt(x, 2) if not math.isfinite(x) or abs(x) < 10 else times(x).removesuffix("×")


def _points(x: float) -> str:
    """A difference of two scores (fractions) in percentage points: '1.9'."""
    return f"{x * 100:.1f}"


@dataclass(frozen=True)
class Figure:
    """How a claim's main figure reads in a sentence: ``name`` with ``{}`` where the median goes (and a range
    after it), each number written by ``write``."""

    name: str
    write: Callable[[float], str]


FIGURES: Mapping[str, Figure] = {
    "C1": Figure("BN's drift {}× none's", _ratio),
    "C2": Figure("y drifted {}× as far as x̂", _ratio),
    "C3": Figure("max |ΔW| through BN {}", sci),
    "C4": Figure("max relative change of skew and kurtosis through BN {}", sci),
    "C5": Figure("share of sums near-Gaussian {}", lambda x: fmt(x, 2)),
    "C6": Figure("max |ΔW|, |ΔKL| under γ, β {}", sci),
    "C7": Figure("drift with BN after / before {}×", _ratio),
    "C8": Figure("BN's lead over noisy BN in mean score over training {} points", _points),
    "C9": Figure("best shape's lead over the Gaussian and BN {} points", _points),
    "C10": Figure("BN's β-smoothness {}× none's", _ratio),
}
PLAIN = Figure("figure {}", fmt)  # a claim without an entry here still reads, by its number alone


@dataclass(frozen=True)
class Across:
    """One claim judged at several seeds."""

    claim: str  # "C1".."C10" (any id the board judges)
    seeds: tuple[int, ...]  # every seed asked for, failed ones included, in order
    counts: Mapping[str, int]  # verdict -> number of seeds that gave it (only verdicts that occur, VERDICTS' order)
    failed: tuple[int, ...]  # seeds whose run failed (no verdict)
    values: tuple[float, ...]  # the finite figures of the judged seeds, in seed order
    figure: Figure

    @property
    def median(self) -> float | None:
        return float(np.median(self.values)) if self.values else None

    @property
    def low(self) -> float | None:
        return float(np.min(self.values)) if self.values else None

    @property
    def high(self) -> float | None:
        return float(np.max(self.values)) if self.values else None

    def sentence(self) -> str:
        """e.g. 'across 10 seeds (0–9): supported 9, mixed 1; BN's drift 0.44× none's [0.31–0.60]'."""
        head = f"across {len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''} ({seed_list(self.seeds)})"
        return f"{head}: {self.cell()}"

    def cell(self) -> str:
        """The counts and the figure without the seeds: 'supported 9, mixed 1; BN's drift 0.44× none's [0.31–0.60]'
        (a cell of the verdict table, whose heading names the seeds)."""
        parts = [f"{v} {n}" for v, n in self.counts.items()]
        if self.failed:
            parts.append(failed_text(dict.fromkeys(self.failed)))
        text = ", ".join(parts) or "no verdict"
        if self.median is not None and self.low is not None and self.high is not None:
            w = self.figure.write
            text += f"; {self.figure.name.format(w(self.median))}"
            if len(self.values) > 1:
                text += f" [{w(self.low)}–{w(self.high)}]"
        return text


def seed_list(seeds: Sequence[int]) -> str:
    """Seeds as a reader scans them: runs of consecutive seeds joined, '0–9', '0–3, 5, 7–9'."""
    out: list[str] = []
    ordered = sorted(set(seeds))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}–{ordered[j]}")
        i = j + 1
    return ", ".join(out)


def across(by_seed: Mapping[int, Sequence[Verdict] | None]) -> list[Across]:
    """Per claim (in the order the board judges them), its verdicts over the seeds of ``by_seed``: a seed maps to
    its run's verdicts, or to None when its run failed. Not-measured seeds count as 'not measured' and give no
    figure."""
    seeds = tuple(sorted(by_seed))
    failed = tuple(s for s in seeds if by_seed[s] is None)
    order: list[str] = []
    found: dict[str, dict[int, Verdict]] = {}
    for s in seeds:
        for v in by_seed[s] or ():
            if v.claim not in found:
                order.append(v.claim)
                found[v.claim] = {}
            found[v.claim][s] = v
    out = []
    for claim in order:
        got = found[claim]
        counts = {name: n for name in VERDICTS if (n := sum(v.verdict == name for v in got.values()))}
        counts.update({v.verdict: sum(w.verdict == v.verdict for w in got.values())  # a verdict word VERDICTS lacks
                       for v in got.values() if v.verdict not in counts})
        values = tuple(float(got[s].value) for s in seeds if s in got  # type: ignore[arg-type]
                       and got[s].verdict != "not measured" and _finite(got[s].value))
        out.append(Across(claim, seeds, counts, failed, values, FIGURES.get(claim, PLAIN)))
    return out


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(float(x))


def failed_text(by_seed: Mapping[int, Sequence[Verdict] | None]) -> str:
    """'seeds 4, 7 failed' for the seeds whose run failed ("" when none did)."""
    failed = [s for s, verdicts in by_seed.items() if verdicts is None]
    return f"seed{'s' if len(failed) > 1 else ''} {seed_list(failed)} failed" if failed else ""


def lines(by_seed: Mapping[int, Sequence[Verdict] | None]) -> dict[str, str]:
    """Claim id -> its across-seed sentence (what the board and the report print under a verdict)."""
    return {a.claim: a.sentence() for a in across(by_seed)}
