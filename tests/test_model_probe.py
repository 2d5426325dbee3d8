"""Models and probes against PyTorch's own modules and a manual forward pass."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bnviz import data, probe
from bnviz.config import ExperimentConfig
from bnviz.model import NoisyBatchNorm, build_twins, noise_generator

SMALL = ExperimentConfig(widths=(12, 9), variants=("none", "bn", "bn_noaffine", "bn_noisy", "ln"), steps=20,
                         snapshot_every=5, probe_size=64)


def _nets(cfg=SMALL):
    ds = data.load(cfg)
    return ds, build_twins(cfg, ds.n_inputs, ds.n_classes)


def _randomize_affine(net, seed=3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            norm = layer.norm
            if norm is not None and getattr(norm, "weight", None) is not None:
                norm.weight.copy_(torch.randn(norm.weight.shape, generator=g) * 2)
                norm.bias.copy_(torch.randn(norm.bias.shape, generator=g))


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


def _hooked_forward(net, u):
    """Run the real modules (on a copy, training mode) and capture what each part saw."""
    net = copy.deepcopy(net).train()
    seen = []
    for layer in net.layers:
        rec = {}
        seen.append(rec)
        layer.linear.register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("x", o.detach()))
        if layer.norm is not None:
            layer.norm.register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("y", o.detach()))
    logits = net(u)
    return seen, logits.detach()


@pytest.mark.parametrize("token", ["none", "bn", "bn_noaffine", "bn_noisy", "ln"])
def test_train_view_stages_match_pytorch_modules(token):
    ds, nets = _nets()
    net = nets[token]
    _randomize_affine(net)
    net.resample_noise(noise_generator(SMALL, token))
    u = ds.x_train[:64]
    got, logits = probe.stages(net, u, "train")
    seen, ref_logits = _hooked_forward(net, u)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    for layer, g, s in zip(net.layers, got, seen):
        torch.testing.assert_close(g["x"], s["x"], rtol=1e-6, atol=1e-6)
        if layer.norm is not None:
            torch.testing.assert_close(g["y"], s["y"], rtol=1e-5, atol=1e-5)
            act = {"sigmoid": torch.sigmoid}[SMALL.activation]
            torch.testing.assert_close(g["a"], act(g["y"]), rtol=1e-6, atol=1e-6)
        else:
            torch.testing.assert_close(g["a"], torch.sigmoid(s["x"]), rtol=1e-6, atol=1e-6)


def test_x_hat_is_standardized_and_y_has_mean_beta_std_gamma():
    ds, nets = _nets()
    net = nets["bn"]
    _randomize_affine(net)
    got, _ = probe.stages(net, ds.x_train[:256], "train")
    for layer, g in zip(net.layers, got):
        x_hat, y = g["x_hat"].double(), g["y"].double()
        var = g["x"].double().var(0, unbiased=False)
        torch.testing.assert_close(x_hat.mean(0), torch.zeros_like(x_hat.mean(0)), atol=1e-5, rtol=0)
        # BN divides by sqrt(var + eps), so x_hat's std is sqrt(var / (var + eps)), not exactly 1.
        torch.testing.assert_close(x_hat.std(0, unbiased=False), torch.sqrt(var / (var + 1e-5)), atol=1e-5, rtol=0)
        torch.testing.assert_close(y.mean(0), layer.norm.bias.double(), atol=1e-5, rtol=0)
        expected_std = layer.norm.weight.double().abs() * torch.sqrt(var / (var + 1e-5))
        torch.testing.assert_close(y.std(0, unbiased=False), expected_std, atol=1e-5, rtol=1e-5)


def test_eval_view_uses_running_statistics_like_module_eval():
    ds, nets = _nets()
    net = copy.deepcopy(nets["bn"])
    net.train()
    with torch.no_grad():  # give the running statistics something to hold
        for i in range(5):
            net(ds.x_train[i * 60:(i + 1) * 60])
    got, logits = probe.stages(net, ds.x_train[:50], "eval")
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(logits, net(ds.x_train[:50]), rtol=1e-5, atol=1e-5)
        x = net.layers[0].linear(ds.x_train[:50])
        torch.testing.assert_close(got[0]["y"], net.layers[0].norm(x), rtol=1e-5, atol=1e-5)


def test_after_placement_normalizes_the_activation_output():
    cfg = SMALL.replace(variants=("bn@after",))
    ds, nets = _nets(cfg)
    net = nets["bn@after"]
    got, _ = probe.stages(net, ds.x_train[:100], "train")
    a = torch.sigmoid(got[0]["x"])
    torch.testing.assert_close(got[0]["a"], a)
    manual = (a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(got[0]["x_hat"], manual, rtol=1e-5, atol=1e-5)
    assert probe.activation_input(got[0], "after") == "x"


def test_probing_has_no_side_effects():
    ds, nets = _nets()
    net = nets["bn_noisy"]
    gen = noise_generator(SMALL, "bn_noisy")
    net.resample_noise(gen)
    loss = F.cross_entropy(net(ds.x_train[:30]), ds.y_train[:30])
    loss.backward()
    before_state = copy.deepcopy(net.state_dict())
    before_grads = [p.grad.clone() for p in net.parameters()]
    global_rng, gen_state = torch.get_rng_state(), gen.get_state()
    probe.stages(net, ds.x_train[:64], "train")
    probe.stages(net, ds.x_train[:64], "eval")
    probe.accuracy(net, ds.x_test, ds.y_test)
    probe.gradient_ics(net, ds.x_train[:30], ds.y_train[:30], lr=0.5)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before_state[k]), k
    for p, g in zip(net.parameters(), before_grads):
        assert torch.equal(p.grad, g)
    assert torch.equal(torch.get_rng_state(), global_rng)
    assert torch.equal(gen.get_state(), gen_state)
    assert net.training


def test_gradient_ics_matches_a_manual_update_of_earlier_layers():
    ds, nets = _nets(SMALL.replace(variants=("none",)))
    net = nets["none"]
    xb, yb = ds.x_train[:40], ds.y_train[:40]
    pairs = probe.gradient_ics(net, xb, yb, lr=0.3)
    # Independent reference: torch.optim.SGD steps only layer 0, then the gradient of layer 1 is taken.
    ref = copy.deepcopy(net)
    F.cross_entropy(ref(xb), yb).backward()
    g1 = ref.layers[1].linear.weight.grad.clone()
    opt = torch.optim.SGD(ref.layers[0].parameters(), lr=0.3)
    opt.step()
    ref.zero_grad()
    F.cross_entropy(ref(xb), yb).backward()
    torch.testing.assert_close(pairs[1][0], g1)
    torch.testing.assert_close(pairs[1][1], ref.layers[1].linear.weight.grad)
    torch.testing.assert_close(pairs[0][0], pairs[0][1])  # nothing before layer 0: no shift


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


def test_frozen_affine_variant_has_no_trainable_gamma_beta():
    _, nets = _nets()
    norm = nets["bn_noaffine"].layers[0].norm
    assert norm.weight is None and norm.bias is None
