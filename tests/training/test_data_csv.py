"""Your own data as a dataset: the preset's 80/20 split by seed and features standardized with the training
split's mean and std, checked against the same recipe computed by hand with numpy from Python's csv reader; a
regression target standardized too; a run on it trains and scores like any other."""

import csv
import io

import numpy as np
import pytest

from bnviz import owndata, urlstate
from bnviz.training import data
from tests.owndata.files import blobs, linear

from ..helpers import finished_run


def own_config(raw: bytes, name: str, **changes):
    h = owndata.default_store().put(raw, name)
    decoded = urlstate.decode({"preset": "ioffe", "dataset": "csv", "data": h, "widths": "16,16"})
    assert decoded.warnings == []
    return decoded.config.replace(**changes)


def by_hand(raw: bytes, seed: int, target_col: int):
    """The split and standardization as the docs state them, from the file read by Python's csv module."""
    rows = list(csv.reader(io.StringIO(raw.decode())))[1:]
    values = np.array([[float(v) for i, v in enumerate(r) if i != target_col] for r in rows])
    rng = np.random.default_rng([seed, 1])  # the data's own stream, as for every dataset
    rng.integers(0, 2**31 - 1)  # every dataset draws its generator state first
    order = rng.permutation(len(rows))
    n_test = int(round(0.2 * len(rows)))
    test, train = order[:n_test], order[n_test:]
    mean, std = values[train].mean(axis=0), values[train].std(axis=0)
    return rows, (values - mean) / std, train, test


@pytest.mark.parametrize("seed", [0, 7])
def test_the_split_and_standardization_are_the_documented_ones(seed):
    raw = blobs(n=250, seed=4)
    cfg = own_config(raw, "blobs.csv", seed=seed)
    ds = data.load(cfg)
    rows, x, train, test = by_hand(raw, seed, target_col=4)
    np.testing.assert_allclose(ds.x_train.numpy(), x[train], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ds.x_test.numpy(), x[test], rtol=1e-6, atol=1e-6)
    labels = sorted({r[-1] for r in rows})
    np.testing.assert_array_equal(ds.y_train.numpy(), [labels.index(rows[i][-1]) for i in train])
    np.testing.assert_array_equal(ds.y_test.numpy(), [labels.index(rows[i][-1]) for i in test])
    assert ds.n_outputs == 3 and ds.n_inputs == 4 and len(ds.x_test) == 50


def test_a_regression_target_is_standardized_with_the_training_split():
    raw = linear()
    cfg = own_config(raw, "price.csv")
    assert cfg.task == "regression" and cfg.n_inputs == 3
    ds = data.load(cfg)
    rows, _, train, test = by_hand(raw, cfg.seed, target_col=3)
    y = np.array([float(r[3]) for r in rows])
    mean, std = y[train].mean(), y[train].std()
    np.testing.assert_allclose(ds.y_train.numpy()[:, 0], (y[train] - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.y_test.numpy()[:, 0], (y[test] - mean) / std, rtol=1e-5, atol=1e-6)
    assert ds.n_outputs == 1


@pytest.mark.slow
def test_a_run_on_your_own_data_learns_it():
    """Three separated Gaussian blobs: both variants classify most test examples; the linear target: R² high."""
    run = finished_run(own_config(blobs(n=400, seed=2), "blobs.csv", steps=300, snapshot_every=50, lr=0.5,
                                  probe_size=64))
    last = run.history.snapshots()[-1]
    assert all(v.test_accuracy > 0.8 for v in last.variants.values()), last.variants
    reg = finished_run(own_config(linear(), "price.csv", steps=300, snapshot_every=50, lr=0.05, probe_size=64,
                                  activation="relu"))
    last = reg.history.snapshots()[-1]
    assert all(v.test_accuracy > 0.8 for v in last.variants.values()), last.variants
