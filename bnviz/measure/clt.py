"""Why Gaussian? The central limit theorem at work (and failing) in a linear layer's output Wu + b.

A hidden unit's pre-activation is a weighted sum of its inputs, z = sum_i w_i u_i + b. When the fan-in
grows, the sum of many independent terms, none of which dominates, tends to a Gaussian whatever the
inputs' own distribution: that, and not batch normalization, is where "near-Gaussian layer inputs"
come from. This module measures how close z gets, for each input distribution of config.INPUT_DISTS,
as the fan-in grows; and it shows that BN's standardization leaves a non-Gaussian input's shape alone.

Pure numpy/scipy; results are cached, so the page can ask again at no cost.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from bnviz import stats
from bnviz.config import BN_EPS, INPUT_DISTS

FAN_INS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PAGE_DISTS = ("gaussian", "uniform", "bimodal", "student-t", "correlated")  # what the page draws at first
WEIGHTS = {
    "random": "W ~ U(+-1/sqrt(fan_in)), PyTorch's default init for nn.Linear (bias too)",
    "sparse": "each unit uses only 2 of its inputs: trained weights that concentrate on a few inputs",
}
SPARSE_INPUTS = 2  # inputs a unit keeps with weights="sparse"
HIST_WIDTH = 0.2  # bin width of the standardized histograms: a "nice" width, ~40 bins over +-4 sd


@dataclass(frozen=True)
class CLTResult:
    """Normality of the standardized pre-activation Wu + b against the fan-in, for one input distribution."""

    dist: str  # input feature distribution (config.INPUT_DISTS)
    weights: str  # a key of WEIGHTS
    fan_ins: np.ndarray  # (F,) int
    shapiro_w: np.ndarray  # (F,) Shapiro-Wilk W of the pooled standardized Wu + b
    kl: np.ndarray  # (F,) KL to the Gaussian, nats (inf for a point mass)
    skew: np.ndarray  # (F,)
    kurtosis: np.ndarray  # (F,) excess
    hists: tuple  # (F,) stats.Histogram of the pooled standardized Wu + b, on one stable grid

    def at(self, fan_in: int) -> dict[str, float]:
        """shapiro_w, kl, skew and kurtosis at one of the measured fan-ins."""
        i = int(np.flatnonzero(self.fan_ins == fan_in)[0])
        return {k: float(getattr(self, k)[i]) for k in ("shapiro_w", "kl", "skew", "kurtosis")}


def feature_sample(dist: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Draw an (n, d) float64 matrix whose features follow ``dist`` (see config.INPUT_DISTS)."""
    if dist == "gaussian":
        return rng.standard_normal((n, d))
    if dist == "uniform":
        return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), (n, d))
    if dist == "exponential":
        return rng.exponential(1.0, (n, d)) - 1.0
    if dist == "bimodal":
        return rng.choice([-1.0, 1.0], (n, d)) + 0.25 * rng.standard_normal((n, d))
    if dist == "student-t":
        return rng.standard_t(3, (n, d))
    if dist == "sparse":
        return np.maximum(rng.standard_normal((n, d)), 0.0)
    if dist == "correlated":
        shared = rng.choice([-1.0, 1.0], (n, 1)) + 0.25 * rng.standard_normal((n, 1))
        return shared + 0.1 * rng.standard_normal((n, d))
    raise ValueError(f"unknown input distribution {dist!r}; known: {', '.join(INPUT_DISTS)}")


def _weights(kind: str, fan_in: int, units: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(W of shape (fan_in, units), b of shape (units,)) drawn as ``kind`` says."""
    bound = 1.0 / np.sqrt(fan_in)  # nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) gives this bound
    W = rng.uniform(-bound, bound, (fan_in, units))
    b = rng.uniform(-bound, bound, units)
    if kind == "sparse":
        keep = np.zeros((fan_in, units), dtype=bool)
        for j in range(units):
            keep[rng.choice(fan_in, min(SPARSE_INPUTS, fan_in), replace=False), j] = True
        W = np.where(keep, W, 0.0)
    return W, b


def _standardized_pool(z: np.ndarray) -> np.ndarray:
    """Standardize every column of z (N, units) on its own, then pool them into one vector (column-major)."""
    mu, sd = z.mean(axis=0), z.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)  # a constant unit stays constant (0) rather than becoming NaN
    return ((z - mu) / sd).T.reshape(-1)


def clt_experiment(dist: str, fan_ins=FAN_INS, weights: str = "random", n: int = 2000, units: int = 8,
                   seed: int = 0) -> CLTResult:
    """Normality of the standardized Wu + b for inputs u ~ ``dist`` at each fan-in.

    Parameters
    ----------
    dist : str
        A key of config.INPUT_DISTS; inputs are drawn with ``feature_sample(dist, n, fan_in, rng)``.
    fan_ins : sequence of int
        Numbers of inputs of the unit (each >= 1).
    weights : str
        "random" or "sparse" (see :data:`WEIGHTS`).
    n : int
        Examples (>= 3).
    units : int
        Independent weight vectors per fan-in; all see the same inputs, as the units of one layer do.
    seed : int
        Everything is drawn from ``np.random.default_rng([seed, fan_in, dist index, weights index])``:
        the same arguments always give the same numbers, and each fan-in has its own stream.

    Returns
    -------
    CLTResult
        Statistics of the pooled sample of ``n * units`` values: each unit's column standardized on its
        own first (per-unit, as BN would), so that pooling mixes shapes, not means and scales.

    Notes
    -----
    Lindeberg-Feller CLT: a sum of independent terms w_i u_i with finite variances tends to a Gaussian if
    no term carries a non-vanishing share of the total variance (Lindeberg's condition); Lyapunov's
    condition sum E|w_i u_i|^3 / (sum Var(w_i u_i))^{3/2} -> 0 is a sufficient check, and Berry-Esseen bounds
    the error by ~ that ratio, i.e. ~ 1/sqrt(fan_in) for comparable weights. Where it fails or is slow:

    * few inputs: at fan-in 1, Wu + b is u itself, rescaled;
    * heavy tails: Student's t with 3 degrees of freedom has a finite variance (Lindeberg holds), but an
      infinite third moment (no Lyapunov/Berry-Esseen rate): the convergence is slow;
    * dependence: "correlated" inputs share one bimodal factor s, so Wu = s * sum(w_i) + noise: the
      shared factor never averages out and Wu + b stays bimodal at any fan-in;
    * concentrated weights: with weights="sparse" each unit is a sum of 2 terms whatever the fan-in,
      which violates Lindeberg's condition (two terms carry all the variance).

    References
    ----------
    Lindeberg, J. W. (1922). Eine neue Herleitung des Exponentialgesetzes in der
    Wahrscheinlichkeitsrechnung. Math. Z. 15, 211-225.
    Lyapunov, A. M. (1901). Nouvelle forme du theoreme sur la limite de probabilite.
    Billingsley, P. (1995). Probability and Measure, 3rd ed., Sec. 27 (Lindeberg and Lyapunov theorems).
    He, K. et al. (2015). Delving deep into rectifiers (PyTorch's nn.Linear init follows their uniform form).
    """
    if dist not in INPUT_DISTS:
        raise ValueError(f"unknown input distribution {dist!r}; known: {', '.join(INPUT_DISTS)}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    fan_ins = tuple(int(f) for f in fan_ins)
    if not fan_ins or min(fan_ins) < 1:
        raise ValueError(f"clt_experiment() needs fan-ins >= 1, got {fan_ins}")
    if n < 3 or units < 1:
        raise ValueError(f"clt_experiment() needs n >= 3 and units >= 1, got n={n}, units={units}")
    return _clt(dist, fan_ins, weights, int(n), int(units), int(seed))


@functools.lru_cache(maxsize=64)
def _clt(dist: str, fan_ins: tuple[int, ...], weights: str, n: int, units: int, seed: int) -> CLTResult:
    pooled = []
    for f in fan_ins:
        rng = np.random.default_rng([seed, f, list(INPUT_DISTS).index(dist), list(WEIGHTS).index(weights)])
        u = feature_sample(dist, n, f, rng)  # (n, fan_in)
        W, b = _weights(weights, f, units, rng)
        pooled.append(_standardized_pool(u @ W + b))  # (n * units,)
    rows = stats.describe_columns(np.stack(pooled, axis=1))  # one batched call: (F, len(UNIT_STATS))
    col = {name: rows[:, stats.UNIT_STATS.index(name)].copy() for name in
           ("shapiro_w", "kl_gaussian", "skew", "kurtosis")}
    bins = stats.StableBins()
    bins.width = HIST_WIDTH  # one grid for every fan-in, so the histograms animate in place
    hists = tuple(bins.histogram(z) for z in pooled)
    arrays = (np.array(fan_ins, dtype=np.int64), col["shapiro_w"], col["kl_gaussian"], col["skew"],
              col["kurtosis"])
    for a in arrays:
        a.setflags(write=False)  # cached and shared between callers
    return CLTResult(dist, weights, *arrays, hists)


@dataclass(frozen=True)
class BimodalDemo:
    """A bimodal layer input before and after BN's standardization."""

    x_hist: stats.Histogram
    xhat_hist: stats.Histogram
    x_stats: np.ndarray  # (len(stats.UNIT_STATS),) of x
    xhat_stats: np.ndarray  # (len(stats.UNIT_STATS),) of x_hat
    x: np.ndarray  # (n,) the samples themselves, read-only
    x_hat: np.ndarray  # (n,)


@functools.lru_cache(maxsize=8)
def bimodal_through_bn(n: int = 2000, seed: int = 0) -> BimodalDemo:
    """A unit with one bimodal input, x = w u + b, standardized as BN does: it stays exactly as bimodal.

    x_hat = (x - mean) / sqrt(var + eps) (Ioffe & Szegedy 2015, Algorithm 1, batch statistics) is an affine
    map with a positive slope, so skew, kurtosis, Shapiro-Wilk W and the KL to the Gaussian (all affine
    invariant) are unchanged up to rounding: BN fixes the first two moments and nothing else.
    """
    if n < 3:
        raise ValueError(f"bimodal_through_bn() needs n >= 3, got {n}")
    rng = np.random.default_rng([seed, 7])
    # A fan-in-1 unit (where the CLT cannot help) with a mean and scale far from 0 and 1, so BN visibly
    # moves and shrinks it; the 70/30 mixture makes it skewed as well as bimodal.
    u = np.where(rng.random(n) < 0.7, -1.0, 1.0) + 0.25 * rng.standard_normal(n)
    x = 1.8 * u + 3.0
    x_hat = (x - x.mean()) / np.sqrt(x.var() + BN_EPS)
    x_stats, xhat_stats = stats.describe(x), stats.describe(x_hat)
    for a in (x, x_hat, x_stats, xhat_stats):
        a.setflags(write=False)  # cached and shared between callers
    return BimodalDemo(stats.histogram(x, stats.nice_width(x)), stats.histogram(x_hat, stats.nice_width(x_hat)),
                       x_stats, xhat_stats, x, x_hat)
