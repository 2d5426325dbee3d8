"""The page with the store of finished runs (AppTest): a run the page finishes is stored; a stored link opens in
every panel with no training, says so in the transport bar, and trains again live on request; a corrupt file under
the link's key is named once and the run trains."""

import pytest

from bnviz import config as C
from bnviz import urlstate
from bnviz.table.replay import StoredRun
from bnviz.table.store import run_key
from bnviz.training.run import Run

from .pages import open_page, the_run

LINK = {"preset": "ioffe", "steps": "60", "every": "20"}
CFG = urlstate.decode({k: [v] for k, v in LINK.items()}).config
STORED_SAYS = "opened from the store of finished runs, no training needed"


def registry():
    from bnviz.ui.runtime import registry

    return registry()


def store_by_the_page():
    """Open the link, let the page train it to its end and store it; then the server forgets it (as after an
    eviction, or on another replica)."""
    at = open_page(LINK)
    run = the_run()
    assert run.join(timeout=120) and run.state == "finished"
    at.run()  # the page's refresh hands the finished run to the store
    assert registry().flush()
    registry().stop_all()
    return run


def markdown(at) -> str:
    return " ".join(str(m.value) for m in at.markdown)


@pytest.mark.slow
def test_a_finished_run_is_stored_and_its_link_opens_in_every_panel_without_training():
    live = store_by_the_page()
    assert registry().store.path(CFG).name == f"{run_key(CFG)}.parquet" and registry().store.has(CFG)
    started = registry().started
    at = open_page(LINK)
    assert not at.exception, at.exception
    shown = the_run()
    assert isinstance(shown, StoredRun) and shown.config == CFG == live.config
    assert registry().started == started and registry().running() == 0
    assert STORED_SAYS in markdown(at) and "step **60** / 60 · finished" in markdown(at)
    assert [b.label for b in at.button if b.key == "train_again"] == ["Train it again live"]
    assert not [b for b in at.button if b.key in ("play", "pause", "step", "reset")]
    for panel in C.PANELS:
        at.session_state["panel"] = panel
        at.run()
        assert not at.exception, (panel, at.exception)
        assert len(at.get("plotly_chart")) >= 1 or panel == "evidence", panel
        if panel == "evidence":
            assert all(f"**C{i}**" in markdown(at) for i in range(1, 9))
    assert registry().started == started


@pytest.mark.slow
def test_a_stored_link_watched_by_two_offers_no_training_to_share_and_no_restart():
    store_by_the_page()
    started = registry().started
    at = open_page(LINK)
    other = registry().lease()  # a second viewer, as another tab on the link
    assert other.view(CFG) is the_run() and registry().viewers(CFG) == 2
    at.run()
    assert not at.exception
    assert not [c for c in at.caption if "Shared run" in str(c.value)]  # nothing trains, so nothing is shared
    (button,) = [b for b in at.button if b.key == "train_again"]
    assert button.disabled and registry().started == started
    other.close()


@pytest.mark.slow
def test_train_it_again_live_trains_the_stored_run_from_step_0():
    live = store_by_the_page()
    at = open_page(LINK)
    started = registry().started
    (button,) = [b for b in at.button if b.key == "train_again"]
    button.click()
    at.run()
    assert not at.exception, at.exception
    again = the_run()
    assert isinstance(again, Run) and registry().started == started + 1
    assert STORED_SAYS not in markdown(at) and [b for b in at.button if b.key == "reset"]
    assert again.join(timeout=120) and again.state == "finished"
    assert [s.step for s in again.history.snapshots()] == [s.step for s in live.history.snapshots()]


@pytest.mark.slow
def test_a_corrupt_file_under_the_links_key_is_named_once_and_the_run_trains():
    path = registry().store.path(CFG)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a table")
    started = registry().started
    at = open_page(LINK)
    assert not at.exception, at.exception
    run = the_run()
    assert isinstance(run, Run) and registry().started == started + 1
    named = [c.value for c in at.caption if f"Skipped {path.name} in the store of runs" in str(c.value)]
    assert len(named) == 1 and "The run trains here and replaces it when it finishes." in named[0]
    assert STORED_SAYS not in markdown(at)
