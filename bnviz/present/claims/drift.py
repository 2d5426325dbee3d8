"""Claims judged by how far distributions move over training: C1 (one layer's input holds still with BN),
C2 (γ and β move it again), C7 (BN after the nonlinearity cannot fix it).

Every drift is read through :mod:`bnviz.present.summary` (W1 / pooled std; per snapshot over the second half,
or from the first snapshot), the same definitions the Over-training and Stability charts quote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bnviz.present import summary, views
from bnviz.present.claims.record import Claim, Judged, RunView, configured, not_measured
from bnviz.present.numbers import as_much, fmt, times
from bnviz.present.style import variant_label

C1_SUPPORT = 0.5  # BN's drift at most half of none's: a factor 2 is well outside snapshot-to-snapshot noise
C1_REFUTE = 1.0  # BN's drift no smaller than none's
C2_SUPPORT, C2_REFUTE = 1.5, 1.1  # y's drift vs x̂'s: 1.5x is "measurably more", < 1.1x is "no more"
C7_DRIFT, C7_W = 1.2, 0.01  # "after" drifts > 1.2x more / its received input's median W lower by > 0.01


# ------------------------------------------------------------------------------------------------ C1

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
class DriftComparison:
    """C1's rule applied to one layer's activation input, BN against no normalization."""

    verdict: str  # supported / refuted / mixed, by C1's thresholds
    bn: str  # the two variants compared
    none: str
    d_bn: float  # drift per snapshot (summary.drift_per_snapshot)
    d_none: float
    ratio: float  # d_bn / d_none
    window: str  # the steps the drift is averaged over
    layer: int  # 0-based
    f_bn: float  # drift from the first snapshot to the latest (summary.drift_from_first)
    f_none: float


def c1_rule(ratio: float) -> str:
    """C1's verdict for a ratio of drifts per snapshot, BN's over none's."""
    if ratio < C1_SUPPORT:
        return "supported"
    return "refuted" if ratio >= C1_REFUTE else "mixed"


def compare_drift(snaps, variants, layer: int) -> DriftComparison | None:
    """C1's comparison on ``layer``: the first BN variant placed before the activation against ``none``.

    None when the variants lack that pair, the run has fewer than summary.MIN_SNAPS snapshots, or a drift is not
    finite: then nothing may be concluded about drift.
    """
    if len(snaps) < summary.MIN_SNAPS:
        return None
    none = next((t for t in variants if t == "none"), None)
    bn = next((t for kind in ("bn", "bn_noaffine") for t in variants if t in (kind, f"{kind}@before")), None)
    if none is None or bn is None:
        return None
    st_bn, st_none = views.act_stage(snaps, bn, layer), views.act_stage(snaps, none, layer)
    if st_bn is None or st_none is None or st_bn == "x":  # x: this BN sits after the activation
        return None
    d_bn = summary.drift_per_snapshot(snaps, bn, layer, st_bn)
    d_none = summary.drift_per_snapshot(snaps, none, layer, st_none)
    if math.isnan(d_bn) or math.isnan(d_none):
        return None
    r = summary.ratio(d_bn, d_none)
    return DriftComparison(c1_rule(r), bn, none, d_bn, d_none, r, summary.window_text(snaps), layer,
                           summary.drift_from_first(snaps, bn, layer, st_bn),
                           summary.drift_from_first(snaps, none, layer, st_none))


def drift_headline(c: DriftComparison) -> str:
    """A chart title that states C1's verdict on the shown layer, in the board's words."""
    bn, none = variant_label(c.bn), variant_label(c.none)
    if c.verdict == "supported":
        return f"With {bn} the activation input holds still: it moves {times(1 / c.ratio)} less per snapshot"
    if c.verdict == "refuted":
        return f"With {bn} the activation input moves as much as with {none} or more"
    return (f"With {bn} the activation input moves {times(1 / c.ratio)} less per snapshot than with {none}: "
            f"steadier, but short of the factor {fmt(1 / C1_SUPPORT, 2)} the board asks for")


def drift_note(c: DriftComparison) -> str:
    """The numbers behind :func:`drift_headline`, as the board quotes them."""
    bn, none = variant_label(c.bn), variant_label(c.none)
    return (f"layer {c.layer + 1}'s drift per snapshot / std (all units), mean over {c.window}: {bn} {fmt(c.d_bn)}, "
            f"{none} {fmt(c.d_none)} (ratio {fmt(c.ratio)}); from the first snapshot / first std: {bn} "
            f"{fmt(c.f_bn)}, {none} {fmt(c.f_none)}")


def _c1(r: RunView) -> Judged:
    too_few = r.too_few()
    if too_few:
        return too_few
    none, bn = r.find(("none",)), r.find(("bn", "bn_noaffine"), "before")
    if none is None or bn is None:
        return not_measured(C1.needs_why)
    L = r.last_layer
    c = compare_drift(r.snaps, [none, bn], L)
    if c is None:
        gone = bn if r.latest(bn) is None or views.act_stage(r.snaps, bn, L) is None else none
        return not_measured(f"no finite drift in the second half: {r.why_missing(gone)}")
    st_bn, st_none = views.act_stage(r.snaps, bn, L), views.act_stage(r.snaps, none, L)
    assert st_bn is not None and st_none is not None  # compare_drift measured both at these stages
    f_bn, f_none = c.f_bn, c.f_none
    act = r.cfg.activation if r.cfg.activation != "identity" else "activation"  # a linear network's: no function
    figure = (f"drift of the last hidden layer's {act} input ({st_bn} in {bn}, {st_none} in {none}), W1 per "
              f"snapshot / pooled std, mean over {c.window}: {bn} {fmt(c.d_bn)} vs {none} {fmt(c.d_none)} "
              f"(ratio {fmt(c.ratio)}); W1 from the first snapshot to step {int(r.steps[-1]):,} / first std: "
              f"{bn} {fmt(f_bn)} vs {none} {fmt(f_none)}")
    if c.verdict == "supported":
        detail = (f"With BN the last layer's {act} input moved {times(1 / c.ratio)} less per snapshot than "
                  f"without it ({fmt(c.d_bn)} vs {fmt(c.d_none)} of its spread), and ended {fmt(f_bn)} vs "
                  f"{fmt(f_none)} of its initial spread from where it started: one layer's input does hold "
                  "still, as in Ioffe & Szegedy's Figure 1.")
    elif c.verdict == "refuted":
        detail = (f"With BN the last layer's {act} input moved as much as or more than without it ({fmt(c.d_bn)} "
                  f"vs {fmt(c.d_none)} of its spread per snapshot): this run does not show BN holding one "
                  "layer's input still.")
    else:
        detail = (f"BN made the last layer's {act} input drift less ({fmt(c.d_bn)} vs {fmt(c.d_none)} of its "
                  f"spread per snapshot), but only by {times(1 / c.ratio)}, short of the factor "
                  f"{fmt(1 / C1_SUPPORT, 2)} the rule asks for.")
    return Judged(c.verdict, figure, detail, c.ratio,
                  C1Numbers(bn, c.d_bn, c.d_none, f_bn, f_none, st_bn, st_none))


C1 = Claim(
    "C1", "One layer's input stays the same over training", "ioffe", "stability",
    needs=lambda c: configured(c, ("none",)) and configured(c, ("bn", "bn_noaffine"), "before"),
    needs_why="needs 'none' and a BN variant placed before the activation, trained side by side: open the "
              "ioffe preset",
    thresholds={"support": C1_SUPPORT, "refute": C1_REFUTE},
    rule=f"supported if BN's drift / none's < {C1_SUPPORT}; refuted if >= {C1_REFUTE:g}; mixed in between "
         "(drift: W1 between successive snapshots / pooled std of the last hidden layer's activation input, "
         "mean over the second half)",
    meaning={
        "supported": ("So the paper's picture holds for one layer: BN keeps that layer's input nearly the same while "
                      "the network learns. Different layers may still see different distributions; the claim is only "
                      "about one layer over time."),
        "refuted": "In this run BN did not hold this layer's input still, so the paper's picture does not hold here.",
        "mixed": "BN made the input steadier, but not by the factor of 2 the board asks for: steadier, not fixed.",
    },
    twins="BN against no normalization",
    judge=_c1,
)


# ------------------------------------------------------------------------------------------------ C2

@dataclass(frozen=True)
class C2Numbers:
    variant: str
    y: float  # drift of y from the first snapshot, last hidden layer
    x_hat: float  # the same for x̂
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
    control_ratio: float | None = None  # y / x̂ for bn_noaffine (y = x̂): what "no move" reads


def change_rates(snaps, token: str, layer: int) -> dict[str, float]:
    """Median relative change per snapshot, ‖Δp‖ / ‖p‖, of W, γ and β (what the γ and β chart quotes)."""
    return {w: summary.nanmedian(np.where((c := views.param_change(snaps, token, layer, w)) > 0, c, np.nan))
            for w in ("weight", "gamma", "beta")}


def _c2(r: RunView) -> Judged:
    too_few = r.too_few()
    if too_few:
        return too_few
    bn = r.find(("bn",), "before") or r.find(("bn",))
    if bn is None:
        return not_measured(C2.needs_why)
    L = r.last_layer
    # How far y and x̂ have moved since the start (γ = 1, β = 0: y = x̂ there), and how fast.
    c_y, c_xh = summary.drift_from_first(r.snaps, bn, L, "y"), summary.drift_from_first(r.snaps, bn, L, "x_hat")
    p_y, p_xh = summary.drift_per_snapshot(r.snaps, bn, L, "y"), summary.drift_per_snapshot(r.snaps, bn, L, "x_hat")
    if math.isnan(c_y) or math.isnan(c_xh):
        return not_measured(f"no finite drift: {r.why_missing(bn)}")
    ratio, pace = summary.ratio(c_y, c_xh), summary.ratio(p_y, p_xh)
    rates = change_rates(r.snaps, bn, L)
    g, b = views.affine(r.snaps, bn, L, "gamma"), views.affine(r.snaps, bn, L, "beta")
    g_end, b_end = (g[-1], b[-1]) if g.size and b.size else (np.full(1, np.nan), np.full(1, np.nan))
    step = int(r.steps[-1])
    where = "last hidden layer" if r.cfg.watched is None else f"last normalization layer ({r.cfg.layer_name(L)})"
    figure = (f"{where} of {bn}, W1 from the first snapshot at step {step:,} / first std: y {fmt(c_y)} "
              f"vs x̂ {fmt(c_xh)} (ratio {fmt(ratio)}); per snapshot over {r.span()}: y {fmt(p_y)} vs x̂ "
              f"{fmt(p_xh)} (ratio {fmt(pace)})")
    numbers: dict[str, float] = dict(y=c_y, x_hat=c_xh, y_pace=p_y, x_hat_pace=p_xh, pace_ratio=pace,
                                     gamma_mean=summary.nanmean(g_end), beta_mean=summary.nanmean(b_end),
                                     **{f"rate_{k}": v for k, v in rates.items()})  # C2Numbers' fields but variant
    versus = ""
    none = r.find(("none",))
    if none is not None:
        st = "x" if r.placement(bn) == "before" else "a"
        c_none, p_none = (summary.drift_from_first(r.snaps, none, L, st),
                          summary.drift_per_snapshot(r.snaps, none, L, st))
        numbers.update(none=c_none, none_pace=p_none)
        figure += f"; {st} of {none}: {fmt(c_none)} from the first, {fmt(p_none)} per snapshot"
        if not math.isnan(c_none):
            versus = (f" Even so, y has moved {'less' if c_y < c_none else 'no less'} than the unnormalized {st} "
                      f"of {none} (both are in the measured figure).")
    ctrl = r.find(("bn_noaffine",), r.placement(bn))
    if ctrl is not None:
        c = summary.ratio(summary.drift_from_first(r.snaps, ctrl, L, "y"),
                          summary.drift_from_first(r.snaps, ctrl, L, "x_hat"))
        numbers["control_ratio"] = c
        figure += f"; control {ctrl} (y = x̂): ratio {fmt(c)}"
    figure += (f"; γ now {fmt(summary.nanmean(g_end))} ± {fmt(summary.nanstd(g_end))}, β "
               f"{fmt(summary.nanmean(b_end))} ± {fmt(summary.nanstd(b_end))} (mean ± sd over {r.noun}s); median "
               f"relative change per snapshot: W {fmt(rates['weight'])}, γ {fmt(rates['gamma'])}, β "
               f"{fmt(rates['beta'])}")
    slow = (f" Per snapshot γ changes by a median {fmt(rates['gamma'])} of its size and the weights by "
            f"{fmt(rates['weight'])}.")
    if ratio > C2_SUPPORT:
        verdict = "supported"
        detail = (f"γ and β do move the distribution again: since the start y has drifted {fmt(ratio)}× as far "
                  f"as x̂ in the same layer (γ is now {fmt(summary.nanmean(g_end))} on average).{versus}{slow}")
    elif ratio < C2_REFUTE:
        verdict = "refuted"
        detail = (f"In this run γ and β have not moved y measurably beyond x̂ ({fmt(ratio)}× x̂'s drift since "
                  f"the start).{versus}{slow}")
    else:
        verdict = "mixed"
        detail = (f"γ and β moved y a little beyond x̂ ({fmt(ratio)}× x̂'s drift since the start), less than "
                  f"the {fmt(C2_SUPPORT, 2)}× the rule calls measurable.{versus}{slow}")
    return Judged(verdict, figure, detail, ratio, C2Numbers(bn, **numbers))


C2 = Claim(
    "C2", "γ and β move the distribution again", "gamma-beta", "gamma-beta",
    needs=lambda c: configured(c, ("bn",)),
    needs_why="needs BN with learned γ and β ('bn'): open the gamma-beta preset",
    thresholds={"support": C2_SUPPORT, "refute": C2_REFUTE},
    rule=f"supported if y has drifted farther than x̂ in the same BN layer by a ratio > {C2_SUPPORT}; refuted "
         f"if < {C2_REFUTE}; mixed in between (W1 from the first snapshot to the latest / the first "
         "snapshot's pooled std, last hidden layer)",
    meaning={
        "supported": ("So the student is right that the distribution is not fixed: γ and β move it again. But they "
                      "move it as a slow, learned shift and scale, the paper's slightly varying input, never changing "
                      "its shape (C6)."),
        "refuted": ("In this run γ and β stayed close enough to 1 and 0 that y has barely moved beyond x̂: the input "
                    "is as fixed as x̂ itself. They could move it; here they have not yet."),
        "mixed": "γ and β move the distribution a little: slightly varying is the right description.",
    },
    judge=_c2,
)


# ------------------------------------------------------------------------------------------------ C7

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


def _c7(r: RunView) -> Judged:
    before, after = r.find(("bn",), "before"), r.find(("bn",), "after")
    if before is None or after is None:
        return not_measured(C7.needs_why)
    too_few = r.too_few()
    if too_few:
        return too_few
    got = {}
    for token, stage in ((before, "a"), (after, "y")):  # what the next layer receives
        rows = r.unit_series([token], (stage,))
        got[token] = dict(
            w=summary.nanmedian([row[stage]["shapiro_w"] for row in rows]),
            kl=summary.nanmedian([row[stage]["kl_gaussian"] for row in rows]),
            skew=summary.nanmedian([row[stage]["skew"] for row in rows]),
            w_in=summary.nanmedian([row["in"]["shapiro_w"] for row in rows]),
            skew_in=summary.nanmedian([row["in"]["skew"] for row in rows]),
            drift=summary.nanmean([summary.drift_per_snapshot(r.snaps, token, layer, stage)
                                   for layer in range(len(r.cfg.widths))]),
        )
    b, a = got[before], got[after]
    if any(math.isnan(v) for v in (b["w"], a["w"], b["drift"], a["drift"])):
        gone = before if math.isnan(b["w"]) or math.isnan(b["drift"]) else after
        return not_measured(f"no finite statistics: {r.why_missing(gone)}")
    ratio = summary.ratio(a["drift"], b["drift"])
    drift_worse, shape_worse = ratio > C7_DRIFT, a["w"] < b["w"] - C7_W
    figure = (f"what the next layer receives (a with {before}, y with {after}), all hidden layers: drift per "
              f"snapshot / std over {r.span()} {fmt(b['drift'])} vs {fmt(a['drift'])} (after / before "
              f"{fmt(ratio)}); median over tracked {r.noun}s W {fmt(b['w'])} vs {fmt(a['w'])}, KL {fmt(b['kl'])} "
              f"vs {fmt(a['kl'])}, skew {fmt(b['skew'])} vs {fmt(a['skew'])}; what BN normalizes: x (before) "
              f"median W {fmt(b['w_in'])}, skew {fmt(b['skew_in'])} vs a (after) W {fmt(a['w_in'])}, skew "
              f"{fmt(a['skew_in'])}")
    said = (f"With BN after the {r.cfg.activation}, the next layer's input drifts {as_much(ratio)} with BN "
            f"before it, and its median W is {fmt(a['w'])} vs {fmt(b['w'])}.")
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
    return Judged(verdict, figure, detail, ratio, C7Numbers(ratio, C7Side(**b), C7Side(**a)))


C7 = Claim(
    "C7", "Normalizing after the nonlinearity cannot fix the distribution", "placement", "layer",
    needs=lambda c: configured(c, ("bn",), "before") and configured(c, ("bn",), "after"),
    needs_why="needs BN before and after the activation side by side (bn@before, bn@after): open the placement "
              "preset",
    thresholds={"drift": C7_DRIFT, "w": C7_W},
    rule=f"supported if, with BN after the activation, what the next layer receives drifts > {C7_DRIFT}x "
         f"more AND is less Gaussian (median W lower by > {C7_W}) than with BN before; refuted if neither; "
         "mixed if one",
    meaning={
        "supported": ("So normalizing after the nonlinearity fixes the mean and variance of a distribution the "
                      "nonlinearity has already reshaped, and that shape goes on changing: it cannot fix the "
                      "distribution."),
        "refuted": ("In this run BN after the activation handed on an input as stable and as Gaussian as BN before it: "
                    "the claim does not hold here."),
    },
    twins="BN before against BN after the activation",
    judge=_c7,
)
