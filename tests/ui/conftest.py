"""Fixtures of the page tests (Streamlit's AppTest): every test here gets them."""

import pytest


@pytest.fixture(autouse=True)
def inline_stats_and_cleanup(monkeypatch, tmp_path):
    """Cheap runs (statistics on the training thread), an empty store of finished runs (so each test's link
    trains, whatever an earlier test finished), and no thread left behind after each test."""
    monkeypatch.setenv("BNVIZ_STATS_IN", "inline")
    from bnviz.table.store import RunStore
    from bnviz.ui import live
    from bnviz.ui.runtime import registry

    monkeypatch.setattr(live, "FIRST_FRAME_SECONDS", 0.0)  # no browser here to draw the first frame

    registry().stop_all()
    monkeypatch.setattr(registry(), "store", RunStore(tmp_path / "runs"))
    yield
    registry().stop_all()
