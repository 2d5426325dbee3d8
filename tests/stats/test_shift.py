"""bnviz.stats.shift against the norms and cosine computed directly."""

import math

import numpy as np
import pytest

from bnviz import stats


def test_gradient_shift():
    assert stats.gradient_shift([1.0, 0.0], [0.0, 1.0]) == (pytest.approx(math.sqrt(2)), pytest.approx(0.0))
    assert stats.gradient_shift([1.0, 2.0], [-2.0, -4.0]) == (pytest.approx(math.sqrt(45)), pytest.approx(-1.0))
    G = np.random.default_rng(3).standard_normal((4, 5))
    Gp = G + 0.1 * np.random.default_rng(4).standard_normal((4, 5))
    l2, cos = stats.gradient_shift(G, Gp)
    assert l2 == pytest.approx(np.sqrt(np.sum((G - Gp) ** 2)), rel=1e-12)
    assert cos == pytest.approx(np.sum(G * Gp) / np.sqrt(np.sum(G ** 2) * np.sum(Gp ** 2)), rel=1e-12)
    assert stats.gradient_shift(np.zeros(3), np.zeros(3)) == (0.0, 1.0)
    assert stats.gradient_shift(np.zeros(3), [3.0, 4.0, 0.0]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        stats.gradient_shift(np.zeros(3), np.zeros(4))
