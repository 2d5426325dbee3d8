"""The initial weights (config.INITS, model.init_linears): each rule's statistics against its closed form, the
default against PyTorch's own layer construction, the same weights in every twin, and santurkar-dln's plain
network learning from its initialization (its R² by scikit-learn from the PyTorch network)."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from torch import nn

from bnviz import config as C
from bnviz import urlstate
from bnviz.training.model import init_linears

from ..helpers import TWINS, finished_run, twins

DRAWS = 200  # layers drawn per rule: 200 x 40 x 24 = 192,000 weights


def closed_form_variance(rule: str, fan_in: int, fan_out: int, rows: int) -> float:
    """The weight variance each rule is defined by (Glorot & Bengio 2010, He et al. 2015, PyTorch's docs);
    ``rows``: output units or channels, the rows of the weight matrix (a conv kernel flattened per row)."""
    return {
        "pytorch": 1 / (3 * fan_in),  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        "xavier_normal": 2 / (fan_in + fan_out),
        "xavier_uniform": 2 / (fan_in + fan_out),
        "he_normal": 2 / fan_in,
        # rows x fan_in with orthonormal rows (or columns): rows x fan_in entries whose squares add up to the
        # smaller of the two
        "orthogonal": 1 / max(fan_in, rows),
    }[rule]


def drawn(rule: str, make, draws: int = DRAWS) -> tuple[np.ndarray, np.ndarray, list]:
    """(every weight, every bias, the layers) of ``draws`` layers built by ``make`` and initialized by ``rule``
    from one generator."""
    gen = torch.Generator().manual_seed(11)
    layers = [make() for _ in range(draws)]
    init_linears(layers, gen, rule)
    weights = np.concatenate([lay.weight.detach().numpy().ravel() for lay in layers]).astype(np.float64)
    biases = np.concatenate([lay.bias.detach().numpy().ravel() for lay in layers]).astype(np.float64)
    return weights, biases, layers


@pytest.mark.parametrize("rule", list(C.INITS))
@pytest.mark.parametrize("make, fan_in, fan_out, rows", [
    (lambda: nn.Linear(40, 24), 40, 24, 24),
    (lambda: nn.Linear(16, 16), 16, 16, 16),
    (lambda: nn.Conv2d(4, 6, 3, padding=1), 36, 54, 6),  # a conv kernel's 9 positions count in both fans
], ids=["linear", "square", "conv"])
def test_each_rule_draws_weights_of_its_closed_form_variance(rule, make, fan_in, fan_out, rows):
    # An orthogonal matrix's squares add up to min(rows, fan_in) exactly: a few draws test its variance.
    w, b, _ = drawn(rule, make, 20 if rule == "orthogonal" else DRAWS * 960 // (fan_in * rows))
    want = closed_form_variance(rule, fan_in, fan_out, rows)
    # The sample variance's standard error is sigma^2 sqrt((kurtosis - 1) / n), kurtosis at most 3 here.
    tolerance = 5 * want * math.sqrt(2 / len(w))
    assert abs(w.mean()) < 5 * math.sqrt(want / len(w))
    assert abs(w.var() - want) < tolerance, (rule, w.var(), want)
    if rule == "pytorch":
        bound = 1 / math.sqrt(fan_in)
        assert abs(b.var() - bound ** 2 / 3) < 5 * bound ** 2 / 3 * math.sqrt(2 / len(b))
        assert np.abs(b).max() <= bound
    else:
        assert not b.any()  # the standard rules start every bias at 0


@pytest.mark.parametrize("rule, kurtosis", [("pytorch", 1.8), ("xavier_uniform", 1.8), ("xavier_normal", 3.0),
                                            ("he_normal", 3.0)])
def test_uniform_and_normal_rules_have_their_shape(rule, kurtosis):
    w, _, _ = drawn(rule, lambda: nn.Linear(40, 24))
    z = (w - w.mean()) / w.std()
    assert abs((z ** 4).mean() - kurtosis) < 0.05  # uniform: 9/5; normal: 3
    if rule == "xavier_uniform":
        a = math.sqrt(6 / (40 + 24))
        assert np.abs(w).max() <= a + 1e-7 and np.abs(w).max() > 0.999 * a


@pytest.mark.parametrize("fan_in, fan_out", [(16, 16), (40, 24), (24, 40)])
def test_orthogonal_weights_are_orthonormal(fan_in, fan_out):
    _, _, layers = drawn("orthogonal", lambda: nn.Linear(fan_in, fan_out), 5)
    for lay in layers:
        w = lay.weight.detach().double()  # (fan_out, fan_in)
        gram = w @ w.T if fan_out <= fan_in else w.T @ w
        torch.testing.assert_close(gram, torch.eye(min(fan_in, fan_out), dtype=torch.float64), atol=1e-5, rtol=0)
    x = torch.randn(100, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    if fan_in == fan_out:  # a square orthogonal layer keeps every input's length (to float32's precision)
        w = layers[0].weight.detach().double()
        torch.testing.assert_close((x @ w.T).norm(dim=1), x.norm(dim=1), rtol=1e-6, atol=0)


def test_an_unknown_rule_is_refused_in_words():
    with pytest.raises(ValueError, match="init='glorot' is not one of pytorch, xavier_normal, xavier_uniform"):
        C.ExperimentConfig(init="glorot")
    with pytest.raises(ValueError, match="unknown initialization 'glorot'"):
        init_linears([nn.Linear(3, 2)], torch.Generator(), "glorot")


@pytest.mark.parametrize("rule", list(C.INITS))
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_every_twin_starts_from_the_same_weights_drawn_from_the_seed_alone(rule, arch):
    cfg = TWINS.replace(init=rule) if arch == "mlp" else TWINS.replace(
        init=rule, architecture="conv", variants=("none", "bn", "bn_noisy", "ln", "bn@after"))
    _, nets = twins(cfg)
    first = next(iter(nets.values())).linears()
    for net in nets.values():
        for a, b in zip(net.linears(), first):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    torch.manual_seed(12345)  # PyTorch's global stream plays no part: the run's own generator does
    _, again = twins(cfg)
    _, other_seed = twins(cfg.replace(seed=cfg.seed + 1))
    for a, b, c in zip(first, next(iter(again.values())).linears(), next(iter(other_seed.values())).linears()):
        assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


def test_rules_differ_from_each_other():
    weights = {rule: twins(TWINS.replace(init=rule))[1]["none"].linears()[1].weight for rule in C.INITS}
    names = list(weights)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not torch.equal(weights[a], weights[b]), (a, b)


@pytest.mark.parametrize("query, reference", [
    ({"preset": "ioffe", "widths": "12,9", "seed": "5"},
     lambda: [nn.Linear(64, 12), nn.Linear(12, 9), nn.Linear(9, 10)]),
    ({"preset": "ioffe-conv", "widths": "4,6", "seed": "5"},
     lambda: [nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3, padding=1), nn.Linear(6, 10)]),
], ids=["mlp", "conv"])
def test_a_link_without_init_starts_from_pytorchs_own_layers_bit_for_bit(query, reference):
    cfg = urlstate.decode(query).config
    assert cfg.init == "pytorch"
    _, nets = twins(cfg)
    with torch.random.fork_rng():  # PyTorch's own constructors, drawing weight then bias from the seeded stream
        torch.manual_seed(cfg.seed)
        ref = reference()
    for net in nets.values():
        for a, b in zip(net.linears(), ref, strict=True):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_every_preset_but_the_deep_linear_network_keeps_pytorchs_initialization():
    assert {name: p.config.init for name, p in C.PRESETS.items() if p.config.init != "pytorch"} == {
        "santurkar-dln": "orthogonal"}


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["orthogonal", "pytorch"])
def test_the_deep_linear_networks_plain_variant_learns_from_its_presets_initialization(rule):
    # The full preset run of the plain network (3,000 steps, about 15 s). The other variants are left out: the
    # plain network's weights, batches and steps do not depend on them.
    cfg = C.PRESETS["santurkar-dln"].config.replace(variants=("none",), init=rule)
    run = finished_run(cfg, distributions=False)
    assert run.step == cfg.steps and run.status["none"].state == "training"
    net = run.nets["none"].eval()
    with torch.no_grad():
        outputs = net(run.data.x_test).numpy()
    r2 = r2_score(run.data.y_test.numpy(), outputs)
    assert math.isclose(r2, run.history.latest().variants["none"].test_accuracy, abs_tol=1e-4)  # the page's R²
    if rule == "orthogonal":  # the preset's own
        assert r2 >= 0.5
    else:  # from PyTorch's default the 25 layers pass almost nothing of the input on
        assert r2 < 0.1
