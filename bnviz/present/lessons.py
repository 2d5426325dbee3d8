"""The classroom walkthrough: one step per claim of docs/claims.md, each with its own link (``?lesson=N``).

A step says which preset, panel, layer and unit to open, what to look at and which question to ask the
class. Its answer is not written here: :func:`answer` composes it from the current run's verdict
(:func:`bnviz.present.claims.evidence`), so the numbers a class sees are the numbers its run measured, and a run
that contradicts a claim gets an answer that says so. Lesson content is data; the page only renders it.

All text is plain (no HTML, no Markdown emphasis): the page may show it as text or as Markdown.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bnviz import stats
from bnviz.config import PRESETS, ExperimentConfig, split_variant
from bnviz.measure import clt
from bnviz.measure.snapshot import POOLED
from bnviz.present import claims, numbers, views
from bnviz.present.claims import sums
from bnviz.present.claims.lrrange import span_text
from bnviz.present.lrrange import LR_GRID
from bnviz.present.style import variant_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One step of the walkthrough."""

    number: int  # 1-based, as in ?lesson=N
    claim: str  # "C1".."C10"
    title: str  # short, shown as the step heading
    preset: str  # key of config.PRESETS the step opens
    panel: str  # key of config.PANELS to open and highlight
    layer: int | None  # hidden layer to show (0-based; None: the last one)
    unit: int  # -1 (all units pooled) or a tracked unit 0..4
    look_at: str  # what to look at on the panel (plain text)
    question: str  # the question the teacher asks the class
    chart: str = ""  # the page's key of the chart the question is about, drawn right under it


STEPS: tuple[Step, ...] = (
    Step(
        1, "C1", "One layer's input over training", "ioffe", "over-time", None, 0,
        "The top chart redraws Figure 1 of Ioffe & Szegedy: the median (solid) and 15th/85th percentiles "
        "(dashed) of one sigmoid input of the last hidden layer over training, one cell per network. Compare "
        "the cell without normalization with the BN cell.",
        "In which network does this one layer's input keep the same distribution while the network learns? "
        "And does it matter that other layers see different distributions?",
        chart="fig_bands",
    ),
    Step(
        2, "C2", "Do γ and β move it again?", "gamma-beta", "gamma-beta", None, POOLED,
        "Left and middle: γ and β of every unit of the last hidden layer over training (tracked units drawn "
        "bold). Right: how fast the weights W, γ and β change per snapshot, on a log scale.",
        "γ and β are learned, one pair per unit. Do they bring back the drift that BN removed, and how fast "
        "do they move compared with the weights?",
        chart="fig_gb",
    ),
    Step(
        3, "C3", "Does BN make inputs Gaussian?", "why-gaussian", "layer", 0, 2,
        "Layer 1 has only 4 inputs, each bimodal. In the BN row, compare the histograms of x = Wu + b, x̂ and "
        "y of unit 2 with the grey Gaussian of equal mean and std; W and KL are printed in each corner.",
        "Is x̂ more Gaussian than x? What did BN do to the shape of the histogram, and what did it do to its "
        "axis?",
        chart="fig_layer",
    ),
    Step(
        4, "C4", "Two numbers: mean and variance", "why-gaussian", "normality", 0, 2,
        "Pick the BN variant: the Shapiro-Wilk W and KL of x, x̂ and y over training lie on one line. Below, "
        "the Q-Q plot of unit 2 against the Gaussian: points on the diagonal would mean Gaussian.",
        "BN gave this unit mean 0 and variance 1, the two numbers that describe a Gaussian. Is it a Gaussian "
        "now? What do mean and variance not tell you about a distribution?",
        chart="fig_norm",
    ),
    Step(
        5, "C5", "Why Gaussian? The central limit theorem", "why-gaussian", "why-gaussian", None, POOLED,
        "Top: how Gaussian Wu + b is (W towards 1, KL towards 0) as the number of inputs per unit grows, for "
        "several input distributions. Bottom: a bimodal x before and after BN.",
        "When does a weighted sum of many inputs become Gaussian, and when does it not? Which of these cases "
        "look like the inside of a real network?",
        chart="fig_clt",
    ),
    Step(
        6, "C6", "A linear map keeps the shape", "gamma-beta", "gamma-beta", None, 0,
        "In the What-if lab of the γ and β panel, drag the γ and β sliders for unit 0: watch the histogram "
        "of x̂ move and stretch, and watch the W and KL numbers.",
        "Can any choice of γ and β make this unit's distribution more Gaussian, or less? Then what can γ and "
        "β change, and what can they not?",
        chart="fig_whatif",
    ),
    Step(
        7, "C7", "BN before or after the nonlinearity", "placement", "normality", None, 0,
        "Pick the variant with BN after the ReLU: the W lines of x̂ and y lie on that of a, the rectified, "
        "skewed output of the ReLU. Then pick BN before the ReLU: there BN receives x = Wu + b and the ReLU "
        "reshapes it afterwards.",
        "If we normalize after the nonlinearity instead of before it, does the next layer get a fixed, "
        "near-Gaussian input?",
        chart="fig_norm",
    ),
    Step(
        8, "C8", "Is a stable input what helps? (Santurkar)", "santurkar", "stability", None, POOLED,
        "Left: how far the last hidden layer's activation input moves per snapshot, for no normalization, BN "
        "and noisy BN (random shift and scale after BN, redrawn every step). Middle: Santurkar's gradient "
        "shift. The Training panel shows test accuracy.",
        "Noisy BN's distributions move at every step. Does it train worse than BN? If not, what does that say "
        "about the paper's explanation of why BN helps?",
        chart="fig_stab",
    ),
    Step(
        9, "C9", "Would another shape serve better?", "shapes", "training", None, POOLED,
        "Four networks differ only in the shape their normalization gives each unit: BN keeps the shape it "
        "receives; the other three standardize as BN does and then force the values into a Gaussian, a uniform "
        "or a heavy-tailed (Laplace) shape. The chart shows their test score over training.",
        "Which shape trains best on this data? Is the Gaussian the best choice, or only the usual one?",
        chart="fig_training",
    ),
    Step(
        10, "C10", "What BN does instead: a smoother landscape", "santurkar", "stability", None, POOLED,
        "Stand at the current weights and step along the gradient by a few multiples of the learning rate. "
        "The smoothness chart shows how much the loss varies along those steps, how much the gradient changes "
        "and the ratio of the two (the effective β-smoothness), with and without BN.",
        "If BN does not fix the distributions, what does it change? Is the loss landscape smoother with BN?",
        chart="fig_smooth",
    ),
    Step(
        11, "C11", "How wide a range of learning rates trains well?", "lr-range", "lr-range", None, POOLED,
        "The chart shows the same network trained at 9 learning rates, from 0.001 to 10 on a log scale, without "
        "normalization and with BN: the test score at the end (solid) and its mean over training (dashed); an x "
        "at the bottom marks a run that diverged. \"Sweep the learning rate\" trains the rates not yet stored.",
        "Over how wide a range of learning rates does each network train well? Is BN's range wider, and by "
        "how much?",
        chart="fig_lr",
    ),
)

_BY_NUMBER = {s.number: s for s in STEPS}


def step(number: int) -> Step:
    """Step ``number`` (1-based, as in ``?lesson=N``); ValueError for a number that has no step."""
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or int(number) not in _BY_NUMBER:
        raise ValueError(f"lesson step {number!r} does not exist: the lesson has steps 1 to {len(STEPS)}")
    return _BY_NUMBER[int(number)]


# ------------------------------------------------------------------------------------------- the answer


_YET = ("let the run go on", "no snapshot yet")


def _fmt(x) -> str:
    """A number as the evidence board prints it (3 significant digits)."""
    return claims.fmt(None if x is None else float(x))




def _names(items) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items) or "none"
    return ", ".join(items[:-1]) + " and " + items[-1]


def _layer_of(step_: Step, cfg: ExperimentConfig) -> int:
    last = len(cfg.widths) - 1
    return last if step_.layer is None else max(0, min(step_.layer, last))


def _bn_token(snaps, cfg: ExperimentConfig) -> str | None:
    """The first BN variant (learned affine first) with layers at the latest snapshot."""
    for kind in claims.BN_KINDS:
        for token in cfg.variants:
            if split_variant(token)[0] == kind and views.layer_of(snaps[-1], token, 0) is not None:
                return token
    return None


def _unit_row(step_: Step, snaps, cfg: ExperimentConfig, keys: tuple[str, ...]) -> str:
    """One sentence with the step's unit (the one its panel shows) before and after BN, or ''."""
    token = _bn_token(snaps, cfg)
    if token is None:
        return ""
    layer = _layer_of(step_, cfg)
    src = "x" if cfg.placement_of(token) == "before" else "a"
    st_in, st_hat = (views.stage_of(snaps[-1], token, layer, s) for s in (src, "x_hat"))
    if st_in is None or st_hat is None:
        return ""
    tracked = [u for u in st_in.units if u != POOLED]
    unit = step_.unit if step_.unit in tracked else (tracked[0] if tracked else None)
    if unit is None:
        return ""
    got = [{k: st.stat(k, unit) for k in keys} for st in (st_in, st_hat)]
    if any(math.isnan(v) for d in got for v in d.values()):
        return ""
    a, b = (", ".join(f"{_STAT_NAMES[k]} {_fmt(d[k])}" for k in keys) for d in got)
    return (f"On the panel's unit {unit} of {cfg.layer_name(layer)} ({variant_label(token)}), {src} has {a}; x̂ has {b} "
            f"({_GAUSSIAN[keys]}).")


_STAT_NAMES = {"shapiro_w": "W", "kl_gaussian": "KL", "skew": "skew", "kurtosis": "excess kurtosis",
               "mean": "mean", "std": "std"}
_GAUSSIAN = {("shapiro_w", "kl_gaussian"): "a Gaussian has W 1 and KL 0",
             ("mean", "std", "skew", "kurtosis"): "a Gaussian has skew 0 and excess kurtosis 0"}
_ACT_NAMES = {"relu": "ReLU", "gelu": "GELU"}


def _act(cfg: ExperimentConfig) -> str:
    return _ACT_NAMES.get(cfg.activation, cfg.activation)


def _whatif(step_: Step, v: claims.Verdict, snaps, cfg: ExperimentConfig) -> str:
    """The what-if lab on the step's unit: (γ, β) applied to its x̂ quantiles, as the panel does, or ''."""
    token, stage = v.numbers.variant, v.numbers.stage
    snap = next((s for s in reversed(snaps) if token and views.layer_of(s, token, 0) is not None), None)
    if snap is None:
        return ""
    st = views.stage_of(snap, token, _layer_of(step_, cfg), stage)
    if st is None:
        return ""
    tracked = [u for u in st.units if u != POOLED]
    unit = step_.unit if step_.unit in tracked else (tracked[0] if tracked else None)
    if unit is None:
        return ""
    q = st.quantiles[st.units.index(unit)].astype(np.float64)
    if not np.isfinite(q).all():
        return ""
    before = stats.normality(q)
    name = "x̂" if stage == "x_hat" else stage
    return (f"In the lab, unit {unit} of {cfg.layer_name(_layer_of(step_, cfg))} has {name} with W "
            f"{_fmt(before.shapiro_w)} and KL {numbers.kl(before.kl_gaussian)}: whatever γ ≠ 0 and β you set, "
            f"γ{name} + β shows the same W and KL, while its mean and std follow γ and β.")


def _c1(v, n: claims.C1Numbers, cfg, **_) -> list[str]:
    bn = variant_label(n.variant)
    return [f"per snapshot over the second half of the run, the last hidden layer's {_act(cfg)} input moved "
            f"{_fmt(n.bn)} of its spread with {bn} and {_fmt(n.none)} without normalization, a ratio of "
            f"{_fmt(v.value)} (supported below {_fmt(claims.C1_SUPPORT)})."]


def _c2(v, n: claims.C2Numbers, cfg, **_) -> list[str]:
    first = (f"since the start, y = γx̂ + β of the last hidden layer has moved {_fmt(n.y)} of its first spread "
             f"against {_fmt(n.x_hat)} for x̂, {_fmt(v.value)} times as far (supported above "
             f"{_fmt(claims.C2_SUPPORT)}); γ now averages {_fmt(n.gamma_mean)} and β {_fmt(n.beta_mean)}.")
    second = (f"Per snapshot γ changes by a median {_fmt(n.rate_gamma)} of its size and β by {_fmt(n.rate_beta)}, "
              f"against {_fmt(n.rate_weight)} for the weights.")
    return [first, second]


def _c3(v, n: claims.C3Numbers, cfg, step_, snaps, **_) -> list[str]:
    out = [f"in every one of {n.n_series} unit series, W and KL of x̂ and y equal those of BN's input up to float "
           "rounding (the board's figure gives the largest difference)."]
    unit = _unit_row(step_, snaps, cfg, ("shapiro_w", "kl_gaussian"))
    return out + ([unit] if unit else [])


def _c4(v, n: claims.C4Numbers, cfg, step_, snaps, **_) -> list[str]:
    out = [f"in every one of {n.n_series} unit series BN set the mean to 0 and the std to 1 and left skew and "
           "kurtosis as they were, up to float rounding (the board's figure gives the largest change)."]
    unit = _unit_row(step_, snaps, cfg, ("mean", "std", "skew", "kurtosis"))
    return out + ([unit] if unit else [])


def _c5(v, n: claims.C5Numbers, cfg, **_) -> list[str]:
    shown = lambda name: name in clt.PAGE_DISTS  # noqa: E731  (the distributions the chart draws at first)
    good = [g for g in n.gaussian if shown(g)]
    bad = [b for b in n.not_gaussian if shown(b)]
    out = [f"with random weights and {claims.CLT_FAN_INS[-1]} inputs per unit, Wu + b becomes Gaussian for "
           f"{_names(good)} inputs but not for {_names(bad)}."]
    if n.layers:
        out.append(f"In this run x = Wu + b reads {sums.layers_text(list(n.layers))} (near-Gaussian means a median "
                   f"W of at least {_fmt(claims.RUN_W)} and KL below {_fmt(claims.RUN_KL)}).")
    return out


def _c6(v, n: claims.C6Numbers, cfg, step_, snaps, **_) -> list[str]:
    out = [f"applying (γ, β) = {', '.join(f'({g:g}, {b:g})' for g, b in claims.C6_PAIRS)} to x̂ of "
           f"{n.n_units} tracked units changes W and KL by rounding error only (the board's figure gives the "
           "largest change)."]
    lab = _whatif(step_, v, snaps, cfg)
    return out + ([lab] if lab else [])


def _c7(v, n: claims.C7Numbers, cfg, step_, snaps, **_) -> list[str]:
    act = _act(cfg)
    worse = n.drift_ratio > claims.C7_DRIFT, n.after.w < n.before.w - claims.C7_W
    out = [f"over every layer, what the next layer receives with BN after the {act} drifts "
           f"{'more' if worse[0] else 'no more'} and is {'less' if worse[1] else 'no less'} Gaussian than with BN "
           f"before it, by the board's rule ({_fmt(claims.C7_DRIFT)}× the drift, W lower by {_fmt(claims.C7_W)}; its "
           "figure gives the numbers)."]
    layer = _layer_of(step_, cfg)
    sides = {}
    for token in cfg.variants:  # what the next layer receives: a with BN before the activation, y with BN after
        if split_variant(token)[0] == "bn":
            stage = "a" if cfg.placement_of(token) == "before" else "y"
            st = views.stage_of(snaps[-1], token, layer, stage)
            if st is not None and step_.unit in st.units:
                sides[cfg.placement_of(token)] = (stage, st.stat("shapiro_w", step_.unit))
    if {"before", "after"} <= sides.keys():
        (sa, wa), (sb, wb) = sides["after"], sides["before"]
        out.append(f"On the Normality panel's unit {step_.unit} of {cfg.layer_name(layer)}, it receives {sa} with W "
                   f"{_fmt(wa)} with BN after the {act}, and {sb} with W {_fmt(wb)} with BN before it.")
    return out


def _c8(v, n: claims.C8Numbers, cfg, **_) -> list[str]:
    def _pct(x) -> str:  # the test score as the Training chart writes it
        return numbers.score(x, "R²" in n.score)

    first = (f"noisy BN, whose last-layer input drifts {_fmt(n.drift_noisy)} of its spread per snapshot "
             f"against {_fmt(n.drift_bn)} for BN ({_fmt(n.drift_ratio)} times as much), averages "
             f"{_pct(n.area_noisy)} {n.score} over training against BN's {_pct(n.area_bn)} "
             f"({abs(n.area_gap) * 100:.1f} points {'below' if n.area_gap > 0 else 'above'}) and "
             f"{'ends' if n.finished else 'is'} at {_pct(n.acc_noisy)} against {_pct(n.acc_bn)}")
    if n.acc_none is not None:
        first += f" and {_pct(n.acc_none)} without normalization"
    if not n.finished:
        first += " so far"
    out = [first + "."]
    if n.ics_ratio is not None:
        out.append(f"Santurkar's gradient shift ‖G − G′‖ is {_fmt(n.ics_bn)} with BN against "
                   f"{_fmt(n.ics_none)} without ({_fmt(n.ics_ratio)} times as large; cosine of G and G′ "
                   f"{_fmt(n.cos_bn)} vs {_fmt(n.cos_none)}).")
    return out


def _c9(v, n: claims.C9Numbers, cfg, **_) -> list[str]:
    def _pct(x) -> str:  # the test score as the Training chart writes it
        return numbers.score(x, "R²" in n.score)

    areas = ", ".join(f"{variant_label(t)} {_pct(a)}" for t, a in n.areas.items())
    gaps = " and ".join(f"{abs(g) * 100:.1f} points {'above' if g > 0 else 'below'} {variant_label(ref)}"
                        for ref, g in n.gaps.items())
    out = [f"the {n.score} averaged over training is {areas}{'' if n.finished else ' so far'}."]
    out.append(f"The best non-Gaussian shape, {variant_label(n.best)}, is {gaps}.")
    return out


def _c10(v, n: claims.C10Numbers, cfg, **_) -> list[str]:
    bn, none = (variant_label(t) for t in n.tokens)
    words = dict(claims.SMOOTHNESS)
    return [f"along the gradient, the medians over the measured steps are, {bn} against {none}: "
            + "; ".join(f"{words[q]} {_fmt(n.bn[q])} vs {_fmt(n.none[q])}" for q in n.ratios) + "."]


def _c11(v, n: claims.C11Numbers, cfg, **_) -> list[str]:
    def _pct(x) -> str:  # the score as the Learning rates chart writes it
        return numbers.score(x, "R²" in n.score)

    bn, none = n.tokens
    said = [f"lr {span_text(n.spans[t])}" if n.spans[t] else "none of the sweep's rates" for t in (bn, none)]
    out = [f"the best mean {n.score} over training in the sweep is {_pct(n.best)} ({variant_label(n.best_at[0])} at "
           f"lr {n.best_at[1]:g}); within {claims.C11_MARGIN * 100:g} points of it {variant_label(bn)} trains well "
           f"at {said[0]} ({_fmt(n.widths[bn])} decades) and {variant_label(none)} at {said[1]} "
           f"({_fmt(n.widths[none])} decades)."]
    gone = [f"{variant_label(t)} diverged at lr {', '.join(f'{x:g}' for x in n.diverged[t])}" for t in (bn, none)
            if n.diverged[t]]
    if gone:
        out.append(" and ".join(gone).capitalize() + ".")
    return out


_COMPOSE: dict[str, Callable[..., list[str]]] = {"C1": _c1, "C2": _c2, "C3": _c3, "C4": _c4, "C5": _c5, "C6": _c6,
                                                  "C7": _c7, "C8": _c8, "C9": _c9, "C10": _c10, "C11": _c11}


def _meaning(v: claims.Verdict) -> str:
    if v.claim == "C7" and v.verdict == "mixed":
        drift_worse = v.value is not None and v.value > claims.C7_DRIFT
        return ("Less stable, but no less Gaussian: BN after the nonlinearity fixes mean and variance yet hands "
                "on a distribution that keeps moving." if drift_worse else
                "No less stable, but less Gaussian: BN after the nonlinearity fixes mean and variance of a shape "
                "the nonlinearity has already bent.")
    claim = claims.BY_ID.get(v.claim)
    return claim.meaning.get(v.verdict, "") if claim is not None else ""


def _not_measured(step_: Step, v: claims.Verdict | None, snaps, cfg: ExperimentConfig | None) -> str:
    detail = "" if v is None else v.detail
    if not snaps or any(s in detail for s in _YET):
        if len(snaps) >= claims.MIN_SNAPS:  # enough snapshots: the claim says what it still waits for
            return f"Not measured yet: it {detail.rstrip('.')}. This step uses the {step_.preset} preset."
        more = f" (this claim needs at least {claims.MIN_SNAPS} snapshots; there are {len(snaps)})" if snaps else ""
        return (f"Not measured yet: let the run train a little longer{more}. This step uses the {step_.preset} "
                "preset.")
    if v is None:
        return f"Not measured: the evidence board has no claim {step_.claim!r}."
    text = f"Not measured in this run: {detail.rstrip('.')}."
    if step_.preset not in detail and (cfg is None or cfg.variants != PRESETS[step_.preset].config.variants):
        text += f" This step's preset, {step_.preset}, measures it."
    return text


def answer(step: Step, snaps, config, lr_points=()) -> str:
    """The answer to ``step``'s question, composed from the current run's verdict on its claim; never raises.

    2-4 plain sentences: the verdict, the measured figures with their numbers, and what that means for the
    student's question. "Not measured yet" while the run has too few snapshots, and the preset that measures
    the claim when the current run cannot. ``lr_points``: the stored points of this network's learning-rate sweep
    (C11's evidence).
    """
    step_ = step
    snaps = tuple(snaps or ())
    try:
        cfg = config if config is not None else PRESETS[step_.preset].config
        if not step_.claim:
            verdicts = claims.evidence(snaps, cfg, lr_points)
            return "This run's evidence board: " + "; ".join(f"{v.claim} {v.verdict}" for v in verdicts) + "."
        v = next((x for x in claims.evidence(snaps, cfg, lr_points) if x.claim == step_.claim), None)
        if not snaps or v is None or v.verdict == "not measured":
            return _not_measured(step_, v, snaps, cfg)
    except Exception as exc:  # the banner must draw whatever the run holds
        log.warning("lesson %s: %s", getattr(step_, "number", "?"), exc, exc_info=True)
        return f"Not measured: the answer could not be computed from this run ({type(exc).__name__}: {exc})."
    at = snaps[-1].step
    lead = (f"{v.verdict.capitalize()} at step {at:,}, the end of the run" if at >= cfg.steps else
            f"{v.verdict.capitalize()} so far, at step {at:,} of {cfg.steps:,}")
    if v.claim == "C11":  # judged on the sweep's finished runs, not on this run's step
        lead = f"{v.verdict.capitalize()} by the sweep's {len(LR_GRID)} finished runs"
    try:
        body = _COMPOSE[v.claim](v=v, n=v.numbers, cfg=cfg, step_=step_, snaps=snaps)
        meaning = _meaning(v)
        first = f"{lead}: {body[0]}"
        return " ".join([first, *body[1:], *([meaning] if meaning else [])])
    except Exception as exc:  # numbers missing or malformed: fall back to the board's own sentences
        log.warning("lesson %s: composing the answer failed: %s", step_.number, exc, exc_info=True)
        return f"{lead}: {v.detail} Measured: {v.figure}."
