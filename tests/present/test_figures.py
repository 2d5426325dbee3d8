"""Figure builders on real runs: every figure builds, draws exactly what the engine measured, and stays light."""

import dataclasses
import math
import subprocess
import sys
from statistics import NormalDist
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest

from bnviz import stats
from bnviz.config import STAGES, ExperimentConfig
from bnviz.measure.snapshot import POOLED, QQ_POINTS
from bnviz.present import figures, views
from bnviz.present.style import KIND_COLORS, STAGE_TITLES

from ..helpers import DIVERGES, OTHERS, SMALL, finished

IOFFE = ExperimentConfig(steps=500, snapshot_every=5)  # the ioffe preset's network, ~100 snapshots
BUDGET_BYTES = 250_000


@pytest.fixture(scope="module")
def diverged(diverged_run):
    return diverged_run.history.snapshots()


@pytest.fixture(scope="module")
def ioffe():
    return finished(IOFFE, stats_in="process")


def every_figure(snaps, variants, layers, units=(POOLED,)):
    """(name, figure) for every builder and every variant, layer, stage and unit of a history."""
    last = snaps[-1] if snaps else None
    yield "training", figures.training(snaps, variants)
    yield "smoothness", figures.smoothness(snaps, variants)
    for layer in layers:
        yield "stability", figures.stability(snaps, variants, layer)
        for unit in units:
            yield "layer_histograms", figures.layer_histograms(last, variants, layer, unit)
            yield "percentile_bands", figures.percentile_bands(snaps, variants, layer, unit, scrub_step=10)
            for v in variants:
                yield "normality_over_time", figures.normality_over_time(snaps, v, layer, unit)
                for stage in STAGES:
                    yield "histogram_heatmap", figures.histogram_heatmap(snaps, v, layer, stage, unit, 10)
                    yield "qq_plot", figures.qq_plot(last, v, layer, stage, unit)
        for v in variants:
            yield "gamma_beta", figures.gamma_beta(snaps, v, layer)


def texts(fig) -> str:
    """Title and every annotation of a figure, as one string."""
    return " | ".join([fig.layout.title.text or ""] + [a.text or "" for a in fig.layout.annotations])


def cell(fig, k: int):
    """The traces drawn in grid cell k (1-based)."""
    xa = "x" if k == 1 else f"x{k}"
    return [t for t in fig.data if (t.xaxis or "x") == xa]


def named(traces, name: str):
    found = [t for t in traces if t.name == name]
    assert found, f"no trace named {name!r} among {[t.name for t in traces]}"
    return found


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def base_color(c: str) -> str:
    """'#RRGGBB' of a hex or rgba(...) color."""
    if c.startswith("#"):
        return c.upper()
    r, g, b = (int(float(v)) for v in c[c.index("(") + 1:c.index(")")].split(",")[:3])
    return f"#{r:02X}{g:02X}{b:02X}"


# ------------------------------------------------------------------------------------- every combination

@pytest.mark.slow
def test_every_builder_builds_for_every_variant_layer_stage_and_unit(small, others, diverged):
    for snaps, cfg in ((small, SMALL), (others, OTHERS), (diverged, DIVERGES)):
        for name, fig in every_figure(snaps, cfg.variants, range(len(cfg.widths)), units=(POOLED, 0, 99)):
            assert isinstance(fig, go.Figure), name
            assert fig.layout.title.text, f"{name} has no title"
            fig.to_json()  # serializable as sent to the browser


@pytest.mark.slow
def test_every_builder_builds_for_the_shape_variants(shapes_run):
    snaps, cfg = shapes_run.history.snapshots(), shapes_run.config
    for name, fig in every_figure(snaps, cfg.variants, range(len(cfg.widths)), units=(POOLED, 0)):
        assert isinstance(fig, go.Figure) and fig.layout.title.text, name
        fig.to_json()


def test_empty_history_waits_for_the_first_snapshot():
    for name, fig in every_figure((), ("none", "bn"), (0,)):
        assert isinstance(fig, go.Figure), name
        assert "waiting for the first snapshot…" in texts(fig), name
        assert len(fig.data) == 0


def test_a_variant_without_normalization_says_so(small):
    fig = figures.layer_histograms(small[-1], ("none", "bn"), 0)
    notes = [a.text for a in fig.layout.annotations]
    assert notes.count("no normalization") == 2  # the x̂ and y cells of the "none" row
    assert "no normalization" in texts(figures.qq_plot(small[-1], "none", 0, "x_hat"))
    assert "no learned γ and β" in texts(figures.gamma_beta(small, "none", 0))


def test_a_diverged_variant_ends_with_a_marked_step(diverged):
    step = views.diverged_at(diverged, "none")
    assert step is not None, "the lr=3 identity network was expected to diverge"
    steps = views.steps(diverged)
    fig = figures.training(diverged, DIVERGES.variants)
    marks = [t for t in fig.data if t.text and f"diverged at step {step}" in t.text[0]]
    assert marks and all(t.x[0] == step and t.marker.symbol == "x" for t in marks)
    loss = named(cell(fig, 1), "no norm")[0].y
    assert not np.isfinite(loss[steps > step]).any()  # the curve stops at the divergence
    for fig in (figures.percentile_bands(diverged, DIVERGES.variants, 1),
                figures.stability(diverged, DIVERGES.variants, 1),
                figures.layer_histograms(diverged[-1], DIVERGES.variants, 1)):
        assert f"diverged at step {step}" in texts(fig) + " ".join(t.text[0] for t in fig.data if t.text)
    assert "diverged at step" in texts(figures.histogram_heatmap(diverged, "none", 1, "x"))


def test_infinite_kl_is_written_as_infinity_and_never_drawn(others):
    """ReLU outputs have a point mass at 0: their KL is +inf, written "KL=∞" or "∞" in words; traces hold no inf."""
    st = views.stage_of(others[-1], "bn_noaffine", 0, "a")
    assert math.isinf(st.stat("kl_gaussian")), "ReLU outputs were expected to have KL = inf"
    hist = figures.layer_histograms(others[-1], ("bn_noaffine",), 0)
    assert "KL=∞" in texts(hist)
    norm = figures.normality_over_time(others, "bn_noaffine", 0)
    assert "KL of a: ∞ at every step" in texts(norm)  # in words in the KL cell, where nothing is drawn
    for fig in (hist, norm):
        for t in fig.data:
            for key in ("x", "y"):
                v = getattr(t, key, None)
                if isinstance(v, np.ndarray):
                    assert not np.isinf(v).any()


# ------------------------------------------------------------------- what is drawn is what was measured

def table(snaps, variant, layer, stage, stat, unit=POOLED) -> np.ndarray:
    """A statistic straight from the StageStats tables (NaN where a snapshot lacks it)."""
    out = np.full(len(snaps), np.nan)
    for i, s in enumerate(snaps):
        v = s.variants[variant]
        if layer < len(v.layers) and stage in v.layers[layer].stages:
            out[i] = v.layers[layer].stages[stage].stat(stat, unit)
    return out


def test_a_lone_first_snapshot_is_drawn_as_points_of_its_percentiles(small):
    fig = figures.percentile_bands(small[:1], SMALL.variants, 1)  # what a page shows at step 0
    for k, (variant, stage) in enumerate((("none", "x"), ("bn", "y")), start=1):
        points = {t.hovertemplate.split(": ")[1].split(" ")[0]: t for t in cell(fig, k)
                  if t.type == "scatter" and t.hovertemplate and "markers" in t.mode}
        for q in ("p15", "p50", "p85"):
            assert list(points[q].x) == [0]
            assert points[q].y[0] == f32(table(small[:1], variant, 1, stage, q, POOLED))[0]


@pytest.mark.parametrize("unit", [POOLED, 3])
def test_percentile_lines_are_the_tables_percentiles(small, unit):
    fig = figures.percentile_bands(small, SMALL.variants, 1, unit)
    steps = views.steps(small)
    for k, (variant, stage) in enumerate((("none", "x"), ("bn", "y")), start=1):
        lines = {t.hovertemplate.split(": ")[1].split(" ")[0]: t for t in cell(fig, k)
                 if t.type in ("scatter", "scattergl") and t.mode == "lines" and t.hovertemplate}
        for q in ("p15", "p50", "p85"):
            np.testing.assert_array_equal(lines[q].x, f32(steps))
            np.testing.assert_array_equal(lines[q].y, f32(table(small, variant, 1, stage, q, unit)))
        assert lines["p50"].line.dash == "solid" and lines["p15"].line.dash == "dash"
        band = named(cell(fig, k), "p2–p98")[0]
        np.testing.assert_array_equal(band.y, f32(np.r_[table(small, variant, 1, stage, "p98", unit),
                                                         table(small, variant, 1, stage, "p2", unit)[::-1]]))


def test_scrub_step_draws_a_vertical_line_in_every_cell(small):
    fig = figures.percentile_bands(small, SMALL.variants, 0, scrub_step=30)
    assert [(s.x0, s.x1, s.xref) for s in fig.layout.shapes] == [(30, 30, "x"), (30, 30, "x2")]


@pytest.mark.parametrize("unit", [POOLED, 1])
def test_histogram_bars_gaussian_and_annotation_are_the_snapshots(small, unit):
    snap = small[-1]
    fig = figures.layer_histograms(snap, SMALL.variants, 1, unit)
    stages = list(STAGE_TITLES)
    notes = [a.text for a in fig.layout.annotations]
    for r, variant in enumerate(SMALL.variants):
        for c, stage in enumerate(stages):
            st = views.stage_of(snap, variant, 1, stage)
            traces = cell(fig, r * len(stages) + c + 1)
            if st is None:
                assert not traces
                continue
            i = st.units.index(unit)
            h, row = st.hists[i], dict(zip(stats.UNIT_STATS, st.table[i]))
            bars = [t for t in traces if t.type == "bar"][0]
            np.testing.assert_array_equal(bars.y, f32(h.counts / (h.counts.sum() * h.width)))
            np.testing.assert_array_equal(bars.x, f32(h.centers))
            assert bars.width == h.width
            curve = named(traces, "Gaussian N(mean, std)")[0]
            z = (curve.x.astype(np.float64) - row["mean"]) / row["std"]
            np.testing.assert_allclose(curve.y, np.exp(-z * z / 2) / (row["std"] * math.sqrt(2 * math.pi)),
                                       rtol=1e-4, atol=1e-6)
            sig3 = lambda v: format(v, "#.3g").rstrip(".")  # noqa: E731  (3 significant digits, as the board)
            expected = (f"W={sig3(row['shapiro_w'])}  p={row['shapiro_p']:.2g}<br>"
                        f"KL={'∞' if math.isinf(row['kl_gaussian']) else sig3(row['kl_gaussian'])}")
            assert any(n.startswith(expected) for n in notes), (expected, notes)


def test_the_histogram_title_compares_the_measured_shapes(small):
    """Per unit x, x̂ and y have equal W (BN only shifts and scales): the title says so, with the numbers."""
    fig = figures.layer_histograms(small[-1], SMALL.variants, 0, 2)
    st = {s: views.stage_of(small[-1], "bn", 0, s) for s in ("x", "x_hat", "y")}
    w = {s: st[s].stat("shapiro_w", 2) for s in st}
    assert max(w.values()) - min(w.values()) < 0.002
    assert "same shape as x" in fig.layout.title.text
    assert f"W x {w['x']:.3f}, x̂ {w['x_hat']:.3f}, y {w['y']:.3f}" in fig.layout.title.text


def test_heatmap_columns_are_the_aligned_stored_histograms(small):
    fig = figures.histogram_heatmap(small, "bn", 1, "x")
    (hm,) = fig.data
    hists = [s.variants["bn"].layers[1].stages["x"].hists[0] for s in small]
    edges, counts = stats.align(hists)
    assert counts.shape[1] <= figures.MAX_VALUE_BINS  # else the figure coarsens (tested below)
    width = edges[1] - edges[0]
    np.testing.assert_array_equal(hm.x, f32(views.steps(small)))
    np.testing.assert_array_equal(hm.y, f32((edges[:-1] + edges[1:]) / 2))
    assert hm.z.dtype == np.float32 and hm.z.shape == (counts.shape[1], len(small))
    np.testing.assert_array_equal(hm.z, (counts / (counts.sum(axis=1, keepdims=True) * width)).T.astype(np.float32))
    np.testing.assert_allclose(hm.z.sum(axis=0) * width, 1.0, rtol=1e-5)


def test_heatmap_caps_value_bins_and_time_columns(small):
    wide = [stats.histogram(np.linspace(-50, 50 + k, 1000), 0.1) for k in range(3)]
    edges, counts = figures._aligned(wide)
    assert counts.shape[1] <= figures.MAX_VALUE_BINS
    assert (counts.sum(axis=1) == 1000).all()  # exact re-binning: nothing lost
    long = tuple(dataclasses.replace(small[i % len(small)], step=10 * i) for i in range(300))
    hm = figures.histogram_heatmap(long, "bn", 0, "y").data[0]
    assert hm.z.shape[1] == figures.MAX_TIME_COLUMNS and hm.x[0] == 0 and hm.x[-1] == 2990


def test_gamma_lines_are_the_layers_gamma(small):
    fig = figures.gamma_beta(small, "bn", 0)
    gamma = np.array([s.variants["bn"].layers[0].gamma for s in small])
    beta = np.array([s.variants["bn"].layers[0].beta for s in small])
    tracked = [u for u in small[-1].variants["bn"].layers[0].stages["y"].units if u != POOLED]
    for k, m in ((1, gamma), (2, beta)):
        emph = [t for t in cell(fig, k) if t.legendgroup == "tracked"]
        assert len(emph) == len(tracked)
        for u, t in zip(tracked, emph):
            assert f"unit {u}" in t.hovertemplate
            np.testing.assert_array_equal(t.y, f32(m[:, u]))
        (faint,) = [t for t in cell(fig, k) if t.legendgroup == "faint"]
        drawn = faint.y[np.isfinite(faint.y)]
        assert drawn.size >= m.shape[1] * 2 and np.isin(drawn, f32(m)).all()
    for p, sym in (("weight", "W"), ("gamma", "γ"), ("beta", "β")):
        change = np.array([s.variants["bn"].layers[0].change.get(p, np.nan) for s in small])
        np.testing.assert_array_equal(named(cell(fig, 3), f"change of {sym}")[0].y,
                                      f32(np.where(change > 0, change, np.nan)))


def test_smoothness_draws_each_measurement_on_log_axes_and_quotes_the_medians(small):
    fig = figures.smoothness(small, SMALL.variants)
    for v in SMALL.variants:
        label = figures.variant_label(v)
        measured = [(s.step, s.variants[v].smooth) for s in small if s.variants[v].smooth is not None]
        assert [m[0] for m in measured] == [0, 20, 40]  # every ics_every steps before the last
        for k, field in enumerate(("loss_range", "grad_change", "beta"), 1):
            line = named(cell(fig, k), label)[0]
            np.testing.assert_array_equal(line.x, f32([m[0] for m in measured]))
            np.testing.assert_array_equal(line.y, f32([getattr(m[1], field) for m in measured]))
            median = float(np.median([getattr(m[1], field) for m in measured]))
            assert f"{label} {figures.fmt(median)}" in fig.layout.title.text
    assert [fig.layout[f"yaxis{k}"].type for k in ("", 2, 3)] == ["log"] * 3
    assert "0.25, 0.5, 1, 2, 4" in fig.layout.title.text
    empty = figures.smoothness(small, ("ln",))  # a variant the run did not train
    assert not empty.data and "none yet" in texts(empty)


def test_training_normality_qq_and_stability_draw_the_snapshots(small):
    fig = figures.training(small, SMALL.variants)
    for v in SMALL.variants:
        label = figures.variant_label(v)
        np.testing.assert_array_equal(named(cell(fig, 1), label)[0].y, f32([s.variants[v].loss for s in small]))
        np.testing.assert_array_equal(named(cell(fig, 2), label)[0].y,
                                      f32([s.variants[v].test_accuracy for s in small]))
    fig = figures.normality_over_time(small, "bn", 1, 0)
    for stage, sym in (("x", "x"), ("x_hat", "x̂"), ("y", "y"), ("a", "a")):
        np.testing.assert_array_equal(named(cell(fig, 1), sym)[0].y, f32(table(small, "bn", 1, stage, "shapiro_w", 0)))
        np.testing.assert_array_equal(named(cell(fig, 2), sym)[0].y,
                                      f32(table(small, "bn", 1, stage, "kl_gaussian", 0)))
    st = views.stage_of(small[-1], "bn", 1, "y")
    pts = figures.qq_plot(small[-1], "bn", 1, "y", 1).data[1]
    i = st.units.index(1)
    np.testing.assert_allclose(pts.y, (st.quantiles[i] - st.stat("mean", 1)) / st.stat("std", 1), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(pts.x, [NormalDist().inv_cdf((j + 0.5) / QQ_POINTS) for j in range(QQ_POINTS)],
                               rtol=1e-6)
    fig = figures.stability(small, SMALL.variants, 1)
    for v in SMALL.variants:
        label = figures.variant_label(v)
        lays = [s.variants[v].layers[1] for s in small]
        sd = stats.UNIT_STATS.index("std")  # the board's drift: W1 to the previous snapshot / pooled std
        np.testing.assert_allclose(named(cell(fig, 1), label)[0].y,
                                   f32([lay.stages[lay.act_stage].drift_prev[0] / lay.stages[lay.act_stage].table[0, sd]
                                        for lay in lays]), rtol=1e-6)
        np.testing.assert_array_equal(named(cell(fig, 3), label)[0].y, f32([lay.saturation[0] for lay in lays]))
        measured = [(s.step, *s.variants[v].layers[1].ics) for s in small if s.variants[v].layers[1].ics]
        ics = named(cell(fig, 2), label)[0]
        np.testing.assert_array_equal(ics.x, f32([m[0] for m in measured]))
        np.testing.assert_array_equal(ics.y, f32([m[1] for m in measured]))
        np.testing.assert_array_equal(ics.customdata, f32([m[2] for m in measured]))


def test_whatif_bins_both_samples_alike_and_shows_the_callers_numbers():
    x = np.random.default_rng(1).standard_normal(400)
    before, after = stats.normality(x), stats.normality(-1.7 * x + 2.0)
    fig = figures.whatif(x, -1.7, 2.0, before, after)
    hx, hy = fig.data
    np.testing.assert_array_equal(hx.x, hy.x)
    y = -1.7 * x + 2.0
    edges = np.linspace(min(x.min(), y.min()), max(x.max(), y.max()), len(hx.x) + 1)  # shared, over both
    np.testing.assert_array_equal(hx.x, f32((edges[:-1] + edges[1:]) / 2))
    np.testing.assert_allclose(hx.y, np.histogram(x, edges, density=True)[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hy.y, np.histogram(y, edges, density=True)[0], rtol=1e-4, atol=1e-5)
    assert f"W={before.shapiro_w:.3f}" in texts(fig) and f"W={after.shapiro_w:.3f}" in texts(fig)
    assert "W and KL stay the same" in fig.layout.title.text


def fake_clt(dist, weights, w):
    fan = np.array([1, 4, 16, 64])
    h = stats.histogram(np.random.default_rng(0).standard_normal(500), 0.2)
    return SimpleNamespace(dist=dist, weights=weights, fan_ins=fan, shapiro_w=np.array(w),
                           kl=np.array([np.inf, 0.1, 0.02, 0.0]), skew=np.zeros(4), kurtosis=np.zeros(4),
                           hists=(h,) * 4)


def test_clt_curves_and_bimodal_demo_draw_their_inputs():
    try:
        from bnviz.measure import clt
        results = [clt.clt_experiment(d) for d in ("gaussian", "bimodal")] + [
            clt.clt_experiment("bimodal", weights="sparse")]
        demo = clt.bimodal_through_bn()
    except ImportError:  # the teammate's module is not there yet: objects with the same attributes
        results = [fake_clt("gaussian", "random", [0.99, 0.995, 0.998, 0.999]),
                   fake_clt("bimodal", "random", [0.8, 0.95, 0.99, 0.998])]
        x = np.r_[np.random.default_rng(0).normal(-1, 0.2, 300), np.random.default_rng(1).normal(1, 0.2, 300)]
        xh = (x - x.mean()) / x.std()
        demo = SimpleNamespace(x_hist=stats.histogram(x, 0.1), xhat_hist=stats.histogram(xh, 0.1),
                               x_stats=stats.describe(x), xhat_stats=stats.describe(xh))
    fig = figures.clt_curves(results)
    for res in results:
        (w,) = [t for t in cell(fig, 1) if t.name == f"{res.dist}, {res.weights} weights"]
        np.testing.assert_array_equal(w.x, f32(res.fan_ins))
        np.testing.assert_array_equal(w.y, f32(res.shapiro_w))
        (kl,) = [t for t in cell(fig, 2) if t.legendgroup == w.name]
        np.testing.assert_array_equal(kl.y, f32(np.where(np.isfinite(res.kl), res.kl, np.nan)))
    assert fig.layout.xaxis.type == "log"
    fig = figures.bimodal_demo(demo)
    for k, (h, row) in enumerate(((demo.x_hist, demo.x_stats), (demo.xhat_hist, demo.xhat_stats)), start=1):
        (bars,) = cell(fig, k)
        np.testing.assert_array_equal(bars.y, f32(h.counts / (h.counts.sum() * h.width)))
        assert f"W={row[stats.UNIT_STATS.index('shapiro_w')]:.3f}" in texts(fig)
    assert "stays bimodal" in fig.layout.title.text


# ------------------------------------------------------------------------------------- colors and style

def test_variant_colors_and_labels():
    assert figures.variant_color("none") == "#D55E00" and figures.variant_color("bn") == "#0072B2"
    assert figures.variant_color("bn_noaffine") == "#009E73" and figures.variant_color("bn_noisy") == "#CC79A7"
    assert figures.variant_color("ln") == "#E69F00"
    assert figures.variant_color("bn@after") == "#56B4E9" and figures.variant_color("bn@before") == "#0072B2"
    assert figures.variant_label("bn_noaffine") == "BN, γ=1 β=0"
    assert figures.variant_label("bn@after") == "BN (after act.)"
    assert figures.variant_label("bn_gauss") == "BN→Gauss" and figures.variant_label("bn_laplace@after") == \
        "BN→Laplace (after act.)"
    assert len(set(KIND_COLORS.values()) | {figures.variant_color("bn@after")}) == 9


def test_a_variant_has_the_same_color_in_every_figure(others):
    variants, last = OTHERS.variants, others[-1]
    for v in variants:
        want = figures.variant_color(v)
        label = figures.variant_label(v)
        for fig in (figures.training(others, variants), figures.stability(others, variants, 1)):
            assert {base_color(t.line.color) for t in fig.data if t.name == label} == {want}
        k = variants.index(v) + 1
        bands = figures.percentile_bands(others, variants, 1)
        assert {base_color(t.line.color or t.fillcolor) for t in cell(bands, k)} == {want}
        hists = figures.layer_histograms(last, variants, 1)
        assert {base_color(t.marker.color) for t in hists.data if t.type == "bar" and t.name == label} == {want}
        heat = figures.histogram_heatmap(others, v, 1, "x").data[0]
        assert base_color(heat.colorscale[-1][1]) == want
        norm = figures.normality_over_time(others, v, 1)
        assert {base_color(t.line.color) for t in norm.data} == {want}
        if last.variants[v].layers[1].gamma is not None:
            gb = figures.gamma_beta(others, v, 1)
            assert {base_color(t.line.color) for t in gb.data} == {want}


def test_style_is_theme_neutral_responsive_and_labelled(small):
    for name, fig in every_figure(small, SMALL.variants, (1,)):
        lay = fig.layout
        assert lay.paper_bgcolor == lay.plot_bgcolor == "rgba(0,0,0,0)", name
        assert lay.width is None and lay.height, name
        assert lay.font.size >= 13 and lay.legend.orientation == "h", name
        if not fig.data:
            continue
        # Every column's x axis and every row's y axis carries a label (inner cells may share their row's).
        used = {(t.xaxis or "x", t.yaxis or "y") for t in fig.data}
        for xa, ya in used:
            xs = [a for a in lay if a.startswith("xaxis") and lay[a].domain == lay["xaxis" + xa[1:]].domain]
            ys = [a for a in lay if a.startswith("yaxis") and lay[a].domain == lay["yaxis" + ya[1:]].domain]
            assert any(lay[a].title.text for a in xs), (name, xa)
            assert any(lay[a].title.text for a in ys), (name, ya)


def test_figures_do_not_import_streamlit():
    code = "import sys, bnviz.present.figures; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------- speed and payload

def float_arrays(fig):
    for t in fig.data:
        for key in ("x", "y", "z", "customdata"):
            v = getattr(t, key, None)
            if v is not None and not isinstance(v, str) and len(v) > 2:
                yield f"{t.type}.{key}", v


@pytest.mark.slow
def test_ioffe_sized_figures_are_light_and_float32(ioffe):
    assert len(ioffe) >= 100
    variants = IOFFE.variants
    for name, fig in every_figure(ioffe, variants, range(len(IOFFE.widths)), units=(POOLED, 0)):
        size = len(fig.to_json())
        assert size < BUDGET_BYTES, (name, size)
        for key, v in float_arrays(fig):
            assert isinstance(v, np.ndarray) and v.dtype == np.float32, (name, key, type(v))
        assert '"bdata"' in fig.to_json() or not fig.data
    # Build time is a speed figure, measured in benchmarks/bench_long.py (README), not asserted here.


def test_figures_finish_importing_pandas_before_any_figure_is_built():
    """Regression (seen in the server log under load): plotly looks pandas up in sys.modules; a first import
    of pandas by another server thread at that moment made it half initialized and a page failed."""
    import subprocess
    import sys

    code = ("import sys; import bnviz.present.figures; m = sys.modules.get('pandas'); "
            "assert m is not None and hasattr(m, 'Series') and hasattr(m, 'DataFrame')")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
