"""Snapshots of a watched model made without torch: hand-made RawSnapshots (numpy arrays shaped as bnviz.watch
hands them over) summarized by the real Summarizer, and the config a watch would build for them."""

import numpy as np

from bnviz.config import ExperimentConfig, WatchedModel
from bnviz.measure.snapshot import RawSnapshot, RawVariant, Summarizer

EVERY = 10
# Two normalization layers: a BatchNorm2d of 8 channels (64 examples x 16 positions) followed by a ReLU, and a
# LayerNorm of 6 features (48 rows) followed by nothing.
WATCHED = WatchedModel(model="TinyNet", names=("features.0.bn", "head.norm"), kinds=("BatchNorm2d", "LayerNorm"),
                       fan_ins=(27, 16), values=(1024, 48), activations=("ReLU", ""))
CONFIG = ExperimentConfig(watched=WATCHED, widths=(8, 6), variants=("bn",), activation="relu", placement="before",
                          snapshot_every=EVERY, steps=1, probe_size=64, ics_every=0)


def raw_snapshot(i: int, rng: np.random.Generator) -> RawSnapshot:
    """The ``i``-th snapshot (step i * EVERY): inputs whose scale and shift drift with i."""
    layers, gammas, betas, changes = [], [], [], []
    for li, (rows, width) in enumerate(zip(WATCHED.values, CONFIG.widths)):
        x = (rng.standard_normal((rows, width)) * (1 + 0.1 * i) + 0.2 * i + li).astype(np.float32)
        x_hat = ((x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)).astype(np.float32)
        gamma = (1 + 0.01 * i * np.arange(width)).astype(np.float32)
        beta = (0.005 * i * np.arange(width)).astype(np.float32)
        y = (gamma * x_hat + beta).astype(np.float32)
        stages = {"x": x, "x_hat": x_hat, "y": y}
        if WATCHED.activations[li]:
            stages["a"] = np.maximum(y, 0)
        layers.append(stages)
        gammas.append(gamma)
        betas.append(beta)
        changes.append({} if i == 0 else {"weight": 0.01 / i, "gamma": 0.002, "beta": 0.001})
    variant = RawVariant(loss=2.0 / (1 + i), accuracy=float("nan") if i == 0 else 0.1 * min(i, 9),
                         test_accuracy=float("nan"), diverged_at=None, layers=layers, act_stage=["y", "y"],
                         gamma=gammas, beta=betas, change=changes, ics=None)
    return RawSnapshot(i * EVERY, {"bn": variant})


def watched_snapshots(n: int, seed: int = 0):
    """``n`` summarized snapshots of the watched model, steps 0, EVERY, 2 EVERY, ..."""
    rng = np.random.default_rng(seed)
    summarizer = Summarizer(CONFIG.activation, CONFIG.units)
    return [summarizer.summarize(raw_snapshot(i, rng)) for i in range(n)]
