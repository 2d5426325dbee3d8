"""bnviz.stats.histograms against numpy's histograms and the grid's own definition (edges k * width)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bnviz import stats
from bnviz.stats import histograms


def assert_matches_numpy(h, x):
    x = np.ravel(x)
    ks = h.edges / h.width
    assert np.allclose(ks, np.round(ks), rtol=0, atol=1e-6) and np.all(np.diff(np.round(ks)) == 1)
    assert h.edges[0] <= x.min() and x.max() < h.edges[-1]
    assert h.counts.sum() == x.size
    np.testing.assert_array_equal(h.counts, np.histogram(x, bins=h.edges)[0])


def is_power_of_two_multiple(w, base):
    m = math.log2(w / base)
    return abs(m - round(m)) < 1e-9 and round(m) >= 0


def test_nice_width():
    x = np.random.default_rng(5).standard_normal(10_000)
    w = stats.nice_width(x)
    raw = np.diff(np.percentile(x, [0.5, 99.5]))[0] / 40
    mantissa = w / 10 ** math.floor(math.log10(w))
    assert min(abs(mantissa - c) for c in (1, 2, 5)) < 1e-9
    assert raw <= w < 2.5 * raw  # the next smaller nice number is >= w/2.5 and would be below raw
    assert stats.nice_width([3.0, 3.0]) == 0.005 and stats.nice_width([0.0]) == 0.001
    assert stats.nice_width(np.arange(10.0), target_bins=9) == 1.0  # exact, not rounded up to 2


def test_histogram_basic_and_doubling():
    r = np.random.default_rng(6)
    x = r.standard_normal(1000)
    h = stats.histogram(x, 0.2)
    assert h.width == 0.2 and len(h.counts) == len(h.centers)
    assert_matches_numpy(h, x)
    wide = r.uniform(0, 100, 1000)
    h = stats.histogram(wide, 0.01, max_bins=400)
    assert len(h.counts) <= 400 and is_power_of_two_multiple(h.width, 0.01) and h.width > 0.01
    assert_matches_numpy(h, wide)
    assert_matches_numpy(stats.histogram(np.array([0.3, 0.6, 0.9, 1.2]), 0.1), [0.3, 0.6, 0.9, 1.2])
    with pytest.raises(ValueError, match="width"):
        stats.histogram(x, 0.0)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 80), elements=st.floats(-1e300, 1e300)), st.integers(2, 500))
def test_histogram_never_loses_values(x, max_bins):
    h = stats.histogram(x, stats.nice_width(x), max_bins=max_bins)
    assert len(h.counts) <= max_bins
    assert h.counts.sum() == len(x)
    np.testing.assert_array_equal(h.counts, np.histogram(x, bins=h.edges)[0])


@settings(max_examples=200, deadline=None)
@given(st.one_of(arrays(np.float64, st.integers(1, 80), elements=st.floats(-1e300, 1e300)),
                 arrays(np.float32, st.integers(1, 80), elements=st.floats(-1e4, 1e4, width=32)),
                 st.lists(st.integers(-50, 50), min_size=1, max_size=80).map(lambda k: np.array(k) * 0.1)),
       st.integers(2, 500))
def test_histogram_of_sorted_values_is_the_same_histogram(x, max_bins):
    width = stats.nice_width(x)  # values at k * 0.1 sit exactly on (rounded) bin edges: the hard case
    h, hs = stats.histogram(x, width, max_bins), stats.histogram_sorted(np.sort(x), width, max_bins)
    assert (hs.width, hs.start) == (h.width, h.start)
    np.testing.assert_array_equal(hs.counts, h.counts)
    np.testing.assert_array_equal(hs.counts, np.histogram(np.asarray(x, np.float64), bins=hs.edges)[0])


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.integers(1, 200), elements=st.floats(-1e4, 1e4)), st.integers(0, 6))
def test_coarsen_matches_numpy(x, m):
    h = stats.histogram(x, stats.nice_width(x))
    c = stats.coarsen(h, h.width * 2 ** m)
    assert c.width == h.width * 2 ** m
    np.testing.assert_array_equal(c.counts, np.histogram(x, bins=c.edges)[0])
    k = np.round(c.edges / h.width)
    np.testing.assert_array_equal(k * h.width, c.edges)  # every coarse edge is a fine-grid edge ...
    assert np.all(k % 2 ** m == 0) and c.counts.sum() == len(x)  # ... of every 2**m-th fine bin


def test_coarsen_rejects_non_power_of_two():
    h = stats.histogram([0.0, 1.0, 2.0], 0.5)
    for bad in (1.5, 0.25, -1.0):
        with pytest.raises(ValueError, match="2\\*\\*m"):
            stats.coarsen(h, bad)


def test_align_and_stable_bins():
    r = np.random.default_rng(7)
    bins = stats.StableBins()
    data = [r.standard_normal(512) * s + mu for s, mu in ((1, 0), (1.1, 0.2), (0.9, -0.1), (30, 5))]
    hists = [bins.histogram(x) for x in data]
    twin = stats.StableBins()  # the same series, handed over sorted: the same grid and counts
    for x, h in zip(data, hists):
        hs = twin.histogram_sorted(np.sort(x))
        assert (hs.width, hs.start) == (h.width, h.start) and np.array_equal(hs.counts, h.counts)
    assert hists[0].width == hists[1].width == hists[2].width  # similar data: same grid
    assert hists[3].width > hists[0].width and is_power_of_two_multiple(hists[3].width, hists[0].width)
    assert bins.width == hists[3].width
    edges, counts = stats.align(hists)
    assert counts.shape == (4, len(edges) - 1)
    for x, row in zip(data, counts):
        assert row.sum() == len(x)
        np.testing.assert_array_equal(row, np.histogram(x, bins=edges)[0])
    with pytest.raises(ValueError, match="2\\*\\*m"):
        stats.align([stats.histogram([1.0], 0.1), stats.histogram([1.0], 0.3)])


@given(st.floats(allow_nan=False, allow_infinity=False, width=64),
       st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, width=64))
def test_scalar_bin_index_is_the_array_bin_index(v, width):
    """The scalar path that places a histogram's end points agrees with the vectorized one value by value."""
    with np.errstate(over="ignore", invalid="ignore"):  # the cast of a huge index: handled below
        expected = stats.bin_index(np.array([v]), width)[0]
    got = histograms._bin_index_scalar(v, width)
    if math.isfinite(got) and abs(got) < 2.0 ** 62:
        assert int(got) == expected
    else:  # outside int64: numpy's cast is undefined there, and histogram() refuses such grids anyway
        assert abs(v / width) >= 2.0 ** 62
