"""The shapes the shape-imposing normalizations give x̂ (variants bn_gauss, bn_uniform, bn_laplace), in numpy.

Such a normalization standardizes each unit over the batch as BN does and then replaces every value by the
quantile of a target distribution that its rank in the batch picks: x̂ keeps BN's two moments exactly and
takes the target's shape exactly. This module is the one home of the targets' quantile functions, the rank
map, the running quantiles' levels and the piecewise-linear CDF of the eval view; the PyTorch modules
(training.model.ShapeNorm) and the numpy networks (npnet, npconv) both call it. It imports neither torch nor
scipy: the training process loads it.
"""

from __future__ import annotations

import math

import numpy as np

# variant kind -> its target; every target has mean 0 and variance 1
TARGETS = {"bn_gauss": "gaussian", "bn_uniform": "uniform", "bn_laplace": "laplace"}
QUANTILE_LEVELS = 64  # K: the running quantiles' levels p_k = (k + 0.5) / K per unit, for the eval view
MOMENTUM = 0.1  # the running quantiles' exponential average, as BN's running mean and variance

_LAPLACE_SCALE = 1 / math.sqrt(2)  # Laplace(0, b) has variance 2 b^2


def is_shape(kind: str) -> bool:
    """Whether variant kind ``kind`` imposes a shape on x̂."""
    return kind in TARGETS


def _poly(coefs: tuple[float, ...], r: np.ndarray) -> np.ndarray:
    out = np.full_like(r, coefs[0])
    for c in coefs[1:]:
        out = out * r + c
    return out


# Wichura (1988), Algorithm AS241 (PPND16): the coefficients of the standard library's NormalDist.inv_cdf,
# highest power first; relative accuracy about 1e-16.
_CENTRAL = ((2509.0809287301226727, 33430.575583588128105, 67265.770927008700853, 45921.953931549871457,
             13731.693765509461125, 1971.5909503065514427, 133.14166789178437745, 3.387132872796366608),
            (5226.495278852854561, 28729.085735721942674, 39307.89580009271061, 21213.794301586595867,
             5394.1960214247511077, 687.1870074920579083, 42.313330701600911252, 1.0))
_INNER = ((7.7454501427834140764e-4, 0.0227238449892691845833, 0.24178072517745061177, 1.27045825245236838258,
           3.64784832476320460504, 5.7694972214606914055, 4.6303378461565452959, 1.42343711074968357734),
          (1.05075007164441684324e-9, 5.475938084995344946e-4, 0.0151986665636164571966, 0.14810397642748007459,
           0.68976733498510000455, 1.6763848301838038494, 2.05319162663775882187, 1.0))
_OUTER = ((2.01033439929228813265e-7, 2.71155556874348757815e-5, 0.0012426609473880784386,
           0.026532189526576123093, 0.29656057182850489123, 1.7848265399172913358, 5.4637849111641143699,
           6.6579046435011037772),
          (2.04426310338993978564e-15, 1.4215117583164458887e-7, 1.8463183175100546818e-5,
           7.868691311456132591e-4, 0.0148753612908506148525, 0.13692988092273580531, 0.59983220655588793769, 1.0))


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """The standard normal's inverse CDF at probabilities ``p`` in (0, 1), elementwise (AS241)."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    central = np.abs(q) <= 0.425
    out = np.empty_like(p)
    rc = 0.180625 - q[central] ** 2
    out[central] = q[central] * _poly(_CENTRAL[0], rc) / _poly(_CENTRAL[1], rc)
    tail = ~central
    r = np.sqrt(-np.log(np.where(q[tail] <= 0, p[tail], 1 - p[tail])))
    inner = r <= 5.0
    x = np.where(inner, _poly(_INNER[0], r - 1.6) / _poly(_INNER[1], r - 1.6),
                 _poly(_OUTER[0], r - 5.0) / _poly(_OUTER[1], r - 5.0))
    out[tail] = np.where(q[tail] < 0, -x, x)
    return out


def quantile(kind: str, p: np.ndarray) -> np.ndarray:
    """The inverse CDF of variant ``kind``'s target (mean 0, variance 1) at probabilities ``p`` in (0, 1)."""
    p = np.asarray(p, dtype=np.float64)
    target = TARGETS[kind]
    if target == "gaussian":
        return normal_quantile(p)
    if target == "uniform":
        return math.sqrt(3) * (2 * p - 1)
    lower = _LAPLACE_SCALE * np.log(2 * np.minimum(p, 1 - p))  # the tail's own probability: no cancellation
    return np.where(p < 0.5, lower, -lower)


def target_points(kind: str, m: int) -> np.ndarray:
    """The m values x̂ takes in one unit of a batch of m: t_k = F^-1((k + 0.5) / m), k = 0..m-1, then
    standardized exactly over the m points (mean 0, biased variance 1), ascending. One value (m = 1) is 0."""
    t = quantile(kind, (np.arange(m) + 0.5) / m)
    t = t - t.mean()
    sd = math.sqrt(float(np.mean(t * t)))
    return t / sd if sd > 0 else t


def rank_map(kind: str, series: np.ndarray) -> np.ndarray:
    """x̂ of each row of ``series`` (units, m): the value of rank k in its row (ties broken by position, a
    stable sort) becomes target_points(kind, m)[k]."""
    series = np.asarray(series)
    order = np.argsort(series, axis=1, kind="stable")
    out = np.empty(series.shape, dtype=np.float64)
    np.put_along_axis(out, order, np.broadcast_to(target_points(kind, series.shape[1]), series.shape), axis=1)
    return out


def levels(k: int = QUANTILE_LEVELS) -> np.ndarray:
    """The running quantiles' probability levels p_j = (j + 0.5) / k."""
    return (np.arange(k) + 0.5) / k


def initial_quantiles(units: int, k: int = QUANTILE_LEVELS) -> np.ndarray:
    """The running quantiles before any training: the standard normal's, for every unit (units, k), as BN's
    running mean 0 and variance 1."""
    return np.tile(normal_quantile(levels(k)), (units, 1))


def quantile_positions(m: int, k: int = QUANTILE_LEVELS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the levels fall among m sorted values: (lower index, upper index, weight of the upper), so that
    the batch's quantile at p_j is ``s[lo] + w * (s[hi] - s[lo])`` (numpy's default 'linear' quantile)."""
    h = levels(k) * (m - 1)
    lo = np.floor(h).astype(np.int64)
    return lo, np.minimum(lo + 1, m - 1), h - lo


def batch_quantiles(series: np.ndarray, k: int = QUANTILE_LEVELS) -> np.ndarray:
    """Each row's quantiles at the levels (units, k), by :func:`quantile_positions`."""
    s = np.sort(np.asarray(series, dtype=np.float64), axis=1)
    lo, hi, w = quantile_positions(s.shape[1], k)
    return s[:, lo] + w * (s[:, hi] - s[:, lo])


def eval_map(kind: str, series: np.ndarray, running: np.ndarray) -> np.ndarray:
    """x̂ in the eval view for each row of ``series`` (units, n): the piecewise-linear CDF through that unit's
    running quantiles ``running`` (units, k) at the levels, clamped to [p_0, p_(k-1)], then the target's
    quantile function."""
    series = np.asarray(series, dtype=np.float64)
    running = np.asarray(running, dtype=np.float64)
    p = levels(running.shape[1])
    u = np.stack([np.interp(row, q, p) for row, q in zip(series, running)]) if len(series) else series
    return quantile(kind, u)
