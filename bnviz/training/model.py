"""The MLP whose hidden layers take a normalization variant and a placement.

A hidden layer is ``Linear -> norm -> activation`` ("before", as in Ioffe & Szegedy) or
``Linear -> activation -> norm`` ("after"). Twins (one network per variant) share their initial linear
weights, drawn from one seeded generator, so every difference between them is due to normalization.
Initialization never touches PyTorch's global random state: runs in parallel threads stay reproducible.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from bnviz.config import BN_EPS, ExperimentConfig, split_variant
from bnviz.measure import shapes
from bnviz.measure.probe import FlatState


def activation_fn(name: str):
    """The elementwise activation called ``name`` (see config.ACTIVATIONS)."""
    table = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "gelu": nn.functional.gelu,  # exact erf form, PyTorch's default
        "identity": lambda t: t,
    }
    return table[name]


class _RandomScaleShift:
    """What NoisyBatchNorm and NoisyBatchNorm2d share: the per-unit scale and shift buffers and their draw."""

    scale: torch.Tensor  # buffers, registered by the subclass
    shift: torch.Tensor
    noise_shift: float
    noise_scale: float

    def resample(self, gen: torch.Generator) -> None:
        """Draw this step's per-unit scale and shift."""
        (w,) = self.scale.shape
        u = torch.rand(2, w, generator=gen)
        self.shift.copy_((2 * u[0] - 1) * self.noise_shift)
        self.scale.copy_(torch.exp((2 * u[1] - 1) * math.log(self.noise_scale)))


class NoisyBatchNorm(_RandomScaleShift, nn.BatchNorm1d):
    """Batch norm followed by a random per-unit scale and shift that changes every training step.

    Santurkar et al. (2018), Sec. 2.1 ("noisy BN"): the layer's output distribution is made unstable on
    purpose. Here, after BN (gamma and beta included), unit j is mapped to ``s_j * y_j + m_j`` with, at every
    training step, ``m_j ~ U(-noise_shift, noise_shift)`` and ``log s_j ~ U(-log noise_scale,
    log noise_scale)``, drawn from the run's own generator by ``resample``. The noise is applied in training
    mode only (test accuracy is measured without it); probes in the train-mode view see the latest draw.
    """

    def __init__(self, width: int, noise_shift: float, noise_scale: float) -> None:
        super().__init__(width, eps=BN_EPS)
        self.noise_shift, self.noise_scale = noise_shift, noise_scale
        self.register_buffer("scale", torch.ones(width))
        self.register_buffer("shift", torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y * self.scale + self.shift if self.training else y


class NoisyBatchNorm2d(_RandomScaleShift, nn.BatchNorm2d):
    """:class:`NoisyBatchNorm` for a conv layer: BatchNorm2d, then a random scale and shift per channel (the
    same draw, one pair per channel)."""

    def __init__(self, channels: int, noise_shift: float, noise_scale: float) -> None:
        super().__init__(channels, eps=BN_EPS)
        self.noise_shift, self.noise_scale = noise_shift, noise_scale
        self.register_buffer("scale", torch.ones(channels))
        self.register_buffer("shift", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y * self.scale[:, None, None] + self.shift[:, None, None] if self.training else y


class ShapeNorm(nn.Module):
    """Batch norm that also gives x̂ an exact target shape (variants bn_gauss, bn_uniform, bn_laplace).

    Per unit (a feature of (B, U) inputs, a channel of (B, C, H, W) inputs over examples and positions), in
    training: x_std = (z - mean_B) / sqrt(var_B + eps) as BN; x̂ = t[rank(z)], the target's standardized
    quantiles (measure.shapes.target_points) placed by each value's rank in the batch; y = γ x̂ + β. The rank
    map has no useful derivative, so the gradient is straight-through: backward is BN's standardization
    backward, as if x̂ were x_std (x̂ = t_ranked + (x_std - x_std.detach()), exactly t_ranked in value, with
    x_std from torch's own batch_norm).
    γ's gradient uses the forward x̂. The buffer ``running_quantiles`` (U, K) averages the batch's quantiles
    of z with BN's momentum; eval maps z through the CDF they define and then the target's quantile function.
    Parameters are named as BN's (``weight``, ``bias``), so snapshots and γ/β tracking read them alike.
    """

    def __init__(self, kind: str, width: int) -> None:
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.register_buffer("running_quantiles", torch.from_numpy(shapes.initial_quantiles(width)).float())
        self.running_quantiles: torch.Tensor  # registered above; declared for the type checker
        self._cache: dict[tuple[int, torch.dtype], tuple[torch.Tensor, ...]] = {}

    def _constants(self, m: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """For m values per unit: the target points and where the quantile levels fall (measure.shapes), made
        once per batch size and precision."""
        key = (m, dtype)
        if key not in self._cache:
            lo, hi, w = shapes.quantile_positions(m)
            self._cache[key] = (torch.from_numpy(shapes.target_points(self.kind, m)).to(dtype),
                                torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(w).to(dtype))
        return self._cache[key]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        width = z.shape[1]
        with torch.no_grad():  # (U, m): each unit's values over the batch (and positions)
            series = z.detach().transpose(0, 1).reshape(width, -1)
            if self.training:
                shaped = self._rank_map(series)
            else:
                q = self.running_quantiles.detach().double().numpy()
                shaped = torch.from_numpy(shapes.eval_map(self.kind, series.double().numpy(), q)).to(z.dtype)
            x_hat = shaped.reshape(z.transpose(0, 1).shape).transpose(0, 1)
        if self.training:
            # BN's own standardization (its fused kernel, forward and backward), for the gradient only
            x_std = F.batch_norm(z, None, None, training=True, eps=BN_EPS)
            x_hat = x_hat + (x_std - x_std.detach())
        per_unit = (1, width) + (1,) * (z.dim() - 2)
        return x_hat * self.weight.reshape(per_unit) + self.bias.reshape(per_unit)

    def _rank_map(self, series: torch.Tensor) -> torch.Tensor:
        """The target points placed by rank in each row of ``series`` (U, m); updates the running quantiles."""
        units, m = series.shape
        t, lo, hi, w = self._constants(m, series.dtype)
        s, order = torch.sort(series, dim=1, stable=True)
        lower = s.index_select(1, lo)
        batch_q = lower + w * (s.index_select(1, hi) - lower)
        self.running_quantiles.mul_(1 - shapes.MOMENTUM).add_(shapes.MOMENTUM * batch_q)
        return torch.empty_like(series).scatter_(1, order, t.expand(units, m))


def make_channel_norm(kind: str, channels: int, cfg: ExperimentConfig) -> nn.Module | None:
    """The normalization of a conv layer: per channel over batch and positions (BN), or per example over
    channels and positions with a per-channel scale and shift (layer norm: GroupNorm with one group)."""
    if kind == "none":
        return None
    if kind == "bn":
        return nn.BatchNorm2d(channels, eps=BN_EPS)
    if kind == "bn_noaffine":
        return nn.BatchNorm2d(channels, eps=BN_EPS, affine=False)
    if kind == "bn_noisy":
        return NoisyBatchNorm2d(channels, cfg.noise_shift, cfg.noise_scale)
    if kind == "ln":
        return nn.GroupNorm(1, channels, eps=BN_EPS)
    if shapes.is_shape(kind):
        return ShapeNorm(kind, channels)
    raise ValueError(f"unknown variant kind {kind!r}")


def make_norm(kind: str, width: int, cfg: ExperimentConfig) -> nn.Module | None:
    """The normalization module of variant kind ``kind`` for a layer of ``width`` units."""
    if kind == "none":
        return None
    if kind == "bn":
        return nn.BatchNorm1d(width, eps=BN_EPS)
    if kind == "bn_noaffine":
        return nn.BatchNorm1d(width, eps=BN_EPS, affine=False)  # gamma = 1, beta = 0, never trained
    if kind == "bn_noisy":
        return NoisyBatchNorm(width, cfg.noise_shift, cfg.noise_scale)
    if kind == "ln":
        return nn.LayerNorm(width, eps=BN_EPS)
    if shapes.is_shape(kind):
        return ShapeNorm(kind, width)
    raise ValueError(f"unknown variant kind {kind!r}")


def _run_layer(plan: tuple, u: torch.Tensor) -> torch.Tensor:
    """One hidden layer from its HiddenLayer.plan(): linear map, then normalization and activation in order."""
    linear, norm, act, before = plan
    x = linear(u)  # (B, width)
    if norm is None:
        return act(x)
    if before:
        return act(norm(x))
    return norm(act(x))


class HiddenLayer(nn.Module):
    """Linear map, normalization and activation, in the order the placement says."""

    def __init__(self, fan_in: int, width: int, kind: str, placement: str, cfg: ExperimentConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(fan_in, width)
        self.norm = make_norm(kind, width, cfg)
        self.kind, self.placement, self.activation = kind, placement, cfg.activation
        self.act = activation_fn(cfg.activation)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return _run_layer(self.plan(), u)

    def plan(self) -> tuple:
        """(linear, norm or None, activation, before?): what MLP.forward runs for this layer."""
        return self.linear, self.norm, self.act, self.placement == "before"


class MLP(nn.Module):
    """Hidden layers of one variant followed by a linear head (logits of a softmax, or regression outputs)."""

    def __init__(self, cfg: ExperimentConfig, token: str, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        kind, _ = split_variant(token)
        self.token, self.kind = token, kind
        sizes = (n_inputs, *cfg.widths)
        hidden = [HiddenLayer(sizes[i], sizes[i + 1], kind, cfg.placement_of(token), cfg)
                  for i in range(len(cfg.widths))]
        self.layers = nn.ModuleList(hidden)
        self.head = nn.Linear(sizes[-1], n_outputs)
        # The layers' modules, looked up once: at these sizes nn.Module's dispatch (a call per layer, and
        # __getattr__ into _modules for every submodule) costs as much as the arithmetic. The submodules
        # are still called, so their hooks run. With StateCopier, the training loop runs as fast as a plain
        # nn.Sequential loop (benchmarks/README.md).
        # The modules are never replaced after construction (a plain list: not registered twice).
        self._plan = [layer.plan() for layer in hidden]
        self._noisy = [layer.norm for layer in hidden if isinstance(layer.norm, NoisyBatchNorm)]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        for plan in self._plan:
            u = _run_layer(plan, u)
        return self.head.forward(u)

    def linears(self) -> list[nn.Linear]:
        """The linear maps shared with the twins: hidden layers, then the head."""
        return [cast(HiddenLayer, layer).linear for layer in self.layers] + [self.head]

    def resample_noise(self, gen: torch.Generator) -> None:
        """Redraw bn_noisy's per-step scale and shift (no-op for other variants)."""
        for norm in self._noisy:
            norm.resample(gen)


class ConvLayer(nn.Module):
    """3x3 convolution (padding 1), normalization and activation, in the order the placement says."""

    def __init__(self, c_in: int, c_out: int, kind: str, placement: str, cfg: ExperimentConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = make_channel_norm(kind, c_out, cfg)
        self.kind, self.placement = kind, placement
        self.act = activation_fn(cfg.activation)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return _run_layer(self.plan(), u)

    def plan(self) -> tuple:
        """(conv, norm or None, activation, before?), as HiddenLayer.plan."""
        return self.conv, self.norm, self.act, self.placement == "before"


class ConvNet(nn.Module):
    """Conv layers of one variant (channels: ``cfg.widths``) on square one-channel images, then global
    average pooling and a linear head (softmax logits, or regression outputs). Inputs come flat (N, side * side),
    as the datasets give them."""

    def __init__(self, cfg: ExperimentConfig, token: str, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        kind, _ = split_variant(token)
        self.token, self.kind = token, kind
        self.side = math.isqrt(n_inputs)
        if self.side * self.side != n_inputs:
            raise ValueError(f"a conv network needs square images: {n_inputs} inputs are not a square")
        channels = (1, *cfg.widths)
        conv = [ConvLayer(channels[i], channels[i + 1], kind, cfg.placement_of(token), cfg)
                for i in range(len(cfg.widths))]
        self.layers = nn.ModuleList(conv)
        self.head = nn.Linear(channels[-1], n_outputs)
        self._plan = [layer.plan() for layer in conv]
        self._noisy = [layer.norm for layer in conv if isinstance(layer.norm, NoisyBatchNorm2d)]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        u = u.reshape(-1, 1, self.side, self.side)  # (N, 1, H, W)
        for plan in self._plan:
            u = _run_layer(plan, u)
        return self.head.forward(u.mean(dim=(2, 3)))

    def linears(self) -> list[nn.Conv2d | nn.Linear]:
        """The weight layers shared with the twins: the convolutions, then the head."""
        return [cast(ConvLayer, layer).conv for layer in self.layers] + [self.head]

    def resample_noise(self, gen: torch.Generator) -> None:
        for norm in self._noisy:
            norm.resample(gen)


def _bias(layer: nn.Linear | nn.Conv2d) -> torch.Tensor:
    """A weight layer's bias: every one here is built with one (PyTorch's default)."""
    assert layer.bias is not None
    return layer.bias


def init_linears(linears: Sequence[nn.Linear | nn.Conv2d], gen: torch.Generator, rule: str = "pytorch") -> None:
    """Initialize the weight layers by ``rule`` (config.INITS), drawing from ``gen`` (not global state).

    ``pytorch``: PyTorch's own Linear and Conv2d rule, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
    biases, each layer's weight drawn before its bias. The others set the weights by torch.nn.init's rule of
    that name (fan-in and fan-out count a conv kernel's positions) and the biases to 0.
    """
    with torch.no_grad():
        for lin in linears:
            if rule == "pytorch":
                bound = 1.0 / math.sqrt(lin.weight[0].numel())  # fan-in: inputs per output unit or channel
                lin.weight.uniform_(-bound, bound, generator=gen)
                _bias(lin).uniform_(-bound, bound, generator=gen)
                continue
            if rule == "xavier_normal":
                nn.init.xavier_normal_(lin.weight, generator=gen)
            elif rule == "xavier_uniform":
                nn.init.xavier_uniform_(lin.weight, generator=gen)
            elif rule == "orthogonal":
                nn.init.orthogonal_(lin.weight, generator=gen)
            elif rule == "he_normal":
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu", generator=gen)
            else:
                raise ValueError(f"unknown initialization {rule!r}")
            _bias(lin).zero_()


def build_twins(cfg: ExperimentConfig, n_inputs: int, n_outputs: int) -> dict[str, MLP | ConvNet]:
    """One network per variant (MLP or ConvNet, by ``cfg.architecture``), all with the same initial weights
    (drawn once, from the seed, by ``cfg.init``)."""
    net_class: type[MLP | ConvNet] = ConvNet if cfg.architecture == "conv" else MLP
    nets = {token: net_class(cfg, token, n_inputs, n_outputs) for token in cfg.variants}
    first = next(iter(nets.values()))
    init_linears(first.linears(), torch.Generator().manual_seed(cfg.seed), cfg.init)
    for net in nets.values():
        with torch.no_grad():
            for dst, src in zip(net.linears(), first.linears()):
                dst.weight.copy_(src.weight)
                _bias(dst).copy_(_bias(src))
    return nets


def noise_generator(cfg: ExperimentConfig, token: str) -> torch.Generator:
    """bn_noisy's own random stream: a function of the seed and the variant, untouched by anything else."""
    return torch.Generator().manual_seed(cfg.seed * 1_000_003 + zlib.crc32(token.encode()) % 1_000_003)


def make_optimizer(cfg: ExperimentConfig, net: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named in the config, over the parameters that train (frozen gamma/beta have none)."""
    params = [p for p in net.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


class StateCopier:
    """One snapshot's copy of a network's floating-point state, fast: a single flat copy per call.

    The keys are the state_dict's, minus integer buffers (BatchNorm's num_batches_tracked, which nothing
    reads), with the parameters first in the flat array so that their finiteness is one check. Tensors are
    looked up once: modules keep their parameter and buffer objects for life (optimizers update in place).
    Measured for the ioffe twins: 50 us a snapshot instead of 230 us for a state_dict() walk with one copy per
    tensor and a separate finiteness check.
    """

    def __init__(self, net: nn.Module) -> None:
        state = net.state_dict(keep_vars=True)
        params = {name for name, _ in net.named_parameters()}
        names = [k for k in state if k in params]
        self.n_params = sum(state[k].numel() for k in names)
        names += [k for k, v in state.items() if k not in params and v.is_floating_point()]
        self._tensors = [state[k] for k in names]
        layout, offset = [], 0  # (name, start, end, shape) in the flat copy
        for k in names:
            layout.append((k, offset, offset + state[k].numel(), tuple(state[k].shape)))
            offset += state[k].numel()
        self._layout = tuple(layout)

    def copy(self) -> tuple[FlatState, bool]:
        """(the state copied: name -> numpy array, as one flat array; whether every parameter is finite)."""
        with torch.no_grad():
            flat = torch.cat([t.reshape(-1) for t in self._tensors]).numpy()
        return FlatState(flat, self._layout), bool(np.isfinite(flat[:self.n_params]).all())

