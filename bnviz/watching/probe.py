"""The probe forward pass: the fixed probe batch through the model with forward hooks on its norm layers.

Nothing the training depends on changes: the pass runs under ``no_grad`` in eval mode (so BatchNorm updates no
running statistic and dropout draws nothing), with PyTorch's random state forked, every module's training flag
restored afterwards and the hooks removed. In the train view a batch norm's hook returns the module's training
output computed without buffers (``F.batch_norm(x, None, None, ...)``), so later layers see what training sees.

The first pass (``trace``) also hooks every leaf module to find, per norm layer, the module feeding it (its output
tensor IS the norm's input, unchanged since: same ``_version``) and the activation module directly following it
(its input IS the norm's output, unchanged: an ``out += identity`` in between makes the later activation not
count). A shared module called several times in one pass is watched at its first call.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from bnviz.config import WATCH_VALUES
from bnviz.watching.layers import ACTIVATIONS, Norm, fan_in

STAGES = ("x", "x_hat", "y")  # what every layer records; "a" where an activation module follows


@dataclass
class Probed:
    """One probe pass: per layer its stages (rows, units) float32, gamma and beta, and its feeder's weight."""

    layers: list[dict[str, np.ndarray]]
    gamma: list[np.ndarray | None]
    beta: list[np.ndarray | None]
    weights: list[np.ndarray | None]


@dataclass
class _Layer:
    norm: Norm
    feeder: nn.Module | None = None
    follower: nn.Module | None = None
    rows: torch.Tensor | None = None  # the fixed subsample of rows, on the model's device
    n_rows: int = 0


@dataclass
class _Pass:
    """What one forward pass collects."""

    stages: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    pending: dict[int, tuple[torch.Tensor, int]] = field(default_factory=dict)  # layer -> (its y, y's _version)
    calls: dict[int, tuple[int, torch.Size]] = field(default_factory=dict)  # id(follower) -> (layer, y's shape)


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _examples(value: Any) -> int:
    """The probe's batch size: the first dimension of its first tensor."""
    if isinstance(value, torch.Tensor):
        return int(value.shape[0]) if value.dim() else 1
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    for v in items:
        n = _examples(v)
        if n:
            return n
    return 0


def _take(rows: torch.Tensor, chosen: torch.Tensor | None) -> torch.Tensor:
    """The chosen rows (all of them in the trace), copied: a later in-place activation leaves them as they are."""
    return rows.clone() if chosen is None else rows[chosen]


def device_of(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


class Prober:
    """Probes ``model``'s norm layers with a fixed batch. Construction runs the traced first pass, which orders
    the layers as the model runs them and leaves out (with a warning) any that the probe does not reach."""

    def __init__(self, model: nn.Module, norms: Sequence[Norm], probe: Any, view: str = "train") -> None:
        self.model = model
        self.view = view
        self.device = device_of(model)
        self.probe = _to(probe, self.device)
        self.examples = _examples(self.probe)
        self.layers = self._trace([_Layer(n) for n in norms])

    # --- the pass -----------------------------------------------------------------------------------------------

    def _call(self) -> None:
        if isinstance(self.probe, dict):
            self.model(**self.probe)
        elif isinstance(self.probe, (tuple, list)):
            self.model(*self.probe)
        else:
            self.model(self.probe)

    def _forward(self, hooks: list[tuple[nn.Module, str, Any]]) -> None:
        """One forward pass of the probe with ``hooks`` ((module, "pre" | "post", fn)) that changes nothing."""
        modules = list(self.model.modules())
        flags = [m.training for m in modules]
        handles = []
        on = self.device.type  # the accelerator's random state is forked too, where there is one
        rng = torch.random.fork_rng(devices=[self.device] if on != "cpu" else [],
                                    device_type=on if on != "cpu" else "cuda")
        try:
            for module, when, fn in hooks:
                register = module.register_forward_pre_hook if when == "pre" else module.register_forward_hook
                handles.append(register(fn))
            with rng, torch.no_grad():
                self.model.eval()
                self._call()
        finally:
            for h in handles:
                h.remove()
            for m, flag in zip(modules, flags):
                m.training = flag

    def _norm_hook(self, li: int, layers: Sequence[_Layer], run: _Pass):
        layer, view = layers[li], self.view
        norm = layer.norm

        def hook(module, args, output):
            if li in run.stages or not args or not isinstance(args[0], torch.Tensor):
                return None  # a later call of a shared module
            x = args[0]
            if layer.rows is not None and norm.rows(x).shape[0] != layer.n_rows:
                raise RuntimeError(f"bnviz.watch: layer {norm.name} received {norm.rows(x).shape[0]} values per "
                                   f"unit from the probe batch, {layer.n_rows} at the start")
            replaced = norm.train_view_output(x) if view == "train" else None
            y = output if replaced is None else replaced
            run.stages[li] = {"x": _take(norm.rows(x), layer.rows), "x_hat": _take(norm.rows(norm.x_hat(x, view)),
                              layer.rows), "y": _take(norm.rows(y), layer.rows)}
            run.pending[li] = (y, y._version)
            return replaced

        return hook

    @staticmethod
    def _follower_hooks(layers: Sequence[_Layer], run: _Pass, trace: bool):
        """Pre and post hooks that record ``a`` where a module's input is a pending norm output, unchanged: the
        norm's follower (in the trace: its first consumer, when that is an elementwise activation module)."""

        def pre(mod, args):
            if not args or not isinstance(args[0], torch.Tensor):
                return
            for li, (y, version) in list(run.pending.items()):
                if args[0] is y and y._version == version:
                    del run.pending[li]  # its first consumer is the only candidate
                    if isinstance(mod, ACTIVATIONS) if trace else layers[li].follower is mod:
                        run.calls[id(mod)] = (li, y.shape)

        def post(mod, args, output):
            li, shape = run.calls.pop(id(mod), (None, None))
            if li is None or not isinstance(output, torch.Tensor) or output.shape != shape:
                return
            layer = layers[li]
            if trace:
                layer.follower = mod
            run.stages[li]["a"] = _take(layer.norm.rows(output), layer.rows)

        return pre, post

    # --- the trace ----------------------------------------------------------------------------------------------

    def _trace(self, layers: list[_Layer]) -> list[_Layer]:
        run = _Pass()
        produced: list[tuple[weakref.ref, int, nn.Module]] = []  # (output, its _version, leaf module)
        order: list[int] = []
        norm_ids = {id(layer.norm.module) for layer in layers}
        hooks: list[tuple[nn.Module, str, Any]] = []

        def feeder(li: int):
            def pre(module, args):
                if li in run.stages or not args or not isinstance(args[0], torch.Tensor):
                    return
                x = args[0]
                order.append(li)
                for ref, version, m in reversed(produced):
                    if ref() is x and x._version == version:
                        layers[li].feeder = m
                        break
            return pre

        def record(module, args, output):
            if isinstance(output, torch.Tensor):
                produced.append((weakref.ref(output), output._version, module))

        for li, layer in enumerate(layers):
            hooks.append((layer.norm.module, "pre", feeder(li)))
            hooks.append((layer.norm.module, "post", self._norm_hook(li, layers, run)))
        pre, post = self._follower_hooks(layers, run, trace=True)
        for module in self.model.modules():
            if next(module.children(), None) is None:  # a leaf: what produces and consumes tensors
                if id(module) not in norm_ids:
                    hooks += [(module, "pre", pre), (module, "post", post)]
                hooks.append((module, "post", record))
        self._forward(hooks)

        missing = [layer.norm.name for li, layer in enumerate(layers) if li not in order]
        if missing:
            warnings.warn(f"bnviz.watch leaves out {', '.join(missing)}: the probe batch does not reach "
                          f"{'it' if len(missing) == 1 else 'them'}", stacklevel=5)  # the caller of watch()
        for li in order:
            layer = layers[li]
            n = layer.n_rows = run.stages[li]["x"].shape[0]
            chosen = np.arange(n) if n <= WATCH_VALUES else np.sort(
                np.random.default_rng([23, li]).choice(n, WATCH_VALUES, replace=False))
            layer.rows = torch.as_tensor(chosen, device=self.device)
        return [layers[li] for li in order]

    # --- a snapshot ---------------------------------------------------------------------------------------------

    def run(self) -> Probed:
        """Probe every layer: its stages at the fixed rows, gamma, beta and the feeding module's weight (CPU)."""
        run = _Pass()
        hooks: list[tuple[nn.Module, str, Any]] = []
        followers: dict[int, nn.Module] = {}
        for li, layer in enumerate(self.layers):
            hooks.append((layer.norm.module, "post", self._norm_hook(li, self.layers, run)))
            if layer.follower is not None:
                followers[id(layer.follower)] = layer.follower
        pre, post = self._follower_hooks(self.layers, run, trace=False)
        for module in followers.values():
            hooks += [(module, "pre", pre), (module, "post", post)]
        self._forward(hooks)
        out = Probed([], [], [], [])
        for li, layer in enumerate(self.layers):
            stages = run.stages.get(li)
            if stages is None:
                raise RuntimeError(f"bnviz.watch: layer {layer.norm.name} did not run on the probe batch, as it "
                                   f"did at the start")
            if layer.follower is None:
                stages.pop("a", None)
            out.layers.append({k: v.to("cpu", torch.float32).numpy() for k, v in stages.items()})
            gamma, beta = layer.norm.affine()
            out.gamma.append(None if gamma is None else gamma.to("cpu", torch.float32).numpy().copy())
            out.beta.append(None if beta is None else beta.to("cpu", torch.float32).numpy().copy())
            w = getattr(layer.feeder, "weight", None) if fan_in(layer.feeder) else None
            out.weights.append(w.detach().to("cpu", torch.float32).numpy().copy() if w is not None else None)
        return out
