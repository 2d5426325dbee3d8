"""examples/watch_resnet.py: torchvision's ResNet-18, watched for a few steps, leaves a run folder that names every
batch norm module of the model and ends at the loop's last step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from bnviz.table.parts import open_run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "watch_resnet.py"


def load_example():
    spec = importlib.util.spec_from_file_location("watch_resnet", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_example_resnet_is_watched_into_a_run_folder_that_names_its_batch_norms(tmp_path):
    example = load_example()
    model = example.resnet18_for_digits()
    expected = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(expected) == 20  # ResNet-18: the stem, 2 per basic block, and 3 downsampling shortcuts
    out = tmp_path / "resnet"
    result = example.train(steps=4, every=2, out=str(out), batch=16, model=model)
    assert result["steps"] == 4 and 0.0 <= result["test_accuracy"] <= 1.0
    run = open_run(out)
    snaps = run.poll()
    assert [s.step for s in snaps] == [0, 2, 4] and run.finished and not run.skipped
    assert list(run.config.watched.names) == expected
    assert run.config.widths == tuple(model.get_submodule(n).num_features for n in expected)
    stem = snaps[-1].variants["bn"].layers[0]
    assert set(stem.stages) == {"x", "x_hat", "y", "a"}  # the stem's ReLU follows its batch norm
    # After 4 steps of SGD-momentum from gamma = 1, the stem's gamma read back equals the model's own.
    gamma = model.get_submodule("bn1").weight.detach()
    tracked = list(stem.stages["y"].units[1:])
    assert torch.allclose(torch.from_numpy(stem.gamma[tracked]), gamma[tracked])
