"""BnvizCallback on a real Lightning Trainer on the CPU: the run holds the LightningModule's norm layers, a snapshot
at step 0, every ``every`` batches and at the end, and the losses its training steps returned."""

import importlib.util

import pytest
import torch
from torch import nn

from bnviz.table.parts import open_run


def _lightning():
    """lightning.pytorch, skipped only where it is not installed (bnviz.lightning makes an installed torchvision
    importable first: torchmetrics, a Lightning dependency, imports it)."""
    if importlib.util.find_spec("lightning") is None:
        pytest.skip("lightning is not installed (requirements-dev.txt installs it)")
    from bnviz import lightning

    return lightning.pl


@pytest.mark.slow
def test_a_trainer_with_the_callback_writes_the_run(tmp_path):
    pl = _lightning()
    from bnviz.lightning import BnvizCallback

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(4 * 8 * 8, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
            self.losses = []

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.losses.append(loss.item())
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,)))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    model = Net()
    callback = BnvizCallback(probe=torch.randn(6, 1, 8, 8), out=tmp_path / "run", every=2)
    trainer = pl.Trainer(accelerator="cpu", max_steps=5, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(model, loader)
    run = open_run(tmp_path / "run")
    snaps, config = run.poll(), run.config
    assert run.finished
    assert config.watched.names == ("net.1", "net.5") and config.watched.model == "Net"
    assert config.watched.activations == ("ReLU", "")
    assert [s.step for s in snaps] == [0, 2, 4, 5]
    losses = [s.variants["bn"].loss for s in snaps]
    assert losses[1:] == [pytest.approx(sum(model.losses[i:j]) / (j - i)) for i, j in ((0, 2), (2, 4), (4, 5))]
    assert callback.watcher is None  # closed at the end of training


@pytest.mark.slow  # importing Lightning takes seconds
def test_every_below_one_fails_when_the_callback_is_made():
    _lightning()
    from bnviz.lightning import BnvizCallback

    with pytest.raises(ValueError, match="every=0"):
        BnvizCallback(probe=torch.zeros(2, 3), out="unused", every=0)
