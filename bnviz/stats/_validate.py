"""Input checks shared by the statistics modules: one float64 array, its shape and finiteness, or a plain error."""

from __future__ import annotations

import numpy as np


def _finite_array(x, func: str, ndim: int | None, min_len: int) -> np.ndarray:
    """``x`` as a float64 array, checked for dimensionality, length along axis 0 and finiteness."""
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        hint = " (use describe() for 1-D data or pass x[:, None])" if ndim == 2 and a.ndim == 1 else ""
        raise ValueError(f"{func}() needs a {ndim}-D array, got an array of shape {a.shape}{hint}")
    if ndim is None:
        a = a.ravel()
    n = a.shape[0] if a.ndim else 0
    if n < min_len:
        what = "values per column" if a.ndim == 2 else "values"
        raise ValueError(f"{func}() needs at least {min_len} {what}, got {n}")
    if not np.isfinite(a).all():
        n_nan = int(np.isnan(a).sum())
        n_inf = int(a.size - n_nan - np.isfinite(a).sum())
        raise ValueError(f"{func}() needs finite values, got {n_nan} NaN and {n_inf} infinite value(s)")
    return a
