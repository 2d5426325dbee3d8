"""Replay: a recorded table read back (CSV and Parquet) gives the live run's numbers in every view, every
figure and the evidence board, with the config from the share link or inferred from the table."""

from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnviz import stats
from bnviz.config import PRESETS, STAGES
from bnviz.measure.snapshot import POOL_N, POOLED, QQ_POINTS
from bnviz.present import claims, figures, views
from bnviz.table import record, replay, upload
from bnviz.table.schema import KNOWN_STATS, QUANTILE_STATS, STAGE_NAMES
from bnviz.table.upload import ReplayError

from ..helpers import DIVERGES, OTHERS, finished_run
from .tables import IOFFE, every_panel_figure, query_of
from .tables import csv_of as _csv


def loaded(files, kind, quantiles=True):
    return replay.load(files[kind, quantiles], f"run.{kind}")


# --------------------------------------------------------------------------------------------------------- round trip

def _close(a, b):
    np.testing.assert_allclose(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64), rtol=2e-7,
                               atol=0, equal_nan=True)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_every_series_reads_back_as_the_live_run_measured_it(ioffe, files, kind):
    live = ioffe.history.snapshots()
    rep = loaded(files, kind)
    snaps = rep.snapshots
    assert rep.has_distributions and views.steps(snaps).tolist() == views.steps(live).tolist()
    assert list(snaps[0].variants) == list(IOFFE.variants)
    for v in IOFFE.variants:
        for name in ("loss", "accuracy", "test_accuracy"):
            _close(views.train_stat(live, v, name), views.train_stat(snaps, v, name))
        assert views.diverged_at(snaps, v) == views.diverged_at(live, v)
        for a, b in zip(views.smoothness(live, v), views.smoothness(snaps, v)):
            _close(a, b)
        assert views.smoothness(snaps, v)[0].tolist() == [0]  # with the gradient shift, at step 0 only
        for layer in range(3):
            assert views.act_stage(snaps, v, layer) == views.act_stage(live, v, layer)
            _close(views.saturation(live, v, layer), views.saturation(snaps, v, layer))
            for which in ("weight", "gamma", "beta"):
                _close(views.param_change(live, v, layer, which), views.param_change(snaps, v, layer, which))
            for a, b in zip(views.ics(live, v, layer), views.ics(snaps, v, layer)):
                _close(a, b)
            assert len(views.ics(snaps, v, layer)[0]) == 1  # measured at step 0 only (ics_every 250)
            for stage in STAGES:
                for unit in (POOLED, *IOFFE.units):
                    for stat in stats.UNIT_STATS:  # includes the percentiles p2..p98 of Figure 1
                        _close(views.unit_stat(live, v, layer, stage, stat, unit),
                               views.unit_stat(snaps, v, layer, stage, stat, unit))
                    for ref in ("prev", "first"):
                        _close(views.drift(live, v, layer, stage, unit, ref),
                               views.drift(snaps, v, layer, stage, unit, ref))
                for s0, s1 in zip(live, snaps):
                    a, b = views.stage_of(s0, v, layer, stage), views.stage_of(s1, v, layer, stage)
                    assert (a is None) == (b is None)
                    if a is not None:
                        assert a.units == b.units and b.quantiles.dtype == np.float32
                        np.testing.assert_array_equal(b.quantiles, a.quantiles)
                        assert len(b.hists) == len(a.hists)
    # gamma/beta: every unit as measured (the affine stage's rows; a CSV file's width comes from them too)
    for layer in range(3):
        for which in ("gamma", "beta"):
            g0, g1 = views.affine(live, "bn", layer, which), views.affine(snaps, "bn", layer, which)
            assert g0.shape == g1.shape == (len(live), 100) and np.isfinite(g0).all()
            _close(g0, g1)
        assert views.affine(snaps, "none", layer).shape[1] == 0


@pytest.mark.slow
def test_a_table_without_quantiles_keeps_every_statistic_and_no_distribution(ioffe, files):
    live = ioffe.history.snapshots()
    rep = loaded(files, "parquet", quantiles=False)
    assert not rep.has_distributions and any("no distributions" in n for n in rep.notes)
    for s0, s1 in zip(live, rep.snapshots):
        for v in IOFFE.variants:
            for a, b in zip(s0.variants[v].layers, s1.variants[v].layers):
                for stage in a.stages:
                    np.testing.assert_array_equal(b.stages[stage].table, a.stages[stage].table)
                    assert b.stages[stage].hists == () and np.isnan(b.stages[stage].quantiles).all()


def test_other_variants_relu_and_divergence_round_trip(others_run, diverged_run):
    for run, cfg in ((others_run, OTHERS), (diverged_run, DIVERGES)):
        live = run.history.snapshots()
        data = record.table_to_bytes(record.to_table(run.history.snapshots(), quantiles=True), "csv")
        rep = replay.load(data, "other.csv")
        snaps = rep.snapshots
        assert rep.config.variants == cfg.variants and len(rep.config.widths) == len(cfg.widths)
        assert rep.config.activation == cfg.activation  # inferred from the range of stage a
        for v in cfg.variants:
            assert views.diverged_at(snaps, v) == views.diverged_at(live, v)
            _close(views.train_stat(live, v, "loss"), views.train_stat(snaps, v, "loss"))
            measured = views.smoothness(live, v)
            for a, b in zip(measured, views.smoothness(snaps, v)):
                _close(a, b)
            assert cfg is DIVERGES or len(measured[0]) == cfg.steps // cfg.ics_every  # steps 0, 10, 20
            for layer in range(len(cfg.widths)):
                assert views.act_stage(snaps, v, layer) == views.act_stage(live, v, layer)
                _close(views.saturation(live, v, layer), views.saturation(snaps, v, layer))
                for stage in STAGES:
                    for stat in ("mean", "p50", "kl_gaussian", "shapiro_w"):
                        _close(views.unit_stat(live, v, layer, stage, stat),
                               views.unit_stat(snaps, v, layer, stage, stat))
    assert views.diverged_at(diverged_run.history.snapshots(), "none") is not None


@pytest.mark.slow
def test_a_run_with_the_shape_variants_replays_with_its_config_numbers_figures_and_board(shapes_run):
    live, cfg = shapes_run.history.snapshots(), shapes_run.config
    data = record.table_to_bytes(record.to_arrow(live, quantiles=True), "parquet", query=query_of("ioffe", cfg))
    rep = replay.load(data, "shapes.parquet")
    assert rep.config.variants == cfg.variants and rep.config.widths == cfg.widths  # from the share link
    assert not any("inferred" in n for n in rep.notes)
    inferred = replay.load(record.table_to_bytes(record.to_table(live, quantiles=True), "csv"), "shapes.csv")
    assert inferred.config.variants == cfg.variants
    for v in cfg.variants:
        for layer in range(len(cfg.widths)):
            for stage in STAGES:
                for stat in ("mean", "std", "kurtosis", "shapiro_w"):
                    _close(views.unit_stat(live, v, layer, stage, stat),
                           views.unit_stat(rep.snapshots, v, layer, stage, stat))
    assert all(f.layout.title.text for f in every_panel_figure(rep.snapshots, rep.config))
    assert [(v.claim, v.verdict, v.value) for v in claims.evidence(rep.snapshots, rep.config)] == [
        (v.claim, v.verdict, v.value) for v in claims.evidence(live, cfg)]


# --------------------------------------------------------------------------------------------------------- histograms

def _hist_cdf(h, x):
    """P(X < x) of a histogram, values uniform within each bin."""
    cum = np.r_[0, np.cumsum(h.counts)] / h.counts.sum()
    return np.interp(x, h.edges, cum)


@pytest.mark.parametrize("name", ["normal", "bimodal", "skewed", "relu", "constant"])
def test_rebuilt_histogram_matches_the_sample_it_came_from(name):
    """Against an independent reference: a large sample, its np.quantile quantiles, and its own histogram."""
    rng = np.random.default_rng(3)
    x = {"normal": rng.normal(2, 3, 200_000),
         "bimodal": np.r_[rng.normal(-2, 0.5, 100_000), rng.normal(2, 0.5, 100_000)],
         "skewed": rng.exponential(1, 200_000),
         "relu": np.maximum(rng.normal(0, 1, 200_000), 0),
         "constant": np.full(1000, 1.25)}[name]
    q = np.quantile(x, (np.arange(QQ_POINTS) + 0.5) / QQ_POINTS)
    (h,) = replay.histograms_from_quantiles(q[None], [0], [5000])
    assert h.counts.sum() == 5000 and (h.counts >= 0).all()
    ref = stats.StableBins().histogram(x)
    sd = x.std() or 1.0
    assert ref.width / 2.5 <= h.width <= ref.width * 2.5  # nice_width of the quantiles: the same or the next
    centers_mean = (h.centers * h.counts).sum() / h.counts.sum()
    assert abs(centers_mean - x.mean()) < 0.02 * sd + h.width / 2
    grid = np.linspace(x.min(), x.max(), 400)
    ks = np.max(np.abs(_hist_cdf(h, grid) - _hist_cdf(ref, grid)))
    assert ks < 1.5 / QQ_POINTS, ks  # the quantiles pin the CDF to within about 1/64
    if name == "relu":  # the point mass at 0 stays in the bin [0, w), nothing below 0
        assert h.start == 0 and abs(h.counts[0] / 5000 - np.mean(x < h.width)) < 0.01
    if name == "constant":
        assert len(h.counts) == 1 and h.edges[0] <= 1.25 < h.edges[1]


@pytest.mark.slow
def test_rebuilt_histograms_of_the_run(ioffe, files):
    """Counts as the live histograms (probe size; pooled: POOL_N), bins stable per series, shape close."""
    live, snaps = ioffe.history.snapshots(), loaded(files, "parquet").snapshots
    worst = 0.0
    for v in IOFFE.variants:
        for layer in range(3):
            for stage in STAGES:
                widths = {}
                for s0, s1 in zip(live, snaps):
                    a, b = views.stage_of(s0, v, layer, stage), views.stage_of(s1, v, layer, stage)
                    if a is None:
                        continue
                    for i, u in enumerate(b.units):
                        h0, h1 = a.hists[i], b.hists[i]
                        assert h1.counts.sum() == h0.counts.sum() == (POOL_N if u == POOLED else IOFFE.probe_size)
                        widths.setdefault(u, []).append(h1.width)
                        grid = np.linspace(h0.edges[0], h0.edges[-1], 200)
                        # the live histogram's own binning limits how well two of them can agree
                        tol = 1.5 / QQ_POINTS + h0.counts.max() / h0.counts.sum() + h1.counts.max() / h1.counts.sum()
                        ks = np.max(np.abs(_hist_cdf(h0, grid) - _hist_cdf(h1, grid)))
                        worst = max(worst, ks / tol)
                        mean, sd = a.table[i, 0], a.table[i, 1]
                        assert abs((h1.centers * h1.counts).sum() / h1.counts.sum() - mean) <= 0.05 * sd + h1.width
                for ws in widths.values():  # one grid per series, doubling only: stats.align works on it
                    assert all(w1 / w0 in (1, 2, 4, 8) for w0, w1 in zip(ws, ws[1:])), ws
    assert worst < 1.0, worst


# ------------------------------------------------------------------------------------------------- figures and claims

@pytest.mark.slow
@pytest.mark.parametrize("kind, quantiles", [("parquet", True), ("csv", True), ("parquet", False)])
def test_every_panel_figure_and_the_evidence_board_work_on_a_replay(ioffe, files, kind, quantiles):
    rep = loaded(files, kind, quantiles)
    figs = list(every_panel_figure(rep.snapshots, rep.config))
    assert len(figs) > 100 and all(f.layout.title.text for f in figs)
    live_verdicts = claims.evidence(ioffe.history.snapshots(), IOFFE)
    verdicts = claims.evidence(rep.snapshots, rep.config)
    for a, b in zip(live_verdicts, verdicts):
        if a.claim == "C6" and not quantiles:  # judged on the quantiles: not in the file
            assert b.verdict == "not measured"
            continue
        assert (b.claim, b.verdict, b.value) == (a.claim, a.verdict, a.value)


@pytest.mark.slow
def test_figures_say_when_a_file_holds_no_distributions(files):
    snaps = loaded(files, "parquet", quantiles=False).snapshots
    shown = snaps[-1]
    notes = [a.text for a in figures.layer_histograms(shown, ("none", "bn"), 0).layout.annotations]
    assert sum("no distributions in this file" in n for n in notes) == 6  # x, a of none; x, x̂, y, a of bn
    for fig in (figures.histogram_heatmap(snaps, "bn", 0, "x_hat"), figures.qq_plot(shown, "bn", 0, "y", 2)):
        assert "record it with --quantiles" in fig.layout.annotations[0].text
    # A stage the variant does not have still says so.
    assert "no normalization" in figures.qq_plot(shown, "none", 0, "x_hat").layout.annotations[0].text


@pytest.mark.slow
def test_gamma_beta_figure_draws_the_tracked_units_of_a_replay(ioffe, files):
    fig = figures.gamma_beta(loaded(files, "csv").snapshots, "bn", 2)
    live = views.affine(ioffe.history.snapshots(), "bn", 2)
    tracked = [t for t in fig.data if t.name == "tracked units" and t.xaxis in (None, "x")]
    assert len(tracked) == len(IOFFE.units)
    for t, u in zip(tracked, IOFFE.units):
        np.testing.assert_array_equal(np.asarray(t.y), live[:, u].astype(np.float32))


# ------------------------------------------------------------------------------------------------------------- config

@pytest.mark.slow
def test_config_from_the_share_link_or_inferred(ioffe, files):
    rep = loaded(files, "parquet")
    assert rep.config == IOFFE  # the query string in the Parquet metadata holds the whole config
    assert not any("inferred" in n for n in rep.notes)
    csv = loaded(files, "csv")
    cfg = csv.config
    assert cfg.variants == IOFFE.variants and cfg.activation == "sigmoid" and cfg.steps == 200
    assert cfg.widths == IOFFE.widths and cfg.units == IOFFE.units and cfg.snapshot_every == 25  # widths: γ's rows
    assert any(n.startswith("A CSV file carries no settings") for n in csv.notes)
    assert replay.config_for(upload.read_table(files["csv", True], "run.csv")) == cfg
    # A link that does not match the table is not believed.
    wrong = record.table_to_bytes(record.to_table(ioffe.history.snapshots()), "parquet",
                                  query="preset=ioffe&variants=none,ln")
    rep = replay.load(wrong, "wrong.parquet")
    assert rep.config.variants == IOFFE.variants and any("does not match" in n for n in rep.notes)


def test_placement_is_inferred_when_variants_do_not_name_it(others_run):
    others = others_run
    df = record.to_table(others.history.snapshots())
    df = df[df.variant.astype(str) == "bn@after"].copy()
    df["variant"] = "bn"
    rep = replay.load(record.table_to_bytes(df, "csv"), "after.csv")
    assert rep.config.placement == "after" and rep.config.variants == ("bn",)
    assert views.act_stage(rep.snapshots, "bn", 0) == "x"


@pytest.mark.slow
def test_long_runs_are_thinned_evenly(ioffe, files):
    rep = replay.load(files["parquet", False], "run.parquet", max_snapshots=4)
    assert views.steps(rep.snapshots).tolist() == [0, 75, 125, 200] and any("evenly" in n for n in rep.notes)


# ----------------------------------------------------------------------------------------------------------- property

ROW = st.tuples(st.sampled_from(["none", "bn", "ln", "bn@after"]), st.integers(0, 4), st.integers(-1, 2),
                st.sampled_from(STAGE_NAMES), st.integers(-1, 3), st.sampled_from(KNOWN_STATS),
                st.one_of(st.floats(), st.floats(-3, 3)))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ROW, min_size=1, max_size=40))
def test_arbitrary_tables_load_or_fail_cleanly_and_draw(rows):
    data = _csv(*(",".join(map(str, r)) + "\n" for r in rows))
    try:
        rep = replay.load(data, "t.csv")
    except ReplayError:
        return
    for fig in every_panel_figure(rep.snapshots, rep.config):
        assert fig.layout.title.text is not None
    claims.evidence(rep.snapshots, rep.config)


def test_normal_quantiles_give_a_gaussian_qq_plot():
    """End to end on a synthetic table: quantiles of N(0, 1) read back as points on the line y = x."""
    z = np.array([NormalDist().inv_cdf((i + 0.5) / QQ_POINTS) for i in range(QQ_POINTS)])
    rows = ["none,0,0,x,-1,mean,0\n", "none,0,0,x,-1,std,1\n", "none,0,-1,train,-1,loss,1\n"]
    rows += [f"none,0,0,x,-1,{n},{float(v)!r}\n" for n, v in zip(QUANTILE_STATS, z)]
    rep = replay.load(_csv(*rows), "n.csv")
    fig = figures.qq_plot(rep.snapshots[0], "none", 0, "x")
    pts = [t for t in fig.data if t.mode == "markers"][0]
    np.testing.assert_allclose(pts.y, pts.x, atol=1e-5)
    (h,) = rep.snapshots[0].variants["none"].layers[0].stages["x"].hists
    assert abs((h.centers * h.counts).sum() / h.counts.sum()) < 0.01


@pytest.mark.slow
def test_a_conv_run_replays_with_its_channels_counted_over_examples_and_positions():
    """A channel's live histogram counts every position of every probe example; the replay's rebuilt one
    sums to the same count, and the board reads the same verdicts."""
    cfg = PRESETS["santurkar-conv"].config.replace(widths=(4, 6), steps=40, snapshot_every=10)
    run = finished_run(cfg)
    live = run.history.snapshots()
    data = record.table_to_bytes(record.to_arrow(live, quantiles=True), "parquet",
                                 query=query_of("santurkar-conv", cfg))
    rep = replay.load(data, "conv.parquet")
    assert rep.config == cfg and rep.config.architecture == "conv"
    assert cfg.series_length == 64 * 64  # 64 probe examples x 8 x 8 positions
    for s0, s1 in zip(live, rep.snapshots):
        for v in cfg.variants:
            for layer in range(2):
                a, b = views.stage_of(s0, v, layer, "x"), views.stage_of(s1, v, layer, "x")
                for i, u in enumerate(b.units):
                    want = min(cfg.series_length * cfg.widths[layer], POOL_N) if u == POOLED else cfg.series_length
                    assert a.hists[i].counts.sum() == b.hists[i].counts.sum() == want
    figs = list(every_panel_figure(rep.snapshots, rep.config))
    assert all(f.layout.title.text for f in figs)
    for a, b in zip(claims.evidence(live, cfg), claims.evidence(rep.snapshots, rep.config)):
        assert (b.claim, b.verdict, b.value) == (a.claim, a.verdict, a.value)
    csv = replay.load(record.table_to_bytes(record.to_table(live, quantiles=True), "csv"), "conv.csv")
    assert any("Network type" in n and "record to Parquet" in n for n in csv.notes)
