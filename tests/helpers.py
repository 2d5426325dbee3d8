"""Helpers and configurations shared by several test files (fixtures live in conftest.py files)."""

import time

from bnviz.config import ExperimentConfig

# Two small hidden layers, 6 snapshots: enough for every figure and verdict to have something to show.
SMALL = ExperimentConfig(widths=(16, 12), steps=60, snapshot_every=10, probe_size=64, variants=("none", "bn"),
                         ics_every=20)
# The other variants, with ReLU: its zeros are a point mass, so the KL of stage a reads +inf.
OTHERS = SMALL.replace(variants=("bn_noaffine", "bn_noisy", "ln", "bn@after"), activation="relu", steps=30,
                       ics_every=10)
# BN beside the three shape variants (one of them after the activation): what the shape tests run.
SHAPES = SMALL.replace(variants=("none", "bn", "bn_gauss", "bn_uniform", "bn_laplace@after"))
# Identity activation and a large learning rate: the plain network diverges within 40 steps.
DIVERGES = ExperimentConfig(widths=(32, 32), activation="identity", variants=("none", "bn"), lr=3.0, steps=40,
                            snapshot_every=10, probe_size=64)
# SMALL with noisy BN too and a learning rate that moves it: the training tests' run.
TINY = SMALL.replace(variants=("none", "bn", "bn_noisy"), lr=0.3)
# Every variant, each normalization on both sides of the activation: the twins of the model and probe tests.
TOKENS = ["none", "bn", "bn_noaffine", "bn_noisy", "ln", "bn@after", "ln@after", "bn_gauss", "bn_uniform",
          "bn_laplace@after"]
TWINS = ExperimentConfig(widths=(12, 9), variants=tuple(TOKENS), steps=20, snapshot_every=5, probe_size=64)


def wait_for(pred, timeout: float = 20.0, every: float = 0.02) -> bool:
    """Poll ``pred`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    return False


def finished_run(cfg, stats_in="inline", **kw):
    """A run of ``cfg`` trained to its end (``kw``: Run's other options, e.g. history_cap, table)."""
    from bnviz.training.run import Run

    run = Run(cfg, stats_in=stats_in, **kw).start()
    assert run.join(timeout=300) and run.state == "finished", run.error
    return run


def finished(cfg, stats_in="inline"):
    """The snapshots of a run of ``cfg`` trained to its end."""
    return finished_run(cfg, stats_in).history.snapshots()


def sgd_shifted(net, i: int, lr: float, loss):
    """A copy of ``net`` (whose gradients are computed) after one torch.optim.SGD step of layers 0..i-1 only,
    with ``loss(copy)`` backpropagated: Santurkar et al.'s G' of layer i, by PyTorch alone."""
    import copy

    import torch

    shifted = copy.deepcopy(net)  # a deep copy does not carry the gradients over: hand them on
    earlier = [(p, q) for a, b in zip(shifted.layers[:i], net.layers[:i])
               for p, q in zip(a.parameters(), b.parameters()) if p.requires_grad]
    for p, q in earlier:
        p.grad = q.grad.clone()
    if earlier:
        torch.optim.SGD([p for p, _ in earlier], lr=lr).step()
    shifted.zero_grad()
    loss(shifted).backward()
    return shifted


def twins(cfg=TWINS):
    """The data of ``cfg`` and its twin networks, untrained."""
    from bnviz.training import data
    from bnviz.training.model import build_twins

    ds = data.load(cfg)
    return ds, build_twins(cfg, ds.n_inputs, ds.n_outputs)


def randomize(net, seed=3):
    """Give gamma, beta, the noise and the running statistics values far from their initial ones."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            norm = layer.norm
            if norm is not None and getattr(norm, "weight", None) is not None:
                norm.weight.copy_(torch.randn(norm.weight.shape, generator=g) * 2)
                norm.bias.copy_(torch.randn(norm.bias.shape, generator=g))
            if isinstance(norm, nn.BatchNorm1d):
                norm.running_mean.copy_(torch.randn(norm.running_mean.shape, generator=g))
                norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=g) + 0.5)
            if norm is not None and hasattr(norm, "running_quantiles"):  # a shape variant's: ascending per unit
                q = norm.running_quantiles
                q.copy_(torch.sort(torch.randn(q.shape, generator=g) * 1.5 + torch.randn(q.shape[0], 1, generator=g),
                                   dim=1).values)
    net.resample_noise(torch.Generator().manual_seed(seed + 1))
