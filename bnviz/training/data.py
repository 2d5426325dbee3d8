"""Datasets that need no download: scikit-learn's digits, 2-D toy sets, chosen feature distributions, a linear
regression on them, and your own CSV file from the data store.

Every dataset is a pure function of (config, seed): the same seed gives the same examples and the same
80/20 train/test split, so a shared link regenerates exactly the same data.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bnviz import owndata
from bnviz.config import DATASETS, OWN_DATA, REGRESSION_NOISE, REGRESSION_TARGETS, ExperimentConfig
from bnviz.measure.clt import feature_sample

N_SYNTHETIC = 2000  # examples in each generated dataset (1,600 train / 400 test)
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors of one dataset: float32 inputs; int64 labels, or float32 regression targets."""

    name: str
    x_train: torch.Tensor  # (N_train, D)
    y_train: torch.Tensor  # (N_train,) labels, or (N_train, n_outputs) targets
    x_test: torch.Tensor  # (N_test, D)
    y_test: torch.Tensor  # (N_test,) or (N_test, n_outputs)
    n_outputs: int  # classes, or regression targets: the width of the network's head

    @property
    def n_inputs(self) -> int:
        """Input width D."""
        return int(self.x_train.shape[1])


@functools.lru_cache(maxsize=1)
def _digits_file() -> np.ndarray:
    """The (1797, 65) table behind scikit-learn's ``load_digits`` (64 pixels in 0..16, then the label).

    It ships inside scikit-learn (no download). Read the way ``load_digits`` reads it (np.loadtxt of the
    gzipped CSV) but without importing scikit-learn, which costs about 2 s (it loads scipy.stats and pandas)
    on every new training process; the tests check the result against ``load_digits`` itself.
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = None
    if spec is not None:
        assert spec.submodule_search_locations is not None  # a package's spec lists its folders
        path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if path is None or not path.is_file():  # pragma: no cover - a scikit-learn that moved its data file
        from sklearn.datasets import load_digits

        digits = load_digits()
        table = np.column_stack([digits.data, digits.target])
    else:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            table = np.loadtxt(f, delimiter=",")
    table.setflags(write=False)  # cached and shared by every run
    return table


def _digits() -> tuple[np.ndarray, np.ndarray]:
    table = _digits_file()
    return table[:, :-1] / 16.0, table[:, -1].astype(int)  # pixel intensities 0..16 scaled to [0, 1]


def _spirals(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    # Two interleaved Archimedean spirals, as in TensorFlow Playground's spiral set.
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    label = rng.integers(0, 2, n)
    angle = t + np.pi * label
    xy = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) / (3 * np.pi)
    return xy + 0.03 * rng.standard_normal((n, 2)), label


def _xor(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    centers = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)
    k = rng.integers(0, 4, n)
    return centers[k] + 0.4 * rng.standard_normal((n, 2)), (k >= 2).astype(int)


def _features(cfg: ExperimentConfig, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = feature_sample(cfg.input_dist, n, cfg.n_features, rng)
    # Labels from a fixed random linear teacher with 4 classes: learnable whatever the distribution.
    teacher = rng.standard_normal((cfg.n_features, 4))
    return x, np.argmax(x @ teacher, axis=1)


def _regression(cfg: ExperimentConfig, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    # Santurkar et al.'s deep linear network task: Gaussian inputs and targets y = x A + noise, A fixed and
    # random with variance 1 / n_features, so that each target has variance about 1 for unit-variance inputs.
    x = feature_sample(cfg.input_dist, n, cfg.n_features, rng)
    teacher = rng.standard_normal((cfg.n_features, REGRESSION_TARGETS)) / np.sqrt(cfg.n_features)
    return x, x @ teacher + REGRESSION_NOISE * rng.standard_normal((n, REGRESSION_TARGETS))


def _raw(cfg: ExperimentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, state = N_SYNTHETIC, int(rng.integers(0, 2**31 - 1))
    if cfg.dataset == "digits":
        return _digits()
    from sklearn import datasets as skd  # only the 2-D toy sets need it
    if cfg.dataset == "moons":
        return skd.make_moons(n, noise=0.1, random_state=state)
    if cfg.dataset == "circles":
        return skd.make_circles(n, noise=0.08, factor=0.5, random_state=state)
    if cfg.dataset == "spirals":
        return _spirals(rng, n)
    if cfg.dataset == "xor":
        return _xor(rng, n)
    if cfg.dataset == "blobs":
        return skd.make_blobs(n, centers=4, n_features=2, cluster_std=1.0, random_state=state)
    if cfg.dataset == "features":
        return _features(cfg, rng, n)
    if cfg.dataset == "regression":
        return _regression(cfg, rng, n)
    if cfg.dataset == OWN_DATA:
        prepared = owndata.default_store().prepared(cfg.data, cfg.target)
        return prepared.x, prepared.y
    raise ValueError(f"unknown dataset {cfg.dataset!r}; known: {', '.join(DATASETS)}")


def load(cfg: ExperimentConfig) -> Dataset:
    """The dataset of ``cfg`` with its seed-fixed 80/20 train/test split."""
    rng = np.random.default_rng([cfg.seed, 1])  # a stream of its own: data never shifts the weights' stream
    x, y = _raw(cfg, rng)
    order = rng.permutation(len(x))
    n_test = int(round(TEST_FRACTION * len(x)))
    test, train = order[:n_test], order[n_test:]
    regression = cfg.task == "regression"
    if cfg.dataset == OWN_DATA:  # your own data: standardized with the training split's mean and std
        x = owndata.csvfile.standardize(np.asarray(x, dtype=np.float64), train)
        if regression:  # R² is scale-free: a standardized target leaves it unchanged and keeps lr meaningful
            y = owndata.csvfile.standardize(np.asarray(y, dtype=np.float64)[:, None], train)
    as_x = lambda idx: torch.as_tensor(np.asarray(x)[idx], dtype=torch.float32)  # noqa: E731
    as_y = lambda idx: torch.as_tensor(np.asarray(y)[idx], dtype=torch.float32 if regression else torch.int64)  # noqa: E731
    n_outputs = y.shape[1] if regression else int(np.max(y)) + 1
    return Dataset(cfg.dataset, as_x(train), as_y(train), as_x(test), as_y(test), n_outputs)
