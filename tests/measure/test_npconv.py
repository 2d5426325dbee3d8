"""A conv layer's operations in numpy against PyTorch's own: convolution, BatchNorm2d (train and eval views),
layer norm over channels and positions (GroupNorm with one group), and the per-channel series."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from bnviz.config import BN_EPS
from bnviz.measure import npconv


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
    np.testing.assert_allclose(x_hat.reshape(3, -1).std(axis=1), np.sqrt(1 / (1 + BN_EPS / z.numpy().reshape(3, -1).var(axis=1))), rtol=1e-9)


def test_a_channels_series_is_its_values_over_examples_and_positions():
    z = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    series = npconv.channel_series(z)
    assert series.shape == (3, 8)
    for c in range(3):
        assert sorted(series[c]) == sorted(z[:, c].ravel())
