"""Gradient shift: how much a layer's gradient moves when the layers before it take their step."""

from __future__ import annotations

import numpy as np


def gradient_shift(G, G_prime) -> tuple[float, float]:
    """Gradient-based internal covariate shift of one layer (Santurkar et al. 2018, Def. 2.1).

    Parameters
    ----------
    G : array_like
        Gradient of the loss w.r.t. a layer's parameters, computed before the preceding layers are
        updated. Any shape; flattened.
    G_prime : array_like
        The same gradient computed after the preceding layers are updated (same shape). Both returned
        measures are symmetric in G and G'.

    Returns
    -------
    (l2, cosine) : tuple of float
        ``||G - G'||_2`` (Frobenius norm of the difference) and the cosine similarity
        ``<G, G'> / (||G|| ||G'||)``. If a vector is zero the cosine is undefined; it is reported as 1.0
        when both are zero (identical gradients) and 0.0 when only one is (no shared direction).

    Notes
    -----
    Santurkar et al. compare the gradient G of layer i's parameters before the update of the preceding
    layers with G' computed after it; a large ||G - G'|| or a low cosine means the layer's optimization
    problem moves under it. Ioffe & Szegedy (2015) introduced the distributional notion of ICS that this
    operationalizes.

    References
    ----------
    Santurkar, S., Tsipras, D., Ilyas, A. & Madry, A. (2018). How does batch normalization help
    optimization? NeurIPS, Sec. 2.2.
    Ioffe, S. & Szegedy, C. (2015). Batch normalization: accelerating deep network training by reducing
    internal covariate shift. ICML.
    """
    g = np.asarray(G, dtype=np.float64)
    gp = np.asarray(G_prime, dtype=np.float64)
    if g.shape != gp.shape:
        raise ValueError(f"gradient_shift() needs arrays of the same shape, got {g.shape} and {gp.shape}")
    g, gp = g.ravel(), gp.ravel()
    if not (np.isfinite(g).all() and np.isfinite(gp).all()):
        raise ValueError("gradient_shift() needs finite gradients, got NaN or infinity")
    l2 = float(np.linalg.norm(g - gp))
    ng, ngp = np.linalg.norm(g), np.linalg.norm(gp)
    if ng == 0 or ngp == 0:
        return l2, 1.0 if ng == ngp else 0.0
    cos = float(np.dot(g / ng, gp / ngp))  # normalise first: the raw dot product could overflow
    return l2, min(1.0, max(-1.0, cos))
