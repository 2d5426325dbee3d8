"""A convolutional layer's operations in numpy, as PyTorch computes them: the building blocks of a conv
network's probe pass (each checked against torch.nn.functional in tests/measure/test_npconv.py).

Shapes are (B, C, H, W) throughout. In a conv layer a *unit is a channel*: batch normalization
(BatchNorm2d) standardizes each channel over the batch and all positions (Ioffe & Szegedy 2015, Section
3.2: "so that different elements of the same feature map, at different locations, are normalized in the same
way"); layer normalization standardizes each example over its channels and positions, with a per-channel
scale and shift (GroupNorm with one group). Every result is computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from bnviz.config import BN_EPS, ExperimentConfig
from bnviz.measure import objective, shapes
from bnviz.measure.npnet import NumpyNet
from bnviz.stats.activations import activation, activation_grad

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


def conv3x3_backward(u: np.ndarray, weight: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss with respect to the input, weight and bias of :func:`conv3x3`, given its gradient
    ``g`` (B, C_out, H, W) with respect to the output: (du (B, C_in, H, W), dW (C_out, C_in, 3, 3), db (C_out,))."""
    u, weight, g = (np.asarray(a, dtype=np.float64) for a in (u, weight, g))
    padded = np.pad(u, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (B, C_in, H, W, 3, 3)
    d_weight = np.einsum("bohw,bchwij->ocij", g, windows, optimize=True)
    # The input's gradient is the output's gradient correlated with the kernel rotated by 180 degrees, with the
    # channel axes swapped: the transpose of a stride-1, padding-1 correlation.
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, 3, 3)
    return conv3x3(g, flipped), d_weight, g.sum(axis=(0, 2, 3))


def normalize_backward(g_y: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray, axes: tuple[int, ...],
                       gamma: np.ndarray | None = None, x_std: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients through :func:`normalize` in training (the statistics differentiated through, Ioffe & Szegedy
    2015, Section 3): (d input, d gamma (C,), d beta (C,)) from the gradient ``g_y`` with respect to y.
    With ``x_std`` (a shape variant: x_hat is its rank map), the input's gradient is straight-through, as if
    x_hat were x_std; gamma's still uses x_hat."""
    g_y = np.asarray(g_y, dtype=np.float64)
    d_gamma = (g_y * x_hat).sum(axis=(0, 2, 3))
    d_beta = g_y.sum(axis=(0, 2, 3))
    g = g_y * np.asarray(gamma, dtype=np.float64).reshape(1, -1, 1, 1) if gamma is not None else g_y
    xs = x_hat if x_std is None else x_std
    d_in = inv_std * (g - g.mean(axis=axes, keepdims=True) - xs * (g * xs).mean(axis=axes, keepdims=True))
    return d_in, d_gamma, d_beta


def shape_normalize(kind: str, z: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                    running: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_hat, y, 1 / sqrt(var + eps) and x_std of a shape variant on (B, C, H, W): each channel standardized
    over examples and positions as BatchNorm2d, then x_hat its rank map (measure.shapes); with ``running``
    (C, K), the running quantiles, the eval view's map instead."""
    z = np.asarray(z, dtype=np.float64)
    x_std, _, inv_std = normalize(z, BATCH_AXES)
    series = channel_series(z)
    flat = shapes.rank_map(kind, series) if running is None else shapes.eval_map(kind, series, running)
    x_hat = np.moveaxis(flat.reshape(z.shape[1], z.shape[0], *z.shape[2:]), 0, 1)
    per_channel = (1, -1, 1, 1)
    y = x_hat * np.asarray(gamma, dtype=np.float64).reshape(per_channel) + np.asarray(
        beta, dtype=np.float64).reshape(per_channel)
    return x_hat, y, inv_std, x_std


class NumpyConvNet(NumpyNet):
    """One variant's conv network (training.model.ConvNet) from its weights, in numpy: stages, logits and
    gradients, in float64. State keys as ConvNet's: ``layers.{i}.conv.{weight, bias}``, ``layers.{i}.norm.*``,
    ``head.{weight, bias}``."""

    WEIGHT = "conv"

    def __init__(self, cfg: ExperimentConfig, token: str, state: Mapping[str, np.ndarray]) -> None:
        super().__init__(cfg, token, state)
        self.axes = EXAMPLE_AXES if self.kind == "ln" else BATCH_AXES

    def _normalize(self, i: int, z: np.ndarray, view: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """x_hat, y, 1 / std and (a shape variant's) x_std of layer ``i``'s normalization on ``z``."""
        if shapes.is_shape(self.kind):
            return shape_normalize(self.kind, z, self._need(i, "norm.weight"), self._need(i, "norm.bias"),
                                   self._need(i, "norm.running_quantiles") if view == "eval" else None)
        running = view == "eval" and self.kind != "ln"
        x_hat, y, inv_std = normalize(z, self.axes, self._p(i, "norm.weight"), self._p(i, "norm.bias"),
                                      self._p(i, "norm.running_mean") if running else None,
                                      self._p(i, "norm.running_var") if running else None)
        if self.kind == "bn_noisy" and view == "train":
            y = y * self._need(i, "norm.scale")[None, :, None, None] + self._need(i, "norm.shift")[None, :, None, None]
        return x_hat, y, inv_std, None

    def forward(self, u: np.ndarray, view: str = "train") -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
        """Every conv layer's stages (each (N, C, H, W)) on flat inputs ``u`` (N, side * side), and the logits."""
        stages, _, logits = self._forward(u, view)
        return stages, logits

    def logits_eval(self, u: np.ndarray) -> np.ndarray:
        """The network in evaluation mode (BN's running statistics, no noise), as for test accuracy."""
        return self._forward(u, "eval")[2]

    def _forward(self, u: np.ndarray, view: str):
        side = math.isqrt(u.shape[1])
        h = np.asarray(u, dtype=np.float64).reshape(-1, 1, side, side)
        stages: list[dict[str, np.ndarray]] = []
        # each layer's input, and its 1 / std and x_std (None but for a shape variant) if normalized
        cache: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray | None] | None]] = []
        for i in range(self.depth):
            x = conv3x3(h, self._need(i, "conv.weight"), self._p(i, "conv.bias"))
            if self.kind == "none":
                a = activation(self.act, x)
                stages.append({"x": x, "a": a})
                cache.append((h, None))
                h = a
            elif self.placement == "before":
                x_hat, y, inv_std, x_std = self._normalize(i, x, view)
                a = activation(self.act, y)
                stages.append({"x": x, "x_hat": x_hat, "y": y, "a": a})
                cache.append((h, (inv_std, x_std)))
                h = a
            else:
                a = activation(self.act, x)
                x_hat, y, inv_std, x_std = self._normalize(i, a, view)
                stages.append({"x": x, "x_hat": x_hat, "y": y, "a": a})
                cache.append((h, (inv_std, x_std)))
                h = y
        pooled = h.mean(axis=(2, 3))  # (N, C)
        logits = pooled @ self.state["head.weight"].T.astype(np.float64) + self.state["head.bias"]
        return stages, (cache, h, pooled), logits

    def gradients(self, u: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss (objective.loss) on the batch (u, targets), in training mode, by parameter name."""
        stages, (cache, h, pooled), logits = self._forward(u, "train")
        g_out = objective.loss_grad(self.task, logits, targets)
        grads = {"head.weight": g_out.T @ pooled, "head.bias": g_out.sum(axis=0)}
        g_pooled = g_out @ self.state["head.weight"].astype(np.float64)  # (N, C)
        g = np.broadcast_to(g_pooled[:, :, None, None] / (h.shape[2] * h.shape[3]), h.shape)
        for i in reversed(range(self.depth)):
            h_in, norm = cache[i]
            st = stages[i]
            if norm is None:
                gx = g * activation_grad(self.act, st["x"], st["a"])
            elif self.placement == "before":
                gy = g * activation_grad(self.act, st["y"], st["a"])
                gx = self._norm_backward(i, st["x_hat"], norm, gy, grads)
            else:
                ga = self._norm_backward(i, st["x_hat"], norm, g, grads)
                gx = ga * activation_grad(self.act, st["x"], st["a"])
            g, grads[f"layers.{i}.conv.weight"], grads[f"layers.{i}.conv.bias"] = conv3x3_backward(
                h_in, self._need(i, "conv.weight"), gx)
        return grads

    def _norm_backward(self, i: int, x_hat, norm, gy, grads: dict) -> np.ndarray:
        inv_std, x_std = norm
        if self.kind == "bn_noisy":
            gy = gy * self._need(i, "norm.scale")[None, :, None, None]  # the shift adds a constant
        gamma = self._p(i, "norm.weight")
        d_in, d_gamma, d_beta = normalize_backward(gy, x_hat, inv_std, self.axes, gamma, x_std)
        if gamma is not None:
            grads[f"layers.{i}.norm.weight"], grads[f"layers.{i}.norm.bias"] = d_gamma, d_beta
        return d_in
