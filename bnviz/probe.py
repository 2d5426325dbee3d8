"""Look inside the network without changing it: stages of every hidden layer, accuracy, gradient shift.

Probing must leave training exactly as it would be without it. So the stages are computed by a
functional re-implementation of each layer under ``torch.no_grad()``: no module's ``forward`` runs in
training mode (BatchNorm would update its running statistics), no random number is drawn (bn_noisy's
current scale and shift are read from its buffers), no gradient is touched. The tests check these
formulas against PyTorch's own modules and check that training is bit-identical with or without probes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from .model import MLP, NoisyBatchNorm

VIEWS = ("train", "eval")  # probe-set batch statistics, or BN's running statistics


def normalize(norm: nn.Module, z: torch.Tensor, view: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_hat, y) of normalization module ``norm`` applied to ``z`` (B, U), in the given view.

    BatchNorm (Ioffe & Szegedy 2015, Algorithm 1): x_hat = (z - mu_B) / sqrt(var_B + eps) with the batch's
    biased variance in the train view, the running estimates in the eval view; y = gamma * x_hat + beta.
    LayerNorm (Ba et al. 2016) uses the statistics of each example over its units in both views.
    """
    if isinstance(norm, nn.LayerNorm):
        mean = z.mean(dim=1, keepdim=True)
        var = z.var(dim=1, unbiased=False, keepdim=True)
        x_hat = (z - mean) / torch.sqrt(var + norm.eps)
        return x_hat, x_hat * norm.weight + norm.bias
    if view == "train":
        mean, var = z.mean(dim=0), z.var(dim=0, unbiased=False)
    else:
        mean, var = norm.running_mean, norm.running_var
    x_hat = (z - mean) / torch.sqrt(var + norm.eps)
    y = x_hat * norm.weight + norm.bias if norm.affine else x_hat
    if isinstance(norm, NoisyBatchNorm) and view == "train":
        y = y * norm.scale + norm.shift  # the latest training step's draw, as the next layer saw it
    return x_hat, y


@torch.no_grad()
def stages(net: MLP, u: torch.Tensor, view: str = "train") -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
    """Every hidden layer's stages on inputs ``u`` (N, D), and the logits, without side effects.

    Returns a list with one dict per hidden layer mapping stage name to an (N, units) tensor: ``x`` (Wu + b)
    and ``a`` (activation output) always; ``x_hat`` and ``y`` when the variant normalizes. With placement
    "after", normalization acts on ``a`` and the layer hands ``y`` on.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    out: list[dict[str, torch.Tensor]] = []
    for layer in net.layers:
        x = F.linear(u, layer.linear.weight, layer.linear.bias)  # (N, units)
        if layer.norm is None:
            a = layer.act(x)
            out.append({"x": x, "a": a})
            u = a
        elif layer.placement == "before":
            x_hat, y = normalize(layer.norm, x, view)
            a = layer.act(y)
            out.append({"x": x, "x_hat": x_hat, "y": y, "a": a})
            u = a
        else:
            a = layer.act(x)
            x_hat, y = normalize(layer.norm, a, view)
            out.append({"x": x, "x_hat": x_hat, "y": y, "a": a})
            u = y
    return out, F.linear(u, net.head.weight, net.head.bias)


def activation_input(layer_stages: dict[str, torch.Tensor], placement: str) -> str:
    """The stage the activation function receives: y before it (when normalized before), else x."""
    return "y" if ("y" in layer_stages and placement == "before") else "x"


@torch.no_grad()
def accuracy(net: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy in evaluation mode (running statistics, no noise), restoring the module's mode after."""
    was_training = net.training
    net.eval()
    try:
        return float((net(x).argmax(dim=1) == y).float().mean())
    finally:
        net.train(was_training)


def gradient_ics(net: MLP, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per hidden layer, the weight gradient G before and G' after the earlier layers take their step.

    Santurkar et al. (2018), Definition 2.1: internal covariate shift of layer i is ||G_i - G'_i||, where
    G'_i is the gradient of layer i's weights once layers 1..i-1 have been updated on the same batch
    (here with a plain gradient step of size ``lr``, whatever the optimizer). Works on deep copies in
    training mode, so the real network, its running statistics and its noise are untouched.
    """
    base = copy.deepcopy(net)
    loss = F.cross_entropy(base(xb), yb)
    params = [list(layer.parameters()) for layer in base.layers]
    grads = torch.autograd.grad(loss, [p for group in params for p in group])
    it = iter(grads)
    layer_grads = [[next(it) for _ in group] for group in params]
    out = []
    for i, layer in enumerate(base.layers):
        g = layer_grads[i][0]  # the weight gradient comes first in Linear's parameters
        shifted = copy.deepcopy(net)
        with torch.no_grad():
            for k in range(i):
                for p, gp in zip(shifted.layers[k].parameters(), layer_grads[k]):
                    p -= lr * gp
        loss2 = F.cross_entropy(shifted(xb), yb)
        (g2,) = torch.autograd.grad(loss2, [shifted.layers[i].linear.weight])
        out.append((g.detach(), g2.detach()))
    return out
