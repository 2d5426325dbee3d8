"""The normalization layers of a model: found by type, named by module path, and how each one normalizes.

A layer's ``Norm`` knows its module's unit axis (a channel of BatchNorm2d/3d, GroupNorm and InstanceNorm, a
feature of BatchNorm1d, the last-dimension feature of LayerNorm), turns a tensor into (rows, units), and
computes x_hat exactly as the module does, from the probe's own statistics or the running ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
NORMS = (*BATCH_NORMS, nn.LayerNorm, nn.GroupNorm, *INSTANCE_NORMS)

# Elementwise activation modules: the one right after a norm layer gives the stage "a".
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
               nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
               nn.LogSigmoid, nn.Tanhshrink)
# config.ACTIVATIONS' name of each follower class bnviz knows (any other is "identity" for the run's config).
ACTIVATION_NAMES = {"ReLU": "relu", "GELU": "gelu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel, DataParallel and torch.compile wrappers (its layers named without
    "module." or "_orig_mod."): probing it runs none of the wrappers' machinery (collectives, compiled graphs)."""
    while True:
        inner = getattr(model, "_orig_mod", None) if type(model).__name__ == "OptimizedModule" else None
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(inner, nn.Module):
            model = inner
        else:
            return model


def find_norms(model: nn.Module, layers: Sequence[nn.Module | str] | None = None) -> list[tuple[str, nn.Module]]:
    """(module path, module) of every normalization module of ``model`` (already unwrapped), in registration order;
    or of ``layers``, given as modules or module paths. ValueError, in plain words, for none or a wrong entry."""
    named = dict(model.named_modules())
    if layers is None:
        found: list[tuple[str, nn.Module]] = [(name, m) for name, m in named.items() if isinstance(m, NORMS)]
        if not found:
            raise ValueError(f"{type(model).__name__} has no normalization layer to watch (bnviz.watch finds "
                             f"BatchNorm1d/2d/3d, SyncBatchNorm, LayerNorm, GroupNorm and InstanceNorm1d/2d/3d; "
                             f"pass layers= to name others)")
        return found
    paths = {id(m): name for name, m in named.items()}
    out = []
    for entry in layers:
        if isinstance(entry, str):
            entry = entry.removeprefix("module.") if entry not in named else entry
            if entry not in named:
                raise ValueError(f"layers names {entry!r}, which is not a module of {type(model).__name__}")
            out.append((entry, named[entry]))
        elif isinstance(entry, nn.Module) and id(entry) in paths:
            out.append((paths[id(entry)], entry))
        else:
            raise ValueError(f"layers holds {type(entry).__name__}, which is not a module of {type(model).__name__}")
        if not isinstance(out[-1][1], NORMS):
            raise ValueError(f"layer {out[-1][0]!r} is a {type(out[-1][1]).__name__}, not a normalization module "
                             f"bnviz knows how to normalize")
    if not out:
        raise ValueError("layers is empty: name at least one normalization module")
    return out


def fan_in(module: nn.Module | None) -> int:
    """Inputs one unit of ``module`` sums: in_channels / groups x kernel size for a conv, in_features for a linear
    layer, 0 for anything else (not known)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        k = 1
        for size in module.kernel_size:
            k *= size
        return module.in_channels // module.groups * k
    if isinstance(module, nn.Linear):
        return module.in_features
    return 0


@dataclass
class Norm:
    """One watched normalization module and how it normalizes."""

    name: str
    module: nn.Module

    @property
    def kind(self) -> str:
        return type(self.module).__name__

    @property
    def units(self) -> int:
        m = self.module
        if isinstance(m, nn.LayerNorm):
            return int(m.normalized_shape[-1])
        if isinstance(m, nn.GroupNorm):
            return int(m.num_channels)
        return int(m.num_features)  # type: ignore[arg-type]

    @property
    def batch_stats(self) -> bool:
        """Whether the train view normalizes over the batch (BatchNorm), rather than per example."""
        return isinstance(self.module, BATCH_NORMS)

    def _batched(self, t: torch.Tensor) -> torch.Tensor:
        """An unbatched InstanceNorm input (C, L...) as a batch of one."""
        m = self.module
        if isinstance(m, INSTANCE_NORMS) and t.dim() == m._get_no_batch_dim():
            return t.unsqueeze(0)
        return t

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` (the module's input or output shape) as (rows, units): examples x positions by unit."""
        if isinstance(self.module, nn.LayerNorm):
            return t.reshape(-1, t.shape[-1])
        t = self._batched(t)
        return t.transpose(0, 1).reshape(t.shape[1], -1).T

    def _running(self, view: str) -> bool:
        """Whether this view normalizes with the module's running statistics."""
        m = self.module
        return view == "eval" and getattr(m, "running_mean", None) is not None

    def x_hat(self, x: torch.Tensor, view: str) -> torch.Tensor:
        """``x`` normalized as the module normalizes it (float32, x's shape): the train view with the probe's own
        statistics (biased variance), the eval view with the running statistics where the module keeps them."""
        m = self.module
        x = x.float()
        eps = float(m.eps)  # type: ignore[arg-type]
        if isinstance(m, nn.LayerNorm):
            dims = tuple(range(x.dim() - len(m.normalized_shape), x.dim()))
            return _standardize(x, dims, eps)
        if isinstance(m, nn.GroupNorm):
            g = x.reshape(x.shape[0], m.num_groups, -1)
            return _standardize(g, (2,), eps).reshape(x.shape)
        xb = self._batched(x)
        shape = (1, -1) + (1,) * (xb.dim() - 2)
        if self._running(view):
            mean = m.running_mean.float().reshape(shape)  # type: ignore[operator]
            var = m.running_var.float().reshape(shape)  # type: ignore[operator]
            out = (xb - mean) / torch.sqrt(var + eps)
        elif isinstance(m, INSTANCE_NORMS):
            out = _standardize(xb, tuple(range(2, xb.dim())), eps)
        else:
            out = _standardize(xb, (0, *range(2, xb.dim())), eps)
        return out.reshape(x.shape)

    def train_view_output(self, x: torch.Tensor) -> torch.Tensor | None:
        """The module's training-mode output for ``x`` computed without touching its buffers, where it differs
        from its eval-mode output (a module with running statistics); None where the two agree."""
        m = self.module
        if getattr(m, "running_mean", None) is None:
            return None
        if isinstance(m, INSTANCE_NORMS):
            xb = self._batched(x)
            y = F.instance_norm(xb, None, None, m.weight, m.bias, True, 0.0, m.eps)
            return y.reshape(x.shape)
        return F.batch_norm(x, None, None, m.weight, m.bias, True, 0.0, m.eps)  # type: ignore[arg-type]

    def affine(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(gamma, beta) per unit, or (None, None) without a learned per-unit affine map. A LayerNorm without a
        bias has beta = 0."""
        m = self.module
        w, b = getattr(m, "weight", None), getattr(m, "bias", None)
        if not isinstance(w, torch.Tensor) or w.dim() != 1 or w.shape[0] != self.units:
            return None, None
        return w.detach(), (b.detach() if isinstance(b, torch.Tensor) else torch.zeros_like(w.detach()))


def _standardize(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)
