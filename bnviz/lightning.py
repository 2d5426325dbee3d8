"""``BnvizCallback``: ``bnviz.watch`` for a Lightning ``Trainer`` (Lightning is optional: only this module imports it).

    trainer = Trainer(callbacks=[BnvizCallback(probe=x_probe, out="runs/mine", every=50)])

Rank 0 watches the LightningModule from the start of training, takes a snapshot every ``every`` training batches
(with the loss the training step returned) and writes the run folder as it goes; the other ranks do nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnviz.watching import Watcher, watch
from bnviz.watching.compat import torchvision_importable

torchvision_importable()  # Lightning imports torchvision when it is installed

import lightning.pytorch as pl  # noqa: E402


class BnvizCallback(pl.Callback):
    """Watch the normalization layers of the trained LightningModule (``bnviz.watch``'s arguments: ``probe``, ``out``,
    ``every`` and its keywords ``layers``, ``units``, ``view``, ...)."""

    def __init__(self, probe: Any, out: str | Path, every: int = 50, **watch_kwargs: Any) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:  # at construction, before any fit
            raise ValueError(f"every={every!r}: a snapshot every how many steps must be a whole number, 1 or more")
        self.probe, self.out, self.every, self.watch_kwargs = probe, out, every, watch_kwargs
        self.watcher: Watcher | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0 and self.watcher is None:
            self.watcher = watch(pl_module, self.probe, self.out, self.every, **self.watch_kwargs)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.watcher is not None:
            self.watcher.step(loss=_loss(outputs))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close(final=True)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close(final=True)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._close(final=False)

    def _close(self, final: bool) -> None:
        if self.watcher is not None:
            self.watcher.close(final=final)
            self.watcher = None


def _loss(outputs: Any) -> float | None:
    """The loss a training step returned: a tensor, or a dict's "loss" (None: the step returned none)."""
    if isinstance(outputs, dict):
        outputs = outputs.get("loss")
    try:
        return float(outputs.detach()) if outputs is not None else None
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return None
