"""Measurement: the network rebuilt in numpy, the probe pass, per-unit statistics, the CLT lab and the
statistics worker. numpy and scipy only, no PyTorch: the worker process stays small, and the numpy network
is checked against PyTorch's modules in the tests.
"""
