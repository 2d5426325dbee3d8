"""bnviz.stats.gaussian (normality, describe*, percentiles) against numpy, scipy and closed forms, never its own
output."""

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bnviz import stats

FIELDS = ("mean", "std", "skew", "kurtosis", "shapiro_w", "shapiro_p", "kl_gaussian")


def window(n):
    return math.floor(math.sqrt(n) + 0.5)


def reference_row(x):
    """UNIT_STATS of a 1-D float64 sample computed with numpy/scipy directly."""
    h = scipy.stats.differential_entropy(x, method="ebrahimi", window_length=window(len(x)))
    kl = max(0.0, 0.5 * np.log(2 * np.pi * np.e * np.var(x)) - h)
    w, p = scipy.stats.shapiro(x)
    return np.array([np.mean(x), np.std(x), *np.percentile(x, stats.PERCENTILES), scipy.stats.skew(x),
                     scipy.stats.kurtosis(x), w, p, kl])


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(12345)


# ------------------------------------------------------------------------------------ describe/normality

@pytest.mark.parametrize("n", [5, 7, 64, 512, 3000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_describe_columns_matches_numpy_and_scipy(n, dtype):
    r = np.random.default_rng(n)
    X = np.column_stack([r.standard_normal(n), r.exponential(size=n) * 3 + 10, r.uniform(-1, 1, n),
                         r.standard_t(3, n), 1e-4 * r.standard_normal(n) - 7]).astype(dtype)
    D = stats.describe_columns(X)
    assert D.shape == (5, len(stats.UNIT_STATS)) and D.dtype == np.float64
    for j in range(X.shape[1]):
        x = X[:, j].astype(np.float64)
        np.testing.assert_allclose(D[j], reference_row(x), rtol=1e-9, atol=1e-12 * np.abs(x).max())
        r = stats.normality(X[:, j])
        assert r.n == n
        # Reductions may group additions differently for one or several units: equal up to rounding.
        np.testing.assert_allclose([getattr(r, f) for f in FIELDS], D[j, [0, 1, 7, 8, 9, 10, 11]], rtol=1e-12)
        np.testing.assert_allclose(stats.describe(X[:, j]), D[j], rtol=1e-12)


@pytest.mark.parametrize("n", [5, 512, 5000])
def test_describe_sorted_equals_scipy_without_sorting_again(n):
    r = np.random.default_rng(n)
    X = np.column_stack([r.standard_normal(n), r.exponential(size=n), np.full(n, 2.5)]).astype(np.float32)
    D = stats.describe_sorted(np.sort(X, axis=0).T, X[n // 2])
    for j in range(2):
        x = X[:, j].astype(np.float64)
        np.testing.assert_allclose(D[j], reference_row(x), rtol=1e-9, atol=1e-12)
        assert (D[j, 9], D[j, 10]) == tuple(scipy.stats.shapiro(x))  # scipy's own, to the last bit
    np.testing.assert_array_equal(D[2], stats.describe(X[:, 2]))  # constant: the documented definitions
    with pytest.raises(ValueError, match="sorted"):
        stats.describe_sorted(X.T, X[n // 2])
    with pytest.raises(ValueError, match="middle"):
        stats.describe_sorted(np.sort(X, axis=0).T, X[0, :2])


def test_inputs_are_not_modified():
    r = np.random.default_rng(0)
    for arr, f in ((r.standard_normal(600), stats.describe), (r.standard_normal(6000), stats.normality),
                   (r.standard_normal((50, 1)), stats.describe_columns),
                   (r.standard_normal((50, 3)), stats.describe_columns)):
        before = arr.copy()
        f(arr)
        np.testing.assert_array_equal(arr, before)
    A, B = r.standard_normal((7, 2)), r.standard_normal((5, 2))
    a0, b0 = A.copy(), B.copy()
    stats.wasserstein1_columns(A, B)
    np.testing.assert_array_equal(A, a0)
    np.testing.assert_array_equal(B, b0)


def test_three_and_four_values_work():
    # scipy's default window (2) is too large for n = 3, 4; the module clips it to 1.
    for x in ([0.0, 1.0, 3.0], [0.0, 1.0, 3.0, 7.0]):
        r = stats.normality(x)
        assert r.skew == pytest.approx(scipy.stats.skew(x)) and r.shapiro_w == scipy.stats.shapiro(x)[0]
        h = scipy.stats.differential_entropy(x, method="ebrahimi", window_length=1)
        assert r.kl_gaussian == pytest.approx(max(0.0, 0.5 * np.log(2 * np.pi * np.e * np.var(x)) - h))


def test_percentiles_wrapper(rng):
    X = rng.standard_normal((50, 3))
    np.testing.assert_array_equal(stats.percentiles(X), np.percentile(X, stats.PERCENTILES, axis=0))
    np.testing.assert_array_equal(stats.percentiles(X, [10, 90], axis=1), np.percentile(X, [10, 90], axis=1))
    with pytest.raises(ValueError, match="finite"):
        stats.percentiles([1.0, np.nan])


# ------------------------------------------------------------------------------------------ KL (negentropy)

# Closed forms of KL(p || N(mean, var)) = 0.5*log(2*pi*e*var) - H(p):
#   uniform(0,1):  var 1/12, H 0            -> 0.5*log(pi*e/6)
#   exponential:   var 1,    H 1            -> 0.5*log(2*pi*e) - 1
#   Laplace(b):    var 2b^2, H 1 + log(2b)  -> 0.5*log(4*pi*e*b^2) - 1 - log(2b) = 0.5*log(pi*e) - 1
KL_TRUE = {"uniform": 0.5 * np.log(np.pi * np.e / 6), "exponential": 0.5 * np.log(2 * np.pi * np.e) - 1,
           "laplace": 0.5 * np.log(np.pi * np.e) - 1, "normal": 0.0}


def samples(r, n, reps=1):
    return {"uniform": r.uniform(size=(n, reps)), "exponential": r.exponential(size=(n, reps)),
            "laplace": r.laplace(size=(n, reps)), "normal": r.standard_normal((n, reps))}


def test_kl_closed_forms():
    assert KL_TRUE["uniform"] == pytest.approx(0.1765, abs=1e-4)
    assert KL_TRUE["exponential"] == pytest.approx(0.4189, abs=1e-4)
    assert KL_TRUE["laplace"] == pytest.approx(0.0724, abs=1e-4)
    # Simulated at n = 2e5 (20 reps each): |bias| <= 0.004 and sd <= 0.002 for all four, so a tolerance
    # of 0.01 is bias + 3 sd with margin, yet far below the gaps between the four true values.
    data = samples(np.random.default_rng(7), 200_000)
    for name, x in data.items():
        assert stats.normality(x[:, 0]).kl_gaussian == pytest.approx(KL_TRUE[name], abs=0.01), name


def test_kl_is_consistent():
    r = np.random.default_rng(8)
    for name in KL_TRUE:
        small = stats.describe_columns(samples(r, 256, 64)[name])[:, -1]
        large = stats.describe_columns(samples(r, 65_536, 8)[name])[:, -1]
        rmse_small = np.sqrt(np.mean((small - KL_TRUE[name]) ** 2))
        rmse_large = np.sqrt(np.mean((large - KL_TRUE[name]) ** 2))
        assert rmse_large < rmse_small / 3, (name, rmse_small, rmse_large)


def test_kl_bias_for_gaussian_at_512_is_small():
    kl = stats.describe_columns(np.random.default_rng(9).standard_normal((512, 400)))[:, -1]
    assert np.mean(kl) < 0.005 and np.quantile(kl, 0.95) < 0.02  # docstring: mean 0.001, q95 0.007


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.integers(3, 60), elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_kl_never_negative_and_never_nan(x):
    row = stats.describe(x)
    assert row[-1] >= 0
    assert not np.isnan(row).any()


# Values on a 1e-3 lattice in [-100, 100]: distinct values stay distinct (and ties stay ties) under the maps
# below, so the only differences are rounding errors, well below 1e-9 in the log-spacings.
finite_lattice = arrays(np.float64, st.integers(5, 120),
                        elements=st.integers(-10**5, 10**5).map(lambda i: i / 1000))


@settings(max_examples=150, deadline=None)
@given(finite_lattice, st.floats(0.5, 20), st.booleans(), st.floats(-50, 50))
def test_kl_and_w_affine_invariant(x, a, flip, b):
    a = -a if flip else a
    r0, r1 = stats.normality(x), stats.normality(a * x + b)
    if math.isinf(r0.kl_gaussian):  # an atom: exact ties are preserved by the map, so KL stays infinite
        assert math.isinf(r1.kl_gaussian)
    else:
        assert abs(r1.kl_gaussian - r0.kl_gaussian) <= 1e-9
    assert abs(r1.shapiro_w - r0.shapiro_w) <= 1e-9
    assert r1.skew == pytest.approx(-r0.skew if flip else r0.skew, abs=1e-7)


def test_atoms_give_infinite_kl_without_warnings():
    x = np.r_[np.zeros(300), np.random.default_rng(1).standard_normal(212)]  # ReLU-like point mass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.normality(x).kl_gaussian == math.inf


# ------------------------------------------------------------------------------------ errors and degenerate

@pytest.mark.parametrize("bad, message", [
    ([1.0, 2.0], r"normality\(\) needs at least 3 values, got 2"),
    ([1.0, np.nan, 3.0], r"finite values, got 1 NaN and 0 infinite"),
    ([1.0, np.inf, -np.inf, 4.0], r"finite values, got 0 NaN and 2 infinite"),
    (np.zeros((4, 2)), r"needs a 1-D array, got an array of shape \(4, 2\)"),
])
def test_normality_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        stats.normality(bad)


def test_describe_columns_errors():
    with pytest.raises(ValueError, match=r"2-D array, got an array of shape \(5,\)"):
        stats.describe_columns(np.zeros(5))
    with pytest.raises(ValueError, match="at least 3 values per column, got 2"):
        stats.describe_columns(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="1 NaN"):
        stats.describe_columns(np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0]]))


@pytest.mark.parametrize("value", [0.0, 0.1, -3.5, 1e300, 5e-324])
def test_constant_data(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = stats.normality(np.full(512, value))
        X = np.column_stack([np.full(64, value), np.random.default_rng(0).standard_normal(64)])
        D = stats.describe_columns(X)
    assert r == stats.Normality(512, value, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0)
    np.testing.assert_array_equal(D[0], [value, 0.0, *[value] * 5, 0.0, 0.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(D[1], reference_row(X[:, 1]), rtol=1e-9)


def test_near_constant_float32_has_no_nan():
    r = np.random.default_rng(3)
    for x in (np.float32(1) + np.float32(1e-7) * r.standard_normal(512).astype(np.float32),
              np.float32(1e-30) * r.standard_normal(512).astype(np.float32),
              np.array([1.0, 1.0, np.nextafter(np.float32(1), np.float32(2))], dtype=np.float32)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            row = stats.describe(x)
        assert not np.isnan(row).any() and row[1] > 0 and row[-1] >= 0
        np.testing.assert_allclose(row[[0, 1, 7, 8]], [np.mean(x.astype(float)), np.std(x.astype(float)),
                                                       scipy.stats.skew(x.astype(float)),
                                                       scipy.stats.kurtosis(x.astype(float))], rtol=1e-6)


def test_shapiro_subsample_above_5000():
    x = np.random.default_rng(4).standard_t(5, 12_000)
    idx = np.sort(np.random.default_rng(0).choice(12_000, 5000, replace=False))
    w, p = scipy.stats.shapiro(x[idx])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy warns for N > 5000: must not happen
        r1, r2 = stats.normality(x), stats.normality(x)
    assert r1 == r2
    assert r1.shapiro_w == pytest.approx(w, rel=1e-12) and r1.shapiro_p == pytest.approx(p, rel=1e-9)
    assert stats.SHAPIRO_MAX_N == 5000
