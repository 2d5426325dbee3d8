"""Santurkar et al.'s smoothness along the gradient (measure/smooth.py) against PyTorch's autograd, stepping the
parameters by hand, and against the closed form of a loss that is quadratic along the gradient."""

import copy
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from bnviz.measure import npconv, npnet, smooth

from ..helpers import TOKENS, randomize, twins
from ..helpers import TWINS as MLP
from .test_npconv import conv_twin, tensors

LR = 0.3


def torch_smoothness(net, loss_of, lr: float, steps=smooth.STEPS) -> tuple[float, float, float]:
    """(loss range, gradient change, beta) by autograd: every trained parameter moved by -eta * its gradient."""
    net = copy.deepcopy(net).double().train()
    net.zero_grad()
    loss0 = loss_of(net)
    loss0.backward()
    params = [p for p in net.parameters() if p.requires_grad]
    g = torch.cat([p.grad.reshape(-1) for p in params])
    losses, changes, betas = [loss0.item()], [], []
    for s in steps:
        eta = lr * s
        moved = copy.deepcopy(net)  # a deep copy does not carry the gradients: take them from net
        with torch.no_grad():
            for p, q in zip(moved.parameters(), net.parameters()):
                if p.requires_grad:
                    p -= eta * q.grad
        moved.zero_grad()
        loss = loss_of(moved)
        loss.backward()
        g2 = torch.cat([p.grad.reshape(-1) for p in moved.parameters() if p.requires_grad])
        change = torch.linalg.vector_norm(g - g2).item()
        losses.append(loss.item())
        changes.append(change)
        betas.append(change / (eta * torch.linalg.vector_norm(g).item()))
    return max(losses) - min(losses), max(changes), max(betas)


def _state(net):
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("token", TOKENS)
def test_an_mlps_smoothness_is_autograds_along_the_gradient(token):
    ds, nets = twins(MLP)
    net = nets[token]
    randomize(net)
    xb, yb = ds.x_train[:40], ds.y_train[:40]
    got = smooth.smoothness(MLP, token, _state(net), xb.numpy(), yb.numpy(), LR)
    want = torch_smoothness(net, lambda m: F.cross_entropy(m(xb.double()), yb), LR)
    np.testing.assert_allclose([got.loss_range, got.grad_change, got.beta], want, rtol=1e-7)
    assert got.loss_range > 0 and got.grad_change > 0 and got.beta > 0


@pytest.mark.parametrize("token", ["none", "bn", "bn_noaffine", "bn_noisy", "ln", "bn@after"])
def test_a_conv_nets_smoothness_is_autograds_along_the_gradient(token):
    cfg, net = conv_twin(token)
    u, labels = tensors(8, (12, 64)), torch.arange(12) % 5
    got = smooth.smoothness(cfg, token, _state(net), u.numpy(), labels.numpy(), LR, npconv.NumpyConvNet)
    want = torch_smoothness(net, lambda m: F.cross_entropy(m(u), labels), LR)
    np.testing.assert_allclose([got.loss_range, got.grad_change, got.beta], want, rtol=1e-7)


def test_measuring_changes_neither_the_weights_nor_their_type():
    ds, nets = twins(MLP)
    state = {k: v.astype(np.float32) for k, v in _state(nets["bn_noisy"]).items()}
    before = {k: v.copy() for k, v in state.items()}
    smooth.smoothness(MLP, "bn_noisy", state, ds.x_train[:40].numpy(), ds.y_train[:40].numpy(), LR)
    for k, v in state.items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, before[k])


class HeadOnly(npnet.NumpyMLP):
    """The MLP with only its output layer trained: the loss of a regression is then quadratic in what moves."""

    def gradients(self, u, targets):
        return {k: v for k, v in super().gradients(u, targets).items() if k.startswith("head.")}


@pytest.mark.parametrize("token", ["none", "bn"])
def test_a_quadratic_loss_gives_the_closed_form(token):
    # Squared error of a linear head on fixed features X = [h, 1] (N, D+1): L(Θ) = mean((X Θᵀ - T)²) over the
    # N x K entries, gradient G = 2/(NK) Rᵀ X with R = X Θᵀ - T, Hessian G -> 2/(NK) G XᵀX. Along -eta G:
    # L(eta) = L - eta ||G||² + eta²/2 <G, HG>, and g - g(eta) = eta HG exactly, so the gradient change grows
    # linearly in eta and beta is ||HG|| / ||G|| (the curvature's pull along g) at every step size.
    cfg = MLP.replace(dataset="regression", n_features=6, widths=(5,), activation="identity", variants=(token,))
    ds, nets = twins(cfg)
    state = _state(nets[token])
    u, t = ds.x_train[:30].double().numpy(), ds.y_train[:30].double().numpy()
    layers, _ = npnet.NumpyMLP(cfg, token, {k: v.astype(np.float64) for k, v in state.items()}).forward(u)
    h = layers[-1]["a"]  # identity activation: the features the head sees
    X = np.column_stack([h, np.ones(len(h))])
    theta = np.column_stack([state["head.weight"], state["head.bias"]]).astype(np.float64)
    n, k = t.shape
    R = X @ theta.T - t
    G = 2 / (n * k) * R.T @ X
    HG = 2 / (n * k) * G @ X.T @ X
    etas = LR * np.array(smooth.STEPS)
    loss = np.r_[0.0, -etas * np.sum(G * G) + etas ** 2 / 2 * np.sum(G * HG)] + np.mean(R ** 2)
    got = smooth.smoothness(cfg, token, state, u, t, LR, HeadOnly)
    assert got.loss_range == pytest.approx(loss.max() - loss.min(), rel=1e-9)
    assert got.grad_change == pytest.approx(etas.max() * np.linalg.norm(HG), rel=1e-9)
    assert got.beta == pytest.approx(np.linalg.norm(HG) / np.linalg.norm(G), rel=1e-9)


def test_a_network_that_is_not_finite_measures_nan():
    ds, nets = twins(MLP)
    state = _state(nets["none"])
    state["head.weight"][0, 0] = np.inf
    got = smooth.smoothness(MLP, "none", state, ds.x_train[:40].numpy(), ds.y_train[:40].numpy(), LR)
    assert all(math.isnan(x) for x in (got.loss_range, got.grad_change, got.beta))
