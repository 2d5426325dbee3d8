"""Watch the normalization layers of any PyTorch model inside its own training loop (``bnviz.watch``)."""

from __future__ import annotations


def watch(model, probe, out, every: int = 50, **kwargs):
    raise NotImplementedError("bnviz.watch is being built")
