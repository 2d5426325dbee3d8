"""Claims judged by the shape of a distribution: C3 (BN makes inputs Gaussian), C4 (BN fixes two numbers,
mean and variance), C6 (a linear map keeps the shape)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnviz import stats
from bnviz.measure import clt
from bnviz.present import views
from bnviz.present.claims.record import BN_KINDS, Claim, Judged, RunView, configured, gap, not_measured
from bnviz.present.claims.sums import RUN_KL, RUN_W, C5Layer, run_layers
from bnviz.present.numbers import fmt, sci

# x̂ and y are float32 affine images of x, so rounding alone moves W and KL by ~1e-8 (measured: < 1e-7);
# these tolerances are far above that and at the estimators' own noise (KL sd 0.011 nats, W ~1e-3 at n=512,
# stats.normality): a reshaping smaller than them could not be told from sampling noise anyway.
TOL_W, TOL_KL = 1e-3, 0.01
TOL_MOMENT = 1e-3  # skew, kurtosis: relative to max(1, |value|); float32 rounding gives ~1e-7
STD_CHECK_VAR = 100 * clt.BN_EPS  # x̂'s std is sqrt(var / (var + eps)) >= 0.995 from here on
C6_PAIRS = ((2.5, -1.0), (0.3, 0.7), (-1.7, 2.0))  # (γ, β): stretch, shrink, flip
C6_TOL = 1e-6  # 64 float64 quantiles: an affine map changes W and KL by ~1e-15 through rounding alone
STAGE_NAMES = {"x": "x", "x_hat": "x̂", "y": "y", "a": "a"}
NEEDS_BN = "needs a BN variant: open the why-gaussian preset"


# ------------------------------------------------------------------------------------------------ C3

@dataclass(frozen=True)
class C3Numbers:
    max_dw: float  # largest |W(x̂ or y) - W(x)| over unit series
    max_dkl: float
    median_w_in: float  # W of what BN receives
    min_w_in: float
    n_series: int


def _layers_said(r: RunView) -> str:
    """Which layers' BN input was near-Gaussian, by C5's rule and from C5's own numbers."""
    token, layers = run_layers(r)
    if not layers:
        return ""
    good = [row for row in layers if row.gaussian]
    bad = [row for row in layers if not row.gaussian]
    rule = f"C5's rule: median W >= {RUN_W}, KL < {RUN_KL}"
    if not bad:
        return (f"BN's input x was near-Gaussian already in every layer ({rule}): that came from the linear "
                "layer's sum of many inputs (C5), not from BN.")
    if not good:
        return f"BN's input x is not near-Gaussian in any layer ({rule}), and after BN it is exactly as far from it."
    return (f"BN's input x was near-Gaussian already in {_layer_list(good)} ({rule}), from the linear layer's "
            f"sum of many inputs (C5), not from BN; in {_layer_list(bad)} it is not, and after BN it stays "
            "exactly as non-Gaussian.")


def _layer_list(rows: list[C5Layer]) -> str:
    """'layer 1', 'layers 2–3', 'layers 1, 3 and 5'; a watched model's layers by name ('layer1.0.bn1 and 2 more')."""
    if rows[0].name:
        return rows[0].name if len(rows) == 1 else f"{rows[0].name} and {len(rows) - 1} more"
    numbers = [row.layer for row in rows]
    if len(numbers) == 1:
        return f"layer {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"layers {numbers[0]}–{numbers[-1]}"
    return "layers " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _c3(r: RunView) -> Judged:
    tokens = r.bn_tokens()
    rows = r.unit_series(tokens, ("x_hat", "y"))
    if not rows:
        return not_measured(f"needs a BN variant with tracked {r.noun}s: open the why-gaussian preset")
    dw = max(max(gap(row[s]["shapiro_w"], row["in"]["shapiro_w"]) for s in ("x_hat", "y")) for row in rows)
    dkl = max(max(gap(row[s]["kl_gaussian"], row["in"]["kl_gaussian"]) for s in ("x_hat", "y")) for row in rows)
    w_in = np.array([row["in"]["shapiro_w"] for row in rows])
    gain = float(np.median([row["x_hat"]["shapiro_w"] - row["in"]["shapiro_w"] for row in rows]))
    worst = rows[int(np.argmin(w_in))]
    where = f"{r.cfg.layer_name(worst['layer'])} {r.noun} {worst['unit']} of {worst['token']}"
    steps = sorted({row["step"] for row in rows})
    figure = (f"{len(rows)} {r.noun} series ({', '.join(tokens)}; tracked {r.noun}s of every layer, step "
              f"{', '.join(f'{s:,}' for s in steps)}): max |ΔW| of x̂, y vs BN's input {sci(dw)}, max |ΔKL| "
              f"{sci(dkl)} nats; W of the input itself: median {fmt(float(np.median(w_in)))}, lowest "
              f"{fmt(float(w_in.min()))} ({where}: x̂ {fmt(worst['x_hat']['shapiro_w'])}, y "
              f"{fmt(worst['y']['shapiro_w'])})")
    if dw < TOL_W and dkl < TOL_KL:
        verdict = "refuted"
        detail = (f"BN standardizes, it does not reshape: {r.noun} by {r.noun}, W of x̂ and y differs from W of "
                  f"BN's input by at most {sci(dw)} and the KL by {sci(dkl)} nats, rounding only. {_layers_said(r)}")
    elif gain > TOL_W:
        verdict = "supported"
        detail = (f"Here x̂ is more Gaussian than BN's input: median W gain {fmt(gain)}, max |ΔKL| {fmt(dkl)} "
                  "nats, beyond what rounding explains.")
    else:
        verdict = "mixed"
        detail = (f"W or KL changed through BN (max |ΔW| {sci(dw)}, |ΔKL| {sci(dkl)}) but not towards "
                  f"the Gaussian (median W gain {fmt(gain)}).")
    return Judged(verdict, figure, detail.strip(), dw,
                  C3Numbers(dw, dkl, float(np.median(w_in)), float(w_in.min()), len(rows)))


C3 = Claim(
    "C3", "BN makes layer inputs Gaussian", "why-gaussian", "normality",
    needs=lambda c: configured(c, BN_KINDS), needs_why=NEEDS_BN,
    thresholds={"w": TOL_W, "kl": TOL_KL},
    rule=f"refuted if, unit by unit, W of x̂ and y equals W of BN's input within {TOL_W:g} and the KL within "
         f"{TOL_KL:g} nats (float32 rounding alone gives ~1e-8); supported if x̂ is more Gaussian beyond that; "
         "mixed otherwise",
    meaning={
        "refuted": ("So BN does not make anything Gaussian: subtracting a mean and dividing by a standard deviation "
                    "moves and stretches the histogram but keeps its shape. Whatever is Gaussian about a layer's "
                    "input was there before BN (C5)."),
        "supported": ("In this run x̂ came out more Gaussian than BN's input, which a per-unit shift and scale cannot "
                      "do: look at the panel for what happened."),
        "mixed": ("The shape statistics changed through BN, but not towards the Gaussian: BN did not make the input "
                    "Gaussian."),
    },
    judge=_c3,
)


# ------------------------------------------------------------------------------------------------ C4

@dataclass(frozen=True)
class C4Numbers:
    max_dskew: float  # relative change through BN, largest over unit series
    max_dkurtosis: float
    max_abs_mean: float  # |mean of x̂|
    max_abs_std_dev: float  # |std of x̂ - 1|
    n_series: int


def _c4(r: RunView) -> Judged:
    rows = r.unit_series(r.bn_tokens(), ("x_hat",))
    if not rows:
        return not_measured(f"needs a BN variant with tracked {r.noun}s: open the why-gaussian preset")

    def rel(k: str) -> float:
        return max(abs(row["x_hat"][k] - row["in"][k]) / max(1.0, abs(row["in"][k])) for row in rows)

    ds, dk = rel("skew"), rel("kurtosis")
    # BN divides by sqrt(var + eps): x̂'s std is 1 only where var >> eps, so nearly constant units
    # (dead ReLUs, saturated inputs) are left out of the "mean 0, std 1" check.
    live = [row for row in rows if row["in"]["std"] ** 2 >= STD_CHECK_VAR] or rows
    dm = max(abs(row["x_hat"]["mean"]) for row in live)
    dsd = max(abs(row["x_hat"]["std"] - 1) for row in live)
    skews = np.array([row["in"]["skew"] for row in rows])
    kurts = np.array([row["in"]["kurtosis"] for row in rows])
    ex = rows[int(np.argmax(np.abs(skews)))]
    where = f"{r.cfg.layer_name(ex['layer'])} {r.noun} {ex['unit']} of {ex['token']}"
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
        detail = (f"BN fixes mean and variance and nothing else: {fixed}, while skew {fmt(ex['in']['skew'])} and "
                  f"excess kurtosis {fmt(ex['in']['kurtosis'])} ({where}) pass through unchanged (x̂: "
                  f"{fmt(ex['x_hat']['skew'])}, {fmt(ex['x_hat']['kurtosis'])}). Mean and variance are the two "
                  "numbers that describe a Gaussian, but fixing them makes nothing Gaussian: they describe a "
                  "distribution fully only if it already is one.")
    else:
        verdict = "refuted"
        detail = (f"BN changed the higher moments too (skew by up to {fmt(ds)}, kurtosis by {fmt(dk)}, "
                  "relative): it did more than fix mean and variance.")
    return Judged(verdict, figure, detail, max(ds, dk), C4Numbers(ds, dk, dm, dsd, len(rows)))


C4 = Claim(
    "C4", "BN fixes only mean and variance, the two numbers of a Gaussian", "why-gaussian", "normality",
    needs=lambda c: configured(c, BN_KINDS), needs_why=NEEDS_BN,
    thresholds={"moment": TOL_MOMENT},
    rule=f"supported if skew and excess kurtosis of every tracked unit pass BN unchanged (within "
         f"{TOL_MOMENT:g} x max(1, |value|)): BN fixes only mean and variance; refuted if they change",
    meaning={
        "supported": ("So BN pins exactly the two numbers that describe a Gaussian, and nothing else: skew and tails "
                      "pass through. Two numbers describe a distribution only if it already is Gaussian; mean and "
                      "variance are what can be fixed cheaply per unit and per batch."),
        "refuted": ("In this run the higher moments changed through BN too, so BN did more than match mean and "
                    "variance here."),
    },
    judge=_c4,
)


# ------------------------------------------------------------------------------------------------ C6

@dataclass(frozen=True)
class C6Numbers:
    max_dw: float
    max_dkl: float
    n_units: int
    variant: str
    stage: str


def _c6(r: RunView) -> Judged:
    if not r.snaps:
        return not_measured("no snapshot yet: start the run (any preset measures it)")
    bn = r.find(BN_KINDS, "before") or r.find(BN_KINDS)
    # Without BN, any linear output x tests the same thing.
    token, stage = (bn, "x_hat") if bn is not None else (
        next((t for t in r.tokens if r.latest(t) is not None), None), "x")
    if token is None:
        return not_measured("no snapshot yet: start the run (any preset measures it)")
    snap = r.latest_snapshot(token)
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
                dw = max(dw, gap(moved.shapiro_w, base.shapiro_w))
                dkl = max(dkl, gap(moved.kl_gaussian, base.kl_gaussian))
                if example is None:
                    example = (layer, u, g, b, base, moved)
            n += 1
    name = STAGE_NAMES[stage]
    if not n or example is None:
        return not_measured(f"no finite {name} quantiles at the latest snapshot: {r.why_missing(token)}")
    layer, u, g, b, base, moved = example
    figure = (f"{name} quantiles of {n} tracked {r.noun}s ({token}, step {snap.step:,}) under (γ, β) = "
              f"{', '.join(f'({a:g}, {c:g})' for a, c in C6_PAIRS)}: max |ΔW| {sci(dw)}, max |ΔKL| "
              f"{sci(dkl)}; e.g. {r.cfg.layer_name(layer)} {r.noun} {u} with ({g:g}, {b:g}): mean {fmt(base.mean)} → "
              f"{fmt(moved.mean)}, std {fmt(base.std)} → {fmt(moved.std)}, W {fmt(base.shapiro_w, 4)} → "
              f"{fmt(moved.shapiro_w, 4)}, KL {fmt(base.kl_gaussian)} → {fmt(moved.kl_gaussian)}")
    if dw < C6_TOL and dkl < C6_TOL:
        verdict = "supported"
        detail = (f"γ and β move and stretch the histogram (mean {fmt(base.mean)} → {fmt(moved.mean)}, std "
                  f"{fmt(base.std)} → {fmt(moved.std)}) but W and KL stay put to {sci(max(dw, dkl))}: a linear "
                  "map changes location and scale, never shape, so γ and β cannot make anything more Gaussian.")
    else:
        verdict = "refuted"
        detail = f"The shape statistics changed under a linear map (|ΔW| {sci(dw)}, |ΔKL| {sci(dkl)})."
    return Judged(verdict, figure, detail, max(dw, dkl), C6Numbers(dw, dkl, n, token, stage))


C6 = Claim(
    "C6", "A linear map does not change the shape", "gamma-beta", "gamma-beta",
    needs=lambda c: True, needs_why="",
    thresholds={"tol": C6_TOL},
    rule=f"supported if applying (γ, β) = {', '.join(f'({g:g}, {b:g})' for g, b in C6_PAIRS)} to x̂'s "
         f"quantiles changes W and KL by less than {C6_TOL:g}; refuted otherwise",
    meaning={
        "supported": ("So γ and β change location and scale only: they cannot make a distribution more or less "
                      "Gaussian, which is why BN's output is exactly as Gaussian as its input."),
        "refuted": "A linear map should not change a shape: this points to a numerical problem, not to γ and β.",
    },
    judge=_c6,
)
