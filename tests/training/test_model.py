"""The twin networks (training/model.py): shared initial weights by PyTorch's rule, noisy BN's noise, the
frozen affine variant, and the StateCopier that hands the weights to the probe."""

import numpy as np
import pytest
import torch
from torch import nn

from bnviz.training.model import NoisyBatchNorm, StateCopier, noise_generator

from ..helpers import TOKENS
from ..helpers import TWINS as SMALL
from ..helpers import randomize as _randomize
from ..helpers import twins as _nets


def test_twins_share_initial_linear_weights():
    _, nets = _nets()
    ref = nets["none"]
    for net in nets.values():
        for a, b in zip(net.linears(), ref.linears()):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_default_init_bound_matches_pytorch_rule():
    _, nets = _nets()
    lin = nets["none"].layers[1].linear
    bound = 1 / lin.in_features ** 0.5
    assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.9 * bound


def test_noisy_bn_noise_changes_every_draw_within_documented_bounds():
    net = NoisyBatchNorm(50, noise_shift=0.5, noise_scale=1.5)
    gen = torch.Generator().manual_seed(0)
    net.resample(gen)
    first = net.scale.clone()
    net.resample(gen)
    assert not torch.equal(first, net.scale)
    assert net.shift.abs().max() <= 0.5 and net.scale.min() >= 1 / 1.5 and net.scale.max() <= 1.5
    net.eval()
    x = torch.randn(10, 50)
    torch.testing.assert_close(net(x), nn.functional.batch_norm(x, net.running_mean, net.running_var,
                                                                net.weight, net.bias, False, 0.1, net.eps))


def test_noise_stream_is_the_variant_s_own():
    a, b = noise_generator(SMALL, "bn_noisy"), noise_generator(SMALL, "bn_noisy")
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))


def test_frozen_affine_variant_has_no_trainable_gamma_beta():
    _, nets = _nets()
    norm = nets["bn_noaffine"].layers[0].norm
    assert norm.weight is None and norm.bias is None


@pytest.mark.parametrize("token", TOKENS)
def test_state_copier_is_the_state_dict_copied_and_checks_the_parameters(token):
    _, nets = _nets()
    net = nets[token]
    _randomize(net)
    copier = StateCopier(net)
    got, finite = copier.copy()
    ref = {k: v.numpy().copy() for k, v in net.state_dict().items() if v.is_floating_point()}
    assert finite and sorted(got) == sorted(ref)  # every float entry; num_batches_tracked is the only one left out
    assert {k for k in net.state_dict() if k not in ref} <= {k for k in net.state_dict() if "num_batches" in k}
    for k, v in ref.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v)
    with torch.no_grad():  # a copy, not a view: training on does not change what was handed over
        net.layers[0].linear.weight.add_(1.0)
    np.testing.assert_array_equal(got["layers.0.linear.weight"], ref["layers.0.linear.weight"])
    assert not np.array_equal(got["layers.0.linear.weight"], net.layers[0].linear.weight.detach().numpy())
    norm = net.layers[1].norm
    if isinstance(norm, nn.BatchNorm1d):  # buffers are copied but, like before, not part of the weight check
        norm.running_var.fill_(float("inf"))
        assert copier.copy()[1]
    with torch.no_grad():
        net.head.bias[3] = float("nan")
    assert not copier.copy()[1]
    # It travels as one flat array: pickled, it is the flat array's bytes and little more, and comes back equal.
    import pickle

    blob = pickle.dumps(got)
    back = pickle.loads(blob)
    assert len(blob) < got.flat.nbytes + 4096 and sorted(back) == sorted(ref)
    for k, v in ref.items():
        np.testing.assert_array_equal(back[k], v)
