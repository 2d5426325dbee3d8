"""How Gaussian a layer's inputs are: moments, percentiles, the Shapiro-Wilk test and the KL divergence to
the moment-matched Gaussian (Ebrahimi's spacing estimate of the entropy).

The hot path is :func:`describe_columns`, called on every probe with a matrix ``X`` of shape ``(N, U)``
(probe examples x units): it sorts each column once and derives the moments, percentiles and the spacing
entropy from the sorted data, vectorized across columns; only the Shapiro-Wilk test runs per column.
Moments are computed on data scaled by a power of two (an exact operation) so that neither huge nor tiny
magnitudes can overflow or underflow.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from dataclasses import dataclass

import numpy as np

from bnviz.stats._validate import _finite_array

# scipy.stats is imported on first use, and only where the compiled Shapiro-Wilk routine cannot be loaded on
# its own (see _swilk): the training process needs only the names defined here.

UNIT_STATS: tuple[str, ...] = ("mean", "std", "p2", "p15", "p50", "p85", "p98", "skew", "kurtosis",
                               "shapiro_w", "shapiro_p", "kl_gaussian")
PERCENTILES = (2, 15, 50, 85, 98)
SHAPIRO_MAX_N = 5000

_HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)  # entropy of N(0, 1) in nats


@dataclass(frozen=True)
class Normality:
    """How Gaussian a sample looks; see :func:`normality` for the definition of every field."""

    n: int
    mean: float
    std: float
    skew: float
    kurtosis: float
    shapiro_w: float
    shapiro_p: float
    kl_gaussian: float


@functools.lru_cache(maxsize=64)
def _shapiro_subsample(n: int) -> np.ndarray:
    """Sorted indices of the deterministic Shapiro-Wilk subsample for ``n > SHAPIRO_MAX_N`` values."""
    idx = np.sort(np.random.default_rng(0).choice(n, SHAPIRO_MAX_N, replace=False))
    idx.setflags(write=False)  # cached and shared: must not be modified by a caller
    return idx


@functools.lru_cache(maxsize=64)
def _ebrahimi_terms(n: int) -> tuple[int, float]:
    """Window half-width and the additive constant of the Ebrahimi entropy estimator for ``n`` sorted values.

    Returns ``(m, const)`` such that ``H = mean(log(x[upper] - x[lower])) + const`` for sorted ``x``, with
    ``upper = min(i + m, n - 1)`` and ``lower = max(i - m, 0)`` (see :func:`_spacings`), identical to
    ``scipy.stats.differential_entropy(x, method="ebrahimi", window_length=m)``.
    """
    # The usual window m = round(sqrt(n)) (Grzegorzewski & Wieczorkowski 1999, scipy's default) grows with n
    # while m/n -> 0, which is what consistency needs; it is clipped so that 2m < n also for n = 3 and 4.
    m = max(1, min(math.floor(math.sqrt(n) + 0.5), (n - 1) // 2))
    i = np.arange(n)
    # Ebrahimi et al. (1994) correct Vasicek's boundary bias: near the ends the window is truncated (the
    # sample is padded with its extremes) so the spacing covers fewer than 2m gaps; c_i counts them.
    c = np.full(n, 2.0)
    c[:m] = 1.0 + i[:m] / m
    c[n - m:] = 1.0 + (n - 1 - i[n - m:]) / m
    return m, float(np.mean(np.log(n / (c * m))))


def _spacings(y: np.ndarray, m: int) -> np.ndarray:
    """``y[:, upper] - y[:, lower]`` of rows sorted ascending, upper = min(i + m, n - 1), lower = max(i - m, 0).

    Written as three slices (the truncated windows at each end, and the full ones between) rather than
    gathered by index arrays: the same values, 3x faster, and in C order, so that a mean along the rows is
    summed pairwise (a gather returned them in Fortran order, summed one by one: a last-bit difference).
    Needs 1 <= m <= (n - 1) // 2, so that the three ranges do not overlap.
    """
    n = y.shape[1]
    out = np.empty_like(y)
    np.subtract(y[:, m:2 * m], y[:, :1], out=out[:, :m])  # i < m: the window is cut at the minimum
    np.subtract(y[:, 2 * m:], y[:, :n - 2 * m], out=out[:, m:n - m])
    np.subtract(y[:, n - 1:], y[:, n - 2 * m:n - m], out=out[:, n - m:])  # i >= n - m: cut at the maximum
    return out


def _sorted_percentiles(s: np.ndarray, q) -> np.ndarray:
    """``np.percentile(s, q, axis=1).T`` (linear method) for rows already sorted: shape (rows, len(q))."""
    n = s.shape[1]
    pos = np.asarray(q, dtype=np.float64) / 100.0 * (n - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n - 1)
    t = pos - i0
    a, b = s[:, i0], s[:, i1]
    # numpy's lerp, interpolating from the nearer end, so results agree with np.percentile to the last bit.
    return np.where(t >= 0.5, b - (b - a) * (1.0 - t), a + (b - a) * t)


_SWILK = "scipy.stats._ansari_swilk_statistics"  # the compiled module behind scipy.stats.shapiro


@functools.lru_cache(maxsize=1)
def _swilk():
    """The Fortran routine behind scipy.stats.shapiro (Royston's AS R94), or None if scipy moved it.

    Importing it the usual way runs scipy.stats' ``__init__``, which loads all of scipy.stats: several times
    the memory and start-up time of everything else the statistics worker imports. Where scipy.stats is not
    loaded yet, the compiled module is loaded from its file instead (it needs only numpy); it is the same
    code, so results stay bit-identical to ``scipy.stats.shapiro`` (tested in a fresh interpreter).
    """
    if "scipy.stats" not in sys.modules:
        import importlib.machinery
        import importlib.util

        import scipy

        folder = os.path.join(os.path.dirname(scipy.__file__), "stats")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, _SWILK.rsplit(".", 1)[1] + suffix)
            if os.path.exists(path):
                try:
                    spec = importlib.util.spec_from_file_location(_SWILK, path)
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    return module.swilk
                except (ImportError, AttributeError):  # pragma: no cover - fall back to the package
                    break
    try:
        from scipy.stats._ansari_swilk_statistics import swilk
    except ImportError:  # pragma: no cover - a future scipy may move it; the public function still works
        return None
    return swilk


def _shapiro_sorted(y: np.ndarray, middle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapiro-Wilk (W, p) of every row of ``y``, rows already sorted (equal length, none constant).

    ``middle`` holds each row's *unsorted* value at index n // 2: scipy subtracts it before the test
    (scipy gh-15777), and so do we, so the result is ``scipy.stats.shapiro`` of the row bit for bit (the
    tests check it). Calling the routine directly skips ``scipy.stats.shapiro``'s Python layer, most of the
    cost of a call, and the AS R94 coefficients, which depend only on n, are computed once for all rows.
    """
    k, n = y.shape
    w, p = np.empty(k), np.empty(k)
    swilk = _swilk()
    if swilk is None:  # pragma: no cover - the public function gives the same numbers, only slower
        import scipy.stats

        for i, row in enumerate(y):
            w[i], p[i] = scipy.stats.shapiro(row)
        return w, p
    y = np.ascontiguousarray(y - middle[:, None])
    coef, init = np.zeros(n // 2), 0
    for i in range(k):
        w[i], p[i], _ = swilk(y[i], coef, init)
        init = 1  # coef now holds the coefficients for n: reuse them
    return w, p


def _column_stats(X: np.ndarray) -> np.ndarray:
    """UNIT_STATS of every column of a validated float64 matrix ``X`` of shape (N, U)."""
    # One contiguous row per unit: sorting and every reduction then run along contiguous memory, which is
    # faster and lets numpy use pairwise summation (reductions across rows would accumulate naively).
    s = np.array(X.T, order="C")  # always a copy: sorted in place below, X may be the caller's array
    s.sort(axis=1)
    n = X.shape[0]
    return _sorted_stats(s, X[n // 2], X if n > SHAPIRO_MAX_N else None)


def _sorted_stats(s: np.ndarray, middle: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
    """UNIT_STATS of every row of ``s`` (U, N): finite float64 rows sorted ascending.

    ``middle`` is each row's unsorted value at index N // 2 (for Shapiro-Wilk, see _shapiro_sorted). Above
    SHAPIRO_MAX_N values the test runs on a deterministic subsample of the *unsorted* data, ``X`` (N, U).
    """
    u, n = s.shape
    out = np.empty((u, len(UNIT_STATS)))
    const = s[:, 0] == s[:, -1]
    # Scale each unit by a power of two so that max|x| is in [0.5, 1): exact, and it keeps squares and
    # fourth powers far from overflow/underflow whatever the magnitude of the data.
    _, e = np.frexp(np.maximum(np.abs(s[:, 0]), np.abs(s[:, -1])))
    y = np.ldexp(s, -e[:, None])
    mu = y.mean(axis=1, keepdims=True)
    mu += (y - mu).mean(axis=1, keepdims=True)  # corrected two-pass mean: removes the first pass's rounding
    d = y - mu
    d2 = d * d
    m2, m3, m4 = d2.mean(axis=1), (d2 * d).mean(axis=1), (d2 * d2).mean(axis=1)
    m, const_h = _ebrahimi_terms(n)
    with np.errstate(divide="ignore", invalid="ignore"):  # constant units: 0/0, log(0); overwritten below
        skew = m3 / m2 ** 1.5
        kurt = m4 / (m2 * m2) - 3.0
        # Spacing entropy and Gaussian entropy on the same scaled data: the scale cancels in the difference.
        spacing = _spacings(y, m)
        h = np.log(spacing, out=spacing).mean(axis=1) + const_h
        kl = np.maximum(_HALF_LOG_2PI_E + 0.5 * np.log(m2) - h, 0.0)
    out[:, 0] = np.ldexp(mu[:, 0], e)
    out[:, 1] = np.ldexp(np.sqrt(m2), e)
    out[:, 2:7] = np.ldexp(_sorted_percentiles(y, PERCENTILES), e[:, None])
    out[:, 7], out[:, 8], out[:, 11] = skew, kurt, kl

    # W is scale invariant and bitwise unchanged by power-of-two scaling, which protects scipy's
    # range check (< 1e-19 counts as zero) and its shift by the middle value from tiny/huge magnitudes.
    live = np.flatnonzero(~const)
    if X is None:  # all values: the scaled rows are already sorted
        out[live, 9], out[live, 10] = _shapiro_sorted(y[live], np.ldexp(middle[live], -e[live]))
    else:
        sub = np.ldexp(X.T[live][:, _shapiro_subsample(n)], -e[live, None])
        out[live, 9], out[live, 10] = _shapiro_sorted(np.sort(sub, axis=1), sub[:, SHAPIRO_MAX_N // 2])

    # The degenerate Gaussian N(c, 0) *is* constant data: perfect fit, no divergence, no shape.
    out[const] = [0.0, 0.0, *[0.0] * len(PERCENTILES), 0.0, 0.0, 1.0, 1.0, 0.0]
    out[const, 0] = s[const, 0]
    out[const, 2:7] = s[const, :1]
    return out


def describe_sorted(S, middle) -> np.ndarray:
    """:func:`describe_columns` of data whose sorted values the caller already has (no sort at all).

    ``S`` (U, N) holds each unit's N <= SHAPIRO_MAX_N values sorted ascending, one row per unit; ``middle``
    (U,) each unit's value at position N // 2 *before* sorting (Shapiro-Wilk, as scipy computes it, depends
    on it by a rounding error). The result equals ``describe_columns`` of the unsorted data bit for bit.
    """
    s = _finite_array(S, "describe_sorted", 2, 1)
    mid = np.asarray(middle, dtype=np.float64)
    if s.shape[1] < 3 or s.shape[1] > SHAPIRO_MAX_N:
        raise ValueError(f"describe_sorted() needs 3..{SHAPIRO_MAX_N} values per row, got {s.shape[1]}")
    if mid.shape != (s.shape[0],):
        raise ValueError(f"describe_sorted() needs one middle value per row: {s.shape[0]}, got {mid.shape}")
    if np.any(s[:, 1:] < s[:, :-1]):
        raise ValueError("describe_sorted() needs every row sorted ascending")
    return _sorted_stats(np.ascontiguousarray(s), mid)


def describe_columns(X) -> np.ndarray:
    """Per-unit statistics of a probe matrix, one row per column, in :data:`UNIT_STATS` order.

    Parameters
    ----------
    X : array_like, shape (N, U)
        N >= 3 finite values of each of U units.

    Returns
    -------
    numpy.ndarray, shape (U, len(UNIT_STATS)), float64
        Row j holds, for ``X[:, j]``, the fields of :func:`normality` (mean, std, skew, kurtosis,
        shapiro_w, shapiro_p, kl_gaussian) and ``np.percentile(X[:, j], PERCENTILES)``.

    Raises
    ------
    ValueError
        If X is not 2-D, has fewer than 3 rows, or contains NaN or infinity.

    Notes
    -----
    Each column is sorted once; moments, percentiles (numpy's default linear interpolation) and the
    spacing entropy are vectorized across columns. Only Shapiro-Wilk runs per column: a loop over scipy's
    compiled routine (the one behind ``scipy.stats.shapiro``, same results bit for bit), with the
    coefficients for N computed once (see ``_shapiro_sorted``). Constant columns follow :func:`normality`.
    """
    return _column_stats(_finite_array(X, "describe_columns", 2, 3))


def describe(x) -> np.ndarray:
    """:func:`describe_columns` of a single 1-D sample: a float64 vector in :data:`UNIT_STATS` order."""
    return _column_stats(_finite_array(x, "describe", 1, 3)[:, None])[0]


def normality(x) -> Normality:
    """Moments, Shapiro-Wilk test and KL divergence from the moment-matched Gaussian of a sample.

    Parameters
    ----------
    x : array_like, 1-D
        At least 3 finite values.

    Returns
    -------
    Normality
        ``mean`` and ``std`` (population, ddof=0); ``skew`` and ``kurtosis`` (excess, Fisher) from biased
        moments as ``scipy.stats.skew``/``kurtosis`` with default arguments; ``shapiro_w``/``shapiro_p`` from
        ``scipy.stats.shapiro``; ``kl_gaussian``: estimated KL(p || N(mean, std**2)) in nats.

    Raises
    ------
    ValueError
        If x is not 1-D, has fewer than 3 values, or contains NaN or infinity.

    Notes
    -----
    *Shapiro-Wilk.* scipy's p-value approximation (Royston 1995) is only valid up to n = 5000. For
    more values, W and p are computed on a deterministic subsample of ``SHAPIRO_MAX_N`` values: the
    sorted indices ``np.random.default_rng(0).choice(n, SHAPIRO_MAX_N, replace=False)``. Deterministic so
    that repeated snapshots of the same data give the same answer. W is affine invariant.

    *KL to the Gaussian (negentropy).* Among all densities with variance s**2 the Gaussian has the largest
    entropy, and KL(p || N(mean, s**2)) = H(N) - H(p) = 0.5*log(2*pi*e*s**2) - H(p) exactly. H(p) is estimated
    with the m-spacing estimator of Ebrahimi et al. (1994) with m = round(sqrt(n)) (identical to
    ``scipy.stats.differential_entropy(x, method="ebrahimi")``, but computed from the sorted data that the
    percentiles need anyway, and with m clipped to 1 for n = 3, 4 where scipy's default is invalid). It is
    consistent (m -> inf, m/n -> 0) and has a smaller boundary bias than Vasicek's (1976) estimator; both
    entropy terms shift by log|a| under x -> a*x + b, so the KL is affine invariant up to rounding. Measured
    on 20000 Gaussian samples of n = 512, the unclipped estimate has bias -0.011 nats and standard deviation
    0.011 (Vasicek: +0.018; van Es: +0.095). The estimate is clipped at 0 because KL is never negative: a
    Gaussian sample of n = 512 reads exactly 0 84% of the time, with mean 0.001 and 95th/99th percentiles
    0.007/0.015 nats, so values below ~0.02 are noise. At n = 512 the bias for non-Gaussian data is about
    +-0.015 (uniform +0.011, exponential -0.014).

    A zero m-spacing makes the estimate ``inf``: this happens when m + 1 values equal the minimum or the
    maximum (e.g. the zeros of ReLU outputs), or 2m + 1 values are equal anywhere. That is the correct KL
    for a distribution with a point mass (it has no density). Float32 data quantized so coarsely that
    values repeat this often (values a few ulps apart) reads ``inf`` too, never NaN.

    *Constant data* (all values equal): mean = the value, std = skew = kurtosis = 0, shapiro_w =
    shapiro_p = 1 and kl_gaussian = 0, because the degenerate Gaussian N(value, 0) is the data itself. No
    warning is emitted. Near-constant data is handled exactly in float64 (the moments use a corrected
    two-pass mean on power-of-two-scaled data) and never yields NaN.

    References
    ----------
    Shapiro, S. S. & Wilk, M. B. (1965). An analysis of variance test for normality. Biometrika 52, 591-611;
    ``scipy.stats.shapiro``.
    Royston, P. (1995). Remark AS R94: A remark on algorithm AS 181. Applied Statistics 44, 547-551.
    Vasicek, O. (1976). A test for normality based on sample entropy. JRSS B 38, 54-59.
    Ebrahimi, N., Pflughoeft, K. & Soofi, E. S. (1994). Two measures of sample entropy. Stat. Probab.
    Lett. 20, 225-234; ``scipy.stats.differential_entropy``.
    """
    a = _finite_array(x, "normality", 1, 3)
    r = dict(zip(UNIT_STATS, _column_stats(a[:, None])[0].tolist()))
    return Normality(n=a.shape[0], **{f: r[f] for f in ("mean", "std", "skew", "kurtosis", "shapiro_w",
                                                         "shapiro_p", "kl_gaussian")})


def percentiles(X, q=PERCENTILES, axis=0) -> np.ndarray:
    """``np.percentile(X, q, axis=axis)`` in float64 with numpy's default linear interpolation.

    Shape is ``(len(q),) + shape of X without axis``. Non-finite values raise ``ValueError`` rather than
    propagating NaN (as everywhere in bnviz.stats).
    """
    a = _finite_array(X, "percentiles", None if np.ndim(X) <= 1 else np.ndim(X), 1)
    return np.percentile(a, q, axis=axis)
