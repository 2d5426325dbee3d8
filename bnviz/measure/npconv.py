"""A convolutional layer's operations in numpy, as PyTorch computes them: the building blocks of a conv
network's probe pass (each checked against torch.nn.functional in tests/measure/test_npconv.py).

Shapes are (B, C, H, W) throughout. In a conv layer a *unit is a channel*: batch normalization
(BatchNorm2d) standardizes each channel over the batch and all positions (Ioffe & Szegedy 2015, Section
3.2: "so that different elements of the same feature map, at different locations, are normalized in the same
way"); layer normalization standardizes each example over its channels and positions, with a per-channel
scale and shift (GroupNorm with one group). Every result is computed in float64.
"""

from __future__ import annotations

import numpy as np

from bnviz.config import BN_EPS

BATCH_AXES = (0, 2, 3)  # BatchNorm2d: per channel, over examples and positions
EXAMPLE_AXES = (1, 2, 3)  # layer norm: per example, over channels and positions


def conv3x3(u: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """(B, C_in, H, W) -> (B, C_out, H, W): ``torch.nn.Conv2d(C_in, C_out, 3, padding=1)`` (a cross-correlation
    with zero padding 1, stride 1), with ``weight`` (C_out, C_in, 3, 3) and ``bias`` (C_out,)."""
    padded = np.pad(np.asarray(u, dtype=np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (B, C_in, H, W, 3, 3)
    out = np.einsum("bchwij,ocij->bohw", windows, np.asarray(weight, dtype=np.float64), optimize=True)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out


def normalize(z: np.ndarray, axes: tuple[int, ...], gamma: np.ndarray | None = None,
              beta: np.ndarray | None = None, mean: np.ndarray | None = None,
              var: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x_hat, y = gamma * x_hat + beta, and 1 / sqrt(var + eps) of a (B, C, H, W) tensor standardized over
    ``axes`` (:data:`BATCH_AXES` or :data:`EXAMPLE_AXES`), with the biased variance as PyTorch's normalization
    uses in training. Given ``mean`` and ``var`` per channel (BN's running estimates: the eval view), those
    are used instead. ``gamma`` and ``beta`` are per channel (C,); without them y = x_hat."""
    z = np.asarray(z, dtype=np.float64)
    per_channel = (1, -1, 1, 1)
    if mean is not None and var is not None:
        mu = np.asarray(mean, dtype=np.float64).reshape(per_channel)
        sigma2 = np.asarray(var, dtype=np.float64).reshape(per_channel)
    else:
        mu = z.mean(axis=axes, keepdims=True)
        sigma2 = np.square(z - mu).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(sigma2 + BN_EPS)
    x_hat = (z - mu) * inv_std
    y = x_hat
    if gamma is not None:
        y = x_hat * np.asarray(gamma, dtype=np.float64).reshape(per_channel)
    if beta is not None:
        y = y + np.asarray(beta, dtype=np.float64).reshape(per_channel)
    return x_hat, y, inv_std


def channel_series(z: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (C, B*H*W): each channel's values over the examples and positions, the series whose
    distribution a conv unit's statistics describe (what BatchNorm2d normalizes together)."""
    z = np.asarray(z)
    return np.moveaxis(z, 1, 0).reshape(z.shape[1], -1)
