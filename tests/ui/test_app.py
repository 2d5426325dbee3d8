"""The page through Streamlit's AppTest: every panel of every preset, links, widgets, pause."""

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from bnviz import config as C
from bnviz.ui.state import as_text

from ..helpers import wait_for
from .pages import APP, SHORT, open_page, the_run


@pytest.mark.slow
def test_opens_on_ioffe_and_trains_at_once():
    at = open_page({})
    assert not at.exception
    assert at.session_state["preset"] == "ioffe"
    run = the_run()
    assert run.config == C.PRESETS["ioffe"].config
    assert run.state in ("running", "finished") and len(run.history) >= 2
    assert len(at.get("plotly_chart")) >= 1
    assert at.query_params["preset"] == "ioffe" and at.query_params["seed"] == "0"


def _charts(at) -> dict:
    """key -> plotly figure (its JSON) of the charts the last run drew."""
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_a_tabs_first_frame_is_the_leading_chart_with_data_alone_then_the_whole_page(monkeypatch):
    import streamlit as st

    from bnviz.ui import live

    def stop_after_first_frame(run, held):  # what the browser holds while the first frame stands alone
        st.session_state["_framed"] = True
        stopped.append((run, held))
        st.stop()

    stopped = []

    monkeypatch.setattr(live, "end_first_frame", stop_after_first_frame)
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in SHORT.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    top = at.sidebar.children[0]  # the sidebar's first element: a hidden, empty chart that fetches plotly.js
    assert top.proto.id.endswith("-chart_preload")
    preload = top.get("plotly_chart")
    assert len(preload) == 1 and json.loads(preload[0].proto.spec)["data"] == []  # empty
    assert any(".st-key-chart_preload{display:none}" in str(m.value) for m in top.markdown)  # hidden
    first = {c.proto.id: json.loads(c.proto.spec) for c in at.main.get("plotly_chart")}
    (chart_id, bands), = first.items()  # Figure 1 alone: no other chart, no widget
    assert chart_id.endswith("-fig_bands") and bands["data"]  # already the run's step 0
    assert all(len(t["x"]) >= 1 for t in bands["data"] if "x" in t)
    for kind in ("selectbox", "button", "toggle", "select_slider", "segmented_control", "multiselect"):
        assert not at.get(kind), kind

    (run, held), = stopped
    assert held and run.state == "paused" and run.step == 0  # its training waits while the first frame loads
    run.resume()  # what the whole page's run does (live.release_training)

    at.run()  # the whole page
    assert not at.exception
    assert "fig_preload" not in _charts(at)  # once per tab
    full = {c.proto.id for c in at.main.get("plotly_chart")}
    assert chart_id in full  # the same element: the browser updates the chart in place, no redraw from scratch
    assert at.session_state["preset"] == "ioffe" and len(at.get("button")) >= 4 and at.get("segmented_control")


@pytest.mark.slow
def test_waiting_for_the_first_snapshot_ends_when_it_comes_at_the_timeout_or_when_the_run_ends():
    from types import SimpleNamespace

    from bnviz.table.history import History
    from bnviz.training.run import Run
    from bnviz.ui.panels import await_first_snapshot

    from ..helpers import TINY

    for state, least, most in (("running", 0.3, 2.0), ("paused", 0.3, 2.0), ("failed", 0.0, 0.1),
                               ("ready", 0.0, 0.1)):  # ready: queued for a training slot, no step 0 coming
        silent = SimpleNamespace(state=state, history=History(10))  # a run that records nothing
        t0 = time.monotonic()
        assert not await_first_snapshot(silent, timeout=0.3)
        assert least <= time.monotonic() - t0 < most, state
    run = Run(TINY, stats_in="inline").start()
    t0 = time.monotonic()
    assert await_first_snapshot(run, timeout=30)
    assert time.monotonic() - t0 < 25 and run.history.snapshots()[0].step == 0
    run.stop()


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(C.PRESETS))
def test_every_panel_renders_for_every_preset(preset):
    at = open_page({"preset": preset, **SHORT})
    assert not at.exception, at.exception
    for panel in C.PANELS:
        at.session_state["panel"] = panel
        at.run()
        assert not at.exception, (preset, panel, at.exception)
        assert len(at.get("plotly_chart")) >= 1 or panel == "evidence", (preset, panel)
        if panel == "evidence":
            text = " ".join(str(m.value) for m in at.markdown)
            assert all(f"**C{i}**" in text for i in range(1, 9))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_every_panel_renders_with_the_shape_variants(arch):
    at = open_page({"preset": "ioffe", "arch": arch, "variants": "bn,bn_gauss,bn_uniform,bn_laplace", **SHORT})
    assert not at.exception, at.exception
    assert the_run().config.variants == ("bn", "bn_gauss", "bn_uniform", "bn_laplace")
    assert the_run().config.architecture == arch
    for panel in C.PANELS:
        at.session_state["panel"] = panel
        at.run()
        assert not at.exception, (panel, at.exception)
        assert len(at.get("plotly_chart")) >= 1 or panel == "evidence", panel
        assert not [w.value for w in at.warning if "variant" in str(w.value)], panel


def test_malformed_link_shows_warning_and_still_works():
    at = open_page({"preset": "nope", "seed": "abc", "widths": "1,2,x", "colour": "red", **SHORT})
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "nope" in warnings and "seed" in warnings and "widths" in warnings and "colour" in warnings
    assert at.session_state["preset"] == "ioffe" and the_run().config.seed == 0
    assert len(at.get("plotly_chart")) >= 1


def test_script_in_a_link_is_shown_as_text():
    at = open_page({"preset": "<script>alert(1)</script>", **SHORT})
    assert not at.exception
    # escaped for markdown, so the browser shows the characters (tests/e2e/test_sharing.py reads them there)
    assert any("\\<script\\>alert\\(1\\)" in w.value for w in at.warning)


@pytest.mark.slow  # a second or more
def test_widgets_change_the_config_and_the_link():
    at = open_page(SHORT)
    at.number_input(key="seed").set_value(7).run()
    assert the_run().config.seed == 7
    assert at.query_params["seed"] == "7"
    at.selectbox(key="activation").set_value("tanh").run()
    assert the_run().config.activation == "tanh" and at.query_params["activation"] == "tanh"
    at.selectbox(key="init").set_value("xavier_normal").run()
    assert the_run().config.init == "xavier_normal" and at.query_params["init"] == "xavier_normal"
    at.selectbox(key="preset").set_value("santurkar").run()
    assert the_run().config == C.PRESETS["santurkar"].config  # a preset resets every setting
    assert at.selectbox(key="init").value == "pytorch"


@pytest.mark.slow
def test_a_link_sets_the_initialization_and_a_bad_one_is_named():
    at = open_page({"init": "orthogonal", **SHORT})
    assert not at.exception and at.selectbox(key="init").value == "orthogonal"
    assert the_run().config.init == "orthogonal"
    at = open_page({"init": "glorot", **SHORT})
    assert not at.exception and the_run().config.init == "pytorch"
    (warning,) = [w.value for w in at.warning]
    words = "init=glorot ignored: the initialization of the weights (init) must be one of " + " or ".join(
        [", ".join(list(C.INITS)[:-1]), list(C.INITS)[-1]])
    assert warning == "Link: " + as_text(words)  # escaped for markdown, shown as typed


@pytest.mark.slow
def test_bad_widget_value_gives_a_message_and_keeps_the_last_valid_config():
    at = open_page(SHORT)
    before = the_run().config
    at.text_input(key="widths").set_value("100,abc").run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "widths" in error and "abc is not a width" in error and "whole numbers from 1 to 1\\,024" in error
    assert "invalid literal" not in error and "Error" not in error
    assert the_run().config == before


@pytest.mark.slow
def test_paused_means_no_new_snapshots():
    at = open_page({"steps": "100000", "every": "20"})
    run = the_run()
    at.button(key="pause").click().run()
    assert not at.exception
    time.sleep(0.5)
    n, step = len(run.history), run.step
    time.sleep(1.0)
    assert run.state == "paused" and len(run.history) == n and run.step == step
    at.button(key="step").click().run()
    assert wait_for(lambda: run.step >= step + 20)
    at.button(key="play").click().run()
    assert wait_for(lambda: run.step > step + 200) and run.state == "running"


def test_figure_data_is_the_history_data():
    """What the percentile panel draws is exactly what the engine measured."""
    at = open_page({**SHORT, "panel": "over-time", "layer": "2"})
    run = the_run()
    assert not at.exception
    import numpy as np

    from bnviz.present import figures, views

    snaps = run.history.snapshots()
    fig = figures.percentile_bands(snaps, run.config.variants, 2, -1)
    p50 = views.unit_stat(snaps, "bn", 2, "y", "p50")
    drawn = [np.asarray(t.y, dtype=float) for t in fig.data if t.y is not None and len(t.y) == len(snaps)]
    assert any(np.allclose(d, p50, rtol=1e-6, atol=1e-6, equal_nan=True) for d in drawn)


def test_refresh_slows_down_only_when_many_watch_one_run():
    from bnviz.ui.state import MAX_REFRESHES_PER_RUN, refresh_interval

    assert [refresh_interval(v) for v in (0, 1, 2, 6)] == [0.5] * 4  # twice a second for a normal audience
    for viewers in range(1, 200):
        interval = refresh_interval(viewers)
        assert viewers / interval <= MAX_REFRESHES_PER_RUN + 1e-9  # the whole audience stays within budget
        assert interval == 0.5 or viewers / (interval - 0.5) > MAX_REFRESHES_PER_RUN  # and no slower than needed
    assert refresh_interval(30) == 2.5
    assert refresh_interval(1, queued=True) == 2.0 and refresh_interval(30, queued=True) == 2.5  # queued: waits
    # a page that has just opened refreshes slowly twice, then at the audience's rate
    assert [refresh_interval(1, refreshes=k) for k in range(4)] == [2.0, 2.0, 0.5, 0.5]
    assert refresh_interval(30, refreshes=0) == 2.5 and refresh_interval(30, refreshes=5) == 2.5


def test_shared_results_are_reused_only_for_the_very_same_snapshots():
    from bnviz.ui.runtime import SharedResults

    calls = []

    def build(snaps, k):
        calls.append((snaps, k))
        return object()

    shared = SharedResults(size=3)
    a, b = tuple([1, 2]), tuple([1, 2])  # equal, but different objects: a new History version
    first = shared(build, a, "x")
    assert shared(build, a, "x") is first and len(calls) == 1  # second viewer: no rebuild
    assert shared(build, b, "x") is not first and len(calls) == 2  # new snapshots: rebuilt, never stale
    assert shared(build, a, "y") is not first  # other arguments: another result
    for i in range(5):
        shared(build, a, i)
    assert len(shared._items) == 3  # bounded


def test_a_page_over_the_training_cap_says_it_is_queued(monkeypatch):
    from bnviz.ui.runtime import registry

    monkeypatch.setattr(registry(), "max_running", 1)
    busy = registry().lease()
    try:
        busy.view(C.PRESETS["ioffe"].config.replace(steps=1_000_000))  # holds the only slot
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["preset"] = "ioffe"
        at.query_params["seed"] = "7"
        at.run()
        assert not at.exception
        text = " ".join(m.value for m in at.markdown)
        assert "**queued** (position 1)" in text, text
        assert "trainings are capped at 1 at once" in text
        queued_cfg = C.PRESETS["ioffe"].config.replace(seed=7)
        assert registry()._entries[queued_cfg].run.state == "ready"
    finally:
        busy.close()


def test_a_panel_value_lost_under_load_falls_back_to_the_last_panel():
    """Regression (30 browsers on one link: 5 pages showed KeyError: None): the panel selector's value came
    back None; the page keeps showing the last panel instead of failing."""
    at = open_page({"panel": "stability"})
    assert not at.exception and at.session_state["panel"] == "stability"
    at.session_state["panel"] = None
    at.run()
    assert not at.exception
    assert at.session_state["panel"] == "stability" and len(at.get("plotly_chart")) >= 1



def test_shared_results_of_a_run_that_is_gone_are_dropped():
    """The page's figure cache holds the snapshots it built from; when the registry lets a run go, the
    results built from that run's snapshots go too (the churn benchmark saw memory grow with dead runs)."""
    from bnviz.measure.snapshot import Snapshot
    from bnviz.ui.runtime import SharedResults

    def snap(step):
        return Snapshot(step, {}, nbytes=0)

    gone, kept = (snap(0), snap(25), snap(50)), (snap(0), snap(25))
    calls = []

    def build(anchor):
        calls.append(anchor)
        return len(calls)

    cache = SharedResults()
    for anchor in (gone, gone[:2], gone[1], kept):  # gone[:2]: an older tuple of the same history
        cache(build, anchor)
    assert len(calls) == 4
    assert cache.forget(gone) == 3
    assert cache(build, kept) == 4 and len(calls) == 4  # another run's result: still cached
    assert cache(build, gone) == 5 and len(calls) == 5  # the dropped run's: built again


def test_a_link_to_a_conv_network_opens_one_and_the_page_says_channel():
    at = open_page({"preset": "ioffe", "arch": "conv", "widths": "4,4", **SHORT})
    assert not at.exception and at.query_params["arch"] == "conv"
    run = the_run()
    assert run.config.architecture == "conv" and run.state in ("running", "finished"), run.error
    assert len(run.history.latest().variants["bn"].layers) == 2  # two conv layers of 4 channels, probed
    unit = at.selectbox(key="unit")
    assert unit.format_func(-1) == "all channels" and unit.format_func(2) == "channel 2"
    assert [s.value for s in at.get("segmented_control") if s.key == "arch"] == ["conv"]


@pytest.mark.slow
def test_a_claim_this_run_cannot_measure_offers_the_preset_that_can():
    at = open_page({"preset": "ioffe", "panel": "evidence", **SHORT})
    assert not at.exception, at.exception
    offers = {b.key: b for b in at.button if b.key and b.key.startswith("preset_")}
    # ioffe trains none and bn only: C7 needs BN on both sides of the activation, C8 noisy BN
    assert {"preset_C7", "preset_C8"} <= offers.keys() and "preset_C1" not in offers
    assert "placement" in offers["preset_C7"].label and "santurkar" in offers["preset_C8"].label
    offers["preset_C8"].click().run()
    assert not at.exception, at.exception
    assert at.session_state["preset"] == "santurkar" and at.session_state["panel"] == "stability"
    assert at.query_params["preset"] == "santurkar"
