"""bnviz: watch what batch normalization does to the distributions inside a network while it trains.

The core package (everything outside ``bnviz/ui``) never imports Streamlit, so the engine, the record
command and the tests run without it.
"""

__version__ = "0.1.0"
