"""Watching changes nothing, bit for bit: a model with batch norm and dropout trained with SGD and momentum ends
with the same parameters, gradients, buffers, optimizer state, random state and training flags whether it is
watched or not."""

import pytest
import torch
from torch import nn

import bnviz

from .models import recorders


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Dropout2d(0.2),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=None), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 8 * 8, 16), nn.LayerNorm(16), nn.GELU(),
        nn.Linear(16, 3))


def _train(steps: int, watched: dict | None, tmp_path) -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor]:
    model = _model()
    model[1].eval()  # a frozen batch norm in a training model: its flag must survive the probe's eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    probe = torch.randn(16, 1, 8, 8, generator=gen)
    make, _ = recorders()
    rec = bnviz.watch(model, probe, tmp_path / "run", inline=True, recorder=make, **watched) if watched else None
    torch.manual_seed(5)  # dropout's masks come from the global generator
    for _ in range(steps):
        x = torch.randn(8, 1, 8, 8, generator=gen)
        y = torch.randint(0, 3, (8,), generator=gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if rec is not None:
            rec.step(loss=loss.item())
    if rec is not None:
        rec.close()
    return model, opt, torch.get_rng_state()


@pytest.mark.slow
@pytest.mark.parametrize("watched", [{"every": 2}, {"every": 3, "view": "eval"}])
def test_a_watched_training_ends_bit_for_bit_where_an_unwatched_one_does(watched, tmp_path):
    plain, plain_opt, plain_rng = _train(7, None, tmp_path)
    seen, seen_opt, seen_rng = _train(7, watched, tmp_path)
    for (name, p), q in zip(plain.named_parameters(), seen.parameters()):
        assert torch.equal(p, q), name
        assert torch.equal(p.grad, q.grad), name
    buffers = dict(plain.named_buffers())
    assert any(name.endswith("num_batches_tracked") and int(b) == 7 for name, b in buffers.items())
    for (name, b), c in zip(buffers.items(), seen.buffers()):
        assert torch.equal(b, c), name
    for p, q in zip(plain.parameters(), seen.parameters()):
        assert torch.equal(plain_opt.state[p]["momentum_buffer"], seen_opt.state[q]["momentum_buffer"])
    assert torch.equal(plain_rng, seen_rng)
    assert [m.training for m in plain.modules()] == [m.training for m in seen.modules()]
    assert not seen[1].training and seen[5].training


@pytest.mark.slow
def test_the_comparison_sees_a_probe_that_runs_in_training_mode(tmp_path, monkeypatch):
    """The check above can fail: a probe pass left in training mode moves the running statistics."""
    from bnviz.watching import probe

    monkeypatch.setattr(probe.Prober, "_forward", _forward_in_training_mode)
    plain, *_ = _train(4, None, tmp_path)
    seen, *_ = _train(4, {"every": 2}, tmp_path)
    assert not all(torch.equal(b, c) for b, c in zip(plain.buffers(), seen.buffers()))


def _forward_in_training_mode(self, hooks):
    handles = [(m.register_forward_pre_hook if when == "pre" else m.register_forward_hook)(fn)
               for m, when, fn in hooks]
    try:
        with torch.no_grad():
            self._call()
    finally:
        for h in handles:
            h.remove()
