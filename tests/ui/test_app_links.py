"""The page's link and its first drawing, through AppTest: a layer or unit the network lacks is warned about
and leaves the address; before the run's first snapshot the page draws the panel it opens on."""

import functools
import json
import threading

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from bnviz import config as C
from bnviz.training.run import Run
from bnviz.ui import live, panels

from .pages import APP, SHORT, open_page


def _warnings(at) -> list[str]:
    """The page's warnings as a visitor reads them (the page escapes every punctuation mark for markdown)."""
    return [w.value.replace("\\", "") for w in at.warning]


def test_a_layer_and_a_unit_the_network_lacks_are_warned_about_and_dropped_from_the_address():
    at = open_page({**SHORT, "layer": "9", "unit": "999"})
    assert not at.exception
    warned = _warnings(at)
    # ioffe: 3 hidden layers (contract 4); the page follows units 0-4 of a layer, or all pooled
    assert any("layer=9 ignored: this network has 3 hidden layers" in w for w in warned), warned
    assert any("unit=999 ignored" in w and "0, 1, 2, 3, 4" in w for w in warned), warned
    # the address holds what the page shows: the last layer (index 2), all units pooled
    assert at.query_params["layer"] == "2" and at.query_params["unit"] == "-1"
    assert at.selectbox(key="layer").value == 2 and at.selectbox(key="unit").value == -1
    assert len(at.get("plotly_chart")) >= 1


@pytest.mark.slow
def test_a_conv_link_names_conv_layers_and_channels_and_a_layer_in_range_stays():
    at = open_page({**SHORT, "preset": "ioffe-conv", "layer": "1", "unit": "40"})
    assert not at.exception
    warned = _warnings(at)
    assert not any(w.startswith("Link: layer") for w in warned), warned  # layer 1 of 3 exists
    assert any("unit=40 ignored: the page follows channels" in w for w in warned), warned
    assert at.query_params["layer"] == "1" and at.query_params["unit"] == "-1"
    at = open_page({**SHORT, "preset": "ioffe-conv", "layer": "3"})
    assert any("layer=3 ignored: this network has 3 conv layers" in w for w in _warnings(at))


def _first_frame(monkeypatch, params: dict) -> tuple[AppTest, threading.Event]:
    """A tab's first frame while its run has not recorded step 0 yet (the run's snapshots are held until the
    returned event is set), as on a cold server; the test stops after the frame, as the browser sees it."""
    release = threading.Event()
    snapshot = Run._snapshot

    def held(self):
        release.wait(60)
        snapshot(self)

    def stop_after_first_frame(run, held_run):
        st.session_state["_framed"] = True
        st.stop()

    monkeypatch.setattr(Run, "_snapshot", held)
    monkeypatch.setattr(panels, "await_first_snapshot",
                        functools.partial(panels.await_first_snapshot, timeout=0.1))
    monkeypatch.setattr(live, "end_first_frame", stop_after_first_frame)
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in {**SHORT, **params}.items():
        at.query_params[k] = v
    at.run()
    return at, release


def _main_charts(at) -> list[tuple[str, dict]]:
    """(key, figure) of the charts in the page's main area, in page order."""
    return [(c.proto.id.rsplit("-", 1)[-1], json.loads(c.proto.spec)) for c in at.main.get("plotly_chart")]


@pytest.mark.slow
@pytest.mark.parametrize("panel", ["over-time", "training", "layer", "stability"])
def test_before_the_first_snapshot_the_first_drawing_is_the_opening_panels_leading_chart(monkeypatch, panel):
    at, release = _first_frame(monkeypatch, {} if panel == "over-time" else {"panel": panel})
    try:
        assert not at.exception
        (waiting_key, waiting), = _main_charts(at)  # one chart, empty: the run has no snapshot yet
        assert not waiting["data"]
    finally:
        release.set()
    # the panel drawn with the run's data: its first chart is that same element, filled in place
    at = open_page({**SHORT, "panel": panel}, wait_snapshots=1)  # the run of the first frame stays paused at step 0
    assert not at.exception
    with_data = _main_charts(at)
    assert with_data[0][0] == waiting_key and with_data[0][1]["data"], (waiting_key, [k for k, _ in with_data])


@pytest.mark.parametrize("panel", ["evidence", "gamma-beta"])
def test_before_the_first_snapshot_a_panel_without_a_leading_chart_is_named_not_training(monkeypatch, panel):
    at, release = _first_frame(monkeypatch, {"panel": panel})
    try:
        assert not at.exception
        (key, waiting), = _main_charts(at)
        assert waiting["layout"]["title"]["text"] == C.PANELS[panel] and not waiting["data"]
    finally:
        release.set()


def test_the_rest_of_the_page_comes_at_the_timed_rerun_after_a_late_one_or_at_the_third(monkeypatch):
    """The browser's timer runs late only when its main thread was busy (compiling plotly.js); the chart is
    drawn in the task after, so the page waits one more rerun."""
    session, now = {}, [100.0]
    monkeypatch.setattr(live.st, "session_state", session)
    monkeypatch.setattr(live.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(live, "FIRST_FRAME_SECONDS", 1.0)  # the page's tests set 0: no browser to time
    tick, late = live.FIRST_FRAME_SECONDS, live.LATE_SECONDS

    def frame():
        session.clear()
        assert live.first_frame()
        session["_frame_ticks"] = 0  # what end_first_frame leaves for the timed reruns

    frame()
    for _ in range(2):  # on time: the browser was free (plotly.js maybe still downloading)
        now[0] += tick + late / 2
        assert not live.rest_of_page_due() and live.first_frame()
    now[0] += tick  # the third rerun brings the page in any case
    assert live.rest_of_page_due() and not live.first_frame()
    assert not live.rest_of_page_due()  # the whole page's own refreshes are not first-frame reruns

    frame()
    now[0] += 4 * tick  # late: the browser was busy compiling
    assert not live.rest_of_page_due() and live.first_frame()
    now[0] += tick  # the next rerun: the chart was drawn meanwhile
    assert live.rest_of_page_due() and not live.first_frame()
