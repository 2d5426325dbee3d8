"""bnviz.stats.activations: derivatives against finite differences of independently written activations,
saturation against its closed-form thresholds."""

import numpy as np
import pytest
import scipy.optimize
import scipy.special

from bnviz import stats

ACTIVATIONS = {  # independent definitions of the activations themselves
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
    "gelu": lambda z: 0.5 * z * (1 + scipy.special.erf(z / np.sqrt(2))), "identity": lambda z: z}


def fd(name, z, h=1e-5):
    f = ACTIVATIONS[name]
    return (f(z + h) - f(z - h)) / (2 * h)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_gradients_match_finite_differences(name):
    z = np.r_[np.linspace(-8, 8, 1601), np.random.default_rng(1).normal(0, 3, 500)]
    z = z[np.abs(z) > 1e-3] if name == "relu" else z  # kink of ReLU
    np.testing.assert_allclose(stats.ACTIVATION_GRADIENTS[name](z), fd(name, z), atol=1e-7)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_saturation_matches_finite_difference_definition(name):
    z = np.random.default_rng(2).normal(0, 4, (2000, 3))
    g_max = np.max(np.abs(fd(name, np.linspace(-5, 5, 200_001))))  # grid step 5e-5: max to ~1e-9
    g = np.abs(fd(name, z))
    clear = np.abs(g - 0.1 * g_max) > 1e-6  # leave out values within FD error of the threshold
    expected = np.array([np.mean((g < 0.1 * g_max)[clear[:, j], j]) for j in range(3)])
    got = stats.saturation(z, name)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, atol=np.max(1 - clear.mean(axis=0)) + 1e-12)
    assert stats.saturation(z.ravel(), name) == pytest.approx(np.mean(got))
    assert isinstance(stats.saturation(z[:, 0], name), float)


def test_saturation_known_values():
    # sigmoid'(z) = 1/(4 cosh(z/2)^2) < 0.1 * 1/4  <=>  |z| > 2 arccosh(sqrt(10)); checked numerically too.
    z_sig = 2 * np.arccosh(np.sqrt(10))
    sig = ACTIVATIONS["sigmoid"]
    assert z_sig == pytest.approx(scipy.optimize.brentq(lambda t: sig(t) * (1 - sig(t)) - 0.025, 0, 10), abs=1e-9)
    d = 1e-6
    assert stats.saturation([z_sig + d, -z_sig - d], "sigmoid") == 1.0
    assert stats.saturation([z_sig - d, -z_sig + d, 0.0], "sigmoid") == 0.0
    z_tanh = np.arccosh(np.sqrt(10))  # tanh'(z) = 1/cosh(z)^2 < 0.1
    assert stats.saturation([z_tanh + d, z_tanh - d, -z_tanh - d, 0.0], "tanh") == 0.5
    assert stats.saturation([-1.0, 0.0, 0.5, 2.0], "relu") == 0.5
    assert stats.saturation(np.linspace(-1e3, 1e3, 101), "identity") == 0.0
    # GELU's derivative peaks at z = sqrt(2) with value Phi(sqrt 2) + sqrt 2 * phi(sqrt 2) ~ 1.1289: with
    # threshold 1 only the exact maximiser is not "below the max".
    assert stats.saturation([np.sqrt(2)], "gelu", threshold=1.0) == 0.0
    assert stats.saturation([np.sqrt(2) - 0.01, np.sqrt(2) + 0.01], "gelu", threshold=1.0) == 1.0
    assert stats.saturation([-10.0, 10.0], "gelu") == 0.5


def test_saturation_errors():
    with pytest.raises(ValueError, match="sigmoid, tanh, relu, gelu, identity"):
        stats.saturation([0.0], "softplus")
    with pytest.raises(ValueError, match="finite"):
        stats.saturation([0.0, np.nan], "tanh")
