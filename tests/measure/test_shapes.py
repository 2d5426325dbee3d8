"""The shape-imposing normalizations: target quantiles (measure.shapes) against scipy and the standard library,
and the PyTorch module (training.model.ShapeNorm) alone: x̂'s moments, shape and ranks, the straight-through
gradient against BatchNorm's, the running quantiles' update and the eval view by hand."""

import statistics

import numpy as np
import pytest
import torch
from scipy import stats as sps

from bnviz.config import BN_EPS
from bnviz.measure import shapes
from bnviz.training.model import ShapeNorm

KINDS = list(shapes.TARGETS)
SCIPY = {"bn_gauss": sps.norm(), "bn_uniform": sps.uniform(-np.sqrt(3), 2 * np.sqrt(3)),
         "bn_laplace": sps.laplace(scale=1 / np.sqrt(2))}


def test_the_targets_have_mean_0_and_variance_1():
    for kind, dist in SCIPY.items():
        assert dist.mean() == pytest.approx(0, abs=1e-12) and dist.var() == pytest.approx(1, rel=1e-12), kind


def test_the_normal_quantile_is_the_standard_librarys_and_torchs():
    p = np.concatenate([np.linspace(1e-12, 1 - 1e-12, 2001), [1e-300, 0.5, 0.025, 0.075, 0.925, 0.975]])
    ref = np.array([statistics.NormalDist().inv_cdf(float(x)) for x in p])
    np.testing.assert_allclose(shapes.normal_quantile(p), ref, rtol=1e-15, atol=0)
    np.testing.assert_allclose(shapes.normal_quantile(p), torch.special.ndtri(torch.tensor(p)).numpy(),
                               rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_each_quantile_function_is_scipys(kind):
    p = np.linspace(1e-9, 1 - 1e-9, 999)
    np.testing.assert_allclose(shapes.quantile(kind, p), SCIPY[kind].ppf(p), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m", [2, 3, 60, 512])
@pytest.mark.parametrize("kind", KINDS)
def test_target_points_are_the_standardized_midpoint_quantiles(kind, m):
    raw = SCIPY[kind].ppf((np.arange(m) + 0.5) / m)
    want = (raw - raw.mean()) / raw.std()
    got = shapes.target_points(kind, m)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert abs(got.mean()) < 1e-15 and abs(got.var() - 1) < 1e-14 and np.all(np.diff(got) > 0)


def test_a_batch_of_one_maps_to_zero():
    assert shapes.target_points("bn_gauss", 1).tolist() == [0.0]


def _norm(kind, width, seed=0):
    """A ShapeNorm with gamma and beta away from 1 and 0 (``seed`` None: left at 1 and 0, so y = x̂)."""
    norm = ShapeNorm(kind, width).double()
    if seed is not None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            norm.weight.copy_(torch.rand(width, generator=g, dtype=torch.float64) + 0.5)
            norm.bias.copy_(torch.randn(width, generator=g, dtype=torch.float64))
    return norm


def _skewed(shape, seed=1):
    """Inputs far from every target's shape: exponential, per unit a different scale and offset."""
    g = torch.Generator().manual_seed(seed)
    z = torch.empty(shape, dtype=torch.float64).exponential_(generator=g)
    scale = torch.rand(shape[1], generator=g, dtype=torch.float64) * 3 + 0.2
    view = (1, -1) + (1,) * (len(shape) - 2)
    return z * scale.reshape(view) + torch.randn(shape[1], generator=g, dtype=torch.float64).reshape(view)


def _series(t):
    """(B, U) or (B, C, H, W) -> (U, m): each unit's values over the batch (and positions)."""
    return t.transpose(0, 1).reshape(t.shape[1], -1).detach().numpy()


@pytest.mark.parametrize("shape", [(60, 5), (6, 3, 4, 4)], ids=["mlp", "conv"])
@pytest.mark.parametrize("kind", KINDS)
def test_x_hat_has_bns_two_moments_the_targets_shape_and_the_inputs_ranks(kind, shape):
    z = _skewed(shape)
    x_hat = _series(_norm(kind, shape[1], seed=None).train()(z))  # gamma 1, beta 0: y is x̂
    zs = _series(z)
    m = zs.shape[1]
    np.testing.assert_allclose(x_hat.mean(axis=1), 0, atol=1e-14)
    np.testing.assert_allclose(x_hat.var(axis=1), 1, atol=1e-13)
    raw = SCIPY[kind].ppf((np.arange(m) + 0.5) / m)
    for row_x, row_z in zip(x_hat, zs):
        np.testing.assert_allclose(np.sort(row_x), (raw - raw.mean()) / raw.std(), rtol=1e-12, atol=1e-12)
        assert np.array_equal(np.argsort(row_x, kind="stable"), np.argsort(row_z, kind="stable"))  # monotone in z


def test_float32_x_hat_is_the_target_points_exactly():
    z = _skewed((40, 4)).float()
    x_hat = ShapeNorm("bn_laplace", 4).train()(z)
    want = torch.from_numpy(shapes.target_points("bn_laplace", 40)).float()
    for j in range(4):
        assert torch.equal(torch.sort(x_hat[:, j].detach()).values, want)


def test_ties_are_ranked_by_position():
    z = torch.tensor([[1.0], [0.0], [1.0], [1.0]], dtype=torch.float64)
    x_hat = ShapeNorm("bn_uniform", 1).double().train()(z).detach().numpy()[:, 0]
    t = shapes.target_points("bn_uniform", 4)
    assert x_hat.tolist() == [t[1], t[0], t[2], t[3]]
    np.testing.assert_array_equal(shapes.rank_map("bn_uniform", z.numpy().T)[0], x_hat)


@pytest.mark.parametrize("shape", [(30, 4), (5, 3, 4, 4)], ids=["mlp", "conv"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_gradient_is_batchnorms_straight_through_and_gammas_uses_x_hat(kind, shape):
    z = _skewed(shape).requires_grad_(True)
    g_y = torch.randn(shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    norm = _norm(kind, shape[1])
    y = norm.train()(z)
    (y * g_y).sum().backward()
    bn_class = torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d
    bn = bn_class(shape[1], eps=BN_EPS).double().train()
    with torch.no_grad():
        bn.weight.copy_(norm.weight)
        bn.bias.copy_(norm.bias)
    z_bn = z.detach().clone().requires_grad_(True)
    (bn(z_bn) * g_y).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), z_bn.grad.numpy(), rtol=1e-10, atol=1e-12)
    gamma = norm.weight.detach().reshape((1, -1) + (1,) * (len(shape) - 2))
    beta = norm.bias.detach().reshape(gamma.shape)
    x_hat = (y.detach() - beta) / gamma
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    np.testing.assert_allclose(norm.weight.grad.numpy(), (g_y * x_hat).sum(dim=axes).numpy(), rtol=1e-10)
    np.testing.assert_allclose(norm.bias.grad.numpy(), g_y.sum(dim=axes).numpy(), rtol=1e-10)
    assert not np.allclose(norm.weight.grad.numpy(), bn.weight.grad.numpy())  # BN's x̂ is not this x̂


@pytest.mark.parametrize("shape", [(50, 3), (4, 2, 5, 5)], ids=["mlp", "conv"])
def test_running_quantiles_start_normal_and_average_the_batch_quantiles_with_momentum_0_1(shape):
    norm = _norm("bn_gauss", shape[1])
    levels = (np.arange(64) + 0.5) / 64
    start = norm.running_quantiles.numpy().copy()  # built in float32, the network's precision
    np.testing.assert_allclose(start, np.tile(sps.norm.ppf(levels), (shape[1], 1)), rtol=1e-7, atol=0)
    z1, z2 = _skewed(shape, 1), _skewed(shape, 2)
    norm.train()
    norm(z1)
    norm(z2)
    q1, q2 = (np.quantile(_series(z), levels, axis=1).T for z in (z1, z2))
    want = 0.9 * (0.9 * start + 0.1 * q1) + 0.1 * q2
    np.testing.assert_allclose(norm.running_quantiles.numpy(), want, rtol=1e-12, atol=1e-12)
    before = norm.running_quantiles.clone()
    norm.eval()
    norm(z1)
    assert torch.equal(norm.running_quantiles, before)  # the eval view reads them only


@pytest.mark.parametrize("kind", KINDS)
def test_the_eval_view_maps_through_the_running_quantiles_cdf_then_the_target_quantile(kind):
    norm = _norm(kind, 2)
    levels = (np.arange(64) + 0.5) / 64
    with torch.no_grad():  # unit 0: quantiles 2p - 1 (CDF (z + 1) / 2); unit 1: quantiles 3 + 4p (CDF (z - 3) / 4)
        norm.running_quantiles.copy_(torch.from_numpy(np.stack([2 * levels - 1, 3 + 4 * levels])))
    z = torch.tensor([[-2.0, 2.0], [-0.5, 3.5], [0.0, 5.0], [0.9, 6.0], [3.0, 7.5]], dtype=torch.float64)
    with torch.no_grad():
        y = norm.eval()(z).numpy()
    u = np.clip(np.stack([(z[:, 0].numpy() + 1) / 2, (z[:, 1].numpy() - 3) / 4], axis=1), levels[0], levels[-1])
    want = SCIPY[kind].ppf(u) * norm.weight.detach().numpy() + norm.bias.detach().numpy()
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_a_runs_snapshots_show_each_units_x_hat_with_the_targets_shape(shapes_run):
    """Through training, the probe and the statistics: x̂'s skewness and kurtosis per tracked unit are those of
    the target's standardized midpoint quantiles (scipy), and y = γx̂ + β keeps that shape."""
    from bnviz.present import views

    snaps, cfg = shapes_run.history.snapshots(), shapes_run.config
    m = cfg.probe_size
    for token in ("bn_gauss", "bn_uniform", "bn_laplace@after"):
        kind = token.split("@")[0]
        raw = SCIPY[kind].ppf((np.arange(m) + 0.5) / m)
        want = sps.kurtosis((raw - raw.mean()) / raw.std())
        for layer in range(len(cfg.widths)):
            for unit in cfg.units[:3]:
                for stage in ("x_hat", "y"):
                    got = views.unit_stat(snaps, token, layer, stage, "kurtosis", unit)
                    np.testing.assert_allclose(got, want, atol=2e-4, err_msg=f"{token} {layer} {unit} {stage}")
                    skew = views.unit_stat(snaps, token, layer, stage, "skew", unit)
                    np.testing.assert_allclose(skew, 0, atol=2e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_npconvs_shape_normalize_is_the_modules_in_both_views(kind):
    from bnviz.measure import npconv

    z = _skewed((5, 3, 4, 4), seed=7)
    norm = _norm(kind, 3)
    with torch.no_grad():
        norm.running_quantiles.copy_(torch.sort(torch.randn(3, 64, generator=torch.Generator().manual_seed(8),
                                                            dtype=torch.float64), dim=1).values)
        running = norm.running_quantiles.numpy().copy()
        want_eval = norm.eval()(z).numpy()
        want_train = norm.train()(z).numpy()
    gamma, beta = norm.weight.detach().numpy(), norm.bias.detach().numpy()
    _, y, _, _ = npconv.shape_normalize(kind, z.numpy(), gamma, beta)
    np.testing.assert_allclose(y, want_train, rtol=1e-12, atol=1e-12)
    _, y, _, _ = npconv.shape_normalize(kind, z.numpy(), gamma, beta, running)
    np.testing.assert_allclose(y, want_eval, rtol=1e-12, atol=1e-12)
