"""Figures of one distribution's shape: a layer's histograms per stage, the Q-Q plot, the what-if lab, the
central limit theorem lab and a bimodal input through BN. Pure: data in, ``go.Figure`` out.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import plotly.graph_objects as go

from bnviz import stats
from bnviz.config import INPUT_DISTS, split_variant
from bnviz.measure.snapshot import POOLED, QQ_POINTS, Snapshot
from bnviz.present import views
from bnviz.present.claims import sums
from bnviz.present.claims.record import gap
from bnviz.present.claims.shape import TOL_KL, TOL_W
from bnviz.present.numbers import fmt
from bnviz.present.style import (
    FONT,
    GREY,
    KIND_COLORS,
    NO_DISTRIBUTIONS,
    OTHER_COLOR,
    STAGE_SYMBOLS,
    STAGE_TITLES,
    axis,
    cell_note,
    density_bars,
    f32,
    figure,
    fmt_kl,
    fmt_wpk,
    gauss_trace,
    grid,
    layer_text,
    message,
    no_distributions,
    rgba,
    unit_text,
    variant_color,
    variant_label,
)


def layer_histograms(snap: Snapshot | None, variants, layer: int, unit: int = POOLED,
                     height: int | None = None, noun: str = "unit", layer_name: str | None = None) -> go.Figure:
    """Histograms of x, x̂, y and a of one layer (rows: variants) with the fitted Gaussian and W/p/KL."""
    if snap is None:
        return message(title="Histograms of x, x̂, y and a in one layer", height=height or 400)
    stages = tuple(STAGE_TITLES)
    rows = max(1, len(variants))
    axes, notes = grid(rows, len(stages), [STAGE_TITLES[s] for s in stages], hgap=0.05, vgap=0.14)
    traces, shown = [], set()
    w_rows: dict[str, dict[str, dict[str, float]]] = {}  # token -> stage -> the shown unit's statistics
    for r, token in enumerate(variants):
        color, label = variant_color(token), variant_label(token)
        vs = snap.variants.get(token)
        after = split_variant(token)[1] == "after"
        axes["yaxis" + axis(r * len(stages) + 1)[1][1:]]["title"] = dict(
            text=f"{label}<br>density", font=dict(size=FONT, color=color))
        for c, stage in enumerate(stages):
            k = r * len(stages) + c + 1
            if r == rows - 1:
                axes["xaxis" + axis(k)[0][1:]]["title"] = "value"
            if vs is None:
                notes.append(cell_note(axes, k, "not in this run"))
                continue
            if vs.diverged_at is not None and not vs.layers:
                notes.append(cell_note(axes, k, f"diverged at step {vs.diverged_at}"))
                continue
            st = views.stage_of(snap, token, layer, stage)
            if st is None:
                missing = {"x_hat": "no normalization", "y": "no normalization", "a": "no activation follows"}
                notes.append(cell_note(axes, k, missing.get(stage, "no such layer")))
                continue
            if unit not in st.units:
                notes.append(cell_note(axes, k, f"{noun} {unit} not tracked"))
                continue
            i = st.units.index(unit)
            if not st.hists:
                notes.append(cell_note(axes, k, "no distributions in this file<br>(record with --quantiles)"
                                       if no_distributions(st, i) else "values not finite"))
                continue
            hist, row = st.hists[i], dict(zip(stats.UNIT_STATS, st.table[i]))
            w_rows.setdefault(token, {})[stage] = row
            traces.append(density_bars(hist, color, k, label, show=False))
            mean, std = row["mean"], row["std"]
            lo, hi = hist.edges[0], hist.edges[-1]
            if std > 0:
                lo, hi = min(lo, mean - 3 * std), max(hi, mean + 3 * std)
            x = np.linspace(lo, hi, 80)
            traces.append(gauss_trace(x, mean, std, k, show="gauss" not in shown))
            shown.add("gauss")
            peak = max(float(np.max(views.density(hist)[1])), float(np.max(views.gaussian_pdf(x, mean, std))))
            # On two lines: on one, the numbers are wider than a cell of four and run over its axis.
            text = fmt_wpk(row["shapiro_w"], row["shapiro_p"], row["kl_gaussian"], kl_sep="<br>")
            if after and stage == "a":
                text += "<br>(act. first, then x̂)"
            # Headroom for the note, enough at presenter mode's larger font too (style.presented).
            axes["yaxis" + axis(k)[1][1:]]["range"] = [0, (1.15 + 0.25 * (text.count("<br>") + 1)) * peak]
            notes.append(cell_note(axes, k, text, x=0.98, y=0.99, size=FONT - 1, xanchor="right", yanchor="top",
                                   align="right"))
    title, note = _same_shape_title(w_rows, unit, noun)
    head = f"{layer_text(layer, layer_name)}, {unit_text(unit, noun)}, step {snap.step}"
    note = head + (f" · {note}" if note else "")
    return figure(traces, axes, title, note, height or 190 * rows + 150, notes, cell_titles=True, legend=True,
                  describe="What each stage of the layer looks like, with the Gaussian of equal mean and std",
                  plain_note=head)


def _same_shape_title(w_rows: dict, unit: int, noun: str = "unit") -> tuple[str, str]:
    """Whether x̂ and y keep the shape of x (W and KL equal), judged on the first normalized variant."""
    for token, rows in w_rows.items():
        if {"x", "x_hat", "y"} <= rows.keys():
            w = {s: rows[s]["shapiro_w"] for s in ("x", "x_hat", "y")}
            kl = {s: rows[s]["kl_gaussian"] for s in ("x", "x_hat", "y")}
            nums = (f"{variant_label(token)}: W x {fmt(w['x'])}, x̂ {fmt(w['x_hat'])}, y {fmt(w['y'])}; "
                    f"KL {fmt_kl(kl['x'])}, {fmt_kl(kl['x_hat'])}, {fmt_kl(kl['y'])}")
            dw = max(abs(w["x_hat"] - w["x"]), abs(w["y"] - w["x"]))
            dkl = max(gap(kl["x_hat"], kl["x"]), gap(kl["y"], kl["x"]))
            if dw < TOL_W and dkl < TOL_KL:  # C3's rule: equal within what rounding and sampling allow
                return "x̂ and y have the same shape as x (W, KL equal): BN shifts and scales, it doesn't reshape", nums
            if unit == POOLED:
                return (f"Pooled over {noun}s, x̂ and y differ in shape from x: each {noun} is shifted and scaled by "
                        f"its own numbers (pick one {noun} to compare shapes)"), nums
            return f"x̂ and y differ in shape from x here (|ΔW| = {fmt(dw)})", nums
    return "What each stage of the layer looks like, with the Gaussian of equal mean and std", ""


def qq_plot(snap: Snapshot | None, variant: str, layer: int, stage: str, unit: int = POOLED,
            height: int = 380, noun: str = "unit", layer_name: str | None = None) -> go.Figure:
    """Q-Q plot of the stored quantiles (standardized with the table's mean/std) against N(0, 1)."""
    if snap is None:
        return message(title="Q-Q plot against the Gaussian", height=height)
    st = views.stage_of(snap, variant, layer, stage)
    sym = STAGE_SYMBOLS.get(stage, stage)
    head = f"Q-Q plot of {sym}, {layer_text(layer, layer_name)}, {unit_text(unit, noun)}, {variant_label(variant)}"
    if st is None or unit not in st.units:
        vs = snap.variants.get(variant)
        why = (f"diverged at step {vs.diverged_at}" if vs is not None and vs.diverged_at is not None
               else "no normalization" if stage in ("x_hat", "y") else f"no {sym} for {unit_text(unit, noun)}")
        return message(why, head, height)
    i = st.units.index(unit)
    row = dict(zip(stats.UNIT_STATS, st.table[i]))
    if no_distributions(st, i):
        return message(NO_DISTRIBUTIONS, head, height)
    if not row["std"] > 0 or not np.isfinite(st.quantiles[i]).all():
        return message("constant or non-finite values: nothing to compare", head, height)
    p = (np.arange(QQ_POINTS) + 0.5) / QQ_POINTS
    theory = np.array([NormalDist().inv_cdf(q) for q in p])
    sample = (st.quantiles[i].astype(np.float64) - row["mean"]) / row["std"]
    lim = float(max(np.max(np.abs(theory)), np.max(np.abs(sample)))) * 1.05
    color = variant_color(variant)
    traces = [
        dict(type="scatter", x=f32([-lim, lim]), y=f32([-lim, lim]), mode="lines", name="Gaussian (y = x)",
             line=dict(color=GREY, dash="dash", width=2), hoverinfo="skip"),
        dict(type="scatter", x=f32(theory), y=f32(sample), mode="markers", name=variant_label(variant),
             marker=dict(color=color, size=7), hovertemplate="N(0,1) %{x:.2f} → %{y:.2f}<extra></extra>"),
    ]
    skew, kurt = row["skew"], row["kurtosis"]
    if kurt > 1:
        title = "Points bend away from the line at both ends: heavier tails than a Gaussian"
    elif kurt < -0.5:
        title = "An S-shape: lighter tails than a Gaussian"
    elif abs(skew) > 0.5:
        title = "One end bends away from the line: a skewed distribution"
    else:
        title = "Points near the line y = x: close to a Gaussian"
    note = (f"{head}, step {snap.step} · mean {fmt(row['mean'])}, std {fmt(row['std'])}, skew {fmt(skew)}, "
            f"excess kurtosis {fmt(kurt)}, " + fmt_wpk(row["shapiro_w"], row["shapiro_p"], row["kl_gaussian"]))
    axes = dict(xaxis=dict(title="standard normal quantile", range=[-lim, lim]),
                yaxis=dict(title="sample quantile, (v − mean)/std", range=[-lim, lim]))
    return figure(traces, axes, title, note, height, describe="Q-Q plot against the Gaussian",
                  plain_note=f"{head}, step {snap.step}")


# ------------------------------------------------------------------------------------ what if γ, β

def _shared_bins(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bin edges over both samples, fine enough that the narrower of the two gets about 20 bins."""
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    spread = min(float(np.ptp(a)), float(np.ptp(b))) or max(float(np.ptp(a)), float(np.ptp(b)))
    if not (hi > lo and spread > 0):
        return np.array([lo - 0.5, lo + 0.5])
    n = int(np.clip(math.ceil((hi - lo) / (spread / 20)), 10, 200))
    return np.linspace(lo, hi, n + 1)


def whatif(sample: np.ndarray, gamma: float, beta: float, before: stats.Normality, after: stats.Normality,
           height: int = 360, noun: str = "unit") -> go.Figure:
    """x̂ and γx̂+β on shared bins, with the caller's W and KL of each: an affine map keeps the shape."""
    x = np.asarray(sample, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return message("no values of x̂ yet", height=height)
    y = gamma * x + beta
    edges = _shared_bins(x, y)
    hx, _ = np.histogram(x, edges, density=True)
    hy, _ = np.histogram(y, edges, density=True)
    centers, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    blue = KIND_COLORS["bn"]
    traces = [
        dict(type="bar", x=f32(centers), y=f32(hx), width=width, name="x̂ (standardized)",
             marker=dict(color=rgba("#808080", 0.55), line=dict(width=0))),
        dict(type="bar", x=f32(centers), y=f32(hy), width=width, name=f"γx̂+β (γ={gamma:.2g}, β={beta:.2g})",
             marker=dict(color=rgba(blue, 0.55), line=dict(width=0))),
    ]
    notes = [
        dict(text=f"x̂: W={fmt(before.shapiro_w)}  KL={fmt_kl(before.kl_gaussian)}", x=0.01, y=0.98,
             xref="paper", yref="paper", xanchor="left", yanchor="top", showarrow=False),
        dict(text=f"γx̂+β: W={fmt(after.shapiro_w)}  KL={fmt_kl(after.kl_gaussian)}", x=0.99, y=0.98,
             xref="paper", yref="paper", xanchor="right", yanchor="top", showarrow=False,
             font=dict(color=blue)),
    ]
    dw = abs(after.shapiro_w - before.shapiro_w)
    kl0, kl1 = before.kl_gaussian, after.kl_gaussian
    same_kl = abs(kl1 - kl0) < 5e-3 if math.isfinite(kl0) and math.isfinite(kl1) else (kl0 == kl1)
    same = dw < 1e-3 and same_kl
    title = ("γ and β move and stretch the histogram; W and KL stay the same: a linear map changes location "
             "and scale, not shape" if same
             else f"γ and β changed the measured shape here (|ΔW| = {dw:.3f})")
    note = (f"W {fmt(before.shapiro_w)} → {fmt(after.shapiro_w)}, KL {fmt_kl(before.kl_gaussian)} → "
            f"{fmt_kl(after.kl_gaussian)}")
    peak = float(max(hx.max(), hy.max()))
    axes = dict(xaxis=dict(title="value"), yaxis=dict(title="density", range=[0, 1.25 * peak]))
    return figure(traces, axes, title, note, height, notes, barmode="overlay",
                  describe=f"x̂ of one {noun}, and γx̂ + β with your γ and β")


# ------------------------------------------------------------------------------------- why Gaussian

# Okabe-Ito without black (unreadable on a dark theme); symbols and dashes tell the lines apart too.
DIST_COLORS = dict(zip(INPUT_DISTS, ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#F0E442",
                                     "#56B4E9")))
DIST_SYMBOLS = dict(zip(INPUT_DISTS, ("circle", "square", "diamond", "triangle-up", "x", "cross",
                                      "star")))


LABELLED_LAYERS = 8  # a run with more layers than this draws them unlabelled (a ResNet-18 has 20 batch norms)


def clt_curves(results: list, height: int = 400, run_layers=()) -> go.Figure:
    """Shapiro W and KL of the standardized Wu+b against fan-in, one line per (input dist, weights).

    ``run_layers``: this run's own layers (claims.sums.C5Layer: fan-in, median W and KL of x = Wu + b), drawn as
    labelled points on the same axes and quoted in the subtitle as the board's C5 quotes them."""
    if not results and not run_layers:
        return message("no central-limit results yet", height=height)
    axes, cells = grid(1, 2, ("Shapiro–Wilk W (1 = Gaussian)", "KL to the Gaussian (0 = Gaussian)"))
    traces = []
    for res in results:
        name = f"{res.dist}, {res.weights} weights"
        color, symbol = DIST_COLORS.get(res.dist, OTHER_COLOR), DIST_SYMBOLS.get(res.dist, "circle")
        dash = "solid" if res.weights == "random" else "dash"
        for k, values in ((1, res.shapiro_w), (2, res.kl)):
            xa, ya = axis(k)
            traces.append(dict(type="scatter", x=f32(res.fan_ins), y=f32(values), mode="lines+markers",
                               name=name, legendgroup=name, showlegend=k == 1, xaxis=xa, yaxis=ya,
                               line=dict(color=color, dash=dash, width=2), marker=dict(symbol=symbol, size=7)))
    placed = [row for row in run_layers if row.fan_in > 0]  # a layer of unknown fan-in has no place on the axis
    for k, stat in ((1, "w"), (2, "kl")):
        if not placed:
            break
        xa, ya = axis(k)
        traces.append(dict(type="scatter", x=f32([row.fan_in for row in placed]),
                           y=f32([getattr(row, stat) for row in placed]),
                           mode="markers" if len(placed) > LABELLED_LAYERS else "markers+text",
                           text=[f"L{row.layer}" for row in placed], textposition="top center",
                           hovertext=[row.label for row in placed],
                           name="this run's layers (x = Wu + b)", legendgroup="run", showlegend=k == 1,
                           marker=dict(symbol="hexagon", size=12, color=GREY, line=dict(width=1.5)),
                           xaxis=xa, yaxis=ya, hovertemplate="fan-in %{x}: %{y:.3g}<extra>%{hovertext}</extra>"))
    shapes = [dict(type="line", xref="x domain", x0=0, x1=1, yref="y", y0=1, y1=1,
                   line=dict(color=GREY, dash="dot", width=2)),
              dict(type="line", xref="x2 domain", x0=0, x1=1, yref="y2", y0=0, y1=0,
                   line=dict(color=GREY, dash="dot", width=2))]
    measured = {int(f) for res in results for f in res.fan_ins}
    crowded = len(placed) > LABELLED_LAYERS  # then a layer's own tick only where no other sits close (9 beside 8)
    ticks = sorted(measured | {row.fan_in for row in placed
                               if not crowded or all(abs(row.fan_in / m - 1) > 0.25 for m in measured)})
    for key in ("xaxis", "xaxis2"):  # ticks at the measured fan-ins, not at log-axis minor digits
        axes[key].update(type="log", title="fan-in (inputs per unit, log scale)", tickvals=ticks)
    axes["yaxis"]["title"] = "W of standardized Wu+b"
    axes["yaxis2"]["title"] = "KL (nats)"
    title, note = _clt_title(results) if results else ("This run's layers: normality of Wu+b against fan-in", "")
    if run_layers:
        note = "; ".join(n for n in (note, f"this run's layers: {_layers_note(list(run_layers))}") if n)
    return figure(traces, axes, title, note, height, cells, shapes, cell_titles=True,
                  describe="Normality of Wu+b against fan-in", plain_note="grey hexagons: this run's layers"
                  if run_layers else "")


def _layers_note(rows: list) -> str:
    """This run's layers as the board's C5 quotes them, or, for more than LABELLED_LAYERS (a watched model's), how
    many pass C5's rule (each layer is named on hover, and listed on the board)."""
    if len(rows) <= LABELLED_LAYERS:
        return sums.layers_text(rows)
    good = sum(row.gaussian for row in rows)
    return (f"{good} of {len(rows)} near-Gaussian by C5's rule, median W {fmt(min(row.w for row in rows))} to "
            f"{fmt(max(row.w for row in rows))} (hover a hexagon for its layer; the evidence board's C5 lists them)")


def _clt_title(results: list) -> tuple[str, str]:
    """Does W grow toward 1 with fan-in (random weights), and which inputs resist the most."""
    ends = []
    for res in results:
        w = np.asarray(res.shapiro_w, dtype=np.float64)
        ok = np.flatnonzero(np.isfinite(w))
        if ok.size:
            ends.append((res, w[ok[0]], w[ok[-1]], int(res.fan_ins[ok[-1]])))
    if not ends:
        return "Normality of Wu+b against fan-in", "no finite values"
    rand = [e for e in ends if e[0].weights == "random"] or ends
    grows = np.median([e[2] for e in rand]) > np.median([e[1] for e in rand])
    worst = min(rand, key=lambda e: e[2])
    title = ("Wu+b gets closer to a Gaussian as fan-in grows (W → 1, KL → 0)" if grows
             else "Wu+b does not get closer to a Gaussian with more inputs here")
    note = (f"{rand[0][0].weights} weights: median W {np.median([e[1] for e in rand]):.3f} at the smallest "
            f"fan-in, {np.median([e[2] for e in rand]):.3f} at the largest; slowest: {worst[0].dist} "
            f"(W={worst[2]:.3f} at fan-in {worst[3]})")
    sparse = [e for e in ends if e[0].weights == "sparse"]
    if sparse and rand is not ends:
        note += f"; sparse weights (2 inputs each): median W {np.median([e[2] for e in sparse]):.3f}"
    return title, note


def _r2(v: float) -> str:
    return f"{round(v, 2) + 0.0:.2f}"  # + 0.0 turns a rounded -0.0 into 0.0


def bimodal_demo(demo, height: int = 360) -> go.Figure:
    """A bimodal layer input before and after BN side by side: identical shape, different axis."""
    axes, cells = grid(1, 2, ("x = Wu+b (bimodal)", "x̂ = BN(x)"), hgap=0.08)
    traces, notes, rows = [], [], []
    color = KIND_COLORS["bn"]
    for k, (hist, row, name) in enumerate(((demo.x_hist, demo.x_stats, "x"), (demo.xhat_hist, demo.xhat_stats,
                                                                             "x̂")), start=1):
        r = dict(zip(stats.UNIT_STATS, np.asarray(row, dtype=np.float64)))
        rows.append(r)
        traces.append(density_bars(hist, color if k == 2 else "#808080", k, name, show=True))
        notes.append(cell_note(axes, k, f"W={r['shapiro_w']:.3f}  KL={fmt_kl(r['kl_gaussian'])}<br>"
                                  f"skew={r['skew']:+.3f}  kurtosis={r['kurtosis']:+.3f}",
                               x=0.99, y=0.99, xanchor="right", yanchor="top", size=FONT - 1))
        axes["xaxis" + axis(k)[0][1:]]["title"] = f"value of {name}"
        peak = float(np.max(views.density(hist)[1]))
        axes["yaxis" + axis(k)[1][1:]].update(title="density", range=[0, 1.3 * peak])
    a, b = rows
    same = (abs(a["shapiro_w"] - b["shapiro_w"]) < 2e-3 and abs(a["skew"] - b["skew"]) < 0.01
            and abs(a["kurtosis"] - b["kurtosis"]) < 0.01)
    title = ("BN standardizes a bimodal input and it stays bimodal: same shape, different axis" if same
             else "After BN the measured shape differs from before")
    note = (f"mean {_r2(a['mean'])} → {_r2(b['mean'])}, std {_r2(a['std'])} → {_r2(b['std'])}; W {a['shapiro_w']:.3f} "
            f"→ {b['shapiro_w']:.3f}, skew {a['skew']:+.2f} → {b['skew']:+.2f}, kurtosis {a['kurtosis']:+.2f} → "
            f"{b['kurtosis']:+.2f}")
    return figure(traces, axes, title, note, height, cells + notes, cell_titles=True,
                  describe="A bimodal input before and after BN")
