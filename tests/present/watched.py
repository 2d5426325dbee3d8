"""Snapshots of a model watched with bnviz.watch, made without torch: hand-made RawSnapshots (numpy arrays shaped
as the watcher hands them over) summarized by the real Summarizer, with known shapes and known γ and β.

The stem's BN input is exponential (skewed, far from Gaussian), the block's Gaussian; each snapshot draws new
probe values. γ goes from 1 to 1.5 and β from 0 to 1 over the run, so y moves about one standard deviation
from where it started while x̂ (standardized every time) moves by sampling noise only.
"""

import numpy as np

from bnviz.config import ExperimentConfig, WatchedModel
from bnviz.measure.snapshot import RawSnapshot, RawVariant, Summarizer

EVERY = 50
N_SNAPS = 8
ROWS = 1024  # values per channel: examples x positions
WIDTH = 8

CHANNELS = WatchedModel(model="TinyResNet", names=("stem.bn1", "layer1.0.bn2"),
                        kinds=("BatchNorm2d", "BatchNorm2d"), fan_ins=(27, 576), values=(ROWS, ROWS),
                        activations=("ReLU", ""))
CONFIG = ExperimentConfig(watched=CHANNELS, widths=(WIDTH, WIDTH), variants=("bn",), activation="relu",
                          placement="before", snapshot_every=EVERY, steps=(N_SNAPS - 1) * EVERY, probe_size=64,
                          ics_every=0)
# A BN layer then a LayerNorm (standardizes each row over its features, not each feature over the batch).
MIXED = WatchedModel(model="Mixer", names=("conv.bn", "head.ln"), kinds=("BatchNorm2d", "LayerNorm"),
                     fan_ins=(27, 0), values=(ROWS, ROWS), activations=("ReLU", ""))
MIXED_CONFIG = CONFIG.replace(watched=MIXED)
LAYERNORM = WatchedModel(model="Tiny", names=("blocks.0.ln1",), kinds=("LayerNorm",), fan_ins=(64,),
                         values=(ROWS,), activations=("GELU",))
LN_CONFIG = ExperimentConfig(watched=LAYERNORM, widths=(WIDTH,), variants=("ln",), activation="gelu",
                             snapshot_every=EVERY, steps=(N_SNAPS - 1) * EVERY, probe_size=64, ics_every=0)


def gamma_beta(i: int) -> tuple[float, float]:
    """γ and β (the same for every unit) at snapshot ``i``."""
    t = i / (N_SNAPS - 1)
    return 1 + 0.5 * t, t


def inputs(li: int, rng: np.random.Generator) -> np.ndarray:
    """x of layer ``li``: exponential in the stem (layer 0), Gaussian after it; each channel its own scale."""
    scale = 1 + np.arange(WIDTH, dtype=np.float64)
    z = rng.exponential(size=(ROWS, WIDTH)) if li == 0 else rng.standard_normal((ROWS, WIDTH))
    return (z * scale + 3.0).astype(np.float32)


def raw_snapshot(i: int, rng: np.random.Generator, model: WatchedModel = CHANNELS) -> RawSnapshot:
    g, b = gamma_beta(i)
    layers, gammas, betas, changes, stages_of = [], [], [], [], []
    for li, kind in enumerate(model.kinds):
        x = inputs(li, rng)
        if kind == "LayerNorm":  # each row by its own mean and variance
            x_hat = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
        else:
            x_hat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
        x_hat = x_hat.astype(np.float32)
        gamma, beta = np.full(WIDTH, g, np.float32), np.full(WIDTH, b, np.float32)
        y = (gamma * x_hat + beta).astype(np.float32)
        stages = {"x": x, "x_hat": x_hat, "y": y}
        if model.activations[li]:
            stages["a"] = np.maximum(y, 0)
        layers.append(stages)
        gammas.append(gamma)
        betas.append(beta)
        changes.append({} if i == 0 else {"weight": 0.01, "gamma": 0.5 / (N_SNAPS - 1) / g, "beta": 0.1})
        stages_of.append("y")
    token = "ln" if all(k == "LayerNorm" for k in model.kinds) else "bn"
    variant = RawVariant(loss=2.0 / (1 + i), accuracy=float("nan"), test_accuracy=float("nan"), diverged_at=None,
                         layers=layers, act_stage=stages_of, gamma=gammas, beta=betas, change=changes, ics=None)
    return RawSnapshot(i * EVERY, {token: variant})


def snapshots(model: WatchedModel = CHANNELS, n: int = N_SNAPS, seed: int = 0) -> tuple:
    """``n`` summarized snapshots of ``model`` at steps 0, EVERY, 2 EVERY, ...; and the raw ones they came from."""
    rng = np.random.default_rng(seed)
    summarizer = Summarizer("relu", (0, 1, 2, 3, 4))
    raws = [raw_snapshot(i, rng, model) for i in range(n)]
    return tuple(summarizer.summarize(r) for r in raws), raws
