"""The activations, their derivatives, and saturation: where an activation's gradient has (nearly) vanished.

:func:`activation` and :func:`activation_grad` are the one definition of each activation and its derivative:
the numpy networks of ``bnviz.measure`` run their forward and backward passes with them, and
:func:`saturation` reads the same derivative. scipy.special (for GELU's erf) is imported on first use: the
training process imports this module but never needs scipy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from bnviz.stats._validate import _finite_array

_SQRT1_2 = 1.0 / math.sqrt(2.0)


def _erf(z: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(z)


def activation(name: str, z: np.ndarray) -> np.ndarray:
    """The elementwise activation ``name`` (config.ACTIVATIONS) in the dtype of ``z``."""
    if name == "sigmoid":  # as torch.sigmoid; 1 / (1 + exp(-z)) vectorizes (3x faster than scipy's expit)
        with np.errstate(over="ignore"):  # exp(-z) = inf for z < -88 (float32): the limit 0 is exact
            return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "gelu":  # exact erf form, as torch.nn.functional.gelu's default
        return z * 0.5 * (1 + _erf(z * z.dtype.type(_SQRT1_2)))
    if name == "identity":
        return z
    raise ValueError(f"unknown activation {name!r}")


def activation_grad(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d act(z) / dz, given the input ``z`` and the output ``a = act(z)``, in the dtype of ``z``.

    The formulas are PyTorch's autograd ones, so that the numpy backward pass rounds as PyTorch does: sigmoid
    and tanh from the output (a (1 - a) and 1 - a**2, as torch's sigmoid and tanh backward), ReLU and GELU
    from the input. For sigmoid, 1 - a costs relative precision where it saturates (an error of about
    eps / f'(z): 1e-14 in float64 at :func:`saturation`'s default threshold), far below what a figure shows.
    """
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (z > 0).astype(z.dtype)  # PyTorch's convention: 0 at z = 0
    if name == "gelu":  # d/dz z Phi(z) = Phi(z) + z phi(z)
        return 0.5 * (1 + _erf(z * _SQRT1_2)) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")


def _gradient_of_input(name: str) -> Callable[[np.ndarray], np.ndarray]:
    def grad(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return activation_grad(name, z, activation(name, z))

    return grad


# f'(z) of each activation as a function of its input alone, in float64, by activation_grad: so, as in PyTorch,
# sigmoid's is 0 once 1 - a rounds to 0 (z above about 36.7) and GELU's is NaN at z = +-inf (inf * 0).
ACTIVATION_GRADIENTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    name: _gradient_of_input(name) for name in ("sigmoid", "tanh", "relu", "gelu", "identity")
}
# Largest |f'|, at the analytic maximiser: sigmoid and tanh at 0; GELU where (Phi + z*phi)' = phi(z)(2 - z**2)
# vanishes, z = sqrt(2), giving 1.1289 (its negative lobe only reaches -0.1289, at z = -sqrt(2)).
_GRADIENT_ARGMAX = {"sigmoid": 0.0, "tanh": 0.0, "relu": 1.0, "gelu": math.sqrt(2.0), "identity": 0.0}


@functools.cache
def _gradient_max(name: str) -> float:
    """max |f'| of activation ``name``, evaluated at its maximiser (on first use: it needs scipy.special)."""
    return float(ACTIVATION_GRADIENTS[name](np.array(_GRADIENT_ARGMAX[name])))


def saturation(z, activation: str, threshold: float = 0.1):
    """Fraction of pre-activation values at which the activation's gradient has (nearly) vanished.

    Parameters
    ----------
    z : array_like
        Inputs of the activation (pre-activations), finite. 1-D: one fraction over all values; 2-D
        (N, U): one fraction per column (axis 0). Pass ``z.ravel()`` for the fraction pooled over units.
    activation : str
        One of :data:`ACTIVATION_GRADIENTS`.
    threshold : float
        In (0, 1]: a value is saturated where ``|f'(z)| < threshold * max |f'|``.

    Returns
    -------
    float or numpy.ndarray

    Notes
    -----
    max |f'| is 0.25 for sigmoid, 1 for tanh and ReLU, 1.1289 for GELU (at z = sqrt(2)); identity
    is never saturated. As sigmoid'(z) = 1 / (4 cosh(z/2)**2) and tanh'(z) = 1 / cosh(z)**2, sigmoid is
    saturated for |z| > 2 arccosh(sqrt(1/threshold)) (3.64 at 0.1) and tanh for half that (1.82). ReLU is
    "saturated" wherever z <= 0 (dead gradient). The magnitude |f'| is used because it is what scales the
    back-propagated gradient; it only matters for GELU, whose derivative is slightly negative for z < -0.75.
    Ioffe & Szegedy (2015) motivate batch normalization partly by keeping sigmoid inputs out of these regions.

    References
    ----------
    Ioffe, S. & Szegedy, C. (2015). Batch normalization: accelerating deep network training by reducing
    internal covariate shift. ICML, Sec. 1.
    Hendrycks, D. & Gimpel, K. (2016). Gaussian error linear units (GELUs). arXiv:1606.08415.
    """
    if activation not in ACTIVATION_GRADIENTS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATION_GRADIENTS)}")
    if not 0 < threshold <= 1:
        raise ValueError(f"saturation() needs 0 < threshold <= 1, got {threshold}")
    a = np.asarray(z, dtype=np.float64)
    a = _finite_array(a, "saturation", a.ndim if a.ndim >= 1 else 1, 1)
    saturated = np.abs(ACTIVATION_GRADIENTS[activation](a)) < threshold * _gradient_max(activation)
    frac = saturated.mean(axis=0)
    return float(frac) if a.ndim == 1 else frac
