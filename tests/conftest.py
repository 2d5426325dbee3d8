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


@pytest.fixture(scope="session", autouse=True)
def data_store(tmp_path_factory):
    """Every test (and every server or command it starts) keeps uploaded data in a folder of its own session,
    never in the user's cache."""
    folder = tmp_path_factory.mktemp("bnviz-data")
    old = os.environ.get("BNVIZ_DATA")
    os.environ["BNVIZ_DATA"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("BNVIZ_DATA", None)
    else:
        os.environ["BNVIZ_DATA"] = old
