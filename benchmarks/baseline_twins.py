"""Plain-PyTorch baseline for bench_record.py: the ioffe twins trained with no probes, no statistics.

The same work the record command's training does, written without bnviz: digits scaled to [0, 1] with
an 80/20 split, 64-100-100-100-10 sigmoid networks with and without BatchNorm1d before each sigmoid,
the same initial weights, the same seeded mini-batches of 60, plain SGD with learning rate 0.5. With
``--conv``, the ioffe-conv twins instead: the digits as 1x8x8 images, three 3x3 conv layers of 16 sigmoid
channels (BatchNorm2d before each sigmoid in the BN twin), global average pooling, a linear head.

    python -m benchmarks.baseline_twins [STEPS] [--conv]

The digits are read from the file inside scikit-learn that ``load_digits`` reads, with numpy, as bnviz
reads them (importing scikit-learn would add about 2 s to this baseline and make recording look cheaper
than it is).
"""

import gzip
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (pixels 0..16, labels), without importing scikit-learn."""
    folder = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0])
    with gzip.open(folder / "datasets" / "data" / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1], table[:, -1].astype(int)


def net(bn: bool) -> nn.Sequential:
    layers, sizes = [], (64, 100, 100, 100)
    for i in range(3):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if bn:
            layers.append(nn.BatchNorm1d(sizes[i + 1]))
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers, nn.Linear(100, 10))


class ConvTwin(nn.Module):
    def __init__(self, bn: bool) -> None:
        super().__init__()
        layers, channels = [], (1, 16, 16, 16)
        for i in range(3):
            layers.append(nn.Conv2d(channels[i], channels[i + 1], 3, padding=1))
            if bn:
                layers.append(nn.BatchNorm2d(channels[i + 1]))
            layers.append(nn.Sigmoid())
        self.body, self.head = nn.Sequential(*layers), nn.Linear(16, 10)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(u.reshape(-1, 1, 8, 8)).mean(dim=(2, 3)))


def main(steps: int = 5000, seed: int = 0, conv: bool = False) -> float:
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    pixels, labels = load_digits()
    x = torch.as_tensor(pixels / 16.0, dtype=torch.float32)
    y = torch.as_tensor(labels)
    order = np.random.default_rng(seed).permutation(len(x))
    train = torch.as_tensor(order[int(round(0.2 * len(x))):])
    x, y = x[train], y[train]
    torch.manual_seed(seed)
    plain, with_bn = (ConvTwin(False), ConvTwin(True)) if conv else (net(False), net(True))
    lin = lambda m: [x for x in m.modules() if isinstance(x, (nn.Linear, nn.Conv2d))]  # noqa: E731
    with torch.no_grad():
        for a, b in zip(lin(with_bn), lin(plain)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    nets = [plain, with_bn]
    opts = [torch.optim.SGD(m.parameters(), lr=0.5) for m in nets]
    gen = torch.Generator().manual_seed(seed)
    perm, pos = torch.empty(0, dtype=torch.int64), 0
    for _ in range(steps):
        if pos + 60 > len(perm):
            perm, pos = torch.randperm(len(x), generator=gen), 0
        idx = perm[pos:pos + 60]
        pos += 60
        xb, yb = x[idx], y[idx]
        for m, opt in zip(nets, opts):
            loss = F.cross_entropy(m(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()  # the record loop reads every loss too (divergence check)
    return time.perf_counter() - t0


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    print(f"{main(int(numbers[0]) if numbers else 5000, conv='--conv' in sys.argv):.3f}")
