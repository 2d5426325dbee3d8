"""Fixtures shared by several test files: finished runs of the small configurations in tests/helpers.py,
trained once per test session."""

import pytest

from .helpers import DIVERGES, OTHERS, SHAPES, SMALL, finished_run


@pytest.fixture(scope="session")
def small_run():
    return finished_run(SMALL)


@pytest.fixture(scope="session")
def others_run():
    return finished_run(OTHERS)


@pytest.fixture(scope="session")
def shapes_run():
    return finished_run(SHAPES)


@pytest.fixture(scope="session")
def diverged_run():
    return finished_run(DIVERGES)
