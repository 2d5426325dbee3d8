"""Export and replay: a recorded table read back (CSV and Parquet) gives the live run's numbers in every view,
every figure and the evidence board; malformed uploads fail fast with one short ReplayError line."""

import io
import tracemalloc
from statistics import NormalDist
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnviz import stats, urlstate
from bnviz.config import PRESETS, STAGES
from bnviz.measure.snapshot import POOL_N, POOLED, QQ_POINTS
from bnviz.present import claims, figures, views
from bnviz.table import record, replay, upload
from bnviz.table.schema import KNOWN_STATS, QUANTILE_STATS, STAGE_NAMES, TABLE_COLUMNS
from bnviz.table.upload import ReplayError

from ..helpers import DIVERGES, OTHERS, finished_run

IOFFE = PRESETS["ioffe"].config.replace(steps=200)  # the real network: 3 x 100 sigmoid units, 9 snapshots
HEADER = ",".join(TABLE_COLUMNS) + "\n"
GOOD_ROW = "bn,0,0,x,-1,mean,0.5\n"


def query_of(preset, cfg):
    return urlencode(urlstate.encode(preset, cfg), safe=",")


@pytest.fixture(scope="module")
def ioffe():
    return finished_run(IOFFE)


@pytest.fixture(scope="module")
def files(ioffe, tmp_path_factory):
    """The ioffe run written as the record command and the download button write it."""
    d = tmp_path_factory.mktemp("replay")
    out = {}
    for kind in ("csv", "parquet"):
        path = d / f"run.{kind}"
        record.write_table(record.to_arrow(ioffe.history.snapshots(), quantiles=True), path, query=query_of("ioffe", IOFFE))
        out[kind, True] = path.read_bytes()
        plain = record.to_arrow(ioffe.history.snapshots()) if kind == "parquet" else record.to_table(ioffe.history.snapshots())
        out[kind, False] = record.table_to_bytes(plain, kind, query=query_of("ioffe", IOFFE))
    return out


@pytest.mark.parametrize("quantiles", [False, True])
def test_the_arrow_table_is_the_pandas_table(ioffe, quantiles):
    """The record command writes Parquet from to_arrow (no pandas); it must be to_table's table exactly."""
    df = record.to_table(ioffe.history.snapshots(), quantiles=quantiles)
    back = record.to_arrow(ioffe.history.snapshots(), quantiles=quantiles).to_pandas()
    pd.testing.assert_frame_equal(back, df)
    assert len(df) > 10_000 and df["variant"].dtype == "category"
    empty = record.to_arrow(()).to_pandas()
    pd.testing.assert_frame_equal(empty, record.to_table(()), check_index_type=False)


def loaded(files, kind, quantiles=True):
    return replay.load(files[kind, quantiles], f"run.{kind}")


# ------------------------------------------------------------------------------------------- the table

def test_quantiles_are_off_by_default_and_add_only_the_quantile_block(ioffe):
    plain, full = record.to_table(ioffe.history.snapshots()), record.to_table(ioffe.history.snapshots(), quantiles=True)
    assert not set(QUANTILE_STATS) & set(plain.stat.astype(str))
    assert QUANTILE_STATS == tuple(f"q{i:02d}" for i in range(QQ_POINTS))
    extra = full[full.stat.isin(QUANTILE_STATS)]
    rest = full[~full.stat.isin(QUANTILE_STATS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest.astype({c: str for c in ("variant", "stage", "stat")}),
                                  plain.astype({c: str for c in ("variant", "stage", "stat")}))
    # One block of 64 per (variant, step, layer, stage, unit) that has statistics, equal to the live quantiles.
    snap = ioffe.history.latest()
    st_ = snap.variants["bn"].layers[2].stages["x_hat"]
    for k, u in enumerate(st_.units):
        rows = extra[(extra.variant == "bn") & (extra.step == snap.step) & (extra.layer == 2) & (extra.stage == "x_hat")
                     & (extra.unit == u)].sort_values("stat")
        assert list(rows.stat) == list(QUANTILE_STATS)
        np.testing.assert_array_equal(rows.value.to_numpy(), st_.quantiles[k].astype(np.float64))
    assert len(extra) == QQ_POINTS * len(plain[plain.stat == "mean"])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_writers_agree_and_parquet_carries_the_share_link(ioffe, files, kind, tmp_path):
    df = record.to_table(ioffe.history.snapshots(), quantiles=True)
    path = tmp_path / f"x.{kind}"
    record.write_table(df, path, query="preset=ioffe&steps=200")
    assert path.read_bytes() == record.table_to_bytes(df, kind, query="preset=ioffe&steps=200")
    back = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    assert tuple(back.columns) == TABLE_COLUMNS and len(back) == len(df)
    if kind == "parquet":
        assert pq.read_schema(path).metadata[b"bnviz.query"] == b"preset=ioffe&steps=200"
    with pytest.raises(ValueError, match=".csv or .parquet"):
        record.write_table(df, tmp_path / "x.txt")


# ------------------------------------------------------------------------------------------ round trip

def _close(a, b):
    np.testing.assert_allclose(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64), rtol=2e-7,
                               atol=0, equal_nan=True)


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
    # gamma/beta: the tracked units as measured, the others unknown (NaN) in a vector of the full width.
    for layer in range(3):
        for which in ("gamma", "beta"):
            g0, g1 = views.affine(live, "bn", layer, which), views.affine(snaps, "bn", layer, which)
            # the full width comes from the Parquet file's share link; a CSV file only knows the tracked units
            assert g0.shape == (len(live), 100) and g1.shape == (len(live), 100 if kind == "parquet" else 5)
            tracked = list(IOFFE.units)
            _close(g0[:, tracked], g1[:, tracked])
            assert np.isnan(np.delete(g1, tracked, axis=1)).all()
        assert views.affine(snaps, "none", layer).shape[1] == 0


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
            for layer in range(len(cfg.widths)):
                assert views.act_stage(snaps, v, layer) == views.act_stage(live, v, layer)
                _close(views.saturation(live, v, layer), views.saturation(snaps, v, layer))
                for stage in STAGES:
                    for stat in ("mean", "p50", "kl_gaussian", "shapiro_w"):
                        _close(views.unit_stat(live, v, layer, stage, stat),
                               views.unit_stat(snaps, v, layer, stage, stat))
    assert views.diverged_at(diverged_run.history.snapshots(), "none") is not None


# ------------------------------------------------------------------------------------------ histograms

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


# ------------------------------------------------------------------------------------ figures and claims

def every_panel_figure(snaps, cfg):
    """What bnviz/ui/panels.py builds, for every variant, layer, stage and a few units."""
    shown = snaps[-1]
    yield figures.training(snaps, cfg.variants)
    for layer in range(len(cfg.widths)):
        yield figures.stability(snaps, cfg.variants, layer)
        for unit in (POOLED, 0, 4):
            yield figures.layer_histograms(shown, cfg.variants, layer, unit)
            yield figures.percentile_bands(snaps, cfg.variants, layer, unit, shown.step)
            for v in cfg.variants:
                yield figures.normality_over_time(snaps, v, layer, unit)
                for stage in STAGES:
                    yield figures.histogram_heatmap(snaps, v, layer, stage, unit, shown.step)
                    yield figures.qq_plot(shown, v, layer, stage, unit)
        for v in cfg.variants:
            yield figures.gamma_beta(snaps, v, layer)
            st_x = views.stage_of(shown, v, layer, "x_hat")
            if st_x is not None and np.isfinite(st_x.quantiles).all():  # the what-if lab, as panels.gamma_beta
                lab_unit = ([u for u in st_x.units if u != POOLED] or [POOLED])[0]
                sample = st_x.quantiles[st_x.units.index(lab_unit)].astype(np.float64)
                yield figures.whatif(sample, 2.0, 0.5, stats.normality(sample), stats.normality(2 * sample + 0.5))


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


def test_figures_say_when_a_file_holds_no_distributions(files):
    snaps = loaded(files, "parquet", quantiles=False).snapshots
    shown = snaps[-1]
    notes = [a.text for a in figures.layer_histograms(shown, ("none", "bn"), 0).layout.annotations]
    assert sum("no distributions in this file" in n for n in notes) == 6  # x, a of none; x, x̂, y, a of bn
    for fig in (figures.histogram_heatmap(snaps, "bn", 0, "x_hat"), figures.qq_plot(shown, "bn", 0, "y", 2)):
        assert "record it with --quantiles" in fig.layout.annotations[0].text
    # A stage the variant does not have still says so.
    assert "no normalization" in figures.qq_plot(shown, "none", 0, "x_hat").layout.annotations[0].text


def test_gamma_beta_figure_draws_the_tracked_units_of_a_replay(ioffe, files):
    fig = figures.gamma_beta(loaded(files, "csv").snapshots, "bn", 2)
    live = views.affine(ioffe.history.snapshots(), "bn", 2)
    tracked = [t for t in fig.data if t.name == "tracked units" and t.xaxis in (None, "x")]
    assert len(tracked) == len(IOFFE.units)
    for t, u in zip(tracked, IOFFE.units):
        np.testing.assert_array_equal(np.asarray(t.y), live[:, u].astype(np.float32))


# ---------------------------------------------------------------------------------------------- config

def test_config_from_the_share_link_or_inferred(ioffe, files):
    rep = loaded(files, "parquet")
    assert rep.config == IOFFE  # the query string in the Parquet metadata holds the whole config
    assert not any("inferred" in n for n in rep.notes)
    csv = loaded(files, "csv")
    cfg = csv.config
    assert cfg.variants == IOFFE.variants and cfg.activation == "sigmoid" and cfg.steps == 200
    assert cfg.widths == (5, 5, 5) and cfg.units == IOFFE.units and cfg.snapshot_every == 25
    assert any(n.startswith("A CSV file carries no settings") for n in csv.notes)
    assert replay.config_for(upload.read_table(files["csv", True], "run.csv")) == cfg
    # A link that does not match the table is not believed.
    wrong = record.table_to_bytes(record.to_table(ioffe.history.snapshots()), "parquet", query="preset=ioffe&variants=none,ln")
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


def test_long_runs_are_thinned_evenly(ioffe, files):
    rep = replay.load(files["parquet", False], "run.parquet", max_snapshots=4)
    assert views.steps(rep.snapshots).tolist() == [0, 75, 125, 200] and any("evenly" in n for n in rep.notes)


# ------------------------------------------------------------------------------------- malformed input

def _csv(*rows):
    return (HEADER + "".join(rows)).encode()


MALFORMED = {
    "empty": (b"", "x.csv", "is empty"),
    "garbage": (bytes(range(256)) * 8, "x.csv", "binary"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "x.csv", "PNG image"),
    "png named parquet": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "x.parquet", "not a Parquet file"),
    "xlsx": (b"PK\x03\x04" + b"\x00" * 64, "run.csv", "ZIP archive"),
    "not utf-8": (HEADER.encode() + b"bn,0,0,x,-1,mean,\xff\xfe\n", "x.csv", "not UTF-8"),
    "other suffix": (_csv(GOOD_ROW), "notes.txt", "expected a .csv or .parquet"),
    "wrong columns": (b"a,b,c\n1,2,3\n", "x.csv", "missing column(s) variant"),
    "extra column": (b",".join([*map(str.encode, TABLE_COLUMNS), b"note"]) + b"\n" + GOOD_ROW.encode()[:-1] + b",x\n",
                     "x.csv", "unexpected column(s) 'note'"),
    "missing column": (b"variant,step,layer,stage,unit,stat\nbn,0,0,x,-1,mean\n", "x.csv", "missing column(s) value"),
    "header only": (HEADER.encode(), "x.csv", "no rows"),
    "blank": (b"\n\r\n\n", "x.csv", "only blank lines"),
    "ragged line": (_csv(GOOD_ROW, "bn,0,0,x,-1,mean,1,2\n"), "x.csv", "line 3 has 8 fields"),
    "empty step": (_csv(GOOD_ROW, "bn,,0,x,-1,std,1\n"), "x.csv", "'step' is empty in row 2"),
    "NaN unit": (_csv("bn,0,0,x,nan,std,1\n"), "x.csv", "'unit' is empty in row 1"),
    "empty variant": (_csv(",0,0,x,-1,std,1\n"), "x.csv", "'variant' is empty"),
    "string step": (_csv(GOOD_ROW, "bn,ten,0,x,-1,std,1\n"), "x.csv", "'step' must hold numbers; row 2 has 'ten'"),
    "string value": (_csv("bn,0,0,x,-1,std,hello\n"), "x.csv", "'value' must hold numbers; row 1 has 'hello'"),
    "fractional layer": (_csv("bn,0,0.5,x,-1,std,1\n"), "x.csv", "not a whole number"),
    "negative step": (_csv("bn,-5,0,x,-1,std,1\n"), "x.csv", "negative"),
    "huge unit": (_csv("bn,0,0,x,5000,std,1\n"), "x.csv", "outside -1..1023"),
    "unknown stat": (_csv("bn,0,0,x,-1,median,1\n"), "x.csv", "unknown stat 'median'"),
    "unknown stage": (_csv("bn,0,0,z,-1,mean,1\n"), "x.csv", "unknown stage 'z'"),
    "unknown variant": (_csv("batchnorm,0,0,x,-1,mean,1\n"), "x.csv", "unknown variant 'batchnorm'"),
    "stat at the wrong stage": (_csv("bn,0,0,x,-1,loss,1\n"), "x.csv", "does not belong to stage 'x'"),
    "train with a layer": (_csv("bn,0,2,train,-1,loss,1\n"), "x.csv", "needs layer -1"),
    "duplicate": (_csv(GOOD_ROW, GOOD_ROW), "x.csv", "1 duplicate row"),
    "unpaired quote": (_csv('"bn,0,0,x,-1,mean,1\n'), "x.csv", "unpaired quote"),
    "too-long field": (_csv("bn,0,0,x,-1,mean," + "1" * 10_000 + "\n"), "x.csv", "line 2 is 10,017 characters"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_gives_one_clear_line(case):
    data, name, needle = MALFORMED[case]
    with pytest.raises(ReplayError) as err:
        upload.read_table(data, name)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg and len(msg) < 400, msg


def test_messages_never_echo_long_content():
    long = "x" * 300
    for row in (f"bn,0,0,x,-1,{long},1\n", f"bn,{long},0,x,-1,mean,1\n", f"{long},0,0,x,-1,mean,1\n"):
        data = _csv(row)
        with pytest.raises(ReplayError) as err:
            upload.read_table(data, "y" * 500 + ".csv")
        msg = str(err.value)
        assert "x" * 41 not in msg and "y" * 41 not in msg, msg
        quoted = [m for m in msg.split("'")[1::2]]
        assert all(len(q) <= 40 for q in quoted), msg


def test_oversized_upload_is_refused_before_parsing(monkeypatch):
    def no_parsing(*a, **k):
        raise AssertionError("parsed an oversized file")

    monkeypatch.setattr(pd, "read_csv", no_parsing)
    monkeypatch.setattr(pq, "ParquetFile", no_parsing)
    data = _csv(GOOD_ROW) + b"0" * (100 << 20)
    for name in ("big.csv", "big.parquet"):
        with pytest.raises(ReplayError, match=r"is 100\.0 MB, over the 20\.0 MB limit"):
            upload.read_table(data, name)
    with pytest.raises(ReplayError, match="over the 20.0 MB limit"):
        upload.read_table(b"PAR1" + data, "big.parquet")


def test_a_csv_bomb_is_refused_without_splitting_it():
    bomb = HEADER.encode() + b",".join([b"1"] * 1_000_000) + b"\n"  # one line, a million fields
    tracemalloc.start()
    with pytest.raises(ReplayError, match=r"line 2 is 1,999,999 characters long"):
        upload.read_table(bomb, "bomb.csv")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * len(bomb), peak  # refused from the line lengths, never split into a million fields
    many = HEADER.encode() + b"\n" * 5_000_000  # blank lines only count too
    with pytest.raises(ReplayError, match="lines, over the limit"):
        upload.read_table(many, "lines.csv")


def test_size_limits(monkeypatch):
    rows = [f"bn,{s},0,x,-1,mean,1\n" for s in range(10)]
    monkeypatch.setattr(upload, "MAX_ROWS", 5)
    with pytest.raises(ReplayError, match="over the limit of 5"):
        upload.read_table(_csv(*rows), "x.csv")
    monkeypatch.setattr(upload, "MAX_ROWS", 3_000_000)
    monkeypatch.setattr(upload, "MAX_STEPS", 4)
    with pytest.raises(ReplayError, match="10 distinct steps, over the limit of 4"):
        upload.read_table(_csv(*rows), "x.csv")
    monkeypatch.setattr(upload, "MAX_TRACKED", 2)
    with pytest.raises(ReplayError, match="tracks 3 distinct units"):
        upload.read_table(_csv(*[f"bn,0,0,x,{u},mean,1\n" for u in range(3)]), "x.csv")
    monkeypatch.setattr(upload, "MAX_VARIANTS", 2)
    with pytest.raises(ReplayError, match="3 variants, over the limit of 2"):
        upload.read_table(_csv(*[f"{t},0,0,x,-1,mean,1\n" for t in ("none", "bn", "ln")]), "x.csv")


def _parquet(df, **kw):
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, **kw)
    return buf.getvalue()


def test_malformed_parquet(files):
    good = files["parquet", False]
    with pytest.raises(ReplayError, match="truncated Parquet"):
        upload.read_table(good[: len(good) // 2], "cut.parquet")
    with pytest.raises(ReplayError, match="not a readable Parquet file"):
        upload.read_table(b"PAR1" + b"\x00" * 100 + b"PAR1", "bad.parquet")
    df = pd.DataFrame({"variant": ["bn"], "step": ["zero"], "layer": [0], "stage": ["x"], "unit": [-1],
                       "stat": ["mean"], "value": [1.0]})
    with pytest.raises(ReplayError, match="column 'step' must hold numbers"):
        upload.read_table(_parquet(df), "s.parquet")
    with pytest.raises(ReplayError, match="column 'stage' must hold names"):
        upload.read_table(_parquet(df.assign(step=0, stage=3)), "s.parquet")
    with pytest.raises(ReplayError, match="missing column"):
        upload.read_table(_parquet(df.drop(columns="unit")), "s.parquet")
    with pytest.raises(ReplayError, match="'unit' is empty"):
        upload.read_table(_parquet(df.assign(step=0, unit=pd.array([None], dtype="Int64"))), "s.parquet")
    with pytest.raises(ReplayError, match="unknown stat 'xx"):
        upload.read_table(_parquet(df.assign(step=0, stat="xx" * 30)), "s.parquet")
    # A file named .csv whose content is Parquet is read as what it is.
    assert len(upload.read_table(_parquet(df.assign(step=0)), "s.csv")) == 1


def test_pickled_or_pandas_metadata_is_never_used():
    """A Parquet file whose pandas metadata claims other columns/types is read from its data alone."""
    df = pd.DataFrame({"variant": ["bn"], "step": [0], "layer": [0], "stage": ["x"], "unit": [-1],
                       "stat": ["mean"], "value": [1.0]})
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({b"pandas": b'{"index_columns": ["nope"], "columns": "garbage"}'})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    out = upload.read_table(buf.getvalue(), "m.parquet")
    assert out.value.tolist() == [1.0] and out.step.dtype == np.int64


# ------------------------------------------------------------------------------------------- property

CSV_PREFIXES = st.sampled_from([b"", HEADER.encode(), b"PAR1", _csv(GOOD_ROW)])
CSV_TEXT = st.text(alphabet=',\n\r"-.0123456789eEinfabxqsty_@ ', max_size=600).map(str.encode)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(CSV_PREFIXES, st.one_of(st.binary(max_size=3000), CSV_TEXT),
       st.sampled_from(["f.csv", "f.parquet", "f", "f.pq"]), st.booleans())
def test_arbitrary_bytes_never_raise_anything_but_replay_error(prefix, body, name, par1_tail):
    data = prefix + body + (b"PAR1" if par1_tail else b"")
    try:
        rep = replay.load(data, name)
    except ReplayError:
        return
    assert isinstance(rep, replay.Replay)


ROW = st.tuples(st.sampled_from(["none", "bn", "ln", "bn@after"]), st.integers(0, 4), st.integers(-1, 2),
                st.sampled_from(STAGE_NAMES), st.integers(-1, 3), st.sampled_from(KNOWN_STATS),
                st.one_of(st.floats(), st.floats(-3, 3)))


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


def test_a_conv_run_replays_with_its_channels_counted_over_examples_and_positions():
    """A channel's live histogram counts every position of every probe example; the replay's rebuilt one
    sums to the same count, and the board reads the same verdicts."""
    cfg = PRESETS["santurkar-conv"].config.replace(widths=(4, 6), steps=40, snapshot_every=10)
    run = finished_run(cfg)
    live = run.history.snapshots()
    data = record.table_to_bytes(record.to_arrow(live, quantiles=True), "parquet", query=query_of("santurkar-conv", cfg))
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


def test_a_csv_of_a_byte_order_mark_alone_is_refused_in_words():
    from bnviz.table.upload import ReplayError, read_table

    with pytest.raises(ReplayError, match="holds no table, only a byte-order mark"):
        read_table(b"\xef\xbb\xbf", "f.csv")
