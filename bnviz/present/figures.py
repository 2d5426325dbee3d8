"""Pure plotly builders for the page: a run's History (a tuple of Snapshots) in, ``go.Figure`` out.

Every number drawn comes from :mod:`bnviz.present.views` (the same extraction the evidence board uses) or
straight from the snapshot's tables, so a panel shows exactly what the engine measured. Figures are rebuilt twice
a second, hence the budget per builder: about 30 ms and under 250 kB of JSON for the ``ioffe`` preset
(binned histograms, float32 arrays, WebGL lines). The over-training views live here; the one-distribution
views (:mod:`bnviz.present.distributions`) are re-exported below, so the page and the report draw every figure
through this module, and the shared look is :mod:`bnviz.present.style`. Titles state what to notice, with
numbers measured on the data passed in; each figure also carries a title that only describes it
(style.described).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import plotly.graph_objects as go

from bnviz import stats
from bnviz.measure.smooth import STEPS
from bnviz.measure.snapshot import POOLED, Snapshot
from bnviz.present import lrrange, summary, views
from bnviz.present.claims import benefit, drift
from bnviz.present.claims import lrrange as c11
from bnviz.present.claims.record import gap
from bnviz.present.claims.shape import TOL_KL, TOL_W
from bnviz.present.distributions import bimodal_demo, clt_curves, layer_histograms, qq_plot, whatif
from bnviz.present.numbers import fmt
from bnviz.present.numbers import score as score_text
from bnviz.present.style import (
    GREY,
    MARKERS_SHOWN,
    NO_DISTRIBUTIONS,
    STAGE_DASHES,
    STAGE_MARKERS,
    STAGE_SYMBOLS,
    axis,
    cell_note,
    f32,
    figure,
    grid,
    layer_text,
    message,
    no_distributions,
    rgba,
    unit_text,
    variant_color,
    variant_label,
)

__all__ = ["variant_color", "variant_label", "training", "layer_histograms", "percentile_bands",
           "histogram_heatmap", "gamma_beta", "whatif", "normality_over_time", "qq_plot", "stability", "smoothness",
           "clt_curves", "bimodal_demo", "lr_range"]

MAX_VALUE_BINS = 120  # heatmap rows: finer than a projector shows, and it bounds the payload
MAX_TIME_COLUMNS = 200
FAINT_POINTS = 3000  # points per faint bundle of unit lines (thinned in time): ~32 kB of JSON each
WEBGL_POINTS = 5000  # above this many points a line is drawn with WebGL. Below it SVG is faster: setting up a
# WebGL context costs more than the 0.5 s between live refreshes, and a chart replaced before it finished
# drawing stays blank (seen in Chromium with the 3-subplot γ/β figure).


# -------------------------------------------------------------------------------------------- helpers

def _line(x, y, k: int, color: str, name: str, show: bool = True, width: float = 2.0, dash: str = "solid",
          group: str | None = None, positive: bool = False, **kw) -> dict:
    """One series over steps in cell k (non-finite values leave a gap); WebGL only for long series."""
    xa, ya = axis(k)
    kind = "scattergl" if np.size(x) > WEBGL_POINTS else "scatter"
    mode = "lines" if np.size(x) > 1 else "markers"  # a lone snapshot (step 0) has no line to draw
    return dict(type=kind, x=f32(x), y=f32(y, positive), mode=mode, name=name,
                legendgroup=group or name, showlegend=show, xaxis=xa, yaxis=ya,
                line=dict(color=color, width=width, dash=dash), **kw)


def _marked(trace: dict, dash: str, symbol: str, size: float = 9, slot: int = 0, slots: int = 4) -> dict:
    """``trace`` (from :func:`_line`) told apart by its dash and a marker symbol, not by color alone: it reads in
    grey and on a washed-out projector.

    About MARKERS_SHOWN markers mark the line, on every k-th point from an offset of its own: lines given
    different ``slot`` numbers (of ``slots``) never mark the same point, so lines drawn on top of each other
    still show each one's symbol in turn. The marked points are the trace's selected points (the others' markers are
    transparent), which keeps the legend's symbol whole."""
    n = np.size(trace["x"])
    k = max(slots, math.ceil(n / MARKERS_SHOWN))
    trace["line"]["dash"] = dash
    trace["marker"] = dict(symbol=symbol, size=size, color=trace["line"]["color"])
    if n > 1:
        trace["selectedpoints"] = np.arange(slot * k // slots, n, k).tolist()
        trace["unselected"] = dict(marker=dict(opacity=0))
        trace["mode"] = "lines+markers"
    return trace


def _last_finite(steps: np.ndarray, y: np.ndarray, upto: int | None = None) -> float | None:
    """The last finite value of y at or before step ``upto`` (None if there is none)."""
    ok = np.isfinite(y) & (steps <= (upto if upto is not None else steps.max(initial=0)))
    idx = np.flatnonzero(ok)
    return float(y[idx[-1]]) if idx.size else None


def _diverged(axes: dict, step: int, steps: np.ndarray, y: np.ndarray, k: int, color: str,
              positive: bool = False):
    """An x marker and "diverged at step N" where the variant's curve ends: (traces, annotations)."""
    text = f"diverged at step {step}"
    at = _last_finite(steps, np.where(y > 0, y, np.nan) if positive else y, step)
    if at is None:  # nothing was measured before it diverged: write it in the cell instead
        return [], [cell_note(axes, k, "✕ " + text, y=0.9, color=color)]
    xa, ya = axis(k)
    return [dict(type="scatter", x=f32([step]), y=f32([at]), mode="markers+text", text=[text],
                 textposition="top right", textfont=dict(color=color, size=13), showlegend=False,
                 marker=dict(symbol="x", size=13, color=color), xaxis=xa, yaxis=ya, hoverinfo="text")], []


def _scrub(step, cells) -> list[dict]:
    """A vertical dotted line at the scrubbed step in each of ``cells``."""
    if step is None:
        return []
    return [dict(type="line", xref=axis(k)[0], x0=step, x1=step, yref=f"{axis(k)[1]} domain", y0=0, y1=1,
                 line=dict(color=GREY, dash="dot", width=2)) for k in cells]


def _x_steps(axes: dict, cells, steps: np.ndarray) -> None:
    """Label the step axes and give them one range, so cells line up even where a series is short."""
    if len(steps) > 1 and steps[-1] > steps[0]:
        pad = 0.015 * (steps[-1] - steps[0])  # markers at the ends stay whole
        extra = dict(range=[float(steps[0] - pad), float(steps[-1] + pad)])
    elif len(steps):  # one snapshot: its step alone, not an axis from -1 to 1
        extra = dict(range=[float(steps[0]) - 0.5, float(steps[0]) + 0.5], tickvals=[int(steps[0])])
    else:
        extra = {}
    for k in cells:
        axes["xaxis" + axis(k)[0][1:]].update(title="step", **extra)


# ------------------------------------------------------------------------------------------- training

def training(snaps: tuple[Snapshot, ...], variants, height: int = 360, task: str = "classification") -> go.Figure:
    """Training loss (log y) and the test score against step, one line per variant; divergence marked.

    The score is test accuracy, or R² for a regression ``task`` (config.ExperimentConfig.task)."""
    regression = task == "regression"
    score = views.score_name(task)
    if not snaps:
        return message(title=f"Training loss and {score}", height=height)
    steps = views.steps(snaps)
    axes, cells = grid(1, 2, ("training loss", score), hgap=0.09)
    traces, notes, finals = [], [], []
    for token in variants:
        color, label = variant_color(token), variant_label(token)
        loss = views.train_stat(snaps, token, "loss")
        acc = views.train_stat(snaps, token, "test_accuracy")
        traces.append(_line(steps, loss, 1, color, label, positive=True))
        traces.append(_line(steps, acc, 2, color, label, show=False))
        d = views.diverged_at(snaps, token)
        if d is not None:
            for k, y in ((1, loss), (2, acc)):
                t, n = _diverged(axes, d, steps, y, k, color, positive=k == 1)
                traces += t
                notes += n
        last = _last_finite(steps, acc)
        finals.append((last if last is not None else -math.inf, label, d))
    axes["yaxis"].update(type="log", title="squared error (log scale)" if regression
                         else "cross-entropy (nats, log scale)")
    if regression:  # R² has no floor: an R² far below 0 (worse than the mean) stops the axis at -0.5
        axes["yaxis2"].update(title=score, autorangeoptions=dict(minallowed=-0.5, maxallowed=1.02))
    else:
        axes["yaxis2"].update(title=score, range=[0, 1.02], tickformat=".0%")
    _x_steps(axes, (1, 2), steps)
    finals.sort(key=lambda f: -f[0])
    def shown(v: float) -> str:  # as the board and the lessons write a score
        return score_text(v, regression)

    parts = [f"{label} {shown(acc)}" + (f" (diverged at step {d})" if d is not None else "")
             for acc, label, d in finals if math.isfinite(acc)]
    areas = [f"{variant_label(t)} {shown(a)}" for t in variants
             if math.isfinite(a := benefit.learning_area(steps, views.train_stat(snaps, t, "test_accuracy")))]
    if finals and math.isfinite(finals[0][0]):
        best = finals[0]
        title = f"{best[1]} reaches {score} {shown(best[0])} by step {int(steps[-1])}"
        if len(finals) > 1 and math.isfinite(finals[1][0]):
            title += f", {finals[1][1]} {shown(finals[1][0])}"
    else:
        title = f"Training loss and {score}"
    note = "; ".join(([f"latest {score}: " + ", ".join(parts)] if parts else [])
                     + (["mean over training (the area under the curve): " + ", ".join(areas)] if areas else []))
    return figure(traces, axes, title, note, height, cells + notes, cell_titles=True,
                  describe=f"Training loss and {score}")


# ------------------------------------------------------------------------------- Ioffe & Szegedy, Fig 1

def percentile_bands(snaps: tuple[Snapshot, ...], variants, layer: int, unit: int = POOLED,
                     scrub_step: int | None = None, height: int = 380, noun: str = "unit",
                     layer_name: str | None = None) -> go.Figure:
    """p15/p50/p85 lines and the p2-p98 band of the activation input over training, a cell per variant."""
    if not snaps:
        return message(title="Percentiles of the activation input over training", height=height)
    steps = views.steps(snaps)
    n = max(1, len(variants))
    stages = [views.act_stage(snaps, token, layer) for token in variants]
    titles = [f"{variant_label(t)}: {STAGE_SYMBOLS.get(s, s)} (activation input)" if s else variant_label(t)
              for t, s in zip(variants, stages)]
    axes, cells = grid(1, n, titles, hgap=0.03, share_y=True)
    traces, notes = [], []
    for k, (token, stage) in enumerate(zip(variants, stages), start=1):
        color, first = variant_color(token), k == 1
        if stage is None:
            d = views.diverged_at(snaps, token)
            why = f"✕ diverged at step {d}" if d is not None else "no data for this layer"
            notes.append(cell_note(axes, k, why))
            continue
        p = {q: views.unit_stat(snaps, token, layer, stage, q, unit) for q in ("p2", "p15", "p50", "p85", "p98")}
        ok = np.isfinite(p["p2"]) & np.isfinite(p["p98"])
        xa, ya = axis(k)
        # The band is one closed polygon (p98 forward, p2 back), drawn under the lines.
        traces.append(dict(type="scatter", x=f32(np.r_[steps[ok], steps[ok][::-1]]),
                           y=f32(np.r_[p["p98"][ok], p["p2"][ok][::-1]]), fill="toself", mode="none",
                           fillcolor=rgba(color, 0.18), name="p2–p98", legendgroup="band", showlegend=first,
                           hoverinfo="skip", xaxis=xa, yaxis=ya))
        for q, width, dash in (("p15", 1.5, "dash"), ("p85", 1.5, "dash"), ("p50", 2.5, "solid")):
            name = "p15 / p85" if q != "p50" else "median (p50)"
            traces.append(_line(steps, p[q], k, color, name, show=first and q != "p85", width=width, dash=dash,
                                group=name, hovertemplate=f"step %{{x}}: {q} %{{y:.3f}}<extra></extra>"))
        d = views.diverged_at(snaps, token)
        if d is not None:
            t, nn = _diverged(axes, d, steps, p["p50"], k, color)
            traces += t
            notes += nn
    axes["yaxis"]["title"] = "activation input"
    _x_steps(axes, range(1, n + 1), steps)
    describe = "Percentiles of the activation input over training"
    head = f"{layer_text(layer, layer_name)}, {unit_text(unit, noun)}"
    gone = [f"{variant_label(t)} diverged at step {views.diverged_at(snaps, t)}" for t in variants
            if views.diverged_at(snaps, t) is not None]
    c = drift.compare_drift(snaps, variants, layer)  # C1's rule on this layer: the board's words and numbers
    title = drift.drift_headline(c) if c is not None else describe
    note = "; ".join([head] + ([drift.drift_note(c)] if c is not None else []) + gone)
    return figure(traces, axes, title, note, height, cells + notes, _scrub(scrub_step, range(1, n + 1)),
                  cell_titles=True, describe=describe, plain_note="; ".join([head] + gone))


# ---------------------------------------------------------------------------------- TensorBoard view

def _aligned(hists: list[stats.Histogram]) -> tuple[np.ndarray, np.ndarray]:
    """One common grid for all histograms (stats.align), coarsened until it has at most MAX_VALUE_BINS bins."""
    edges, counts = stats.align(hists)
    while counts.shape[1] > MAX_VALUE_BINS:
        w = 2 * (edges[1] - edges[0])  # doubling keeps every coarse edge an old edge: exact re-binning
        hists = [stats.coarsen(h, w) for h in hists]
        edges, counts = stats.align(hists)
    return edges, counts


def histogram_heatmap(snaps: tuple[Snapshot, ...], variant: str, layer: int, stage: str, unit: int = POOLED,
                      scrub_step: int | None = None, height: int = 360, noun: str = "unit",
                      layer_name: str | None = None) -> go.Figure:
    """The distribution of one series over training as a heatmap: step x value, color = density."""
    if not snaps:
        return message(title=f"How {STAGE_SYMBOLS.get(stage, stage)} is distributed over training",
                       height=height)
    sym, label = STAGE_SYMBOLS.get(stage, stage), variant_label(variant)
    head = f"{sym} of {layer_text(layer, layer_name)}, {unit_text(unit, noun)}, {label}"
    picked, undistributed = [], False
    for snap in snaps:
        st = views.stage_of(snap, variant, layer, stage)
        if st is not None and unit in st.units and st.hists:
            picked.append((snap.step, st.hists[st.units.index(unit)], st.table[st.units.index(unit)]))
        elif st is not None and unit in st.units:
            undistributed |= no_distributions(st, st.units.index(unit))
    if not picked:
        d = views.diverged_at(snaps, variant)
        why = NO_DISTRIBUTIONS if undistributed else f"diverged at step {d}" if d is not None else (
            "no normalization" if stage in ("x_hat", "y") else "no histograms for this series")
        return message(why, head, height)
    if len(picked) > MAX_TIME_COLUMNS:  # evenly thinned, first and last kept
        idx = np.unique(np.linspace(0, len(picked) - 1, MAX_TIME_COLUMNS).round().astype(int))
        picked = [picked[i] for i in idx]
    steps = np.array([p[0] for p in picked])
    edges, counts = _aligned([p[1] for p in picked])
    width = edges[1] - edges[0]
    dens = counts / (counts.sum(axis=1, keepdims=True) * width)  # each column integrates to 1
    color = variant_color(variant)
    # Transparent at zero density, so the page's own background shows through in light and dark themes.
    scale = [[0, rgba(color, 0)], [0.05, rgba(color, 0.3)], [0.3, rgba(color, 0.65)], [1, rgba(color, 1)]]
    trace = dict(type="heatmap", x=f32(steps), y=f32((edges[:-1] + edges[1:]) / 2), z=dens.T.astype(np.float32),
                 colorscale=scale, zmin=0, colorbar=dict(title=dict(text="density", side="right"), thickness=14),
                 hovertemplate="step %{x}, value %{y:.3g}: density %{z:.3g}<extra></extra>", name=label)
    col = stats.UNIT_STATS.index
    p50, std = np.array([p[2][col("p50")] for p in picked]), np.array([p[2][col("std")] for p in picked])
    title = f"Where the values of {sym} lie over training: {label}"
    note = (f"{head} · median {p50[0]:.3g} → {p50[-1]:.3g}, std {std[0]:.3g} → {std[-1]:.3g} "
            f"(steps {steps[0]}–{steps[-1]})")
    axes = dict(xaxis=dict(title="step"), yaxis=dict(title=f"value of {sym}"))
    _x_steps(axes, (1,), views.steps(snaps))  # the whole run: a series that stopped early shows it
    traces = [trace]
    d = views.diverged_at(snaps, variant)
    if d is not None:
        title = f"{label} diverged at step {d}: its {sym} up to then"
        y_mid = float((edges[0] + edges[-1]) / 2)
        traces.append(dict(type="scatter", x=f32([d]), y=f32([y_mid]), mode="markers+text", hoverinfo="text",
                           text=[f"diverged at step {d}"], textposition="middle right", showlegend=False,
                           marker=dict(symbol="x", size=13, color=color), textfont=dict(color=color, size=13)))
    return figure(traces, axes, title, note, height, shapes=_scrub(scrub_step, (1,)), legend=False,
                  describe=f"Where the values of {sym} lie over training: {label}", plain_note=head)


# ----------------------------------------------------------------------------------------- γ and β

def _bundle(steps: np.ndarray, m: np.ndarray, budget: int = FAINT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Many unit lines as one NaN-separated line (one trace instead of 100), thinned in time to ``budget``."""
    T, U = m.shape
    keep = np.unique(np.linspace(0, T - 1, max(2, min(T, budget // max(U, 1)))).round().astype(int))
    x = np.r_[steps[keep].astype(np.float64), np.nan]
    return np.tile(x, U), np.c_[m[keep].T, np.full(U, np.nan)].ravel()


def gamma_beta(snaps: tuple[Snapshot, ...], variant: str, layer: int, units=None, height: int = 380,
               noun: str = "unit", layer_name: str | None = None) -> go.Figure:
    """γ and β of every unit over training (tracked units emphasized) and how fast W, γ, β change."""
    if not snaps:
        return message(title=f"γ and β per {noun} over training", height=height)
    label, color = variant_label(variant), variant_color(variant)
    gamma, beta = views.affine(snaps, variant, layer, "gamma"), views.affine(snaps, variant, layer, "beta")
    if gamma.shape[1] == 0:
        why = "this variant has no learned γ and β" if views.diverged_at(snaps, variant) is None else (
            f"diverged at step {views.diverged_at(snaps, variant)} before any γ, β was recorded")
        return message(why, f"γ and β of {layer_text(layer, layer_name)}, {label}", height)
    steps = views.steps(snaps)
    if units is None:
        units = next((st.units for s in reversed(snaps)
                      if (st := views.stage_of(s, variant, layer, "y")) is not None), ())
    units = [u for u in units if 0 <= u < gamma.shape[1]]
    axes, cells = grid(1, 3, (f"γ per {noun}", f"β per {noun}", "relative change per snapshot"), hgap=0.1)
    traces, faint = [], rgba(color, 0.25)
    # Every unit's γ, faint, where more than the tracked ones are known (a replayed table keeps only those).
    known = np.flatnonzero(np.isfinite(gamma).any(axis=0))[:100]
    width = gamma.shape[1]
    bundle = f"all {width} {noun}s" if len(known) == width else f"{len(known)} of the {width} {noun}s"
    for k, m, sym in ((1, gamma, "γ"), (2, beta, "β")):
        if len(known) > len(units):
            x, y = _bundle(steps, m[:, known])
            traces.append(_line(x, y, k, faint, bundle, show=k == 1, width=1, group="faint", hoverinfo="skip"))
        for j, u in enumerate(units):
            hover = f"{noun} {u}, step %{{x}}: {sym} %{{y:.3f}}<extra></extra>"
            traces.append(_line(steps, m[:, u], k, color, f"tracked {noun}s", show=k == 1 and j == 0, width=2.2,
                                group="tracked", hovertemplate=hover))
    change = {p: views.param_change(snaps, variant, layer, p) for p in ("weight", "gamma", "beta")}
    # Markers set these apart from the tracked units' plain lines in the legend, and from each other in grey.
    looks = (("weight", "solid", "circle", "W"), ("gamma", "dash", "square", "γ"), ("beta", "dot", "diamond", "β"))
    for slot, (p, dash, symbol, sym) in enumerate(looks):
        traces.append(_marked(_line(steps, change[p], 3, color, f"change of {sym}", positive=True), dash, symbol,
                              slot=slot, slots=3))
    d, notes = views.diverged_at(snaps, variant), []
    if d is not None:  # marked where the first emphasized (or the first) unit's γ line ends
        t, notes = _diverged(axes, d, steps, gamma[:, units[0] if units else 0], 1, color)
        traces += t
    axes["yaxis"]["title"] = "γ"
    axes["yaxis2"]["title"] = "β"
    axes["yaxis3"].update(type="log", title="‖Δp‖/‖p‖ (log)", exponentformat="power")
    _x_steps(axes, (1, 2, 3), steps)
    med = drift.change_rates(snaps, variant, layer)  # C2's rates: the numbers the board and lesson 2 quote
    head = f"{layer_text(layer, layer_name)}, {label}"
    note = (f"{head} · median relative change per snapshot: W {fmt(med['weight'])}, γ {fmt(med['gamma'])}, "
            f"β {fmt(med['beta'])}; γ now {fmt(summary.nanmean(gamma[-1]))}, β {fmt(summary.nanmean(beta[-1]))} "
            f"(mean over {noun}s)")
    y_far, xh_far = (summary.drift_from_first(snaps, variant, layer, s) for s in ("y", "x_hat"))
    if not (math.isnan(y_far) or math.isnan(xh_far)):  # C2's figure: how far y and x̂ moved since the start
        note += (f"; since the first snapshot y moved {fmt(y_far)} of its first spread, x̂ {fmt(xh_far)} "
                 f"(ratio {fmt(summary.ratio(y_far, xh_far))})")
    title = f"γ and β per {noun} over training, and how fast W, γ and β change"
    return figure(traces, axes, title, note, height, cells + notes, cell_titles=True, plain_note=head)


# ----------------------------------------------------------------------------------------- normality

# Coincident lines (x, x̂ and y per unit under BN) stay visible: wide ones underneath, thin ones on top; the
# stages' dashes and markers (style.STAGE_DASHES, STAGE_MARKERS) tell them apart. (width, opacity) per stage:
_STAGE_WIDTH = {"x": (5.0, 0.5), "x_hat": (3.0, 0.85), "y": (2.0, 1.0), "a": (2.0, 0.8)}
_MARKER_SIZE = {"x": 12, "x_hat": 9, "y": 9, "a": 9}


def _and(names: list[str]) -> str:
    """``x̂, y and a``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _infinite_kl(kls: dict) -> str:
    """In words, which stages have an infinite KL (a point mass: no density to compare), and when."""
    always = [STAGE_SYMBOLS[s] for s, kl in kls.items() if np.isinf(kl).any() and not np.isfinite(kl).any()]
    lines = [f"KL of {_and(always)}: ∞ at every step"] if always else []
    for s, kl in kls.items():
        if np.isinf(kl).any() and np.isfinite(kl).any():
            lines.append(f"KL of {STAGE_SYMBOLS[s]}: ∞ at {int(np.isinf(kl).sum())} of {len(kl)} steps (gaps)")
    return "<br>".join(lines + ["(a point mass of equal values: no density)"]) if lines else ""


def normality_over_time(snaps: tuple[Snapshot, ...], variant: str, layer: int, unit: int = POOLED,
                        height: int = 380, noun: str = "unit", layer_name: str | None = None) -> go.Figure:
    """Shapiro W and KL of each stage (x, x̂, y, a) over training, a dash and a marker per stage; where a KL is
    infinite (a point mass), the KL cell says so in words."""
    if not snaps:
        return message(title="Normality of x, x̂, y and a over training", height=height)
    label, color = variant_label(variant), variant_color(variant)
    steps = views.steps(snaps)
    axes, cells = grid(1, 2, ("Shapiro–Wilk W (1 = Gaussian)", "KL to the Gaussian, nats (0 = Gaussian)"),
                       hgap=0.09)
    traces, notes, w, kls = [], [], {}, {}
    for stage, (width, alpha) in _STAGE_WIDTH.items():
        ws = views.unit_stat(snaps, variant, layer, stage, "shapiro_w", unit)
        if not np.isfinite(ws).any():
            continue
        w[stage] = ws
        kls[stage] = kl = views.unit_stat(snaps, variant, layer, stage, "kl_gaussian", unit)
        c, name = rgba(color, alpha), STAGE_SYMBOLS[stage]
        look = functools.partial(_marked, dash=STAGE_DASHES[stage], symbol=STAGE_MARKERS[stage],
                                 size=_MARKER_SIZE[stage], slot=list(_STAGE_WIDTH).index(stage),
                                 slots=len(_STAGE_WIDTH))
        traces.append(look(_line(steps, ws, 1, c, name, width=width, group=stage)))
        traces.append(look(_line(steps, kl, 2, c, name, show=False, width=width, group=stage)))
    infinite = _infinite_kl(kls)
    if infinite:  # said in words: an infinite KL draws nothing in the cell
        finite = np.concatenate([kl[np.isfinite(kl)] for kl in kls.values()])
        if finite.size:  # the lines stay below the note: headroom of ~1/5 of the cell per line of text
            lines = infinite.count("<br>") + 1
            axes["yaxis2"]["range"] = [0, max(float(finite.max()), 1e-3) / max(0.25, 1 - 0.2 * lines)]
            notes.append(cell_note(axes, 2, infinite, x=0.99, y=0.99, xanchor="right", yanchor="top"))
        else:
            notes.append(cell_note(axes, 2, infinite))
    d = views.diverged_at(snaps, variant)
    if d is not None and "x" in w:
        for k, stat in ((1, "shapiro_w"), (2, "kl_gaussian")):
            t, n = _diverged(axes, d, steps, views.unit_stat(snaps, variant, layer, "x", stat, unit), k, color)
            traces += t
            notes += n
    if not w:
        return message(f"diverged at step {d}" if d is not None else "no statistics for this series",
                       f"normality of {layer_text(layer, layer_name)}, {label}", height)
    axes["yaxis"]["title"] = "W"
    axes["yaxis2"]["title"] = "KL (nats)"
    _x_steps(axes, (1, 2), steps)
    head = f"{layer_text(layer, layer_name)}, {unit_text(unit, noun)}, {label}"
    latest = [(STAGE_SYMBOLS[st], summary.final(ws)) for st, ws in w.items()]
    note = head + " · latest W: " + ", ".join(f"{sym} {fmt(x)}" for sym, x in latest if math.isfinite(x))
    if {"x", "x_hat", "y"} <= w.keys():
        kls = {s: views.unit_stat(snaps, variant, layer, s, "kl_gaussian", unit) for s in ("x", "x_hat", "y")}
        dw = np.nanmax(np.abs(np.r_[w["x_hat"] - w["x"], w["y"] - w["x"]]))
        dkl = max((gap(a, b) for s in ("x_hat", "y") for a, b in zip(kls[s], kls["x"])
                   if not (math.isnan(a) or math.isnan(b))), default=math.nan)
        note += f"; largest |ΔW| of x̂ and y from x over training: {fmt(dw)}, |ΔKL| {fmt(dkl)} nats"
        if dw < TOL_W and dkl < TOL_KL:  # C3's rule: equal within what rounding and sampling allow
            title = "x, x̂ and y coincide: normalization standardizes, it does not reshape"
        elif unit == POOLED:
            title = f"Pooled over {noun}s x, x̂ and y differ: each {noun} is standardized with its own mean and std"
        else:
            title = "x, x̂ and y differ in shape here"
    else:
        title = f"How Gaussian x and a are over training ({label}: nothing is normalized)"
    return figure(traces, axes, title, note, height, cells + notes, cell_titles=True,
                  describe=f"Normality of each stage over training: {label}", plain_note=head)


# ----------------------------------------------------------------------------------------- stability

def stability(snaps: tuple[Snapshot, ...], variants, layer: int, height: int = 360,
              layer_name: str | None = None) -> go.Figure:
    """Drift per snapshot, gradient covariate shift ‖G−G′‖ and saturation of the activation input, per variant.

    The drift is the board's (summary.relative_drift: W1 / std); the title states C1's verdict on this layer and
    the subtitle quotes the numbers C1 and C8 judge by."""
    describe = f"Stability of {layer_text(layer, layer_name)}'s activation input"
    if not snaps:
        return message(title=describe, height=height)
    steps = views.steps(snaps)
    axes, cells = grid(1, 3, ("drift per snapshot / std", "Santurkar et al.: gradient shift ‖G − G′‖",
                              "saturated activation inputs"), hgap=0.08)
    traces, notes, drifts = [], [], []
    shifts = 0  # gradient shifts measured, over the variants
    for token in variants:
        color, label = variant_color(token), variant_label(token)
        stage = views.act_stage(snaps, token, layer)
        rel = (summary.relative_drift(snaps, token, layer, stage) if stage else np.full(len(snaps), np.nan))
        traces.append(_line(steps, rel, 1, color, label))
        at, l2, cos = views.ics(snaps, token, layer)
        shifts += len(at)
        xa, ya = axis(2)
        traces.append(dict(type="scatter", x=f32(at), y=f32(l2), mode="lines+markers", name=label,
                           legendgroup=label, showlegend=False, xaxis=xa, yaxis=ya, customdata=f32(cos),
                           line=dict(color=color, width=2), marker=dict(color=color, size=7),
                           hovertemplate="step %{x}: ‖G − G′‖ %{y:.3g}, cos %{customdata:.3f}<extra></extra>"))
        sat = views.saturation(snaps, token, layer)
        traces.append(_line(steps, sat, 3, color, label, show=False))
        d = views.diverged_at(snaps, token)
        if d is not None:
            t, n = _diverged(axes, d, steps, rel, 1, color)
            traces += t
            notes += n
        if stage and len(snaps) >= summary.MIN_SNAPS:
            drifts.append(f"{label} {fmt(summary.drift_per_snapshot(snaps, token, layer, stage))}")
    if not shifts:
        notes.append(cell_note(axes, 2, "not measured at these steps"))
    axes["yaxis"]["title"] = "W₁ to previous snapshot / std"
    axes["yaxis2"]["title"] = "‖G − G′‖"
    axes["yaxis3"].update(title="fraction saturated", tickformat=".2~%", rangemode="tozero")
    _x_steps(axes, (1, 2, 3), steps)
    c = drift.compare_drift(snaps, variants, layer)  # C1's rule on this layer
    title = drift.drift_headline(c) if c is not None else describe
    parts = [f"{layer_text(layer, layer_name)}'s drift per snapshot / std, mean over {summary.window_text(snaps)}: "
             + ", ".join(drifts) + (f" (ratio {variant_label(c.bn)} / {variant_label(c.none)} {fmt(c.ratio)}); "
                                    f"from the first snapshot / first std: {variant_label(c.bn)} {fmt(c.f_bn)}, "
                                    f"{variant_label(c.none)} {fmt(c.f_none)}" if c is not None else "")
             ] if drifts else []
    shift = _shift(snaps, variants)
    if shift is not None:
        parts.append(benefit.shift_note(shift, {t: variant_label(t) for t in variants}))
    return figure(traces, axes, title, "; ".join(parts), height, cells + notes, cell_titles=True,
                  describe=describe)


def _shift(snaps, variants) -> summary.GradientShift | None:
    """The gradient shift as C8 takes it: BN against no normalization, over every layer at their common steps."""
    bn = next((t for t in variants if t in ("bn", "bn@before")), None) or next(
        (t for t in variants if t.startswith("bn@")), None)
    pair = [t for t in (bn, "none") if t in variants]
    if len(pair) < 2:
        return None
    n_layers = max((len(v.layers) for s in snaps for t, v in s.variants.items() if t in pair), default=0)
    return summary.gradient_shift(snaps, pair, n_layers)


_SMOOTH = (("loss range along the gradient", "max − min of L", "loss_range"),
           ("gradient change ‖g − g′‖", "‖g − g′‖", "grad_change"),
           ("effective β-smoothness", "‖g − g′‖ / ‖ηg‖", "beta"))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_ticks(y: np.ndarray) -> dict:
    """Tick values and labels at every power of 10 that the positive values ``y`` span, as 10⁻³ … 10²."""
    lo, hi = int(np.floor(np.log10(y.min()))), int(np.ceil(np.log10(y.max())))
    exps = range(lo, hi + 1)
    return dict(tickvals=[10.0 ** e for e in exps], ticktext=["10" + str(e).translate(_SUPERSCRIPT) for e in exps])


def smoothness(snaps: tuple[Snapshot, ...], variants, height: int = 360) -> go.Figure:
    """Santurkar et al.'s smoothness along the gradient (their Figure 4) per variant over training: the loss's
    range, the gradient's change and the effective β-smoothness, each on a log scale; the subtitle quotes each
    variant's median over the run (summary.smoothness)."""
    describe = "Smoothness of the loss along the gradient (Santurkar et al., Figure 4)"
    if not snaps:
        return message(title=describe, height=height)
    measured = [t for t in variants if len(views.smoothness(snaps, t)[0])]
    if not measured:
        return message("measured with the gradient shift, on the mini-batch of its steps: none yet",
                       describe, height)
    axes, cells = grid(1, 3, [title for title, _, _ in _SMOOTH], hgap=0.1)
    traces: list[dict] = []
    drawn: list[list[np.ndarray]] = [[], [], []]  # per cell, each variant's values: the axis's span
    for token in measured:
        color, label = variant_color(token), variant_label(token)
        at, *series = views.smoothness(snaps, token)
        for k, y in enumerate(series, 1):
            drawn[k - 1].append(y)
            xa, ya = axis(k)
            traces.append(dict(type="scatter", x=f32(at), y=f32(y, positive=True), mode="lines+markers",
                               name=label, legendgroup=label, showlegend=k == 1, xaxis=xa, yaxis=ya,
                               line=dict(color=color, width=2), marker=dict(color=color, size=7),
                               hovertemplate=f"step %{{x}}: %{{y:.3g}}<extra>{label}</extra>"))
    for k, (_, unit, _) in enumerate(_SMOOTH, 1):
        y = np.concatenate(drawn[k - 1])
        y = y[np.isfinite(y) & (y > 0)]
        # Over a decade or more, ticks at the powers of 10 only: plotly's 2s and 5s between them read as a
        # jumbled scale ("10, 5, 2, 1" beside "2"). Written 10⁻³ in the theme's own tick font (plotly's
        # exponentformat="power" draws them larger than every other chart's ticks).
        decades = _power_ticks(y) if y.size and y.max() >= 10 * y.min() else {}
        axes["yaxis" + ("" if k == 1 else str(k))].update(type="log", title=f"{unit} (log)", **decades)
    _x_steps(axes, (1, 2, 3), views.steps(snaps))
    medians = {t: summary.smoothness(snaps, t) for t in measured}
    parts = [f"{name}: " + ", ".join(f"{variant_label(t)} {fmt(getattr(m, field))}" for t, m in medians.items()
                                     if m is not None)
             for name, _, field in _SMOOTH if any(m is not None for m in medians.values())]
    grid_text = ", ".join(f"{s:g}" for s in STEPS)
    note = (f"steps η = learning rate × {{{grid_text}}} along the gradient g of one mini-batch, lower is smoother"
            + ("; median over the run: " + "; ".join(parts) if parts else ""))
    return figure(traces, axes, describe, note, height, cells, cell_titles=True, describe=describe)


# ------------------------------------------------------------------------------------- learning rates

LR_DESCRIBE = "Test score against the learning rate: at the end (solid) and its mean over training (dashed)"


def lr_range(points, variants, lr: float | None = None, task: str = "classification",
             height: int = 400) -> go.Figure:
    """Each variant's final test score (solid) and its mean over training (dashed) against the learning rate of
    the sweep (log axis), from the points of present/lrrange.py: only where a run is stored. A diverged run is an
    x at the bottom ("diverged at step N"); a dotted line marks the page's own ``lr``. The title states C11's
    verdict only through its rule, once every rate of the sweep is stored."""
    regression = task == "regression"
    score = views.score_name(task)
    per = lrrange.by_variant(p for p in points if p.token in variants)
    axes, _ = grid(1, 1)
    traces: list[dict] = []
    for token in variants:
        pts = per.get(token, [])
        if not pts:
            continue
        color, label = variant_color(token), variant_label(token)
        ok = [p for p in pts if p.diverged_at is None]
        traces.append(dict(type="scatter", x=[p.lr for p in ok], y=[p.final for p in ok], mode="lines+markers",
                           name=f"{label}: at the end", legendgroup=label, line=dict(color=color, width=2.5),
                           marker=dict(color=color, size=9, symbol="circle"),
                           hovertemplate=f"lr %{{x:g}}: {score} at the end %{{y:.1%}}<extra>{label}</extra>"
                           if not regression else f"lr %{{x:g}}: {score} at the end %{{y:.3f}}<extra>{label}</extra>"))
        traces.append(dict(type="scatter", x=[p.lr for p in pts], y=[p.mean for p in pts], mode="lines+markers",
                           name=f"{label}: mean over training", legendgroup=label,
                           line=dict(color=color, width=2, dash="dash"),
                           marker=dict(color=color, size=8, symbol="diamond-open"),
                           hovertemplate=f"lr %{{x:g}}: mean {score} over training %{{y:.1%}}<extra>{label}</extra>"
                           if not regression else
                           f"lr %{{x:g}}: mean {score} over training %{{y:.3f}}<extra>{label}</extra>"))
        gone = [p for p in pts if p.diverged_at is not None]
        if gone:
            traces.append(dict(type="scatter", x=[p.lr for p in gone], y=[0.0] * len(gone), mode="markers",
                               name=f"{label}: diverged", legendgroup=label, showlegend=True,
                               marker=dict(symbol="x", size=14, color=color, line=dict(width=1, color=color)),
                               text=[f"diverged at step {p.diverged_at:,}" for p in gone],
                               hovertemplate=f"lr %{{x:g}}: %{{text}}<extra>{label}</extra>"))
    ticks = list(lrrange.LR_GRID)
    axes["xaxis"].update(type="log", title="learning rate (log scale)", tickvals=ticks,
                         ticktext=[f"{t:g}" for t in ticks],
                         range=[math.log10(ticks[0]) - 0.2, math.log10(ticks[-1]) + 0.2])
    if regression:
        axes["yaxis"].update(title=score, autorangeoptions=dict(minallowed=-0.05, maxallowed=1.02))
    else:
        axes["yaxis"].update(title=score, range=[-0.03, 1.03], tickformat=".0%")
    shapes, notes = [], []
    if lr is not None:
        shapes.append(dict(type="line", xref="x", x0=lr, x1=lr, yref="y domain", y0=0, y1=1,
                           line=dict(color=GREY, dash="dot", width=2)))
        notes.append(dict(text=f"this page: lr {lr:g}", x=math.log10(lr), xref="x", y=1, yref="y domain",
                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(color=GREY)))
    have = [p for p in points if p.token in variants and lrrange.on_grid(p.lr)]
    stored = len({p.lr for p in have})
    pair = (next((t for t in variants if t.split("@")[0] == "bn"), None), "none" if "none" in variants else None)
    n = c11.measure(have, pair[0], pair[1]) if pair[0] and pair[1] else None
    if n is not None:
        n = c11.C11Numbers(**{**n.__dict__, "score": score})
    if n is not None and math.isfinite(n.best):  # the rule's band: a rate whose dashed point is in it trains well
        shapes.insert(0, dict(type="rect", xref="x domain", x0=0, x1=1, yref="y", y0=n.best - c11.C11_MARGIN,
                              y1=n.best, fillcolor="rgba(128,128,128,0.15)", line=dict(width=0), layer="below"))
    if not traces:
        return message(f"no run of this sweep is stored yet: press \"Sweep the learning rate\" "
                       f"({len(lrrange.LR_GRID)} runs, lr {c11.GRID_TEXT})", LR_DESCRIBE, height)
    title = c11.headline(n, variant_label) if n is not None else LR_DESCRIBE
    stored_text = f"{stored} of the sweep's {len(lrrange.LR_GRID)} learning rates stored"
    note = c11.note(n, regression, variant_label) if n is not None else stored_text
    return figure(traces, axes, title, note, height, notes, shapes, describe=LR_DESCRIBE, plain_note=stored_text)
