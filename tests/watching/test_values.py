"""What the watcher records per layer, against independent references: the feeding module's output and the
norm's own output in training (or eval) mode from a deep copy, x_hat worked out by hand in float64, a = the
activation of y, and y = gamma * x_hat + beta."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bnviz.config import WATCH_VALUES
from bnviz.watching.layers import Norm, fan_in, find_norms, unwrap
from bnviz.watching.probe import Prober

from .models import TinyResNet

EPS = 1e-5


def _standardize(x: np.ndarray, axes: tuple[int, ...], eps: float = EPS) -> np.ndarray:
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _channels_last(t: np.ndarray) -> np.ndarray:
    """(N, C, *positions) as (N x positions, C): a channel's values over examples and positions."""
    return np.moveaxis(t, 1, -1).reshape(-1, t.shape[1])


def _group_standardize(x: np.ndarray, groups: int) -> np.ndarray:
    return _standardize(x.reshape(x.shape[0], groups, -1), (2,)).reshape(x.shape)


# name -> (feeder, norm, probe shape, x_hat of the feeder's output by hand, as (rows, units))
CASES = {
    "BatchNorm1d-2d": (lambda: nn.Linear(5, 6), lambda: nn.BatchNorm1d(6), (40, 5),
                       lambda x: _standardize(x, (0,))),
    "BatchNorm1d-3d": (lambda: nn.Conv1d(2, 6, 3), lambda: nn.BatchNorm1d(6), (10, 2, 9),
                       lambda x: _channels_last(_standardize(x, (0, 2)))),
    "BatchNorm2d": (lambda: nn.Conv2d(1, 4, 3), lambda: nn.BatchNorm2d(4), (8, 1, 6, 6),
                    lambda x: _channels_last(_standardize(x, (0, 2, 3)))),
    "BatchNorm3d": (lambda: nn.Conv3d(1, 3, 2), lambda: nn.BatchNorm3d(3), (4, 1, 4, 4, 4),
                    lambda x: _channels_last(_standardize(x, (0, 2, 3, 4)))),
    "SyncBatchNorm": (lambda: nn.Conv2d(1, 4, 3), lambda: nn.SyncBatchNorm(4), (8, 1, 6, 6),
                      lambda x: _channels_last(_standardize(x, (0, 2, 3)))),
    "LayerNorm": (lambda: nn.Linear(5, 6), lambda: nn.LayerNorm(6), (10, 7, 5),
                  lambda x: _standardize(x, (2,)).reshape(-1, 6)),
    "GroupNorm": (lambda: nn.Conv2d(1, 4, 3), lambda: nn.GroupNorm(2, 4), (6, 1, 6, 6),
                  lambda x: _channels_last(_group_standardize(x, 2))),
    "InstanceNorm2d": (lambda: nn.Conv2d(1, 4, 3), lambda: nn.InstanceNorm2d(4, affine=True), (6, 1, 6, 6),
                       lambda x: _channels_last(_standardize(x, (2, 3)))),
}


def _rows(t: torch.Tensor, kind: str) -> np.ndarray:
    a = t.detach().double().numpy()
    return a.reshape(-1, a.shape[-1]) if kind == "LayerNorm" else _channels_last(a)


def _model(case: str, seed: int = 0):
    torch.manual_seed(seed)
    feeder, norm, shape, by_hand = CASES[case]
    model = nn.Sequential(feeder(), norm(), nn.ReLU())
    with torch.no_grad():  # gamma and beta away from 1 and 0, so that y = gamma x_hat + beta says something
        model[1].weight.uniform_(0.5, 2.0)
        model[1].bias.uniform_(-1.0, 1.0)
    probe = torch.randn(shape) * 2 + 0.5
    return model, probe, by_hand


def _probe(model, probe, view="train"):
    inner = unwrap(model)
    prober = Prober(inner, [Norm(n, m) for n, m in find_norms(inner)], probe, view)
    return prober, prober.run()


@pytest.mark.parametrize("case", list(CASES))
def test_train_view_stages_match_a_manual_forward_and_the_module_itself(case):
    model, probe, by_hand = _model(case)
    reference = copy.deepcopy(model).train()
    with torch.no_grad():
        x_ref = reference[0](probe)
        y_ref = reference[1](x_ref)  # the module itself, in training mode
    kind = CASES[case][1]().__class__.__name__
    _, probed = _probe(model, probe)
    stages = probed.layers[0]
    assert set(stages) == {"x", "x_hat", "y", "a"}
    x_rows = _rows(x_ref, kind)
    np.testing.assert_allclose(stages["x"], x_rows, rtol=1e-6, atol=1e-6)
    x_hat = by_hand(x_ref.double().numpy())
    np.testing.assert_allclose(stages["x_hat"], x_hat, atol=2e-5)
    np.testing.assert_allclose(stages["y"], _rows(y_ref, kind), atol=2e-5)
    gamma, beta = probed.gamma[0], probed.beta[0]
    np.testing.assert_array_equal(gamma, model[1].weight.detach().numpy())
    np.testing.assert_allclose(stages["y"], gamma * x_hat + beta, atol=5e-5)
    np.testing.assert_array_equal(stages["a"], np.maximum(stages["y"], 0))
    assert stages["x"].dtype == np.float32 and stages["x"].shape == (x_rows.shape[0], gamma.shape[0])


@pytest.mark.parametrize("case", ["BatchNorm1d-2d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "InstanceNorm2d"])
def test_eval_view_normalizes_with_the_running_statistics(case):
    model, probe, _ = _model(case)
    if case == "InstanceNorm2d":
        model[1] = nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    model.train()
    with torch.no_grad():
        for i in range(5):  # running statistics away from (0, 1)
            model(torch.randn(probe.shape) * (1 + i) - 2)
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        x_ref = reference[0](probe)
        y_ref = reference[1](x_ref)
    kind = type(model[1]).__name__
    _, probed = _probe(model, probe, view="eval")
    stages = probed.layers[0]
    shape = (1, -1) + (1,) * (x_ref.dim() - 2)
    mean = model[1].running_mean.double().numpy().reshape(shape)
    var = model[1].running_var.double().numpy().reshape(shape)
    x_hat = _rows(torch.from_numpy((x_ref.double().numpy() - mean) / np.sqrt(var + EPS)), kind)
    np.testing.assert_allclose(stages["x_hat"], x_hat, atol=2e-5)
    np.testing.assert_allclose(stages["y"], _rows(y_ref, kind), atol=2e-5)
    # the train view of the same model differs: it uses the probe's own statistics
    _, train = _probe(model, probe, view="train")
    assert np.abs(train.layers[0]["x_hat"] - stages["x_hat"]).max() > 0.1


def test_batch_norm_without_running_statistics_uses_the_batch_in_both_views():
    model, probe, by_hand = _model("BatchNorm2d")
    model[1] = nn.BatchNorm2d(4, track_running_stats=False)
    with torch.no_grad():
        x_ref = model[0](probe)
    for view in ("train", "eval"):
        _, probed = _probe(model, probe, view)
        np.testing.assert_allclose(probed.layers[0]["x_hat"], by_hand(x_ref.double().numpy()), atol=2e-5)


def test_layers_are_named_by_module_path_in_the_order_they_run_inside_wrappers():
    model = TinyResNet()
    prober, _ = _probe(nn.DataParallel(model), torch.randn(4, 1, 8, 8))
    assert [layer.norm.name for layer in prober.layers] == ["bn", "layer1.0.bn1", "layer1.0.bn2"]

    class Reversed(nn.Module):  # registered in one order, run in the other
        def __init__(self):
            super().__init__()
            self.late = nn.BatchNorm1d(3)
            self.early = nn.LayerNorm(3)

        def forward(self, x):
            return self.late(self.early(x))

    prober, _ = _probe(Reversed(), torch.randn(5, 3))
    assert [layer.norm.name for layer in prober.layers] == ["early", "late"]


@pytest.mark.slow  # importing torch.compile's machinery takes seconds
def test_names_inside_torch_compile_wrappers():
    model = TinyResNet()
    for wrapped in (torch.compile(model), nn.DataParallel(torch.compile(model))):
        prober, _ = _probe(wrapped, torch.randn(4, 1, 8, 8))
        assert [layer.norm.name for layer in prober.layers] == ["bn", "layer1.0.bn1", "layer1.0.bn2"]


def test_the_follower_is_the_activation_right_after_the_norm_not_one_after_a_residual_sum():
    """In a ResNet BasicBlock bn1 is followed by relu (in place: y must be recorded before it runs), while bn2's
    output is first changed in place by ``out += identity``: the shared relu then does not follow bn2."""
    torch.manual_seed(1)
    model = TinyResNet()
    probe = torch.randn(6, 1, 8, 8)
    prober, probed = _probe(model, probe)
    followers = [type(layer.follower).__name__ if layer.follower else "" for layer in prober.layers]
    assert followers == ["ReLU", "ReLU", ""]
    assert [fan_in(layer.feeder) for layer in prober.layers] == [1 * 9, 4 * 9, 4 * 9]
    bn1 = probed.layers[1]
    assert (bn1["y"] < 0).any()  # the in-place relu did not reach what was recorded
    np.testing.assert_array_equal(bn1["a"], np.maximum(bn1["y"], 0))
    assert "a" not in probed.layers[2]
    block = model.layer1[0]
    with torch.no_grad():  # the reference: the block's first half by hand, in training mode, on a copy
        stem = torch.relu(copy.deepcopy(model.bn).train()(model.conv(probe)))
        y1 = copy.deepcopy(block.bn1).train()(block.conv1(stem))
    np.testing.assert_allclose(bn1["y"], _rows(y1, "BatchNorm2d"), atol=2e-5)
    # each feeder's weight is what the weight change is measured on
    assert [layer.feeder for layer in prober.layers] == [model.conv, block.conv1, block.conv2]
    np.testing.assert_array_equal(probed.weights[2], block.conv2.weight.detach().numpy())


def test_fan_in_of_grouped_convolutions_and_linear_layers():
    assert fan_in(nn.Conv2d(8, 16, (3, 5), groups=4)) == 2 * 15
    assert fan_in(nn.Conv1d(3, 6, 4)) == 12
    assert fan_in(nn.Linear(7, 2)) == 7
    assert fan_in(nn.ReLU()) == 0 and fan_in(None) == 0


def test_a_large_probe_keeps_a_fixed_sample_of_rows_normalized_with_every_rows_statistics():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3))
    probe = torch.randn(100, 1, 8, 8)  # 6,400 rows per channel
    prober, first = _probe(model, probe)
    second = prober.run()
    x = first.layers[0]["x"]
    assert x.shape == (WATCH_VALUES, 3)
    np.testing.assert_array_equal(x, second.layers[0]["x"])  # the same rows at every snapshot
    with torch.no_grad():
        full = _rows(model[0](probe), "BatchNorm2d")
    chosen = prober.layers[0].rows.numpy()
    assert len(set(chosen.tolist())) == WATCH_VALUES
    np.testing.assert_allclose(x, full[chosen], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(first.layers[0]["x_hat"], _standardize(full, (0,))[chosen], atol=2e-5)
