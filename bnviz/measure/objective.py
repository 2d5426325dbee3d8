"""What a network is trained for, in numpy: each task's loss, the loss's gradient and the score the page plots.

A classification is trained on the mean cross-entropy of its logits and scored by accuracy; a regression
(config.REGRESSION_DATASETS) on the mean squared error of its outputs, as ``F.mse_loss``, and scored by R²,
the fraction of the targets' variance explained (1 is perfect, 0 is no better than predicting the mean).
The training loop uses PyTorch's own losses; the tests check these against them and against scikit-learn.
"""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of ``logits`` (N, classes) against integer ``labels``, as F.cross_entropy."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d mean cross-entropy / d logits: (softmax(logits) - onehot(labels)) / batch size."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p / len(labels)


def r2(outputs: np.ndarray, targets: np.ndarray) -> float:
    """R² of ``outputs`` against ``targets`` (N, K): 1 - SSE / SST per target, averaged over the targets
    (scikit-learn's r2_score with its default uniform average)."""
    out, t = np.asarray(outputs, np.float64), np.asarray(targets, np.float64)
    sse = np.square(t - out).sum(axis=0)
    sst = np.square(t - t.mean(axis=0)).sum(axis=0)
    return float(np.mean(1 - sse / sst))


def loss(task: str, outputs: np.ndarray, targets: np.ndarray) -> float:
    """The training loss of ``task`` (config.ExperimentConfig.task) on one batch."""
    if task == "regression":
        return float(np.square(np.asarray(outputs, np.float64) - targets).mean())
    return cross_entropy(outputs, targets)


def loss_grad(task: str, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d loss / d outputs."""
    if task == "regression":
        return 2 * (outputs - targets) / outputs.size
    return cross_entropy_grad(outputs, targets)


def score(task: str, outputs: np.ndarray, targets: np.ndarray) -> float:
    """Accuracy (the arg max is the label) of a classification, R² of a regression."""
    if task == "regression":
        return r2(outputs, targets)
    return float(np.mean(outputs.argmax(axis=1) == targets))
