"""Fixtures shared by several test files: finished runs of the small configurations in tests/helpers.py,
trained once per test session."""

import os

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


def _session_folder(tmp_path_factory, variable: str, name: str):
    folder = tmp_path_factory.mktemp(name)
    old = os.environ.get(variable)
    os.environ[variable] = str(folder)
    yield folder
    if old is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = old


@pytest.fixture(scope="session", autouse=True)
def data_store(tmp_path_factory):
    """Every test (and every server or command it starts) keeps uploaded data in a folder of its own session,
    never in the user's cache."""
    yield from _session_folder(tmp_path_factory, "BNVIZ_DATA", "bnviz-data")


@pytest.fixture(scope="session", autouse=True)
def runs_store(tmp_path_factory):
    """Every test (and every server or command it starts) stores finished runs in a folder of its own session,
    never in the user's cache; a test that needs an empty store makes its own."""
    yield from _session_folder(tmp_path_factory, "BNVIZ_RUNS", "bnviz-runs")
