"""The summarizer against independent references: scipy's Wasserstein distance, numpy, the raw data."""

import numpy as np
import scipy.stats

from bnviz import stats
from bnviz.measure.snapshot import POOLED, QQ_POINTS, RawSnapshot, RawVariant, Summarizer


def raw(step, mats):
    layer = {"x": mats[0], "a": mats[1]}
    rv = RawVariant(0.5, 0.5, 0.5, None, [layer], ["x"], [None], [None], [{}], None)
    return RawSnapshot(step, {"none": rv})


def test_drift_tables_histograms_and_quantiles_match_references():
    rng = np.random.default_rng(0)
    a0 = rng.standard_normal((200, 7)).astype(np.float32)
    a1 = (1.5 * rng.standard_normal((200, 7)) + 0.3).astype(np.float32)
    a2 = rng.exponential(1.0, (200, 7)).astype(np.float32)
    summ = Summarizer("sigmoid", (0, 3, 9))  # unit 9 does not exist in a 7-wide layer: not tracked
    s0 = summ.summarize(raw(0, [a0, a0]))
    s1 = summ.summarize(raw(10, [a1, a1]))
    s2 = summ.summarize(raw(20, [a2, a2]))
    st1 = s1.variants["none"].layers[0].stages["x"]
    st2 = s2.variants["none"].layers[0].stages["x"]
    assert st1.units == (POOLED, 0, 3)
    assert np.isnan(s0.variants["none"].layers[0].stages["x"].drift_prev).all()
    per_unit = [scipy.stats.wasserstein_distance(a1[:, j], a0[:, j]) for j in range(7)]
    np.testing.assert_allclose(st1.drift_prev, [np.mean(per_unit), per_unit[0], per_unit[3]], rtol=1e-5)
    first = [scipy.stats.wasserstein_distance(a2[:, j], a0[:, j]) for j in range(7)]
    np.testing.assert_allclose(st2.drift_first, [np.mean(first), first[0], first[3]], rtol=1e-5)
    # per-unit rows are scipy's statistics of that column; pooled (200 x 7 < 5000 values) uses every value
    np.testing.assert_allclose(st2.stat("skew", 3), scipy.stats.skew(a2[:, 3].astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(st2.stat("shapiro_w", POOLED), scipy.stats.shapiro(a2.ravel()).statistic, rtol=1e-6)
    np.testing.assert_allclose(st2.stat("p50", POOLED), np.median(a2), rtol=1e-6)
    # histograms hold every value; quantiles are numpy's
    assert [int(h.counts.sum()) for h in st2.hists] == [1400, 200, 200]
    q = (np.arange(QQ_POINTS) + 0.5) / QQ_POINTS
    np.testing.assert_allclose(st2.quantiles[1], np.quantile(a2[:, 0], q), rtol=1e-5)
    # saturation of the activation input, against the derivative rule computed here
    sat = s2.variants["none"].layers[0].saturation
    s = 1 / (1 + np.exp(-a2.astype(np.float64)))
    np.testing.assert_allclose(sat[1], np.mean(s[:, 0] * (1 - s[:, 0]) < 0.025), rtol=1e-12)


def test_pooled_statistics_use_a_fixed_subsample_above_5000_values():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((512, 20)).astype(np.float32)  # 10,240 values
    summ = Summarizer("tanh", ())
    st = summ.summarize(raw(0, [m, m])).variants["none"].layers[0].stages["x"]
    assert st.units == (POOLED,)
    assert int(st.hists[0].counts.sum()) == stats.SHAPIRO_MAX_N
    again = Summarizer("tanh", ()).summarize(raw(0, [m, m])).variants["none"].layers[0].stages["x"]
    np.testing.assert_array_equal(st.table, again.table)  # the same positions every time
    assert abs(st.stat("mean") - float(m.mean())) < 0.05 and abs(st.stat("std") - float(m.std())) < 0.05


def test_without_distributions_every_other_figure_is_the_same():
    """The record command's plain table needs no histograms or quantiles; leaving them out changes nothing else."""
    rng = np.random.default_rng(2)
    mats = [rng.standard_normal((300, 9)).astype(np.float32) * (1 + k) for k in range(3)]
    full, lean = Summarizer("tanh", (0, 4)), Summarizer("tanh", (0, 4), distributions=False)
    for step, m in enumerate(mats):
        a = full.summarize(raw(step, [m, np.tanh(m)])).variants["none"].layers[0]
        b = lean.summarize(raw(step, [m, np.tanh(m)])).variants["none"].layers[0]
        for stage in ("x", "a"):
            sa, sb = a.stages[stage], b.stages[stage]
            np.testing.assert_array_equal(sa.table, sb.table)
            np.testing.assert_array_equal(sa.drift_prev, sb.drift_prev)
            np.testing.assert_array_equal(sa.drift_first, sb.drift_first)
            assert len(sa.hists) == 3 and sb.hists == () and np.isnan(sb.quantiles).all()
        np.testing.assert_array_equal(a.saturation, b.saturation)
