"""The MLP of model.py re-implemented in numpy from its weights: the probe's forward pass and backprop.

The statistics worker needs the stages of every hidden layer on the probe set, the accuracies and, now and
then, Santurkar et al.'s gradient shift. Computing them in numpy from a copy of the weights means the
worker process never imports PyTorch (about 190 MB and 2.5 s of start-up less, per training), and nothing
here can touch the real network: no running statistics, random streams, gradients or optimizer state.
The tests check every formula against PyTorch's own modules and autograd.

A network is described by its variant token, the config and a ``state_dict`` turned into numpy arrays
(keys as in model.MLP: ``layers.{i}.linear.weight`` (out, in), ``layers.{i}.norm.{weight, bias,
running_mean, running_var, scale, shift, running_quantiles}``, ``head.weight``, ``head.bias``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bnviz.config import BN_EPS, ExperimentConfig, split_variant
from bnviz.measure import objective, shapes
from bnviz.stats.activations import activation, activation_grad  # one definition, shared with saturation


@dataclass
class _Norm:
    """What one normalization layer computed on a batch, kept for the backward pass."""

    x_hat: np.ndarray
    y: np.ndarray
    inv_std: np.ndarray  # 1 / sqrt(var + eps), per unit (BN) or per example (LN), broadcastable
    axis: int  # 0: statistics over the batch (BN); 1: over the units of one example (LN)
    x_std: np.ndarray  # what the backward pass differentiates: x_hat, or a shape variant's standardized input


class NumpyNet:
    """What every numpy network reads from the config and its variant token, and its state dict's lookup."""

    WEIGHT = ""  # the state's name of a hidden layer's weight map: layers.{i}.{WEIGHT}.weight

    def __init__(self, cfg: ExperimentConfig, token: str, state: Mapping[str, np.ndarray]) -> None:
        self.kind, _ = split_variant(token)
        self.placement = cfg.placement_of(token)
        self.act = cfg.activation
        self.task = cfg.task
        self.depth = len(cfg.widths)
        self.state = state

    def _p(self, i: int, name: str) -> np.ndarray | None:
        return self.state.get(f"layers.{i}.{name}")

    def _need(self, i: int, name: str) -> np.ndarray:
        """A parameter every layer of this variant has: its weight map, BN's running statistics, noise."""
        return self.state[f"layers.{i}.{name}"]


class NumpyMLP(NumpyNet):
    """One variant's network, from its weights, in numpy: stages, logits and gradients."""

    WEIGHT = "linear"

    def __init__(self, cfg: ExperimentConfig, token: str, state: Mapping[str, np.ndarray]) -> None:
        super().__init__(cfg, token, state)
        # Every stage is the exact (float64) result of its operation on the previous stage, rounded to the
        # network's precision: the float32 network, without the rounding noise of float32 accumulation, so
        # that e.g. a constant input gives exactly constant stages (OpenBLAS's float32 products differ from
        # row to row in the last bits).
        self.dtype = state["head.weight"].dtype

    def _normalize(self, i: int, z: np.ndarray, view: str) -> _Norm:
        """x_hat and y of layer ``i``'s normalization on ``z`` (B, U).

        BatchNorm (Ioffe & Szegedy 2015, Algorithm 1): x_hat = (z - mu_B) / sqrt(var_B + eps) with the
        batch's biased variance in the train view, the running estimates in the eval view; y = gamma * x_hat
        + beta; noisy BN then maps y to scale * y + shift (its latest draw, train view only). LayerNorm (Ba
        et al. 2016) uses the statistics of each example over its units in both views. A shape variant
        replaces BN's x_hat by its rank map (train view) or the map through its running quantiles (eval view).
        """
        axis = 1 if self.kind == "ln" else 0
        z = z.astype(np.float64)
        if shapes.is_shape(self.kind):
            return self._shape(i, z, view)
        if axis == 0 and view == "eval":
            mean, var = self._need(i, "norm.running_mean"), self._need(i, "norm.running_var")
        else:
            mean = z.mean(axis=axis, keepdims=True)
            var = np.square(z - mean).mean(axis=axis, keepdims=True)
        inv_std = 1 / np.sqrt(var + BN_EPS)
        x_hat = (z - mean) * inv_std
        gamma, beta = self._p(i, "norm.weight"), self._p(i, "norm.bias")
        y = x_hat * gamma + beta if gamma is not None else x_hat
        if self.kind == "bn_noisy" and view == "train":
            y = y * self._need(i, "norm.scale") + self._need(i, "norm.shift")
        x_hat = self._round(x_hat)
        return _Norm(x_hat, self._round(y), inv_std, axis, x_hat)

    def _shape(self, i: int, z: np.ndarray, view: str) -> _Norm:
        """A shape variant's normalization of ``z`` (B, U): x_std as BN, x_hat from measure.shapes."""
        if view == "eval":
            x_hat = shapes.eval_map(self.kind, z.T, self._need(i, "norm.running_quantiles")).T
            x_std, inv_std = x_hat, np.ones((1, z.shape[1]))
        else:
            mean = z.mean(axis=0, keepdims=True)
            inv_std = 1 / np.sqrt(np.square(z - mean).mean(axis=0, keepdims=True) + BN_EPS)
            x_std = (z - mean) * inv_std
            x_hat = shapes.rank_map(self.kind, z.T).T
        y = x_hat * self._need(i, "norm.weight") + self._need(i, "norm.bias")
        return _Norm(self._round(x_hat), self._round(y), inv_std, 0, x_std)

    def _round(self, a: np.ndarray) -> np.ndarray:
        """``a`` in the network's own precision (float32 for a trained network's weights)."""
        return a.astype(self.dtype, copy=False)

    def _linear(self, u: np.ndarray, name: str, exact: bool = True) -> np.ndarray:
        w, b = self.state[name + ".weight"], self.state[name + ".bias"]
        if not exact:  # the native product: 4x faster in float32, rounding that varies from row to row
            return u @ w.T + b
        return self._round(u.astype(np.float64) @ w.T.astype(np.float64) + b)

    def _act(self, z: np.ndarray) -> np.ndarray:
        return activation(self.act, z)  # elementwise: the network's own precision is exact enough

    def forward(self, u: np.ndarray, view: str = "train") -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
        """Every hidden layer's stages on inputs ``u`` (N, D), and the logits (N, classes).

        One dict per hidden layer maps stage name to an (N, units) array: ``x`` (Wu + b) and ``a`` (the
        activation's output) always, ``x_hat`` and ``y`` when the variant normalizes. With placement
        "after", normalization acts on ``a`` and the layer hands ``y`` on.
        """
        out, _, logits = self._forward(u, view)
        return out, logits

    def _forward(self, u: np.ndarray, view: str, exact: bool = True
                 ) -> tuple[list[dict[str, np.ndarray]], list[tuple[np.ndarray, _Norm | None]], np.ndarray]:
        """Stages, what the backward pass needs of each layer (its input, its normalization), logits."""
        out: list[dict[str, np.ndarray]] = []
        cache: list[tuple[np.ndarray, _Norm | None]] = []
        for i in range(self.depth):
            x = self._linear(u, f"layers.{i}.linear", exact)  # (N, units)
            if self.kind == "none":
                a = self._act(x)
                out.append({"x": x, "a": a})
                cache.append((u, None))
                u = a
            elif self.placement == "before":
                n = self._normalize(i, x, view)
                a = self._act(n.y)
                out.append({"x": x, "x_hat": n.x_hat, "y": n.y, "a": a})
                cache.append((u, n))
                u = a
            else:
                a = self._act(x)
                n = self._normalize(i, a, view)
                out.append({"x": x, "x_hat": n.x_hat, "y": n.y, "a": a})
                cache.append((u, n))
                u = n.y
        cache.append((u, None))
        return out, cache, self._linear(u, "head", exact)

    def logits_eval(self, u: np.ndarray) -> np.ndarray:
        """The network in evaluation mode (BN's running statistics, no noise), as for test accuracy: only
        the arg max counts, so the products are the fast native ones."""
        _, _, logits = self._forward(u, "eval", exact=False)
        return logits

    def gradients(self, u: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss (objective.loss) on the batch (u, targets), in training mode, by parameter name.

        Backpropagation by hand; the BN formula is Ioffe & Szegedy (2015), Sec. 3 (the batch statistics are
        differentiated through); a shape variant's gradient is straight-through (BN's, with its x_std).
        Keys as in the state dict, for the parameters that train.
        """
        stages, cache, logits = self._forward(u, "train")
        g_out = objective.loss_grad(self.task, logits, targets)
        grads: dict[str, np.ndarray] = {}
        h_in, _ = cache[-1]
        grads["head.weight"], grads["head.bias"] = g_out.T @ h_in, g_out.sum(axis=0)
        g = g_out @ self.state["head.weight"]  # d loss / d (last hidden layer's output)
        for i in reversed(range(self.depth)):
            u_in, n = cache[i]
            st = stages[i]
            if n is None:
                gx = g * activation_grad(self.act, st["x"], st["a"])
            elif self.placement == "before":
                gy = g * activation_grad(self.act, st["y"], st["a"])
                gx = self._norm_backward(i, n, gy, grads)
            else:
                ga = self._norm_backward(i, n, g, grads)
                gx = ga * activation_grad(self.act, st["x"], st["a"])
            grads[f"layers.{i}.linear.weight"] = gx.T @ u_in
            grads[f"layers.{i}.linear.bias"] = gx.sum(axis=0)
            g = gx @ self._need(i, "linear.weight")
        return grads

    def _norm_backward(self, i: int, n: _Norm, gy: np.ndarray, grads: dict) -> np.ndarray:
        """Gradient with respect to the normalization's input; fills in gamma's and beta's gradients."""
        if self.kind == "bn_noisy":
            gy = gy * self._need(i, "norm.scale")  # the shift adds a constant: no gradient through it
        gamma = self._p(i, "norm.weight")
        if gamma is not None:
            grads[f"layers.{i}.norm.weight"] = (gy * n.x_hat).sum(axis=0)
            grads[f"layers.{i}.norm.bias"] = gy.sum(axis=0)
            gy = gy * gamma
        # x_std = (z - mean) * inv_std with mean and var over ``axis`` (m values):
        # dz = inv_std * (g - mean(g) - x_std * mean(g * x_std)), means over the same axis.
        ax = n.axis
        return n.inv_std * (gy - gy.mean(axis=ax, keepdims=True)
                            - n.x_std * (gy * n.x_std).mean(axis=ax, keepdims=True))


def layer_params(state: Mapping[str, np.ndarray], i: int, weight: str = "linear") -> list[str]:
    """Names of hidden layer ``i``'s trainable parameters: its weight map (``linear`` or ``conv``) and, if
    learned, gamma and beta."""
    names = [f"layers.{i}.{weight}.weight", f"layers.{i}.{weight}.bias"]
    return names + [f"layers.{i}.norm.{p}" for p in ("weight", "bias") if f"layers.{i}.norm.{p}" in state]


def gradient_ics(cfg: ExperimentConfig, token: str, state: Mapping[str, np.ndarray], u: np.ndarray,
                 targets: np.ndarray, lr: float, net_class=NumpyMLP) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per hidden layer, the weight gradient G before and G' after the earlier layers take their step.

    Santurkar et al. (2018), Definition 2.1: internal covariate shift of layer i is ||G_i - G'_i||, where
    G'_i is the gradient of layer i's weights once layers 1..i-1 have been updated on the same batch, here
    with a plain gradient step of size ``lr`` whatever the optimizer. Computed in float64 (the difference of
    two nearby gradients would otherwise be mostly float32 rounding); works on copies of ``state``.
    ``net_class``: NumpyMLP, or npconv.NumpyConvNet for a conv network (its layers' weights are 3x3 kernels).
    """
    state = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    u = np.asarray(u, dtype=np.float64)
    base = net_class(cfg, token, state).gradients(u, targets)
    out = []
    for i in range(len(cfg.widths)):
        key = f"layers.{i}.{net_class.WEIGHT}.weight"
        shifted = dict(state)
        for k in range(i):
            for name in layer_params(state, k, net_class.WEIGHT):
                shifted[name] = state[name] - lr * base[name]
        after = net_class(cfg, token, shifted).gradients(u, targets) if i else base
        out.append((base[key], after[key]))
    return out
