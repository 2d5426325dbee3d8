"""Datasets: shipped or generated, seed-fixed splits, and the feature distributions they claim."""

import numpy as np
import pytest
import scipy.stats
import torch
from sklearn.datasets import load_digits

from bnviz import owndata
from bnviz.config import DATASETS, INPUT_DISTS, OWN_DATA, REGRESSION_NOISE, ExperimentConfig
from bnviz.measure import clt
from bnviz.training import data
from tests.owndata.files import blobs


def test_digits_is_scikit_learns_digits_scaled_with_an_80_20_split():
    ds = data.load(ExperimentConfig())
    ref = load_digits()
    assert len(ds.x_test) == round(0.2 * 1797) and len(ds.x_train) == 1797 - round(0.2 * 1797)
    assert ds.n_inputs == 64 and ds.n_outputs == 10
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    # every example is one of scikit-learn's, divided by 16, and none is in both splits
    all_x = torch.cat([ds.x_train, ds.x_test]).numpy()
    ref_rows = {tuple(r) for r in (ref.data / 16.0).astype(np.float32)}
    assert {tuple(r) for r in all_x} <= ref_rows
    assert len({tuple(r) for r in all_x}) == len(ref_rows)


@pytest.mark.slow
def test_digits_table_is_load_digits_read_without_importing_scikit_learn():
    import subprocess
    import sys

    ref = load_digits()
    table = data._digits_file()
    np.testing.assert_array_equal(table[:, :-1], ref.data)
    np.testing.assert_array_equal(table[:, -1], ref.target)
    code = ("import sys; from bnviz.training import data; data._digits_file(); "
            "print([m for m in sys.modules if m.split('.')[0] == 'sklearn'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def config_of(name: str) -> ExperimentConfig:
    """The default config on dataset ``name``; for your own data, on a CSV file kept in the test session's store."""
    if name != OWN_DATA:
        return ExperimentConfig(dataset=name)
    raw = blobs()
    info = owndata.prepare(owndata.read(raw, "blobs.csv")).info
    return ExperimentConfig(**owndata.config_changes(owndata.default_store().put(raw, "blobs.csv"), "", info))


@pytest.mark.parametrize("name", list(DATASETS))
def test_same_seed_same_data_other_seed_other_split(name):
    cfg = config_of(name)
    a, b, c = data.load(cfg), data.load(cfg), data.load(cfg.replace(seed=1))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    assert a.x_train.dtype == torch.float32
    if cfg.task == "regression":
        assert a.y_train.dtype == torch.float32 and a.y_train.shape == (len(a.x_train), a.n_outputs)
    else:
        assert a.y_train.dtype == torch.int64
        assert int(a.y_train.max()) < a.n_outputs and len(set(a.y_train.tolist())) >= 2


def test_regression_targets_are_a_noisy_linear_map_of_gaussian_inputs():
    from sklearn.linear_model import LinearRegression

    cfg = ExperimentConfig(dataset="regression", n_features=16)
    ds = data.load(cfg)
    x, y = ds.x_train.double().numpy(), ds.y_train.double().numpy()
    assert cfg.task == "regression" and ds.n_outputs == 10 and ds.n_inputs == cfg.n_inputs == 16
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02  # standard normal inputs
    fit = LinearRegression().fit(x, y)
    residual = y - fit.predict(x)
    assert np.allclose(fit.intercept_, 0, atol=0.02)  # no offset: y = x A + noise
    assert abs(residual.std() - REGRESSION_NOISE) < 0.005  # the noise is all a linear fit leaves
    assert abs(y.var(axis=0).mean() - (1 + REGRESSION_NOISE ** 2)) < 0.4  # each target: variance about 1


@pytest.mark.parametrize("dist, mean, var, skew", [
    ("gaussian", 0.0, 1.0, 0.0),
    ("uniform", 0.0, 1.0, 0.0),
    ("exponential", 0.0, 1.0, 2.0),
    ("bimodal", 0.0, 1.0625, 0.0),
    ("sparse", 1 / np.sqrt(2 * np.pi), 0.5 - 1 / (2 * np.pi), None),
])
def test_feature_distributions_have_their_closed_form_moments(dist, mean, var, skew):
    x = clt.feature_sample(dist, 200_000, 1, np.random.default_rng(0))[:, 0]
    assert abs(x.mean() - mean) < 0.01 and abs(x.var() - var) < 0.02
    if skew is not None:
        assert abs(scipy.stats.skew(x) - skew) < 0.06


def test_student_t_is_heavy_tailed_and_correlated_features_share_a_factor():
    rng = np.random.default_rng(0)
    t = clt.feature_sample("student-t", 100_000, 1, rng)[:, 0]
    assert np.mean(np.abs(t) > 5) > 10 * scipy.stats.norm.sf(5) * 2
    c = clt.feature_sample("correlated", 5_000, 4, rng)
    assert np.corrcoef(c.T)[0, 1] > 0.9


def test_unknown_distribution_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown input distribution"):
        clt.feature_sample("cauchy", 10, 2, np.random.default_rng(0))
    assert set(INPUT_DISTS) == {"gaussian", "uniform", "exponential", "bimodal", "student-t", "sparse", "correlated"}
