"""Watch the normalization layers of any PyTorch model inside its own training loop (``bnviz.watch``).

``layers`` finds the norm modules and knows how each normalizes, ``probe`` runs the hooked probe forward pass that
changes nothing, ``recorder`` holds the ``Watcher`` that takes snapshots and hands them to the statistics worker.
"""

from __future__ import annotations

from bnviz.watching.recorder import Watcher, watch

__all__ = ["Watcher", "watch"]
