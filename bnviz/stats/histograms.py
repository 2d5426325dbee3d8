"""Histograms on grids anchored at 0, so that successive snapshots share bins and can be compared or animated.

A grid of width w has edges k*w for integer k; grids whose widths differ by a power of two nest exactly, so
histograms of one series are re-binned onto a common grid without moving any value (:func:`coarsen`,
:func:`align`). :class:`StableBins` keeps one series on one grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bnviz.stats._validate import _finite_array


@dataclass(frozen=True, eq=False)
class Histogram:
    """Counts on a grid anchored at 0: bin i covers ``[(start+i)*width, (start+i+1)*width)``.

    Because every histogram built on one width lives on the same grid, histograms of successive snapshots
    can be compared bin by bin and animated; grids whose widths differ by a power of two nest exactly
    (:func:`coarsen`, :func:`align`). ``counts`` is a read-only int64 array with at least one bin.
    """

    width: float
    start: int
    counts: np.ndarray

    def __post_init__(self) -> None:
        counts = np.array(self.counts, dtype=np.int64)
        if counts.ndim != 1 or counts.size == 0:
            raise ValueError(f"Histogram counts must be a non-empty 1-D array, got shape {counts.shape}")
        if not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"Histogram width must be positive and finite, got {self.width}")
        counts.setflags(write=False)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "width", float(self.width))
        object.__setattr__(self, "start", int(self.start))

    @property
    def edges(self) -> np.ndarray:
        """The ``len(counts) + 1`` bin edges, computed as integer multiples of ``width``."""
        return (self.start + np.arange(len(self.counts) + 1)) * self.width

    @property
    def centers(self) -> np.ndarray:
        """Bin centres."""
        return (self.start + 0.5 + np.arange(len(self.counts))) * self.width


def bin_index(v: np.ndarray, width) -> np.ndarray:
    """Bin k (as floats) with ``k*width <= v < (k+1)*width`` for the float64 edges that :attr:`Histogram.edges`
    builds; ``width`` may be an array that broadcasts with ``v``. NaN stays NaN."""
    # v/width is rounded, and so are the edges; one correction step makes the index agree with the edges.
    with np.errstate(over="ignore", invalid="ignore"):  # an edge beyond the float range is inf
        k = np.floor(v / width)
        k -= k * width > v
        k += (k + 1) * width <= v
    return k


def _bin_index_scalar(v: float, width: float) -> float:
    """:func:`bin_index` of one value, in plain float arithmetic (the same IEEE doubles, without numpy's
    per-call cost: every histogram places its two end points this way)."""
    k = v / width
    if math.isfinite(k):
        k = float(math.floor(k))
    k -= k * width > v
    k += (k + 1) * width <= v
    return k


def _nice_ceil(raw: float) -> float:
    """Smallest number of the form 1, 2 or 5 x 10**k that is >= raw (to 1e-9 relative)."""
    k = math.floor(math.log10(raw))
    for c in (1, 2, 5, 10):
        nice = float(f"{c}e{k}")  # parsed, hence the correctly rounded decimal (0.2, not 2*0.1)
        if nice >= raw * (1 - 1e-9):
            return nice
    raise AssertionError("unreachable")  # pragma: no cover


def nice_width(x, target_bins: int = 40) -> float:
    """A "nice" bin width (1, 2 or 5 x 10**k) giving about ``target_bins`` bins over the bulk of ``x``.

    Parameters
    ----------
    x : array_like
        Finite values (flattened), at least one.
    target_bins : int
        Desired number of bins across the robust range.

    Returns
    -------
    float
        ``(p99.5 - p0.5) / target_bins`` rounded up to 1, 2 or 5 x 10**k. The 0.5th..99.5th percentile
        range ignores a few outliers that would otherwise squash the bulk into a couple of bins. If that
        range is 0 (an atom holding over 99% of the data) the full range is used; for constant data the
        width is 1e-3 * |value| (1e-3 for 0), rounded the same way: a narrow single bin at the value.
    """
    a = _finite_array(x, "nice_width", None, 1)
    if target_bins < 1:
        raise ValueError(f"nice_width() needs target_bins >= 1, got {target_bins}")
    _, e = np.frexp(np.max(np.abs(a)))
    y = np.ldexp(a, -e)  # exact power-of-two scaling: differences of extreme values cannot overflow
    lo, hi = np.percentile(y, [0.5, 99.5])
    span = hi - lo if hi > lo else y.max() - y.min()
    if span > 0:
        raw = max(math.ldexp(float(span) / target_bins, int(e)), math.ulp(0.0))
    else:
        raw = 1e-3 * abs(float(a[0])) or 1e-3
    return _nice_ceil(raw)


def histogram(x, width: float, max_bins: int = 400) -> Histogram:
    """Histogram of ``x`` on the grid of multiples of ``width``, covering ``min(x)..max(x)``.

    Parameters
    ----------
    x : array_like
        Finite values (flattened), at least one. Every value is counted: ``counts.sum() == x.size``.
    width : float
        Requested bin width (> 0).
    max_bins : int
        At least 2 (any range fits in two bins of a wide enough grid). If more bins would be needed, the width
        is doubled until ``max_bins`` suffice. Doubling keeps the grid nested in the requested one (every new
        edge is an old edge), so histograms stay comparable after :func:`coarsen`. The width is also doubled
        while it is below 4 ulps of max|x|, where neighbouring edges could not be told apart in float64. (Data
        within a bin of the float64 limit, ~1.8e308, raises ``ValueError``: its outer edge would not be
        representable.)

    Returns
    -------
    Histogram
        With the (possibly doubled) width; first and last bins are non-empty.
    """
    a = _finite_array(x, "histogram", None, 1)
    w, k_lo, k_hi = _grid(float(a.min()), float(a.max()), width, max_bins)
    counts = np.bincount(bin_index(a, w).astype(np.int64) - k_lo, minlength=k_hi - k_lo + 1)
    return Histogram(w, k_lo, counts)


def _grid(lo: float, hi: float, width: float, max_bins: int) -> tuple[float, int, int]:
    """The grid of :func:`histogram` for data in [lo, hi]: (width, first bin index, last bin index)."""
    w = float(width)
    if not (math.isfinite(w) and w > 0):
        raise ValueError(f"histogram() needs a positive finite width, got {width!r}")
    if max_bins < 2:  # 0 is always an edge: data straddling it never fits in one bin, whatever the width
        raise ValueError(f"histogram() needs max_bins >= 2, got {max_bins}")
    while w < 4 * math.ulp(max(abs(lo), abs(hi))):
        w *= 2
    while True:
        k_lo, k_hi = _bin_index_scalar(lo, w), _bin_index_scalar(hi, w)
        if k_hi - k_lo < max_bins:
            break
        w *= 2
    if not math.isfinite((k_hi + 1.0) * w) or not math.isfinite(k_lo * w):
        raise ValueError(f"histogram() cannot place bin edges of width {w} around [{lo}, {hi}] within the "
                         "float64 range")
    return w, int(k_lo), int(k_hi)


def histogram_sorted(s: np.ndarray, width: float, max_bins: int = 400) -> Histogram:
    """:func:`histogram` of a 1-D array of finite values already sorted ascending (not checked), without
    touching every value: the counts are differences of binary searches for the bin edges.

    A value ``v`` is counted in bin k exactly when ``edges[k] <= v < edges[k + 1]`` for the float64 edges
    of :attr:`Histogram.edges`, the same rule :func:`histogram` applies, so both give identical histograms.
    """
    w, k_lo, k_hi = _grid(float(s[0]), float(s[-1]), width, max_bins)
    edges = np.arange(k_lo, k_hi + 2) * w  # exactly Histogram.edges
    return Histogram(w, k_lo, np.diff(np.searchsorted(s, edges, side="left")))


def coarsen(h: Histogram, width: float) -> Histogram:
    """Re-bin ``h`` exactly onto the grid of width ``h.width * 2**m`` (m >= 0).

    Exact because each coarse bin is the union of 2**m fine bins: the coarse edge K*W equals the fine edge
    (K*2**m)*w bit for bit (multiplying by a power of two is exact), so no value changes side. ``width`` is
    matched to ``h.width * 2**m`` within 1e-9 relative; anything else raises ``ValueError``.
    """
    ratio = float(width) / h.width
    m = round(math.log2(ratio)) if math.isfinite(ratio) and ratio > 0 else -1
    if m < 0 or abs(ratio - 2.0 ** m) > 1e-9 * 2.0 ** m:
        raise ValueError(f"coarsen() needs a width of {h.width!r} * 2**m (m >= 0), got {width!r}")
    k = h.start + np.arange(len(h.counts), dtype=np.int64)
    big = np.right_shift(k, min(m, 62))  # floor(k / 2**m); |k| < 2**53, so shifts beyond 62 change nothing
    first = np.concatenate([[0], np.flatnonzero(np.diff(big)) + 1])  # big is consecutive: no gaps
    return Histogram(math.ldexp(h.width, m), int(big[0]), np.add.reduceat(h.counts, first))


def align(hists: list[Histogram]) -> tuple[np.ndarray, np.ndarray]:
    """Put histograms on one common grid: the coarsest width among them, over the union of their ranges.

    The finer histograms are coarsened exactly (:func:`coarsen`), so all widths must be power-of-two
    multiples of each other (as for histograms of one :class:`StableBins`). Totals are preserved.

    Returns
    -------
    edges : numpy.ndarray, shape (n_bins + 1,)
    counts : numpy.ndarray, shape (len(hists), n_bins), int64
    """
    if not hists:
        raise ValueError("align() needs at least one histogram, got none")
    w = max(h.width for h in hists)
    coarse = [coarsen(h, w) for h in hists]
    start = min(c.start for c in coarse)
    stop = max(c.start + len(c.counts) for c in coarse)
    counts = np.zeros((len(coarse), stop - start), dtype=np.int64)
    for row, c in zip(counts, coarse):
        row[c.start - start:c.start - start + len(c.counts)] = c.counts
    return (start + np.arange(stop - start + 1)) * w, counts


class StableBins:
    """Histogram bins that stay put across the snapshots of one series (TensorBoard-style animation).

    The first call picks the width with :func:`nice_width`; later calls reuse it, so the same value always
    falls into the same bin. The width only changes by doubling, when data spreads over more than
    ``max_bins`` bins, and it never shrinks back: a distribution that contracts a lot (e.g. after batch
    normalization starts working) is shown with fewer, wider-looking bins rather than a shifting grid.
    """

    def __init__(self, target_bins: int = 40, max_bins: int = 400) -> None:
        self.target_bins = target_bins
        self.max_bins = max_bins
        self.width: float | None = None

    def histogram(self, x) -> Histogram:
        """Histogram of ``x`` on this series' grid (see :func:`histogram`)."""
        if self.width is None:
            self.width = nice_width(x, self.target_bins)
        h = histogram(x, self.width, self.max_bins)
        self.width = h.width
        return h

    def histogram_sorted(self, s: np.ndarray) -> Histogram:
        """:meth:`histogram` of finite values already sorted ascending (see :func:`histogram_sorted`)."""
        if self.width is None:
            self.width = nice_width(s, self.target_bins)
        h = histogram_sorted(s, self.width, self.max_bins)
        self.width = h.width
        return h
