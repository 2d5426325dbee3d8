"""Watch the batch norm layers of a torchvision ResNet-18 while it learns the digits.

    python examples/watch_resnet.py                 # trains 300 steps, writes runs/resnet as it goes
    python -m bnviz view runs/resnet                # the page, following the run (start it in another shell)

The model is torchvision's ResNet-18 with random weights (nothing is downloaded) and its stem adapted to
scikit-learn's 8x8 grey digits: a 3x3 convolution of stride 1 and no max pooling, so that layer4 still sees 1x1
positions. The loop is an ordinary PyTorch loop; the three lines marked ``bnviz`` are all that watching adds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import bnviz
from bnviz.watching.compat import import_torchvision  # also beside a CPU build of torch


def resnet18_for_digits() -> nn.Module:
    """torchvision's ResNet-18 for 8x8 one-channel images and 10 classes, with random weights."""
    model = import_torchvision().models.resnet18(weights=None, num_classes=10)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def digits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits as (N, 1, 8, 8) images standardized with the training split's mean and std: a fixed 80/20 split."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    x = x.reshape(-1, 1, 8, 8).astype(np.float32)
    train, test = order[:cut], order[cut:]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    as_t = torch.from_numpy
    return as_t(x[train]), as_t(y[train]), as_t(x[test]), as_t(y[test])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy in evaluation mode (running statistics), the model's mode restored after."""
    was = model.training
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    model.train(was)
    return acc


def train(steps: int = 300, every: int = 50, out: str | None = "runs/resnet", batch: int = 64, lr: float = 0.05,
          seed: int = 0, model: nn.Module | None = None) -> dict:
    """Train ``model`` (by default a new resnet18_for_digits), watched unless ``out`` is None; returns the loop's wall
    time, the final test accuracy and the loop's log (step, loss, batch accuracy, test accuracy every ``every``
    steps). Watched or not, the loop does the same work but for the lines marked ``bnviz``."""
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = digits(seed)
    model = model if model is not None else resnet18_for_digits()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    probe = x_train[:64]  # bnviz: a fixed batch pushed through the model at each snapshot
    gen = torch.Generator().manual_seed(seed)
    log: list[tuple[int, float, float, float | None]] = []  # the loop's own record, watched or not
    t0 = time.perf_counter()
    rec = bnviz.watch(model, probe=probe, out=out, every=every) if out else None  # bnviz
    with rec if rec is not None else contextlib.nullcontext():
        for step in range(1, steps + 1):
            idx = torch.randint(len(x_train), (batch,), generator=gen)
            logits = model(x_train[idx])
            loss = F.cross_entropy(logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            score = (logits.argmax(1) == y_train[idx]).float().mean().item()
            test = accuracy(model, x_test, y_test) if step % every == 0 or step == steps else None
            log.append((step, loss.item(), score, test))
            if rec is not None:
                rec.step(loss=loss.item(), score=score, test_score=test)  # bnviz
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "steps": steps, "test_accuracy": accuracy(model, x_test, y_test), "log": log}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/resnet", help="the run folder (default runs/resnet)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50, help="a snapshot every this many steps")
    parser.add_argument("--plain", action="store_true", help="train without watching (for benchmarks)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = train(args.steps, args.every, None if args.plain else args.out)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "log"}))
    else:
        print(f"{args.steps} steps in {result['seconds']:.1f} s, test accuracy {result['test_accuracy']:.3f}"
              + ("" if args.plain else f"; view it with: python -m bnviz view {args.out}"))


if __name__ == "__main__":
    main()
