"""Small models and a recorder that the watcher tests share."""

import pickle
from pathlib import Path

from torch import nn


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: conv-bn-relu(inplace)-conv-bn, ``out += identity``, then the same relu."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    """A stem (conv 1 -> c, bn, relu), one BasicBlock and a linear head, on 1 x 8 x 8 images."""

    def __init__(self, c: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(c))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.layer1(self.relu(self.bn(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)))


class ListRecorder:
    """A Recorder that keeps the snapshots in a list (inline sinks: the test reads ``snaps``)."""

    where = "a list"

    def __init__(self, folder: str, config) -> None:
        self.folder, self.config, self.snaps = folder, config, []
        self.prepared = False

    def prepare(self) -> None:
        self.prepared = True

    def append(self, snap) -> None:
        self.snaps.append(snap)

    def write(self) -> int:
        return len(self.snaps)


class PickleRecorder(ListRecorder):
    """A Recorder that pickles its snapshots to ``snapshots.pkl`` in the run folder on ``write`` (process sinks)."""

    where = "snapshots.pkl"

    def write(self) -> int:
        Path(self.folder, "snapshots.pkl").write_bytes(pickle.dumps((self.config, self.snaps)))
        return len(self.snaps)


def recorders():
    """A recorder factory for ``watch(recorder=...)`` and the list of the recorders it made."""
    made: list[ListRecorder] = []

    def make(folder, config):
        made.append(ListRecorder(folder, config))
        return made[-1]

    return make, made
