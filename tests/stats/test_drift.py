"""bnviz.stats.drift against scipy's Wasserstein distance."""

import numpy as np
import pytest
import scipy.stats

from bnviz import stats


@pytest.mark.parametrize("n, m", [(512, 512), (7, 5), (512, 300), (3, 1000), (1, 4)])
def test_wasserstein_matches_scipy(n, m):
    r = np.random.default_rng(n * 1000 + m)
    A = np.column_stack([r.standard_normal(n), r.integers(0, 3, n), r.exponential(size=n)])
    B = np.column_stack([r.standard_normal(m) + 0.5, r.integers(0, 4, m), 2 * r.exponential(size=m)])
    expected = [scipy.stats.wasserstein_distance(A[:, j], B[:, j]) for j in range(3)]
    np.testing.assert_allclose(stats.wasserstein1_columns(A, B), expected, rtol=1e-10, atol=1e-14)


def test_wasserstein_shape_errors():
    with pytest.raises(ValueError, match="same number of columns"):
        stats.wasserstein1_columns(np.zeros((5, 2)), np.zeros((5, 3)))
