"""Benchmarks, each run from the repository root as ``python -m benchmarks.NAME``: figures in README.md."""
