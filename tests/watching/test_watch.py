"""The watcher's run: snapshot cadence, what each snapshot carries, the config it describes, the worker process,
and the errors it raises before any training."""

import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import bnviz
from bnviz.measure.probe import _relative_change
from bnviz.table import record

from .models import PickleRecorder, TinyResNet, recorders


def _loop(model, rec, steps, losses=None, scores=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(3)
    for i in range(steps):
        x = torch.randn(8, 1, 8, 8, generator=gen)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.step(loss=None if losses is None else losses[i], score=None if scores is None else scores[i],
                 test_score=0.5 if i == 3 else None)


@pytest.mark.slow  # a statistics worker process
def test_step_zero_every_kth_step_and_the_final_one_are_snapshots(tmp_path):
    model = TinyResNet()
    make, made = recorders()
    losses = [float(i) for i in range(7)]
    with bnviz.watch(model, torch.randn(6, 1, 8, 8), tmp_path / "run", every=3, inline=True, recorder=make) as rec:
        _loop(model, rec, 7, losses=losses, scores=[i / 10 for i in range(7)])
    (recorder,) = made
    snaps = recorder.snaps
    assert [s.step for s in snaps] == [0, 3, 6, 7]
    variants = [s.variants["bn"] for s in snaps]
    assert math.isnan(variants[0].loss) and math.isnan(variants[0].accuracy)
    assert [v.loss for v in variants[1:]] == [np.mean(losses[0:3]), np.mean(losses[3:6]), losses[6]]
    assert [v.accuracy for v in variants[1:]] == [0.2, 0.5, 0.6]
    assert math.isnan(variants[1].test_accuracy) and variants[2].test_accuracy == 0.5
    assert all(v.diverged_at is None for v in variants)
    assert [layer.act_stage for layer in variants[1].layers] == ["y", "y", "y"]
    assert list(variants[1].layers[1].stages) == ["x", "x_hat", "y", "a"]
    assert list(variants[1].layers[2].stages) == ["x", "x_hat", "y"]
    assert variants[0].layers[0].change == {}
    assert set(variants[1].layers[0].change) == {"weight", "gamma", "beta"}
    np.testing.assert_array_equal(variants[-1].layers[2].gamma, model.layer1[0].bn2.weight.detach().numpy())


@pytest.mark.parametrize("steps, expected", [(4, [0, 2, 4]), (0, [0]), (1, [0, 1])])
def test_the_final_step_is_a_snapshot_once(steps, expected, tmp_path):
    model = TinyResNet()
    make, made = recorders()
    with bnviz.watch(model, torch.randn(6, 1, 8, 8), tmp_path / "run", every=2, inline=True, recorder=make) as rec:
        _loop(model, rec, steps)
    assert [s.step for s in made[0].snaps] == expected


def test_a_loop_that_raises_keeps_its_snapshots_and_takes_no_final_probe(tmp_path):
    model = TinyResNet()
    make, made = recorders()
    with pytest.raises(KeyboardInterrupt):
        with bnviz.watch(model, torch.randn(6, 1, 8, 8), tmp_path / "run", every=2, inline=True,
                         recorder=make) as rec:
            _loop(model, rec, 3)
            raise KeyboardInterrupt
    assert [s.step for s in made[0].snaps] == [0, 2] and rec.closed


def test_the_weight_change_is_the_feeding_modules_relative_change_between_snapshots(tmp_path):
    model = TinyResNet()
    make, made = recorders()
    rec = bnviz.watch(model, torch.randn(6, 1, 8, 8), tmp_path / "run", every=2, inline=True, recorder=make)
    before = model.layer1[0].conv2.weight.detach().clone()
    _loop(model, rec, 2)
    after = model.layer1[0].conv2.weight.detach().clone()
    rec.close()
    expected = float(torch.linalg.vector_norm(after - before) / torch.linalg.vector_norm(before))
    change = made[0].snaps[1].variants["bn"].layers[2].change["weight"]
    assert change == pytest.approx(expected, rel=1e-5)
    assert change == _relative_change(before.numpy(), after.numpy())


def test_the_config_describes_the_watched_model(tmp_path):
    model = TinyResNet(c=6)
    make, made = recorders()
    with bnviz.watch(model, torch.randn(5, 1, 8, 8), tmp_path / "run", every=4, inline=True, recorder=make,
                     units=(0, 2)) as rec:
        rec.step()
    cfg = made[0].config
    assert cfg is rec.config and made[0].folder == str(tmp_path / "run")
    w = cfg.watched
    assert (w.model, w.names) == ("TinyResNet", ("bn", "layer1.0.bn1", "layer1.0.bn2"))
    assert w.kinds == ("BatchNorm2d",) * 3 and w.fan_ins == (9, 54, 54) and w.values == (5 * 64,) * 3
    assert w.activations == ("ReLU", "ReLU", "") and w.noun == "channel"
    assert cfg.widths == (6, 6, 6) and cfg.variants == ("bn",) and cfg.activation == "relu"
    assert (cfg.units, cfg.snapshot_every, cfg.probe_size, cfg.ics_every, cfg.view) == ((0, 2), 4, 8, 0, "train")
    assert cfg.layer_name(1) == "layer1.0.bn1" and cfg.series_values(0) == 320


def test_a_model_of_per_example_norms_is_an_ln_run_with_its_activation():
    model = nn.Sequential(nn.Linear(3, 5), nn.LayerNorm(5), nn.Tanh(), nn.Linear(5, 4), nn.GroupNorm(2, 4),
                          nn.Tanh(), nn.Linear(4, 2), nn.LayerNorm(2))
    make, made = recorders()
    rec = bnviz.watch(model, torch.randn(20, 3), "/tmp/unused-bnviz-watch", inline=True, recorder=make,
                      view="eval")
    rec.close()
    cfg = made[0].config
    assert cfg.variants == ("ln",) and cfg.activation == "tanh" and cfg.watched.noun == "unit"
    assert cfg.watched.activations == ("Tanh", "Tanh", "") and cfg.probe_size == 20 and cfg.view == "eval"
    assert [s.step for s in made[0].snaps] == [0]


@pytest.mark.slow
def test_the_worker_process_summarizes_what_the_inline_sink_does(tmp_path):
    def run(inline: bool):
        torch.manual_seed(0)
        model = TinyResNet()
        made = []

        def make(folder, config):
            made.append(PickleRecorder(folder, config))
            return made[-1]

        out = tmp_path / ("inline" if inline else "process")
        with bnviz.watch(model, torch.randn(6, 1, 8, 8), out, every=2, inline=inline, recorder=make) as rec:
            _loop(model, rec, 5, losses=[1.0] * 5)
        if inline:
            made[0].write()
        return pickle.loads((out / "snapshots.pkl").read_bytes())

    (cfg_a, inline), (cfg_b, process) = run(True), run(False)
    assert cfg_a == cfg_b
    assert [s.step for s in process] == [0, 2, 4, 5]
    assert record.to_table(process, quantiles=True).equals(record.to_table(inline, quantiles=True))
    assert process[-1].variants["bn"].layers[0].stages["x"].hists  # with the distributions the page draws


class Broken(PickleRecorder):
    def append(self, snap):
        raise OSError("disk full")


@pytest.mark.parametrize("inline", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_a_failing_recorder_is_reported_as_a_warning_and_training_goes_on(inline, tmp_path):
    model = TinyResNet()
    with pytest.warns(RuntimeWarning, match=r"stopped recording into .*run: statistics failed at step 0: .*disk full"):
        with bnviz.watch(model, torch.randn(6, 1, 8, 8), tmp_path / "run", every=1, inline=inline,
                         recorder=Broken) as rec:
            _loop(model, rec, 3)
    assert rec.steps == 3 and rec.closed
