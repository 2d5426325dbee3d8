"""The evidence board: every claim of docs/claims.md judged by numbers measured in the current run.

A verdict is computed, never written in advance: each claim has a rule with a threshold (stated in the
verdict), the run's snapshots give the numbers, and the same code says "supported" or "refuted" as the
numbers fall. Missing evidence (a variant the run does not train, too few snapshots, a diverged twin)
reads "not measured", with the preset that would measure it. Pure: snapshots in, verdicts out; every
number is read through :mod:`bnviz.present.views`, the same functions the figures use.

Drift conventions (C1, C2, C7, C8): Wasserstein-1 distance of a layer's stage (the mean over all units of
each unit's W1, as the summarizer stores it) in units of that stage's pooled standard deviation, so that
stages of different scales compare. "Per snapshot": W1 to the previous snapshot / std at the same snapshot,
averaged over the second half of the snapshots (steps >= last step / 2), once the first fast transient is
over. "From the first": W1 from the first snapshot to the latest / std at the first snapshot.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from bnviz.measure import clt
from bnviz import stats
from bnviz.present import views
from bnviz.config import INPUT_DISTS, SYNTHETIC_INPUTS, ExperimentConfig, split_variant
from bnviz.measure.snapshot import POOLED, Snapshot

log = logging.getLogger(__name__)

VERDICTS = ("supported", "refuted", "mixed", "not measured")

# id -> (title in a few words, key of config.PANELS where the evidence is shown)
CLAIMS = {
    "C1": ("One layer's input stays the same over training", "stability"),
    "C2": ("γ and β move the distribution again", "gamma-beta"),
    "C3": ("BN makes layer inputs Gaussian", "normality"),
    "C4": ("Gaussian because two numbers describe it", "normality"),
    "C5": ("A sum of many inputs is Gaussian (CLT)", "why-gaussian"),
    "C6": ("A linear map does not change the shape", "gamma-beta"),
    "C7": ("Normalizing after the nonlinearity cannot fix the distribution", "layer"),
    "C8": ("BN's benefit is not less covariate shift (Santurkar)", "stability"),
}

MIN_SNAPS = 4  # a drift needs successive snapshots, and a "second half" at least two of them
C1_SUPPORT = 0.5  # BN's drift at most half of none's: a factor 2 is well outside snapshot-to-snapshot noise
C2_SUPPORT, C2_REFUTE = 1.5, 1.1  # y's drift vs x_hat's: 1.5x is "measurably more", < 1.1x is "no more"
# x_hat and y are float32 affine images of x, so rounding alone moves W and KL by ~1e-8 (measured: < 1e-7);
# these tolerances are far above that and at the estimators' own noise (KL sd 0.011 nats, W ~1e-3 at n=512,
# stats.normality): a reshaping smaller than them could not be told from sampling noise anyway.
TOL_W, TOL_KL = 1e-3, 0.01
TOL_MOMENT = 1e-3  # skew, kurtosis: relative to max(1, |value|); float32 rounding gives ~1e-7
CLT_W, CLT_KL = 0.995, 0.02  # "Gaussian" at fan-in 256 (16,000 pooled values: a Gaussian reads W 0.9996, KL 0)
RUN_W, RUN_KL = 0.98, 0.05  # "near-Gaussian" for a run's layer: median over tracked units of 512 probe values
STD_CHECK_VAR = 100 * clt.BN_EPS  # x_hat's std is sqrt(var / (var + eps)) >= 0.995 from here on
C6_PAIRS = ((2.5, -1.0), (0.3, 0.7), (-1.7, 2.0))  # (gamma, beta): stretch, shrink, flip
C6_TOL = 1e-6  # 64 float64 quantiles: an affine map changes W and KL by ~1e-15 through rounding alone
C7_DRIFT, C7_W = 1.2, 0.01  # "after" drifts > 1.2x more / its received input's median W lower by > 0.01
C8_ACC, C8_DRIFT, C8_ICS = 0.03, 1.5, 0.8  # 3 points of test accuracy; 1.5x drift; BN's ||G - G'|| >= 0.8x
C8_LEVELS = (0.9, 0.95)  # test scores whose first crossing the board reports for each variant
CLT_FAN_INS = clt.FAN_INS
BN_KINDS = ("bn", "bn_noaffine", "bn_noisy")  # per-unit affine maps of their input (layer norm is not)
C5_LISTED = 6  # layers a C5 figure lists one by one


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one run."""

    claim: str  # "C1".."C8"
    title: str  # the claim in a few words (docs/claims.md)
    verdict: str  # one of VERDICTS
    figure: str  # the measured figure(s), with numbers
    threshold: str  # the rule the verdict applies
    detail: str  # 1-3 sentences explaining the verdict from the numbers (a lesson's revealed answer)
    panel: str  # key of config.PANELS where the evidence is shown
    value: float | None  # the main measured number (None when not measured)
    numbers: "Numbers | None" = field(default=None, compare=False, hash=False)  # every measured number, typed


# Each claim's measured numbers, as the lessons quote them (bnviz.present.lessons): one typed record per claim.
# Drifts are relative (W1 / pooled std, see the module docstring); None where the run has no such variant.

@dataclass(frozen=True)
class C1Numbers:
    variant: str  # the BN variant compared with none
    bn: float  # drift per snapshot, second half, BN
    none: float  # the same without normalization
    bn_first: float  # drift from the first snapshot to the latest, BN
    none_first: float
    stage_bn: str  # the stage the activation receives: y (BN before it) or x
    stage_none: str


@dataclass(frozen=True)
class C2Numbers:
    variant: str
    y: float  # drift of y from the first snapshot, last hidden layer
    x_hat: float  # the same for x_hat
    y_pace: float  # drift per snapshot, second half
    x_hat_pace: float
    pace_ratio: float
    gamma_mean: float  # over the layer's units, at the latest snapshot
    beta_mean: float
    rate_weight: float  # median relative change per snapshot, ||Δp|| / ||p||
    rate_gamma: float
    rate_beta: float
    none: float | None = None  # drift from the first snapshot of what the plain network's activation receives
    none_pace: float | None = None
    control_ratio: float | None = None  # y / x_hat for bn_noaffine (y = x_hat): what "no move" reads


@dataclass(frozen=True)
class C3Numbers:
    max_dw: float  # largest |W(x_hat or y) - W(x)| over unit series
    max_dkl: float
    median_w_in: float  # W of what BN receives
    min_w_in: float
    n_series: int


@dataclass(frozen=True)
class C4Numbers:
    max_dskew: float  # relative change through BN, largest over unit series
    max_dkurtosis: float
    max_abs_mean: float  # |mean of x_hat|
    max_abs_std_dev: float  # |std of x_hat - 1|
    n_series: int


@dataclass(frozen=True)
class C5Layer:
    layer: int  # 1-based
    w: float  # median over tracked units of x = Wu + b
    kl: float
    fan_in: int  # inputs each unit sums (fan_in)


@dataclass(frozen=True)
class C5Numbers:
    share_gaussian: float
    gaussian: tuple[str, ...]  # the cases that reach the Gaussian
    not_gaussian: tuple[str, ...]
    run_dist: str  # the input distribution this run's data follows
    layers: tuple[C5Layer, ...] = ()  # this run's layers


@dataclass(frozen=True)
class C6Numbers:
    max_dw: float
    max_dkl: float
    n_units: int
    variant: str
    stage: str


@dataclass(frozen=True)
class C7Side:
    """What the next layer receives, with BN on one side of the activation (medians over tracked units)."""

    w: float
    kl: float
    skew: float
    w_in: float  # of what BN normalizes
    skew_in: float
    drift: float  # per snapshot, mean over layers


@dataclass(frozen=True)
class C7Numbers:
    drift_ratio: float  # after / before
    before: C7Side
    after: C7Side


@dataclass(frozen=True)
class C8Numbers:
    area_bn: float  # the test score's mean over training (area under its curve / steps): the rule's figure
    area_noisy: float
    area_gap: float  # BN minus noisy BN
    acc_bn: float  # final test score: accuracy, or R² of a regression
    acc_noisy: float
    acc_gap: float  # BN minus noisy BN
    drift_bn: float
    drift_noisy: float
    drift_ratio: float
    acc_none: float | None = None
    ics_bn: float | None = None  # Santurkar's ||G - G'||, mean over layers and steps
    ics_none: float | None = None
    ics_ratio: float | None = None
    cos_bn: float | None = None
    cos_none: float | None = None
    ics_steps: tuple[int, ...] = ()
    reach_bn: tuple[int | None, ...] = ()  # first step at each of C8_LEVELS (None: not reached)
    reach_noisy: tuple[int | None, ...] = ()
    score: str = "test accuracy"  # views.score_name: or "test R²"


Numbers = C1Numbers | C2Numbers | C3Numbers | C4Numbers | C5Numbers | C6Numbers | C7Numbers | C8Numbers


THRESHOLDS = {
    "C1": f"supported if BN's drift / none's < {C1_SUPPORT}; refuted if >= 1; mixed in between "
          "(drift: W1 between successive snapshots / pooled std of the last hidden layer's activation input, "
          "mean over the second half)",
    "C2": f"supported if y has drifted farther than x̂ in the same BN layer by a ratio > {C2_SUPPORT}; refuted "
          f"if < {C2_REFUTE}; mixed in between (W1 from the first snapshot to the latest / the first "
          "snapshot's pooled std, last hidden layer)",
    "C3": f"refuted if, unit by unit, W of x̂ and y equals W of BN's input within {TOL_W:g} and the KL within "
          f"{TOL_KL:g} nats (float32 rounding alone gives ~1e-8); supported if x̂ is more Gaussian "
          "beyond that; mixed otherwise",
    "C4": f"supported if skew and excess kurtosis of every tracked unit pass BN unchanged (within "
          f"{TOL_MOMENT:g} x max(1, |value|)): BN fixes only mean and variance; refuted if they change",
    "C5": f"a distribution counts as Gaussian at fan-in 256 if W >= {CLT_W} and KL < {CLT_KL} nats; a layer "
          f"of this run if its tracked units' median W >= {RUN_W} and median KL < {RUN_KL}; supported if all "
          "do, refuted if none does, mixed otherwise",
    "C6": f"supported if applying (γ, β) = {', '.join(f'({g:g}, {b:g})' for g, b in C6_PAIRS)} to x̂'s "
          f"quantiles changes W and KL by less than {C6_TOL:g}; refuted otherwise",
    "C7": f"supported if, with BN after the activation, what the next layer receives drifts > {C7_DRIFT}x "
          f"more AND is less Gaussian (median W lower by > {C7_W}) than with BN before; refuted if neither; "
          "mixed if one",
    "C8": f"supported if noisy BN trains about as well as BN - its test score's mean over training (the area "
          f"under its learning curve) within {C8_ACC * 100:.0f} points of BN's, so that a tie at the ceiling does not decide "
          f"it - while drifting > {C8_DRIFT}x more, and BN's gradient shift ||G − G′|| is not smaller than "
          f"none's (>= {C8_ICS}x); refuted if both point the other way; mixed otherwise (the score is test "
          "accuracy, or R² of a regression, counted as 0 below 0)",
}


# --------------------------------------------------------------------------------------------- helpers

def fmt(x: float | None, digits: int = 3) -> str:
    """A number as the board prints it: 3 significant digits, 'inf', or 'n/a'."""
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:#.{digits}g}"  # '#' keeps trailing zeros (1.00, not 1): the precision stays visible
    return text[:-1] if text.endswith(".") else text


def sci(x: float | None) -> str:
    """A tiny number as the board prints it (1.3e-15): 'n/a' for None or NaN, 'inf' for an infinity."""
    if x is None or math.isnan(x):
        return "n/a"
    return fmt(x) if math.isinf(x) else f"{x:.1e}"


def _nanmean(a) -> float:
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _nanstd(a) -> float:
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.std()) if a.size else math.nan


def _nanmedian(a) -> float:
    a = np.asarray(a, dtype=float)
    a = a[~np.isnan(a)]
    return float(np.median(a)) if a.size else math.nan


def _ratio(a: float, b: float) -> float:
    """a / b for non-negative measures: 1 when both are 0, inf when only b is, NaN when either is missing."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def _gap(a: float, b: float) -> float:
    """|a - b| where two infinite KLs (both have a point mass) count as equal."""
    if math.isinf(a) and math.isinf(b) and a == b:
        return 0.0
    return abs(a - b)


class _Run:
    """The snapshots and config of one run, with the lookups every claim needs."""

    def __init__(self, snaps: tuple[Snapshot, ...], cfg: ExperimentConfig) -> None:
        self.snaps, self.cfg = tuple(snaps), cfg
        self.steps = views.steps(self.snaps)
        self.half = self.steps >= self.steps[-1] / 2 if len(self.steps) else self.steps.astype(bool)
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

    def rel_drift(self, token: str, layer: int, stage: str, ref: str = "prev") -> np.ndarray:
        """W1 drift of a stage (pooled over units) in units of its pooled std.

        To the previous snapshot (``ref="prev"``): divided by the std at the same snapshot. To the first
        snapshot (``ref="first"``): divided by the first snapshot's std, so that a growing scale (of x
        without BN, or of y through gamma) counts as movement instead of shrinking its own yardstick.
        """
        d = views.drift(self.snaps, token, layer, stage, POOLED, ref)
        sd = views.unit_stat(self.snaps, token, layer, stage, "std", POOLED)
        if ref == "first":
            sd = np.full_like(sd, sd[0] if len(sd) else np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sd > 0, d / sd, np.nan)

    def half_mean(self, series: np.ndarray) -> float:
        return _nanmean(series[self.half])

    def span(self) -> str:
        s = self.steps[self.half]
        return f"steps {int(s[0])}–{int(s[-1])}" if len(s) else "no steps"

    def why_missing(self, token: str) -> str:
        at = views.diverged_at(self.snaps, token)
        return f"{token} diverged at step {at}" if at is not None else f"{token} has no finite values there"


def _configured(cfg: ExperimentConfig, kinds: tuple[str, ...], placement: str | None = None) -> bool:
    """Whether the config trains a variant of one of ``kinds`` (at ``placement``, if given)."""
    return any(split_variant(t)[0] in kinds and (placement is None or cfg.placement_of(t) == placement)
               for t in cfg.variants)


# What each claim needs the run to train, and the preset that has it (checked before any number is read).
_NEEDS = {
    "C1": (lambda c: _configured(c, ("none",)) and _configured(c, ("bn", "bn_noaffine"), "before"),
           "needs 'none' and a BN variant placed before the activation, trained side by side: open the ioffe "
           "preset"),
    "C2": (lambda c: _configured(c, ("bn",)), "needs BN with learned γ and β ('bn'): open the gamma-beta or "
                                               "ioffe preset"),
    "C3": (lambda c: _configured(c, BN_KINDS), "needs a BN variant: open the ioffe or why-gaussian preset"),
    "C4": (lambda c: _configured(c, BN_KINDS), "needs a BN variant: open the ioffe or why-gaussian preset"),
    "C5": (lambda c: True, ""),
    "C6": (lambda c: True, ""),
    "C7": (lambda c: _configured(c, ("bn",), "before") and _configured(c, ("bn",), "after"),
           "needs BN before and after the activation side by side (bn@before, bn@after): open the placement "
           "preset"),
    "C8": (lambda c: _configured(c, ("bn",)) and _configured(c, ("bn_noisy",)),
           "needs bn and bn_noisy trained side by side (and none, for the gradient shift): open the santurkar "
           "preset"),
}


def _final(series: np.ndarray) -> float:
    """The last finite value of a series (NaN if none)."""
    ok = np.flatnonzero(np.isfinite(series))
    return float(series[ok[-1]]) if ok.size else math.nan


def _verdict(cid: str, verdict: str, figure: str, detail: str, value: float | None,
             numbers: Numbers | None = None) -> Verdict:
    title, panel = CLAIMS[cid]
    return Verdict(cid, title, verdict, figure, THRESHOLDS[cid], detail, panel, value, numbers)


def _not_measured(cid: str, reason: str) -> Verdict:
    return _verdict(cid, "not measured", "not measured in this run", reason, None)


def _unit_series(r: _Run, tokens: list[str], stages: tuple[str, ...]) -> list[dict]:
    """Per tracked unit of every layer of ``tokens`` at their latest snapshot: stats of BN's input and stages.

    BN's input is x with BN before the activation, a with BN after it. Units with any NaN are skipped.
    """
    out = []
    for token in tokens:
        i = r.latest(token)
        if i is None:
            continue
        snap = r.snaps[i]
        src = "x" if r.placement(token) == "before" else "a"
        for layer in range(len(snap.variants[token].layers)):
            sts = {name: views.stage_of(snap, token, layer, name) for name in (src, *stages)}
            if any(s is None for s in sts.values()):
                continue
            for u in sts[src].units[1:]:
                row = {"token": token, "layer": layer, "unit": u, "step": snap.step}
                for name, st in sts.items():
                    key = "in" if name == src else name
                    row[key] = {k: st.stat(k, u) for k in ("mean", "std", "skew", "kurtosis", "shapiro_w",
                                                           "kl_gaussian")}
                if not any(math.isnan(v) for d in row.values() if isinstance(d, dict) for v in d.values()):
                    out.append(row)
    return out


# ------------------------------------------------------------------------------------------ the claims

def _c1(r: _Run) -> Verdict:
    if len(r.snaps) < MIN_SNAPS:
        return _not_measured("C1", f"needs at least {MIN_SNAPS} snapshots, has {len(r.snaps)}: let the run go on")
    none, bn = r.find(("none",)), r.find(("bn", "bn_noaffine"), "before")
    if none is None or bn is None:
        return _not_measured("C1", _NEEDS["C1"][1])
    L = r.last_layer
    st_bn, st_none = views.act_stage(r.snaps, bn, L), views.act_stage(r.snaps, none, L)
    d_bn, d_none = r.half_mean(r.rel_drift(bn, L, st_bn)), r.half_mean(r.rel_drift(none, L, st_none))
    if math.isnan(d_bn) or math.isnan(d_none):
        gone = bn if math.isnan(d_bn) else none
        return _not_measured("C1", f"no finite drift in the second half: {r.why_missing(gone)}")
    f_bn, f_none = _final(r.rel_drift(bn, L, st_bn, "first")), _final(r.rel_drift(none, L, st_none, "first"))
    ratio = _ratio(d_bn, d_none)
    act = r.cfg.activation if r.cfg.activation != "identity" else "activation"  # a linear network's: no function
    figure = (f"drift of the last hidden layer's {act} input ({st_bn} in {bn}, {st_none} in {none}), W1 per "
              f"snapshot / pooled std, mean over {r.span()}: {bn} {fmt(d_bn)} vs {none} {fmt(d_none)} "
              f"(ratio {fmt(ratio)}); W1 from the first snapshot to step {int(r.steps[-1])} / first std: "
              f"{bn} {fmt(f_bn)} vs {none} {fmt(f_none)}")
    if ratio < C1_SUPPORT:
        verdict = "supported"
        detail = (f"With BN the last layer's {act} input moved {fmt(1 / ratio, 2)}x less per snapshot than "
                  f"without it ({fmt(d_bn)} vs {fmt(d_none)} of its spread), and ended {fmt(f_bn)} vs "
                  f"{fmt(f_none)} of its initial spread from where it started: one layer's input does hold "
                  "still, as in Ioffe & Szegedy's Figure 1.")
    elif ratio >= 1:
        verdict = "refuted"
        detail = (f"With BN the last layer's {act} input moved as much as or more than without it ({fmt(d_bn)} "
                  f"vs {fmt(d_none)} of its spread per snapshot): this run does not show BN holding one "
                  "layer's input still.")
    else:
        verdict = "mixed"
        detail = (f"BN made the last layer's {act} input drift less ({fmt(d_bn)} vs {fmt(d_none)} of its "
                  f"spread per snapshot), but only by a factor {fmt(1 / ratio, 2)}, short of the factor "
                  f"{fmt(1 / C1_SUPPORT)} the rule asks for.")
    return _verdict("C1", verdict, figure, detail, ratio, C1Numbers(bn, d_bn, d_none, f_bn, f_none, st_bn, st_none))


def _c2(r: _Run) -> Verdict:
    if len(r.snaps) < MIN_SNAPS:
        return _not_measured("C2", f"needs at least {MIN_SNAPS} snapshots, has {len(r.snaps)}: let the run go on")
    bn = r.find(("bn",), "before") or r.find(("bn",))
    if bn is None:
        return _not_measured("C2", _NEEDS["C2"][1])
    L = r.last_layer
    # How far y and x_hat have moved since the start (gamma = 1, beta = 0: y = x_hat there), and how fast.
    c_y, c_xh = _final(r.rel_drift(bn, L, "y", "first")), _final(r.rel_drift(bn, L, "x_hat", "first"))
    p_y, p_xh = r.half_mean(r.rel_drift(bn, L, "y")), r.half_mean(r.rel_drift(bn, L, "x_hat"))
    if math.isnan(c_y) or math.isnan(c_xh):
        return _not_measured("C2", f"no finite drift: {r.why_missing(bn)}")
    ratio, pace = _ratio(c_y, c_xh), _ratio(p_y, p_xh)
    rates = {w: _nanmedian(views.param_change(r.snaps, bn, L, w)) for w in ("weight", "gamma", "beta")}
    g, b = views.affine(r.snaps, bn, L, "gamma"), views.affine(r.snaps, bn, L, "beta")
    g_end, b_end = (g[-1], b[-1]) if g.size and b.size else (np.full(1, np.nan), np.full(1, np.nan))
    step = int(r.steps[-1])
    figure = (f"last hidden layer of {bn}, W1 from the first snapshot at step {step} / first std: y {fmt(c_y)} "
              f"vs x̂ {fmt(c_xh)} (ratio {fmt(ratio)}); per snapshot over {r.span()}: y {fmt(p_y)} vs x̂ "
              f"{fmt(p_xh)} (ratio {fmt(pace)})")
    numbers = dict(y=c_y, x_hat=c_xh, y_pace=p_y, x_hat_pace=p_xh, pace_ratio=pace, variant=bn,
                   gamma_mean=_nanmean(g_end), beta_mean=_nanmean(b_end),
                   **{f"rate_{k}": v for k, v in rates.items()})  # C2Numbers' fields
    versus = ""
    none = r.find(("none",))
    if none is not None:
        st = "x" if r.placement(bn) == "before" else "a"
        c_none, p_none = _final(r.rel_drift(none, L, st, "first")), r.half_mean(r.rel_drift(none, L, st))
        numbers.update(none=c_none, none_pace=p_none)
        figure += f"; {st} of {none}: {fmt(c_none)} from the first, {fmt(p_none)} per snapshot"
        if not math.isnan(c_none):
            versus = (f" Even so, y has moved {'less than' if c_y < c_none else 'no less than'} the unnormalized "
                      f"{st} of {none} ({fmt(c_y)} vs {fmt(c_none)} of its initial spread).")
    ctrl = r.find(("bn_noaffine",), r.placement(bn))
    if ctrl is not None:
        c = _ratio(_final(r.rel_drift(ctrl, L, "y", "first")), _final(r.rel_drift(ctrl, L, "x_hat", "first")))
        numbers["control_ratio"] = c
        figure += f"; control {ctrl} (y = x̂): ratio {fmt(c)}"
    figure += (f"; γ now {fmt(_nanmean(g_end))} ± {fmt(_nanstd(g_end))}, β {fmt(_nanmean(b_end))} ± "
               f"{fmt(_nanstd(b_end))} (mean ± sd over {r.noun}s); median "
               f"relative change per snapshot: γ {fmt(rates['gamma'])}, β {fmt(rates['beta'])}, W "
               f"{fmt(rates['weight'])}")
    slow = (f" Per snapshot y moves only {fmt(pace, 2)}x as much as x̂: γ changes by a median "
            f"{fmt(rates['gamma'])} of its size and the weights by {fmt(rates['weight'])}.")
    if ratio > C2_SUPPORT:
        verdict = "supported"
        detail = (f"γ and β do move the distribution again: since the start y has drifted {fmt(ratio, 2)}x as "
                  f"far as x̂ in the same layer (γ is now {fmt(_nanmean(g_end))} on average).{versus}{slow}")
    elif ratio < C2_REFUTE:
        verdict = "refuted"
        detail = (f"In this run γ and β have not moved y measurably beyond x̂ ({fmt(ratio, 2)}x x̂'s drift since "
                  f"the start).{versus}{slow}")
    else:
        verdict = "mixed"
        detail = (f"γ and β moved y a little beyond x̂ ({fmt(ratio, 2)}x x̂'s drift since the start), less than "
                  f"the {C2_SUPPORT}x the rule calls measurable.{versus}{slow}")
    return _verdict("C2", verdict, figure, detail, ratio, C2Numbers(**numbers))


def _c3(r: _Run) -> Verdict:
    tokens = [t for t in r.tokens if split_variant(t)[0] in BN_KINDS and r.latest(t) is not None]
    rows = _unit_series(r, tokens, ("x_hat", "y"))
    if not rows:
        return _not_measured("C3", "needs a BN variant with tracked units: open the ioffe or why-gaussian preset")
    dw = max(max(_gap(row[s]["shapiro_w"], row["in"]["shapiro_w"]) for s in ("x_hat", "y")) for row in rows)
    dkl = max(max(_gap(row[s]["kl_gaussian"], row["in"]["kl_gaussian"]) for s in ("x_hat", "y")) for row in rows)
    w_in = np.array([row["in"]["shapiro_w"] for row in rows])
    gain = _nanmedian([row["x_hat"]["shapiro_w"] - row["in"]["shapiro_w"] for row in rows])
    worst = rows[int(np.argmin(w_in))]
    where = f"layer {worst['layer'] + 1} {r.noun} {worst['unit']} of {worst['token']}"
    steps = sorted({row["step"] for row in rows})
    figure = (f"{len(rows)} {r.noun} series ({', '.join(tokens)}; tracked {r.noun}s of every layer, step "
              f"{', '.join(map(str, steps))}): max |ΔW| of x̂, y vs BN's input {sci(dw)}, max |ΔKL| "
              f"{sci(dkl)} nats; W of the input itself: median {fmt(float(np.median(w_in)))}, lowest "
              f"{fmt(float(w_in.min()))} ({where}: x̂ {fmt(worst['x_hat']['shapiro_w'])}, y "
              f"{fmt(worst['y']['shapiro_w'])})")
    if dw < TOL_W and dkl < TOL_KL:
        verdict = "refuted"
        med = float(np.median(w_in))
        notes = []
        if med >= RUN_W:
            notes.append(f"Most of BN's inputs were near-Gaussian already (median W {fmt(med)}): that came from "
                          "the linear layer's sum of many inputs (C5), not from BN.")
        if w_in.min() < RUN_W:
            notes.append(f"Where the input is not Gaussian ({where}: W {fmt(float(w_in.min()))}), it stays "
                          "exactly as non-Gaussian after BN.")
        origin = " ".join(notes)
        detail = (f"BN standardizes, it does not reshape: {r.noun} by {r.noun}, W of x̂ and y differs from W of BN's "
                  f"input by at most {sci(dw)} and the KL by {sci(dkl)} nats, rounding only. {origin}")
    elif gain > TOL_W:
        verdict = "supported"
        detail = (f"Here x̂ is more Gaussian than BN's input: median W gain {fmt(gain)}, max |ΔKL| {fmt(dkl)} "
                  "nats, beyond what rounding explains.")
    else:
        verdict = "mixed"
        detail = (f"W or KL changed through BN (max |ΔW| {sci(dw)}, |ΔKL| {sci(dkl)}) but not towards "
                  f"the Gaussian (median W gain {fmt(gain)}).")
    return _verdict("C3", verdict, figure, detail, dw,
                    C3Numbers(dw, dkl, float(np.median(w_in)), float(w_in.min()), len(rows)))


def _c4(r: _Run) -> Verdict:
    tokens = [t for t in r.tokens if split_variant(t)[0] in BN_KINDS and r.latest(t) is not None]
    rows = _unit_series(r, tokens, ("x_hat",))
    if not rows:
        return _not_measured("C4", "needs a BN variant with tracked units: open the ioffe or why-gaussian preset")

    def rel(k: str) -> float:
        return max(abs(row["x_hat"][k] - row["in"][k]) / max(1.0, abs(row["in"][k])) for row in rows)

    ds, dk = rel("skew"), rel("kurtosis")
    # BN divides by sqrt(var + eps): x_hat's std is 1 only where var >> eps, so nearly constant units
    # (dead ReLUs, saturated inputs) are left out of the "mean 0, std 1" check.
    live = [row for row in rows if row["in"]["std"] ** 2 >= STD_CHECK_VAR] or rows
    dm = max(abs(row["x_hat"]["mean"]) for row in live)
    dsd = max(abs(row["x_hat"]["std"] - 1) for row in live)
    skews = np.array([row["in"]["skew"] for row in rows])
    kurts = np.array([row["in"]["kurtosis"] for row in rows])
    ex = rows[int(np.argmax(np.abs(skews)))]
    where = f"layer {ex['layer'] + 1} {r.noun} {ex['unit']} of {ex['token']}"
    figure = (f"{len(rows)} {r.noun} series: skew of BN's input median |{fmt(float(np.median(np.abs(skews))))}| "
              f"(range {fmt(float(skews.min()))} to {fmt(float(skews.max()))}), excess kurtosis median "
              f"{fmt(float(np.median(kurts)))} (range {fmt(float(kurts.min()))} to {fmt(float(kurts.max()))}); "
              f"max relative change through BN: skew {sci(ds)}, kurtosis {sci(dk)}; x̂ mean within "
              f"{sci(dm)} of 0, std within {sci(dsd)} of 1 ({len(live)} {r.noun}s with variance >= "
              f"{STD_CHECK_VAR:g})")
    if dm < 0.01 and dsd < 0.01:
        fixed = "BN sets mean 0 and standard deviation 1"
    elif r.cfg.view == "eval":
        fixed = (f"BN moves mean and std towards 0 and 1 (within {fmt(dm)} and {fmt(dsd)} here: the eval view "
                 "normalizes with running statistics, not the probe set's own)")
    else:
        fixed = f"BN moves mean and std to about 0 and 1 (within {fmt(dm)} and {fmt(dsd)})"
    if ds < TOL_MOMENT and dk < TOL_MOMENT:
        verdict = "supported"
        detail = (f"Supported in the sense that BN fixes only mean and variance: {fixed}, while skew "
                  f"{fmt(ex['in']['skew'])} and kurtosis {fmt(ex['in']['kurtosis'])} ({where}) pass through "
                  f"unchanged (x̂: {fmt(ex['x_hat']['skew'])}, {fmt(ex['x_hat']['kurtosis'])}). Two numbers "
                  "describe the distribution only if it already is Gaussian.")
    else:
        verdict = "refuted"
        detail = (f"BN changed the higher moments too (skew by up to {fmt(ds)}, kurtosis by {fmt(dk)}, "
                  "relative): it did more than match mean and variance.")
    return _verdict("C4", verdict, figure, detail, max(ds, dk), C4Numbers(ds, dk, dm, dsd, len(rows)))


def fan_in(cfg: ExperimentConfig, layer: int) -> int:
    """Inputs that one unit of hidden layer ``layer`` (0-based) sums: the previous layer's units, or for a
    conv layer its 3x3 window over every channel of the previous layer (one channel: the image)."""
    if cfg.architecture == "conv":
        return 9 * (1 if layer == 0 else cfg.widths[layer - 1])
    return cfg.n_inputs if layer == 0 else cfg.widths[layer - 1]


_CLT_FAILS = {
    "student-t": "heavy tails: finite variance, but slow convergence",
    "correlated": "a shared factor never averages out",
    "sparse": "point masses at 0 survive few inputs",
}


def _c5(r: _Run) -> Verdict:
    if not r.snaps:
        return _not_measured("C5", "no snapshot yet: start the run (the why-gaussian preset shows it best)")
    # The first layer's inputs: the chosen feature distribution, else "sparse" (ReLU-like, half exact zeros)
    # as the stand-in for digit pixels (mostly exact zeros) and for deeper layers' post-ReLU inputs. (The 2-D
    # toy sets have no good stand-in; their first layer, fan-in 2, shows up among this run's layers below.)
    run_dist = r.cfg.input_dist if r.cfg.dataset in SYNTHETIC_INPUTS else "sparse"
    items: list[tuple[str, bool]] = []
    parts = []
    for dist in INPUT_DISTS:
        res = clt.clt_experiment(dist, CLT_FAN_INS)
        w, kl = float(res.shapiro_w[-1]), float(res.kl[-1])
        items.append((dist, w >= CLT_W and kl < CLT_KL))
        parts.append(f"{dist}{'*' if dist == run_dist else ''} KL {fmt(float(res.kl[0]))} → {fmt(kl)}, W "
                     f"{fmt(float(res.shapiro_w[0]))} → {fmt(w)}")
    sp = clt.clt_experiment(run_dist, CLT_FAN_INS, weights="sparse")
    w, kl = float(sp.shapiro_w[-1]), float(sp.kl[-1])
    items.append((f"{run_dist} with weights on 2 inputs", w >= CLT_W and kl < CLT_KL))
    star = "this run's inputs" if r.cfg.dataset in SYNTHETIC_INPUTS else "stand-in for this run's inputs"
    figure = (f"standardized Wu + b, fan-in {CLT_FAN_INS[0]} → {CLT_FAN_INS[-1]}, random weights: "
              f"{'; '.join(parts)} (* {star}); weights on 2 inputs ({run_dist}) at fan-in {CLT_FAN_INS[-1]}: "
              f"KL {fmt(kl)}, W {fmt(w)}")
    layers: list[C5Layer] = []
    token = r.find(("none",)) or next((t for t in r.tokens if r.latest(t) is not None), None)
    layer_txt = []
    if token is not None:
        i = r.latest(token)
        for layer in range(len(r.snaps[i].variants[token].layers)):
            fans = fan_in(r.cfg, layer)
            st, st0 = views.stage_of(r.snaps[i], token, layer, "x"), views.stage_of(r.snaps[0], token, layer, "x")
            if st is None or len(st.units) < 2:
                continue
            mw = _nanmedian([st.stat("shapiro_w", u) for u in st.units[1:]])
            mkl = _nanmedian([st.stat("kl_gaussian", u) for u in st.units[1:]])
            mw0 = _nanmedian([st0.stat("shapiro_w", u) for u in st0.units[1:]]) if st0 is not None else math.nan
            if math.isnan(mw) or math.isnan(mkl):
                continue
            items.append((f"layer {layer + 1} of this run", mw >= RUN_W and mkl < RUN_KL))
            layers.append(C5Layer(layer + 1, mw, mkl, fans))
            layer_txt.append(f"layer {layer + 1} (fan-in {fans}) median W {fmt(mw)} KL {fmt(mkl)} "
                             f"(step 0: W {fmt(mw0)})")
        if len(layer_txt) > C5_LISTED:  # a deep network: its first and last layers, every layer still judged
            layer_txt = [*layer_txt[:3], f"{len(layer_txt) - 5} layers more", *layer_txt[-2:]]
        if layer_txt:
            figure += f"; this run's x ({token}, step {r.snaps[i].step}): " + "; ".join(layer_txt)
    good = [name for name, ok in items if ok]
    bad = [name for name, ok in items if not ok]
    share = len(good) / len(items)

    def why(name: str) -> str:
        if name in _CLT_FAILS:
            return f"{name} ({_CLT_FAILS[name]})"
        if "2 inputs" in name:
            return f"{name} (effectively 2 inputs: Lindeberg's condition fails)"
        return name

    said = (f"Reaches the Gaussian: {', '.join(good) or 'nothing'}. Does not: "
            f"{', '.join(why(b) for b in bad) or 'nothing'}.")
    if not bad:
        verdict, detail = "supported", said + " Every sum of many inputs measured here is near-Gaussian."
    elif not good:
        verdict, detail = "refuted", said + " No sum measured here became Gaussian."
    else:
        verdict = "mixed"
        detail = (said + " The CLT needs many independent inputs with finite variance, none dominating "
                  "(Lindeberg); where that fails, so does the Gaussian.")
    return _verdict("C5", verdict, figure, detail, share,
                    C5Numbers(share, tuple(good), tuple(bad), run_dist, tuple(layers)))


def _c6(r: _Run) -> Verdict:
    bn = r.find(BN_KINDS, "before") or r.find(BN_KINDS)
    # Without BN, any linear output x tests the same thing.
    token, stage = (bn, "x_hat") if bn is not None else (
        next((t for t in r.tokens if r.latest(t) is not None), None), "x")
    if token is None:
        return _not_measured("C6", "no snapshot yet: start the run (any preset measures it)")
    snap = r.snaps[r.latest(token)]
    dw = dkl = 0.0
    n, example = 0, None
    for layer in range(len(snap.variants[token].layers)):
        st = views.stage_of(snap, token, layer, stage)
        if st is None:
            continue
        for k, u in enumerate(st.units[1:], start=1):
            q = st.quantiles[k].astype(np.float64)
            if not np.isfinite(q).all():
                continue
            base = stats.normality(q)
            for g, b in C6_PAIRS:
                moved = stats.normality(g * q + b)
                dw, dkl = max(dw, _gap(moved.shapiro_w, base.shapiro_w)), max(dkl, _gap(moved.kl_gaussian,
                                                                                      base.kl_gaussian))
                if example is None:
                    example = (layer, u, g, b, base, moved)
            n += 1
    if not n:
        return _not_measured("C6", f"no finite {stage} quantiles at the latest snapshot: {r.why_missing(token)}")
    layer, u, g, b, base, moved = example
    figure = (f"{stage} quantiles of {n} tracked {r.noun}s ({token}, step {snap.step}) under (γ, β) = "
              f"{', '.join(f'({a:g}, {c:g})' for a, c in C6_PAIRS)}: max |ΔW| {sci(dw)}, max |ΔKL| "
              f"{sci(dkl)}; e.g. layer {layer + 1} {r.noun} {u} with ({g:g}, {b:g}): mean {fmt(base.mean)} → "
              f"{fmt(moved.mean)}, std {fmt(base.std)} → {fmt(moved.std)}, W {fmt(base.shapiro_w, 4)} → "
              f"{fmt(moved.shapiro_w, 4)}, KL {fmt(base.kl_gaussian)} → {fmt(moved.kl_gaussian)}")
    if dw < C6_TOL and dkl < C6_TOL:
        verdict = "supported"
        detail = (f"γ and β move and stretch the histogram (mean {fmt(base.mean)} → {fmt(moved.mean)}, std "
                  f"{fmt(base.std)} → {fmt(moved.std)}) but W and KL stay put to {sci(max(dw, dkl))}: a linear "
                  "map changes location and scale, never shape - so γ and β cannot make anything more Gaussian.")
    else:
        verdict = "refuted"
        detail = f"The shape statistics changed under a linear map (|ΔW| {sci(dw)}, |ΔKL| {sci(dkl)})."
    return _verdict("C6", verdict, figure, detail, max(dw, dkl), C6Numbers(dw, dkl, n, token, stage))


def _c7(r: _Run) -> Verdict:
    before, after = r.find(("bn",), "before"), r.find(("bn",), "after")
    if before is None or after is None:
        return _not_measured("C7", _NEEDS["C7"][1])
    if len(r.snaps) < MIN_SNAPS:
        return _not_measured("C7", f"needs at least {MIN_SNAPS} snapshots, has {len(r.snaps)}: let the run go on")
    got = {}
    for token, stage in ((before, "a"), (after, "y")):  # what the next layer receives
        rows = _unit_series(r, [token], (stage,))
        layers = range(len(r.cfg.widths))
        got[token] = dict(
            w=_nanmedian([row[stage]["shapiro_w"] for row in rows]),
            kl=_nanmedian([row[stage]["kl_gaussian"] for row in rows]),
            skew=_nanmedian([row[stage]["skew"] for row in rows]),
            w_in=_nanmedian([row["in"]["shapiro_w"] for row in rows]),
            skew_in=_nanmedian([row["in"]["skew"] for row in rows]),
            drift=_nanmean([r.half_mean(r.rel_drift(token, layer, stage)) for layer in layers]),
        )
    b, a = got[before], got[after]
    if any(math.isnan(v) for v in (b["w"], a["w"], b["drift"], a["drift"])):
        gone = before if math.isnan(b["w"]) or math.isnan(b["drift"]) else after
        return _not_measured("C7", f"no finite statistics: {r.why_missing(gone)}")
    ratio = _ratio(a["drift"], b["drift"])
    drift_worse, shape_worse = ratio > C7_DRIFT, a["w"] < b["w"] - C7_W
    figure = (f"what the next layer receives (a with {before}, y with {after}), all hidden layers: drift per "
              f"snapshot / std over {r.span()} {fmt(b['drift'])} vs {fmt(a['drift'])} (after / before "
              f"{fmt(ratio)}); median over tracked {r.noun}s W {fmt(b['w'])} vs {fmt(a['w'])}, KL {fmt(b['kl'])} "
              f"vs {fmt(a['kl'])}, skew {fmt(b['skew'])} vs {fmt(a['skew'])}; what BN normalizes: x (before) "
              f"median W {fmt(b['w_in'])}, skew {fmt(b['skew_in'])} vs a (after) W {fmt(a['w_in'])}, skew "
              f"{fmt(a['skew_in'])}")
    said = (f"With BN after the {r.cfg.activation}, the next layer's input drifts {fmt(ratio, 2)}x as much as "
            f"with BN before it, and its median W is {fmt(a['w'])} vs {fmt(b['w'])}.")
    if drift_worse and shape_worse:
        verdict = "supported"
        detail = (said + f" Normalizing after the nonlinearity fixes mean and variance of an already "
                  f"reshaped (skew {fmt(a['skew_in'])}) distribution, which goes on changing shape.")
    elif not drift_worse and not shape_worse:
        verdict = "refuted"
        detail = said + " Here BN after the activation gave an input as stable and as Gaussian as BN before it."
    else:
        verdict = "mixed"
        detail = said + (" Less stable, but no less Gaussian." if drift_worse else
                         " Less Gaussian, but no less stable.")
    return _verdict("C7", verdict, figure, detail, ratio, C7Numbers(ratio, C7Side(**b), C7Side(**a)))


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


def _c8(r: _Run) -> Verdict:
    bn, noisy = r.find(("bn",), "before") or r.find(("bn",)), r.find(("bn_noisy",))
    if bn is None or noisy is None:
        return _not_measured("C8", _NEEDS["C8"][1])
    if len(r.snaps) < MIN_SNAPS:
        return _not_measured("C8", f"needs at least {MIN_SNAPS} snapshots, has {len(r.snaps)}: let the run go on")
    score = views.score_name(r.cfg.task)
    curve = {t: views.train_stat(r.snaps, t, "test_accuracy") for t in (bn, noisy)}
    acc = {t: _final(curve[t]) for t in (bn, noisy)}
    area = {t: learning_area(r.steps, curve[t]) for t in (bn, noisy)}
    L = r.last_layer
    d_bn = r.half_mean(r.rel_drift(bn, L, views.act_stage(r.snaps, bn, L) or "y"))
    d_noisy = r.half_mean(r.rel_drift(noisy, L, views.act_stage(r.snaps, noisy, L) or "y"))
    if any(math.isnan(v) for v in (acc[bn], acc[noisy], area[bn], area[noisy], d_bn, d_noisy)):
        return _not_measured("C8", f"no finite {score} or drift: {r.why_missing(noisy)}; {r.why_missing(bn)}")
    gap, area_gap = acc[bn] - acc[noisy], area[bn] - area[noisy]
    d_ratio = _ratio(d_noisy, d_bn)
    as_well, unstable = area_gap <= C8_ACC, d_ratio > C8_DRIFT
    reach = {t: tuple(first_reach(r.steps, curve[t], level) for level in C8_LEVELS) for t in (bn, noisy)}
    numbers = dict(area_bn=area[bn], area_noisy=area[noisy], area_gap=area_gap, acc_bn=acc[bn],
                   acc_noisy=acc[noisy], acc_gap=gap, drift_bn=d_bn, drift_noisy=d_noisy, drift_ratio=d_ratio,
                   reach_bn=reach[bn], reach_noisy=reach[noisy], score=score)
    none = r.find(("none",))
    if none is not None:
        numbers["acc_none"] = _final(views.train_stat(r.snaps, none, "test_accuracy"))
    at_end = ", ".join(f"{t} {numbers[k]:.1%}" for t, k in ((bn, "acc_bn"), (noisy, "acc_noisy"), (none, "acc_none"))
                       if t is not None)
    figure = (f"{score} over training (mean, the area under the curve): {bn} {area[bn]:.1%}, {noisy} "
              f"{area[noisy]:.1%} (gap {area_gap * 100:.1f} points); "
              + "; ".join(_reach_text(lv, a, b, (bn, noisy)) for lv, a, b in zip(C8_LEVELS, reach[bn], reach[noisy]))
              + f"; at the end: {at_end}; drift of the last layer's activation input per snapshot / std over "
              f"{r.span()}: {noisy} {fmt(d_noisy)} vs {bn} {fmt(d_bn)} (ratio {fmt(d_ratio)})")
    ics_says = None
    if none is not None:
        per = {t: [views.ics(r.snaps, t, layer) for layer in range(len(r.cfg.widths))] for t in (bn, none)}
        measured = [set(st.tolist()) for t in per for st, _, _ in per[t]]
        common = set.intersection(*measured) if measured else set()  # steps where every layer of both has it
        if common:
            def mean_at(t: str, k: int) -> float:  # k = 1: ||G - G'||, 2: cosine; mean over layers and steps
                return _nanmean([v for series in per[t] for s, v in zip(series[0], series[k]) if s in common])

            i_bn, i_none, c_bn, c_none = mean_at(bn, 1), mean_at(none, 1), mean_at(bn, 2), mean_at(none, 2)
            i_ratio = _ratio(i_bn, i_none)
            ics_says = i_ratio >= C8_ICS
            numbers.update(ics_bn=i_bn, ics_none=i_none, ics_ratio=i_ratio, cos_bn=c_bn, cos_none=c_none,
                           ics_steps=tuple(sorted(common)))
            figure += (f"; gradient shift ||G − G′|| (mean over layers at {len(common)} steps): {bn} {fmt(i_bn)} "
                       f"vs {none} {fmt(i_none)} (ratio {fmt(i_ratio)}), cosine {fmt(c_bn)} vs {fmt(c_none)}")
    noisy_says = as_well if unstable else None  # noise that did not destabilize tests nothing
    votes = [v for v in (noisy_says, ics_says) if v is not None]
    parts = []
    if noisy_says is None:
        parts.append(f"The injected noise barely moved the distributions ({fmt(d_ratio, 2)}x BN's drift), so "
                     "the noisy-BN test is inconclusive.")
    else:
        parts.append(f"Noisy BN's distributions drifted {fmt(d_ratio, 2)}x as much as BN's, and its {score} "
                     f"over training was {abs(area_gap) * 100:.1f} points {'below' if area_gap > 0 else 'above'} "
                     f"BN's{' - about as well' if as_well else ' - clearly worse'}.")
    if ics_says is not None:
        parts.append(f"BN's gradient shift ||G − G′|| is {fmt(numbers['ics_ratio'], 2)}x none's"
                     f"{' - not smaller' if ics_says else ' - smaller'} (cosine of G and G′: "
                     f"{fmt(numbers['cos_bn'])} with BN vs {fmt(numbers['cos_none'])} without).")
    if votes and all(votes):
        verdict = "supported"
    elif votes and not any(votes):
        verdict = "refuted"
    else:
        verdict = "mixed"
    return _verdict("C8", verdict, figure, " ".join(parts), area_gap, C8Numbers(**numbers))


_JUDGES = {"C1": _c1, "C2": _c2, "C3": _c3, "C4": _c4, "C5": _c5, "C6": _c6, "C7": _c7, "C8": _c8}


def evidence(snaps: tuple[Snapshot, ...] = (), config: ExperimentConfig | None = None) -> list[Verdict]:
    """Verdicts on claims C1..C8 (in order) from a run's snapshots; never raises."""
    cfg = config if config is not None else ExperimentConfig()
    try:
        run = _Run(tuple(snaps or ()), cfg)
    except Exception as exc:  # malformed input: every claim is unmeasured, the board still draws
        log.warning("evidence board: %s", exc)
        return [_not_measured(cid, f"could not read the snapshots ({type(exc).__name__}: {exc})") for cid in CLAIMS]
    out = []
    for cid, judge in _JUDGES.items():
        needs, why = _NEEDS[cid]
        try:
            if not needs(cfg):
                out.append(_not_measured(cid, why))
            elif not run.snaps:
                out.append(_not_measured(cid, "no snapshot yet: start the run"))
            else:
                out.append(judge(run))
        except Exception as exc:  # one broken claim must not take the board down
            log.warning("evidence board: %s failed: %s", cid, exc, exc_info=True)
            out.append(_not_measured(cid, f"could not be computed ({type(exc).__name__}: {exc})"))
    return out
