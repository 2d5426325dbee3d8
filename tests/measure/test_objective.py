"""The regression task end to end: losses and scores against PyTorch and scikit-learn, the numpy networks'
gradients under the squared error against autograd, and the prober's R² against a PyTorch forward pass."""

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from torch.nn import functional as F

from bnviz.config import ExperimentConfig
from bnviz.measure import npconv, npnet, objective, probe
from bnviz.training import data
from bnviz.training.model import build_twins

REGRESSION = ExperimentConfig(dataset="regression", n_features=16, widths=(9, 7, 5), activation="identity",
                              variants=("none", "bn", "bn_noisy", "ln"), probe_size=64)


def _outputs(seed=0, n=40, k=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64), torch.randn(n, k, generator=g, dtype=torch.float64)


def test_losses_and_their_gradients_are_pytorchs():
    out, target = _outputs()
    out.requires_grad_(True)
    F.mse_loss(out, target).backward()
    assert objective.loss("regression", out.detach().numpy(), target.numpy()) == pytest.approx(
        float(F.mse_loss(out.detach(), target)), rel=1e-12)
    np.testing.assert_allclose(objective.loss_grad("regression", out.detach().numpy(), target.numpy()),
                               out.grad.numpy(), rtol=1e-12)
    logits = out.detach().clone().requires_grad_(True)
    labels = torch.arange(40) % 10
    F.cross_entropy(logits, labels).backward()
    assert objective.loss("classification", logits.detach().numpy(), labels.numpy()) == pytest.approx(
        float(F.cross_entropy(logits.detach(), labels)), rel=1e-12)
    np.testing.assert_allclose(objective.loss_grad("classification", logits.detach().numpy(), labels.numpy()),
                               logits.grad.numpy(), rtol=1e-10)


def test_the_regression_score_is_scikit_learns_r2():
    out, target = (a.numpy() for a in _outputs(1))
    assert objective.score("regression", out, target) == pytest.approx(r2_score(target, out), rel=1e-12)
    assert objective.score("regression", target, target) == 1.0
    mean = np.broadcast_to(target.mean(axis=0), target.shape)
    assert objective.score("regression", mean, target) == pytest.approx(0.0, abs=1e-12)  # the mean scores 0


@pytest.mark.parametrize("token", ["none", "bn", "bn_noisy", "ln", "bn@after"])
def test_the_numpy_mlp_gradients_of_the_squared_error_are_autograds(token):
    cfg = REGRESSION.replace(variants=(token,), activation="tanh")
    ds = data.load(cfg)
    net = copy.deepcopy(build_twins(cfg, ds.n_inputs, ds.n_outputs)[token]).double().train()
    net.resample_noise(torch.Generator().manual_seed(1))
    xb, yb = ds.x_train[:40].double(), ds.y_train[:40].double()
    F.mse_loss(net(xb), yb).backward()
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    got = npnet.NumpyMLP(cfg, token, state).gradients(xb.numpy(), yb.numpy())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(got[name], p.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("token", ["none", "bn", "bn_noisy"])
def test_the_numpy_conv_net_gradients_of_the_squared_error_are_autograds(token):
    cfg = REGRESSION.replace(architecture="conv", widths=(3, 4), variants=(token,), activation="tanh")
    ds = data.load(cfg)
    net = copy.deepcopy(build_twins(cfg, ds.n_inputs, ds.n_outputs)[token]).double().train()
    net.resample_noise(torch.Generator().manual_seed(1))
    xb, yb = ds.x_train[:12].double(), ds.y_train[:12].double()
    F.mse_loss(net(xb), yb).backward()
    state = {k: v.detach().numpy() for k, v in net.state_dict().items() if v.is_floating_point()}
    got = npconv.NumpyConvNet(cfg, token, state).gradients(xb.numpy(), yb.numpy())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(got[name], p.grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)


def test_the_prober_scores_a_regression_by_r2_of_pytorchs_outputs():
    ds = data.load(REGRESSION)
    nets = build_twins(REGRESSION, ds.n_inputs, ds.n_outputs)
    prober = probe.Prober(REGRESSION, probe.Arrays.of(ds))
    weights = {t: probe.WeightVariant(float("nan"), None, {k: v.detach().numpy().copy() for k, v in
                                                           n.state_dict().items() if v.is_floating_point()}, None)
               for t, n in nets.items()}
    raw = prober.raw(probe.WeightSnapshot(0, weights))
    idx = torch.as_tensor(probe.probe_indices(REGRESSION, len(ds.x_train)))
    for token, net in nets.items():
        rv = raw.variants[token]
        net.eval()  # test score: running statistics, no noise
        with torch.no_grad():
            test_out = net(ds.x_test).numpy()
        assert rv.test_accuracy == pytest.approx(r2_score(ds.y_test.numpy(), test_out), rel=1e-5, abs=1e-6)
        net.train()  # the probe's own view: its batch statistics (noisy BN's noise is all ones and zeros here)
        with torch.no_grad():
            out = net(ds.x_train[idx])
        assert rv.accuracy == pytest.approx(r2_score(ds.y_train[idx].numpy(), out.numpy()), rel=1e-5, abs=1e-6)
        assert rv.loss == pytest.approx(float(F.mse_loss(out, ds.y_train[idx])), rel=1e-5)
