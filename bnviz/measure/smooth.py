"""Santurkar et al.'s smoothness of the loss landscape, measured along the gradient (their Section 3.1, Fig. 4).

At the weights w of a snapshot, with L the training loss on one mini-batch and g = grad L(w) over all the
network's trained parameters (flattened into one vector), the prober steps along -g by each eta of
``STEPS`` x the run's learning rate and measures:

- the loss's variation: max - min of L(w - eta g) over eta in {0} and the grid;
- the gradient's change ("gradient predictiveness"): max over eta of ||g - grad L(w - eta g)||;
- the effective beta-smoothness: max over eta of ||g - grad L(w - eta g)|| / ||eta g||.

The mini-batch is the one the gradient shift uses (the next training step's, every ``ics_every`` steps), in
the training view: BN with that batch's statistics, noisy BN with its current draw. The steps are plain
gradient steps whatever the optimizer, as the paper's. Everything is float64, on copies of the weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from bnviz.config import ExperimentConfig
from bnviz.measure import npnet, objective
from bnviz.measure.snapshot import Smoothness

STEPS = (0.25, 0.5, 1.0, 2.0, 4.0)  # step sizes along -g, in units of the run's learning rate


def _loss_and_gradients(net, u: np.ndarray, targets: np.ndarray, task: str) -> tuple[float, dict[str, np.ndarray]]:
    _, logits = net.forward(u, "train")
    return objective.loss(task, logits, targets), net.gradients(u, targets)


def _flat(grads: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([np.ravel(grads[n]) for n in names])


def smoothness(cfg: ExperimentConfig, token: str, state: Mapping[str, np.ndarray], u: np.ndarray,
               targets: np.ndarray, lr: float, net_class=npnet.NumpyMLP, steps=STEPS) -> Smoothness:
    """The loss range, gradient change and effective beta-smoothness of ``token``'s network at ``state`` on the
    batch (u, targets), along -g with step sizes ``lr * s`` for s in ``steps``.

    ``net_class``: npnet.NumpyMLP, or npconv.NumpyConvNet. Not finite (a diverging network) or a zero gradient:
    the quantities that cannot be defined are NaN (beta needs ||g|| > 0).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging network measures NaN, said below
        return _measure(cfg, token, state, u, targets, lr, net_class, steps)


def _measure(cfg, token, state, u, targets, lr, net_class, steps) -> Smoothness:
    state = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    u = np.asarray(u, dtype=np.float64)
    loss0, grads = _loss_and_gradients(net_class(cfg, token, state), u, targets, cfg.task)
    names = sorted(grads)
    g = _flat(grads, names)
    g_norm = float(np.linalg.norm(g))
    if not (math.isfinite(loss0) and math.isfinite(g_norm)):
        return Smoothness(math.nan, math.nan, math.nan)
    losses, changes, betas = [loss0], [], []
    for s in steps:
        eta = lr * s
        moved = dict(state)
        for n in names:
            moved[n] = state[n] - eta * grads[n]
        loss, grads_at = _loss_and_gradients(net_class(cfg, token, moved), u, targets, cfg.task)
        change = float(np.linalg.norm(g - _flat(grads_at, names)))
        losses.append(loss)
        changes.append(change)
        betas.append(change / (eta * g_norm) if g_norm > 0 else math.nan)
    if not all(math.isfinite(x) for x in (*losses, *changes)):
        return Smoothness(math.nan, math.nan, math.nan)
    return Smoothness(max(losses) - min(losses), max(changes), max(betas))
