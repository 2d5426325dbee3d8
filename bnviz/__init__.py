"""bnviz: watch what batch normalization does to the distributions inside a network while it trains.

The packages follow the pipeline: ``training`` (torch) → ``measure`` (numpy statistics of each snapshot) →
``table`` (snapshots kept, recorded and replayed) → ``present`` (figures, verdicts, lessons) → ``ui`` (the
Streamlit page). ``config`` (experiments and presets), ``urlstate`` (share links) and ``stats`` (the
statistics API) serve them all. ``bnviz.watch`` (``watching``, and ``lightning`` for a Lightning ``Trainer``)
records the normalization layers of any PyTorch model inside its own training loop. Only ``ui`` imports
Streamlit; only ``training``, ``watching`` and what drives them import PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from bnviz.watching import watch as watch


def __getattr__(name: str):
    # bnviz.watch imports PyTorch: only when asked for, so that the torch-free statistics worker stays so.
    if name == "watch":
        from bnviz.watching import watch as watch

        return watch
    raise AttributeError(f"module 'bnviz' has no attribute {name!r}")

