"""The numpy network and the probe (npnet, probe) against PyTorch's own modules, autograd and optimizers."""

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from bnviz.config import ACTIVATIONS
from bnviz.measure import npnet, probe

from ..helpers import TOKENS, sgd_shifted
from ..helpers import TWINS as SMALL
from ..helpers import randomize as _randomize
from ..helpers import twins as _nets


def _state(net):
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def _np(cfg, net):
    return npnet.NumpyMLP(cfg, net.token, _state(net))


def _hooked_forward(net, u, train=True):
    """Run the real modules (on a float64 copy) and capture what each linear map and normalization returned.

    float64, so that the reference is not the less precise side: the numpy network computes every stage
    exactly and rounds it to float32, while PyTorch's float32 accumulates rounding (amplified where BN
    divides by a small spread, e.g. after a sigmoid)."""
    net = copy.deepcopy(net).double().train(train)
    seen = []
    for layer in net.layers:
        rec = {}
        seen.append(rec)
        layer.linear.register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("x", o.detach()))
        if layer.norm is not None:
            layer.norm.register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("y", o.detach()))
    with torch.no_grad():
        logits = net(u.double())
    return seen, logits


def close(a, b, tol=1e-5):
    """Equal up to float32 rounding: ``tol`` relative to the larger of 1 and the reference's magnitude."""
    b = np.asarray(b, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=tol,
                               atol=tol * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("token", TOKENS)
def test_train_view_stages_match_pytorch_modules(token, activation):
    cfg = SMALL.replace(activation=activation)
    ds, nets = _nets(cfg)
    net = nets[token]
    _randomize(net)
    u = ds.x_train[:64]
    got, logits = _np(cfg, net).forward(u.numpy(), "train")
    seen, ref_logits = _hooked_forward(net, u)
    close(logits, ref_logits)
    for layer, g, s in zip(net.layers, got, seen):
        assert all(v.dtype == np.float32 and v.shape == (64, layer.linear.out_features) for v in g.values())
        close(g["x"], s["x"])
        if layer.norm is None:
            close(g["a"], net.layers[0].act(torch.from_numpy(g["x"])), 1e-6)
            continue
        close(g["y"], s["y"])
        act_in = g["y"] if layer.placement == "before" else g["x"]
        close(g["a"], layer.act(torch.from_numpy(act_in)), 1e-6)
        assert probe.activation_input(g, layer.placement) == ("y" if layer.placement == "before" else "x")


@pytest.mark.parametrize("token", ["bn", "bn_noisy", "ln", "bn@after", "bn_gauss", "bn_laplace@after"])
def test_eval_view_and_test_logits_match_module_eval(token):
    ds, nets = _nets()
    net = nets[token]
    _randomize(net)
    u = ds.x_train[:50]
    seen, ref_logits = _hooked_forward(net, u, train=False)  # running statistics, no noise
    got, logits = _np(SMALL, net).forward(u.numpy(), "eval")
    close(logits, ref_logits)
    close(_np(SMALL, net).logits_eval(u.numpy()), ref_logits)
    for g, s in zip(got, seen):
        close(g["y"], s["y"])


def test_x_hat_is_standardized_and_y_has_mean_beta_std_gamma():
    ds, nets = _nets()
    net = nets["bn"]
    _randomize(net)
    got, _ = _np(SMALL, net).forward(ds.x_train[:256].numpy(), "train")
    for layer, g in zip(net.layers, got):
        x, x_hat, y = (g[k].astype(np.float64) for k in ("x", "x_hat", "y"))
        var = x.var(axis=0)
        gamma, beta = layer.norm.weight.detach().double().numpy(), layer.norm.bias.detach().double().numpy()
        np.testing.assert_allclose(x_hat.mean(axis=0), 0, atol=1e-5)
        # BN divides by sqrt(var + eps), so x_hat's std is sqrt(var / (var + eps)), not exactly 1.
        np.testing.assert_allclose(x_hat.std(axis=0), np.sqrt(var / (var + 1e-5)), atol=1e-5)
        np.testing.assert_allclose(y.mean(axis=0), beta, atol=1e-5)
        np.testing.assert_allclose(y.std(axis=0), np.abs(gamma) * np.sqrt(var / (var + 1e-5)), atol=1e-5,
                                   rtol=1e-5)


def test_after_placement_normalizes_the_activation_output():
    cfg = SMALL.replace(variants=("bn@after",))
    ds, nets = _nets(cfg)
    got, _ = _np(cfg, nets["bn@after"]).forward(ds.x_train[:100].numpy(), "train")
    a = 1 / (1 + np.exp(-got[0]["x"].astype(np.float64)))  # sigmoid by hand
    close(got[0]["a"], a, 1e-6)
    close(got[0]["x_hat"], (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5))
    assert probe.activation_input(got[0], "after") == "x"


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("token", TOKENS)
def test_gradients_match_autograd(token, activation):
    cfg = SMALL.replace(activation=activation)
    ds, nets = _nets(cfg)
    net = copy.deepcopy(nets[token]).double().train()
    _randomize(net)
    xb, yb = ds.x_train[:40].double(), ds.y_train[:40]
    F.cross_entropy(net(xb), yb).backward()
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    got = npnet.NumpyMLP(cfg, token, state).gradients(xb.numpy(), yb.numpy())
    expected = {name: p.grad.numpy() for name, p in net.named_parameters() if p.requires_grad}
    assert set(got) == set(expected)
    for name, g in expected.items():
        np.testing.assert_allclose(got[name], g, rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("token", ["none", "bn", "bn_noisy", "ln@after", "bn_uniform"])
def test_gradient_ics_matches_a_pytorch_sgd_step_of_the_earlier_layers(token):
    cfg = SMALL.replace(widths=(12, 9, 7), variants=(token,))
    ds, nets = _nets(cfg)
    net = nets[token]
    _randomize(net)
    xb, yb = ds.x_train[:40], ds.y_train[:40]
    pairs = npnet.gradient_ics(cfg, token, _state(net), xb.numpy(), yb.numpy(), lr=0.3)
    # Independent reference, in float64: torch.optim.SGD steps layers 0..i-1 only, then layer i's gradient.
    ref = copy.deepcopy(net).double().train()
    F.cross_entropy(ref(xb.double()), yb).backward()
    for i in range(3):
        g = ref.layers[i].linear.weight.grad.numpy()
        shifted = sgd_shifted(ref, i, 0.3, lambda m: F.cross_entropy(m(xb.double()), yb))
        np.testing.assert_allclose(pairs[i][0], g, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(pairs[i][1], shifted.layers[i].linear.weight.grad.numpy(), rtol=1e-7,
                                   atol=1e-9)
    np.testing.assert_array_equal(pairs[0][0], pairs[0][1])  # nothing before layer 0: no shift
    assert np.linalg.norm(pairs[2][0] - pairs[2][1]) > 0


def test_prober_matches_pytorch_accuracy_and_loss_and_leaves_the_weights_alone():
    ds, nets = _nets()
    prober = probe.Prober(SMALL, probe.Arrays.of(ds))
    for net in nets.values():
        _randomize(net)
    weights = {t: probe.WeightVariant(float("nan"), None, _state(n), None) for t, n in nets.items()}
    frozen = copy.deepcopy(weights)
    raw = prober.raw(probe.WeightSnapshot(0, weights))
    idx = torch.as_tensor(probe.probe_indices(SMALL, len(ds.x_train)))
    for token, net in nets.items():
        rv = raw.variants[token]
        _, train_logits = _hooked_forward(net, ds.x_train[idx])
        _, test_logits = _hooked_forward(net, ds.x_test, train=False)
        assert rv.accuracy == pytest.approx(float((train_logits.argmax(1) == ds.y_train[idx]).float().mean()))
        assert rv.test_accuracy == pytest.approx(float((test_logits.argmax(1) == ds.y_test).float().mean()))
        assert rv.loss == pytest.approx(float(F.cross_entropy(train_logits, ds.y_train[idx])), rel=1e-5)
        for k, v in weights[token].state.items():
            np.testing.assert_array_equal(v, frozen[token].state[k])
