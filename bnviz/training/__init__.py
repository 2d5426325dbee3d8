"""Training: the datasets as tensors, the twin networks, the training thread (Run) and the registry of runs.

The only package that imports PyTorch. A Run hands copies of its weights to :mod:`bnviz.measure` and never
calls Streamlit; probing never changes training (tested bit for bit).
"""
