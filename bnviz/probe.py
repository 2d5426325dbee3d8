"""Look inside the network without changing it: stages of every hidden layer, accuracy, gradient shift.

Probing must leave training exactly as it would be without it. So the stages are computed by a
functional re-implementation of each layer under ``torch.no_grad()``: no module's ``forward`` runs in
training mode (BatchNorm would update its running statistics), no random number is drawn (bn_noisy's
current scale and shift are read from its buffers), no gradient is touched. The tests check these
formulas against PyTorch's own modules and check that training is bit-identical with or without probes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import data as data_mod
from . import stats
from .config import ExperimentConfig
from .model import MLP, NoisyBatchNorm, build_twins
from .snapshot import RawSnapshot, RawVariant

VIEWS = ("train", "eval")  # probe-set batch statistics, or BN's running statistics


def normalize(norm: nn.Module, z: torch.Tensor, view: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_hat, y) of normalization module ``norm`` applied to ``z`` (B, U), in the given view.

    BatchNorm (Ioffe & Szegedy 2015, Algorithm 1): x_hat = (z - mu_B) / sqrt(var_B + eps) with the batch's
    biased variance in the train view, the running estimates in the eval view; y = gamma * x_hat + beta.
    LayerNorm (Ba et al. 2016) uses the statistics of each example over its units in both views.
    """
    if isinstance(norm, nn.LayerNorm):
        var, mean = torch.var_mean(z, dim=1, unbiased=False, keepdim=True)
        x_hat = (z - mean) / torch.sqrt(var + norm.eps)
        return x_hat, x_hat * norm.weight + norm.bias
    if view == "train":
        var, mean = torch.var_mean(z, dim=0, unbiased=False)
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


def _relative_change(prev: torch.Tensor, cur: torch.Tensor) -> float:
    """||cur - prev|| / ||prev||; NaN when prev is (numerically) zero, e.g. beta at its initial 0."""
    base = float(torch.linalg.vector_norm(prev))
    if base < 1e-6 * max(1.0, prev.numel() ** 0.5):
        return math.nan
    return float(torch.linalg.vector_norm(cur - prev)) / base


def probe_indices(cfg: ExperimentConfig, n_train: int) -> torch.Tensor:
    """The fixed probe set: ``probe_size`` training examples chosen by the seed (sorted indices)."""
    idx = np.random.default_rng([cfg.seed, 2]).permutation(n_train)[:cfg.probe_size]
    return torch.as_tensor(np.sort(idx))


@dataclass
class WeightVariant:
    """One variant at a snapshot step, as the training thread hands it over: copies, nothing computed."""

    loss: float  # mean mini-batch loss since the previous snapshot (NaN at step 0)
    diverged_at: int | None  # set once the variant has left training
    state: dict[str, np.ndarray] | None  # state_dict copy as numpy arrays (None once it left training)
    ics_batch: np.ndarray | None  # indices of the next mini-batch when the gradient shift is due here


@dataclass
class WeightSnapshot:
    """All variants' weights at one step."""

    step: int
    variants: dict[str, WeightVariant]


class Prober:
    """Turns WeightSnapshots into RawSnapshots: the probe forward pass, accuracies, gamma/beta, changes.

    It rebuilds the run's data and networks from the config (both are pure functions of it) and loads each
    snapshot's weights into its own copies, so it can run in the statistics worker process: the training
    thread then pays only for copying the weights.
    """

    def __init__(self, cfg: ExperimentConfig, dataset: data_mod.Dataset | None = None) -> None:
        self.cfg = cfg
        self.data = dataset if dataset is not None else data_mod.load(cfg)
        self.nets = build_twins(cfg, self.data.n_inputs, self.data.n_classes)
        idx = probe_indices(cfg, len(self.data.x_train))
        self.probe_x, self.probe_y = self.data.x_train[idx], self.data.y_train[idx]
        self._prev: dict[str, list[dict[str, torch.Tensor]]] = {}

    @staticmethod
    def _affine(net: MLP) -> list[dict[str, torch.Tensor]]:
        out = []
        for layer in net.layers:
            entry = {"weight": layer.linear.weight.detach().clone()}
            if layer.norm is not None and getattr(layer.norm, "weight", None) is not None:
                entry["gamma"] = layer.norm.weight.detach().clone()
                entry["beta"] = layer.norm.bias.detach().clone()
            out.append(entry)
        return out

    def raw(self, ws: WeightSnapshot) -> RawSnapshot:
        """Probe every variant of ``ws``."""
        return RawSnapshot(ws.step, {t: self._variant(t, ws.step, wv) for t, wv in ws.variants.items()})

    @torch.no_grad()
    def _variant(self, token: str, step: int, wv: WeightVariant) -> RawVariant:
        if wv.state is None:
            nan = math.nan
            return RawVariant(nan, nan, nan, wv.diverged_at, [], [], [], [], [], None)
        net = self.nets[token]
        net.load_state_dict({k: torch.from_numpy(v) for k, v in wv.state.items()})
        net.train()
        test_acc = accuracy(net, self.data.x_test, self.data.y_test)
        layers, logits = stages(net, self.probe_x, self.cfg.view)
        acc = float((logits.argmax(dim=1) == self.probe_y).float().mean())  # on the probe set, as probed
        loss = wv.loss
        if math.isnan(loss):  # step 0: no mini-batch yet, the untrained network's loss on the probe set
            loss = float(F.cross_entropy(logits, self.probe_y))
        act_stage = [activation_input(st, layer.placement) for st, layer in zip(layers, net.layers)]
        mats = [{k: v.numpy() for k, v in st.items()} for st in layers]
        now = self._affine(net)
        prev = self._prev.get(token)
        change = [{k: _relative_change(p[k], c[k]) for k in c} if prev is not None else {}
                  for p, c in zip(prev or now, now)]
        self._prev[token] = now
        gamma = [c["gamma"].numpy() if "gamma" in c else None for c in now]
        beta = [c["beta"].numpy() if "beta" in c else None for c in now]
        ics = None
        if wv.ics_batch is not None:  # Santurkar et al.'s measure on the batch the next step will use
            idx = torch.as_tensor(wv.ics_batch)
            with torch.enable_grad():
                pairs = gradient_ics(net, self.data.x_train[idx], self.data.y_train[idx], self.cfg.lr)
            ics = [stats.gradient_shift(g.numpy(), g2.numpy()) for g, g2 in pairs]
        return RawVariant(loss, acc, test_acc, None, mats, act_stage, gamma, beta, change, ics)
