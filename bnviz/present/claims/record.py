"""What a claim is: one declarative record (statement, preset and panel, what it needs, its rule with its
thresholds, its judge), and what judging it on one run gives (a Verdict)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bnviz.config import ExperimentConfig, split_variant
from bnviz.measure.snapshot import Snapshot
from bnviz.present import summary, views

VERDICTS = ("supported", "refuted", "mixed", "not measured")
BN_KINDS = ("bn", "bn_noaffine", "bn_noisy")  # per-unit affine maps of their input (layer norm is not)
# A watched model's modules that standardize each unit over the batch (bnviz.watch's other kinds, LayerNorm,
# GroupNorm and InstanceNorm, standardize each example by its own statistics: no per-unit affine map).
BATCH_NORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm")


@dataclass(frozen=True)
class Judged:
    """What a judge finds on one run, before the board names the claim."""

    verdict: str  # one of VERDICTS
    figure: str  # the measured figure(s), with numbers
    detail: str  # 1-3 sentences explaining the verdict from the numbers
    value: float | None = None  # the main measured number (None when not measured)
    numbers: Any = None  # every measured number, as the claim's typed record (C1Numbers ...)


def not_measured(reason: str) -> Judged:
    """A judge's answer when the run cannot measure its claim, with the reason (and what would)."""
    return Judged("not measured", "not measured in this run", reason)


@dataclass(frozen=True)
class Claim:
    """One claim of docs/claims.md, declared once: the board, the lessons, the chart titles and the report
    read it from here."""

    id: str  # "C1".."C10"
    title: str  # the claim in a few words, as the board's heading (its verdict is about this sentence)
    preset: str  # key of config.PRESETS that measures it
    panel: str  # key of config.PANELS where the evidence is shown
    needs: Callable[[ExperimentConfig], bool]  # whether a config trains what the judge compares
    needs_why: str  # what it needs, in words, when a config does not have it
    thresholds: Mapping[str, float]  # the rule's numbers, by name (docs/claims.md quotes each)
    rule: str  # the rule, in words, with its thresholds
    judge: Callable[[RunView], Judged] = field(repr=False)
    meaning: Mapping[str, str] = field(default_factory=dict)  # verdict -> what it means for the student's question
    twins: str = ""  # what the judge compares across twin networks ("" for a claim one network can show)


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one run."""

    claim: str  # "C1".."C10"
    title: str  # the claim in a few words (docs/claims.md)
    verdict: str  # one of VERDICTS
    figure: str  # the measured figure(s), with numbers
    threshold: str  # the rule the verdict applies
    detail: str  # 1-3 sentences explaining the verdict from the numbers (a lesson's revealed answer)
    panel: str  # key of config.PANELS where the evidence is shown
    value: float | None  # the main measured number (None when not measured)
    numbers: Any = field(default=None, compare=False, hash=False)  # every measured number, typed
    preset: str = ""  # the preset that measures the claim (offered when this run cannot)


def configured(cfg: ExperimentConfig, kinds: tuple[str, ...], placement: str | None = None) -> bool:
    """Whether the config trains a variant of one of ``kinds`` (at ``placement``, if given)."""
    return any(split_variant(t)[0] in kinds and (placement is None or cfg.placement_of(t) == placement)
               for t in cfg.variants)


def gap(a: float, b: float) -> float:
    """|a - b| where two infinite KLs (both have a point mass) count as equal."""
    if math.isinf(a) and math.isinf(b) and a == b:
        return 0.0
    return abs(a - b)


class RunView:
    """The snapshots and config of one run, with the lookups every judge needs."""

    def __init__(self, snaps: tuple[Snapshot, ...], cfg: ExperimentConfig) -> None:
        self.snaps, self.cfg = tuple(snaps), cfg
        self.steps = views.steps(self.snaps)
        tokens = [t for s in self.snaps for t in s.variants]
        self.tokens = list(dict.fromkeys([t for t in cfg.variants if t in tokens] + tokens))
        self.last_layer = len(cfg.widths) - 1
        self.noun = views.unit_noun(cfg)  # "unit", or a conv layer's "channel"

    def latest(self, token: str) -> int | None:
        """Index of the latest snapshot in which ``token`` has layers (None: never, or diverged at once)."""
        for i in range(len(self.snaps) - 1, -1, -1):
            v = self.snaps[i].variants.get(token)
            if v is not None and v.layers:
                return i
        return None

    def latest_snapshot(self, token: str) -> Snapshot:
        """The latest snapshot in which ``token`` has layers, for a token chosen as having one (``find``)."""
        i = self.latest(token)
        assert i is not None, f"{token} has no snapshot with layers"
        return self.snaps[i]

    def placement(self, token: str) -> str:
        return self.cfg.placement_of(token)

    def find(self, kinds: tuple[str, ...], placement: str | None = None) -> str | None:
        """The first trained token whose kind is in ``kinds`` (in that order of preference) and placement."""
        for kind in kinds:
            for t in self.tokens:
                if split_variant(t)[0] == kind and (placement is None or kind == "none" or
                                                    self.placement(t) == placement) and self.latest(t) is not None:
                    return t
        return None

    def bn_tokens(self) -> list[str]:
        """Every trained BN variant (BN_KINDS) that has layers."""
        return [t for t in self.tokens if split_variant(t)[0] in BN_KINDS and self.latest(t) is not None]

    def too_few(self) -> Judged | None:
        """'not measured' while the run has fewer snapshots than a drift needs."""
        if len(self.snaps) < summary.MIN_SNAPS:
            return not_measured(f"needs at least {summary.MIN_SNAPS} snapshots, has {len(self.snaps)}: "
                                "let the run go on")
        return None

    def span(self) -> str:
        return summary.window_text(self.snaps)

    def why_missing(self, token: str) -> str:
        at = views.diverged_at(self.snaps, token)
        return f"{token} diverged at step {at}" if at is not None else f"{token} has no finite values there"

    def per_unit(self, layer: int) -> bool:
        """Whether ``layer`` normalizes each unit over the batch: every layer bnviz builds, and a watched
        model's batch norms (BATCH_NORMS), not its layer, group or instance norms."""
        return self.cfg.watched is None or self.cfg.watched.kinds[layer] in BATCH_NORMS

    def unit_series(self, tokens: list[str], stages: tuple[str, ...]) -> list[dict]:
        """Per tracked unit of every layer of ``tokens`` that normalizes per unit (:meth:`per_unit`) at their
        latest snapshot: stats of BN's input and ``stages``. BN's input is x with BN before the activation, a
        with BN after it. Units with a NaN are skipped."""
        out = []
        for token in tokens:
            i = self.latest(token)
            if i is None:
                continue
            snap = self.snaps[i]
            src = "x" if self.placement(token) == "before" else "a"
            for layer in filter(self.per_unit, range(len(snap.variants[token].layers))):
                found = {name: views.stage_of(snap, token, layer, name) for name in (src, *stages)}
                sts = {name: st for name, st in found.items() if st is not None}
                if len(sts) < len(found):  # a stage this layer does not have
                    continue
                for u in sts[src].units[1:]:
                    row: dict = {"token": token, "layer": layer, "unit": u, "step": snap.step}
                    for name, st in sts.items():
                        key = "in" if name == src else name
                        row[key] = {k: st.stat(k, u) for k in ("mean", "std", "skew", "kurtosis", "shapiro_w",
                                                               "kl_gaussian")}
                    if not any(math.isnan(v) for d in row.values() if isinstance(d, dict) for v in d.values()):
                        out.append(row)
        return out
