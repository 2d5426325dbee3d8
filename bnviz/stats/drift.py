"""Drift of a distribution between two snapshots: the Wasserstein-1 distance between empirical samples."""

from __future__ import annotations

import functools
import math

import numpy as np

from bnviz.stats._validate import _finite_array


@functools.lru_cache(maxsize=32)
def _quantile_pairing(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order-statistic indices and interval lengths on which both empirical quantile functions are constant."""
    lcm = math.lcm(n, m)
    a, b = lcm // n, lcm // m
    # Breakpoints i/n and j/m of the two quantile functions, in exact integer units of 1/lcm.
    t = np.union1d(np.arange(1, n + 1, dtype=np.int64) * a, np.arange(1, m + 1, dtype=np.int64) * b)
    ia, ib, w = (t - 1) // a, (t - 1) // b, np.diff(t, prepend=0) / lcm  # on (t_prev, t]: ceil(t/a) - 1
    for arr in (ia, ib, w):
        arr.setflags(write=False)
    return ia, ib, w


def wasserstein1_columns(A, B) -> np.ndarray:
    """Wasserstein-1 distance between the empirical distributions of ``A[:, j]`` and ``B[:, j]``.

    Parameters
    ----------
    A : array_like, shape (N, U)
    B : array_like, shape (M, U)
        Finite samples of the same U units (1-D inputs are treated as one column).

    Returns
    -------
    numpy.ndarray, shape (U,)

    Notes
    -----
    W1 = integral over t in (0, 1) of |F_A^-1(t) - F_B^-1(t)| dt. For N == M the quantile functions step
    together and this is ``mean(|sort(A) - sort(B)|)``. Otherwise both are constant between the merged
    breakpoints {i/N} U {j/M}, so the integral is an exact finite sum (same value as
    ``scipy.stats.wasserstein_distance``, which integrates |F_A - F_B| over x instead).
    """
    a = _finite_array(A, "wasserstein1_columns", 2 if np.ndim(A) == 2 else 1, 1)
    b = _finite_array(B, "wasserstein1_columns", 2 if np.ndim(B) == 2 else 1, 1)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"wasserstein1_columns() needs the same number of columns, got shapes {a.shape} "
                         f"and {b.shape}")
    a, b = np.sort(a, axis=0), np.sort(b, axis=0)
    if len(a) == len(b):
        return np.mean(np.abs(a - b), axis=0)
    ia, ib, w = _quantile_pairing(len(a), len(b))
    return w @ np.abs(a[ia] - b[ib])
