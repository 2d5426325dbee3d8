"""What the table tests share: the recorded ioffe configuration, its share link, hand-written CSV tables,
the comparison of two snapshots number by number, and every figure the panels draw."""

from urllib.parse import urlencode

import numpy as np
import pytest

from bnviz import stats, urlstate
from bnviz.config import PRESETS, STAGES
from bnviz.measure.snapshot import POOLED
from bnviz.present import figures, views
from bnviz.table.schema import TABLE_COLUMNS

IOFFE = PRESETS["ioffe"].config.replace(steps=200)  # the real network: 3 x 100 sigmoid units, 9 snapshots
HEADER = ",".join(TABLE_COLUMNS) + "\n"
GOOD_ROW = "bn,0,0,x,-1,mean,0.5\n"


def query_of(preset, cfg):
    return urlencode(urlstate.encode(preset, cfg), safe=",")


def csv_of(*rows):
    """A CSV table: the header, then ``rows`` (each a line ending in a newline), as bytes."""
    return (HEADER + "".join(rows)).encode()


def assert_same_snapshot(got, want, hists=True, ics_rel=None):
    """Every number of ``got`` equals ``want``'s (NaN where both are undefined). ``ics_rel``: the relative tolerance
    of the ICS pair, for runs measured in another process (one BLAS thread sums its products in another order)."""
    assert got.step == want.step and list(got.variants) == list(want.variants)
    for token, gv in got.variants.items():
        wv = want.variants[token]
        np.testing.assert_array_equal([gv.loss, gv.accuracy, gv.test_accuracy], [wv.loss, wv.accuracy,
                                                                               wv.test_accuracy])
        assert gv.diverged_at == wv.diverged_at and len(gv.layers) == len(wv.layers)
        for gl, wl in zip(gv.layers, wv.layers):
            assert list(gl.stages) == list(wl.stages) and gl.act_stage == wl.act_stage
            assert gl.change == {k: v for k, v in wl.change.items() if np.isfinite(v)}  # the table leaves NaN out
            assert gl.ics == (wl.ics if ics_rel is None or wl.ics is None else pytest.approx(wl.ics, rel=ics_rel))
            np.testing.assert_array_equal(gl.saturation, wl.saturation)
            for name, gs in gl.stages.items():
                ws = wl.stages[name]
                assert gs.units == ws.units
                for field in ("table", "drift_prev", "drift_first", "quantiles"):
                    np.testing.assert_array_equal(getattr(gs, field), getattr(ws, field), err_msg=field)
                if hists:
                    assert len(gs.hists) == len(ws.hists) > 0
                    for gh, wh in zip(gs.hists, ws.hists):
                        assert (gh.width, gh.start) == (wh.width, wh.start)
                        np.testing.assert_array_equal(gh.counts, wh.counts)
            assert (gl.gamma is None) == (wl.gamma is None)
            if gl.gamma is not None:  # the table holds γ and β of the tracked units only
                tracked = list(gl.stages["y"].units[1:])
                for g, w in ((gl.gamma, wl.gamma), (gl.beta, wl.beta)):
                    np.testing.assert_array_equal(g[tracked], w[tracked])


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
