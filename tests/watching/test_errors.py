"""Bad input fails at ``bnviz.watch(...)``, before any training step, with one clear message, and leaves the model
as it was."""

import pytest
import torch
from torch import nn

import bnviz

from .models import TinyResNet, recorders


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _watch(model, probe, out, **kw):
    make, made = recorders()
    return bnviz.watch(model, probe, out, inline=True, recorder=make, **kw), made


@pytest.mark.parametrize("every", [0, -3, 2.5, True])
def test_every_below_one_or_not_a_whole_number(every, tmp_path):
    with pytest.raises(ValueError, match=r"every=.*whole number, 1 or more"):
        _watch(TinyResNet(), torch.randn(4, 1, 8, 8), tmp_path / "run", every=every)
    assert not (tmp_path / "run").exists()


def test_a_model_without_normalization_layers(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="Sequential has no normalization layer to watch"):
        _watch(model, torch.randn(4, 3), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_layers_that_are_not_normalization_modules_of_the_model(tmp_path):
    model = TinyResNet()
    with pytest.raises(ValueError, match="'layer1.0.conv1' is a Conv2d, not a normalization module"):
        _watch(model, torch.randn(4, 1, 8, 8), tmp_path / "run", layers=["layer1.0.conv1"])
    with pytest.raises(ValueError, match="'nope', which is not a module of TinyResNet"):
        _watch(model, torch.randn(4, 1, 8, 8), tmp_path / "run", layers=["nope"])
    with pytest.raises(ValueError, match="not a module of TinyResNet"):
        _watch(model, torch.randn(4, 1, 8, 8), tmp_path / "run", layers=[nn.BatchNorm2d(4)])


def test_layers_picks_the_named_modules_only(tmp_path):
    model = TinyResNet()
    rec, made = _watch(model, torch.randn(4, 1, 8, 8), tmp_path / "run", layers=["layer1.0.bn2", model.bn])
    rec.close()
    assert made[0].config.watched.names == ("bn", "layer1.0.bn2")


def test_a_probe_the_model_rejects_names_the_exception(tmp_path):
    model = TinyResNet()
    before = _state(model)
    with pytest.raises(ValueError, match=r"the model rejects the probe batch: RuntimeError: .*") as info:
        _watch(model, torch.randn(4, 3, 8, 8), tmp_path / "run")  # 3 channels where the stem takes 1
    assert "channels" in str(info.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.training and not (tmp_path / "run").exists()


def test_an_output_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=f"cannot write its run folder {blocker / 'run'}: Not a directory"):
        _watch(TinyResNet(), torch.randn(4, 1, 8, 8), blocker / "run")


def test_a_probe_that_reaches_no_norm_layer(tmp_path):
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ValueError, match="reaches none of the model's normalization layers"), \
            pytest.warns(UserWarning, match="leaves out bn"):
        _watch(Skips(), torch.randn(4, 3), tmp_path / "run")


def test_units_that_are_not_unit_indices(tmp_path):
    with pytest.raises(ValueError, match=r"units \(0, -1\) must be non-negative integers"):
        _watch(TinyResNet(), torch.randn(4, 1, 8, 8), tmp_path / "run", units=(0, -1))
    assert not (tmp_path / "run").exists()


def test_a_view_that_is_neither_train_nor_eval(tmp_path):
    with pytest.raises(ValueError, match="view='test' is not one of train, eval"):
        _watch(TinyResNet(), torch.randn(4, 1, 8, 8), tmp_path / "run", view="test")
