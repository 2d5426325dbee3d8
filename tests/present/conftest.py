"""Fixtures of the presentation tests: the snapshots of the session's finished small runs (tests/conftest.py)."""

import pytest


@pytest.fixture(scope="module")
def small(small_run):
    return small_run.history.snapshots()


@pytest.fixture(scope="module")
def others(others_run):
    return others_run.history.snapshots()
