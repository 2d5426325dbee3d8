"""A conv layer's operations in numpy against PyTorch's own: convolution, BatchNorm2d (train and eval views),
layer norm over channels and positions (GroupNorm with one group), the per-channel series, the whole
network's gradients (autograd) and its gradient shift (torch.optim.SGD)."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from bnviz.config import BN_EPS
from bnviz.measure import npconv

from ..helpers import sgd_shifted


def tensors(seed: int, shape):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("c_in, c_out, hw", [(1, 4, 8), (3, 5, 6), (8, 2, 1)])
def test_conv3x3_is_torch_conv2d_with_padding_1(c_in, c_out, hw):
    u, w, b = tensors(0, (4, c_in, hw, hw)), tensors(1, (c_out, c_in, 3, 3)), tensors(2, (c_out,))
    want = F.conv2d(u, w, b, padding=1).numpy()
    np.testing.assert_allclose(npconv.conv3x3(u.numpy(), w.numpy(), b.numpy()), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(npconv.conv3x3(u.numpy(), w.numpy()), F.conv2d(u, w, padding=1).numpy(),
                               rtol=1e-12, atol=1e-12)


def test_batch_norm_per_channel_is_batchnorm2d_in_training_and_with_running_statistics():
    z = tensors(3, (6, 4, 5, 5)) * 3 + 1
    bn = torch.nn.BatchNorm2d(4, eps=BN_EPS, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(tensors(4, (4,)))
        bn.bias.copy_(tensors(5, (4,)))
    bn.train()
    want = bn(z).detach().numpy()  # also updates the running estimates, which the eval view then uses
    gamma, beta = bn.weight.detach().numpy(), bn.bias.detach().numpy()
    x_hat, y, _ = npconv.normalize(z.numpy(), npconv.BATCH_AXES, gamma, beta)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x_hat.mean(axis=(0, 2, 3)), 0, atol=1e-12)  # every channel standardized
    bn.eval()
    _, y_eval, _ = npconv.normalize(z.numpy(), npconv.BATCH_AXES, gamma, beta,
                                    bn.running_mean.numpy(), bn.running_var.numpy())
    np.testing.assert_allclose(y_eval, bn(z).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_layer_norm_over_channels_and_positions_is_groupnorm_with_one_group():
    z = tensors(6, (3, 5, 4, 4)) * 2 - 1
    gamma, beta = tensors(7, (5,)), tensors(8, (5,))
    want = F.group_norm(z, 1, gamma, beta, eps=BN_EPS).numpy()
    x_hat, y, _ = npconv.normalize(z.numpy(), npconv.EXAMPLE_AXES, gamma.numpy(), beta.numpy())
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x_hat.reshape(3, -1).std(axis=1),
                               np.sqrt(1 / (1 + BN_EPS / z.numpy().reshape(3, -1).var(axis=1))), rtol=1e-9)


def test_a_channels_series_is_its_values_over_examples_and_positions():
    z = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    series = npconv.channel_series(z)
    assert series.shape == (3, 8)
    for c in range(3):
        assert sorted(series[c]) == sorted(z[:, c].ravel())


def test_conv3x3_backward_is_autograds():
    u = tensors(9, (3, 2, 5, 5)).requires_grad_()
    w = tensors(10, (4, 2, 3, 3)).requires_grad_()
    b = tensors(11, (4,)).requires_grad_()
    out = F.conv2d(u, w, b, padding=1)
    g = tensors(12, out.shape)
    out.backward(g)
    du, dw, db = npconv.conv3x3_backward(u.detach().numpy(), w.detach().numpy(), g.numpy())
    for mine, theirs in ((du, u.grad), (dw, w.grad), (db, b.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("axes, module", [(npconv.BATCH_AXES, "batch"), (npconv.EXAMPLE_AXES, "layer")])
def test_normalize_backward_is_autograds(axes, module):
    z = (tensors(13, (4, 3, 4, 4)) * 2 + 0.5).requires_grad_()
    gamma, beta = tensors(14, (3,)).requires_grad_(), tensors(15, (3,)).requires_grad_()
    if module == "batch":
        y = F.batch_norm(z, None, None, gamma, beta, training=True, eps=BN_EPS)
    else:
        y = F.group_norm(z, 1, gamma, beta, eps=BN_EPS)
    g = tensors(16, y.shape)
    y.backward(g)
    x_hat, _, inv_std = npconv.normalize(z.detach().numpy(), axes, gamma.detach().numpy(), beta.detach().numpy())
    dz, dg, db = npconv.normalize_backward(g.numpy(), x_hat, inv_std, axes, gamma.detach().numpy())
    for mine, theirs in ((dz, z.grad), (dg, gamma.grad), (db, beta.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-9, atol=1e-10)


VARIANTS = ["none", "bn", "bn_noaffine", "bn_noisy", "ln", "bn@after", "ln@after", "bn_gauss", "bn_uniform@after",
            "bn_laplace"]


def conv_twin(token: str, activation: str = "tanh"):
    """A double-precision training.model.ConvNet of ``token`` on 8x8 inputs, with trained-looking noise and
    running statistics, and its state as numpy arrays."""
    from bnviz.config import ExperimentConfig
    from bnviz.training.model import ConvNet

    cfg = ExperimentConfig(widths=(3, 4), variants=(token,), activation=activation)
    torch.manual_seed(0)
    net = ConvNet(cfg, token, 64, 5).double()
    net.resample_noise(torch.Generator().manual_seed(1))
    with torch.no_grad():  # gamma and beta away from 1 and 0, running statistics away from their start
        for layer in net.layers:
            if layer.norm is not None and getattr(layer.norm, "weight", None) is not None:
                layer.norm.weight.mul_(1.5).add_(0.1)
                layer.norm.bias.add_(0.2)
        net.train()
        net(tensors(2, (16, 64)))
    return cfg, net


@pytest.mark.parametrize("token", VARIANTS)
def test_the_numpy_conv_net_computes_pytorchs_logits_in_both_views(token):
    cfg, net = conv_twin(token)
    state = {k: v.numpy() for k, v in net.state_dict().items() if v.is_floating_point()}
    u = tensors(3, (10, 64))
    np_net = npconv.NumpyConvNet(cfg, token, state)
    net.train()
    with torch.no_grad():
        want_train = net(u).numpy()
    net.eval()
    with torch.no_grad():
        want_eval = net(u).numpy()
    stages, got = np_net.forward(u.numpy(), "train")
    np.testing.assert_allclose(got, want_train, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(np_net.forward(u.numpy(), "eval")[1], want_eval, rtol=1e-9, atol=1e-11)
    first = F.conv2d(u.reshape(-1, 1, 8, 8), net.layers[0].conv.weight, net.layers[0].conv.bias, padding=1)
    np.testing.assert_allclose(stages[0]["x"], first.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert stages[-1]["a"].shape == (10, 4, 8, 8)


@pytest.mark.parametrize("token", VARIANTS)
def test_the_numpy_conv_net_gradients_are_autograds(token):
    cfg, net = conv_twin(token, activation="gelu")
    net.train()
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items() if v.is_floating_point()}
    u, labels = tensors(4, (12, 64)), torch.arange(12) % 5
    net.zero_grad()
    F.cross_entropy(net(u), labels).backward()
    got = npconv.NumpyConvNet(cfg, token, state).gradients(u.numpy(), labels.numpy())
    trained = {name: p.grad.numpy() for name, p in net.named_parameters() if p.requires_grad}
    assert set(got) == set(trained)
    for name, grad in trained.items():
        np.testing.assert_allclose(got[name], grad, rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("stats_in", ["inline", "process"])
@pytest.mark.slow
def test_a_conv_runs_snapshots_describe_each_channel_over_examples_and_positions(stats_in):
    from bnviz.config import ExperimentConfig
    from bnviz.measure.probe import probe_indices
    from bnviz.present import views
    from bnviz.training.run import Run

    cfg = ExperimentConfig(architecture="conv", widths=(4, 6), variants=("none", "bn", "ln"), steps=30,
                           snapshot_every=10, probe_size=16, ics_every=10, lr=0.1)
    run = Run(cfg, stats_in=stats_in).start()
    assert run.join(timeout=300) and run.state == "finished", run.error
    last = run.history.latest()
    assert last.step == 30
    probe = run.data.x_train[probe_indices(cfg, len(run.data.x_train))]
    for token in cfg.variants:
        net = run.nets[token]  # its weights are the final snapshot's: training ended there
        with torch.no_grad():
            x0 = net.layers[0].conv(probe.reshape(-1, 1, 8, 8)).double().numpy()  # (16, 4, 8, 8)
        stage = last.variants[token].layers[0].stages["x"]
        for c in range(4):
            values = x0[:, c].ravel()  # the channel over 16 examples x 64 positions
            assert stage.stat("mean", c) == pytest.approx(values.mean(), rel=1e-5, abs=1e-6)
            assert stage.stat("std", c) == pytest.approx(values.std(), rel=1e-4)
        steps, l2, cos = views.ics(run.history.snapshots(), token, 1)  # Santurkar's shift of the second layer
        assert list(steps) == [0, 10, 20] and np.isfinite(l2).all() and (l2 > 0).all() and (cos <= 1 + 1e-9).all()


def test_a_conv_network_probes_at_most_64_examples_all_their_positions():
    from bnviz.config import ExperimentConfig
    from bnviz.measure.probe import probe_indices

    conv, mlp = ExperimentConfig(architecture="conv", probe_size=512), ExperimentConfig(probe_size=512)
    assert conv.probe_examples == 64 and mlp.probe_examples == 512
    assert len(probe_indices(conv, 1000)) * 64 == 4096 and len(probe_indices(mlp, 1000)) == 512


@pytest.mark.parametrize("token", ["none", "bn", "bn_noisy", "ln@after", "bn_gauss"])
def test_the_conv_gradient_shift_matches_a_pytorch_sgd_step_of_the_earlier_layers(token):
    from bnviz.config import ExperimentConfig
    from bnviz.measure import npnet
    from bnviz.training.model import ConvNet

    cfg = ExperimentConfig(widths=(3, 4, 2), variants=(token,), activation="tanh")
    torch.manual_seed(5)
    net = ConvNet(cfg, token, 64, 5).double().train()
    net.resample_noise(torch.Generator().manual_seed(6))
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items() if v.is_floating_point()}
    u, labels = tensors(7, (12, 64)), torch.arange(12) % 5
    pairs = npnet.gradient_ics(cfg, token, state, u.numpy(), labels.numpy(), lr=0.3, net_class=npconv.NumpyConvNet)
    # Independent reference: torch.optim.SGD steps conv layers 0..i-1 only, then layer i's gradient.
    F.cross_entropy(net(u), labels).backward()
    for i in range(3):
        g = net.layers[i].conv.weight.grad.numpy()
        shifted = sgd_shifted(net, i, 0.3, lambda m: F.cross_entropy(m(u), labels))
        np.testing.assert_allclose(pairs[i][0], g, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(pairs[i][1], shifted.layers[i].conv.weight.grad.numpy(), rtol=1e-7, atol=1e-10)
    assert np.linalg.norm(pairs[2][0] - pairs[2][1]) > 0
