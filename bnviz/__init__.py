"""bnviz: watch what batch normalization does to the distributions inside a network while it trains.

The packages follow the pipeline: ``training`` (torch) → ``measure`` (numpy statistics of each snapshot) →
``table`` (snapshots kept, recorded and replayed) → ``present`` (figures, verdicts, lessons) → ``ui`` (the
Streamlit page). ``config`` (experiments and presets), ``urlstate`` (share links) and ``stats`` (the
statistics API) serve them all. Only ``ui`` imports Streamlit; only ``training`` and what drives it import
PyTorch.
"""

__version__ = "0.1.0"
