"""The live view under the transport bar: status, step, layer and unit, and the selected panel's charts.

It runs as a fragment that refreshes while the run trains. A tab's first frame draws the panel's leading
chart alone, before the widgets around it (:func:`first_frame`): the browser then compiles plotly.js and draws
Figure 1 without the rest of the page competing for its main thread. The browser itself asks for the rest of
the page, by the first frame's timed reruns (:func:`rest_of_page_due`): a browser timer fires late only when the
page's main thread was busy, so on a loaded machine the rest waits for plotly.js's compilation instead of
arriving before it and being drawn ahead of the chart.
"""

from __future__ import annotations

import time

import streamlit as st

from bnviz import config as C
from bnviz.present import views
from bnviz.table.follow import follow
from bnviz.table.parts import NoRun

from . import classroom, panels, state
from .runtime import lease, registry

# The first frame's timed reruns, in seconds of the browser's clock: about what an idle browser needs, after the
# first frame fetches plotly.js, to compile it and draw the chart (benchmarks/README.md). 0: the whole page at
# once (AppTest: no browser). A rerun more than LATE_SECONDS behind its time found the browser busy.
FIRST_FRAME_SECONDS = 1.0
LATE_SECONDS = 0.15
AWAIT_FOLDER_SECONDS = 2.0  # how often a page pointed at a folder that holds no run yet looks again


def first_frame() -> bool:
    """True during a tab's first frame, which draws only the leading chart (and the lesson banner)."""
    if st.session_state.get("_framed"):
        return False
    st.session_state.setdefault("_first_frame_at", time.monotonic())
    return True


def hold_training(run, lease) -> bool:
    """During a first frame, hold a run that this tab alone watches after its step 0: training threads share
    the server's GIL with the page's file downloads (plotly.js, 4.7 MB), and the page comes first."""
    if run.state == "running" and lease.sole_viewer():
        run.pause()
        return True
    return False


def end_first_frame(run, held: bool) -> None:
    """End the first frame's script run here: the whole page comes when a timed rerun of the frame finds it due
    (:func:`rest_of_page_due`), or at once without a browser to wait for."""
    if held:
        st.session_state["_held"] = run  # resumed by the whole page (release_training)
    if FIRST_FRAME_SECONDS <= 0:
        st.session_state["_framed"] = True
        st.rerun()
    st.session_state["_frame_ticks"] = 0
    st.stop()


def rest_of_page_due() -> bool:
    """On a first frame's timed rerun: True when the whole page should come now. The browser fires its timer
    late only if its main thread was busy: compiling plotly.js, which the chart's drawing follows as a task of
    its own. So the page comes with the rerun after the first late one (the chart is drawn by then), and with
    the third in any case."""
    ticks = st.session_state.get("_frame_ticks")
    if ticks is None:
        return False
    ticks += 1
    was_late = st.session_state.get("_frame_late", False)
    late = time.monotonic() - st.session_state["_first_frame_at"] > ticks * FIRST_FRAME_SECONDS + LATE_SECONDS
    if was_late or ticks >= 3:
        del st.session_state["_frame_ticks"]
        st.session_state["_framed"] = True
        return True
    st.session_state["_frame_ticks"], st.session_state["_frame_late"] = ticks, late
    return False


def release_training() -> None:
    """On the whole page's run: the training that the first frame held goes on."""
    held = st.session_state.pop("_held", None)
    if held is not None:
        held.resume()


def keep(name: str, value) -> None:
    """Give widget ``name`` its remembered value before it is drawn (Streamlit forgets the state of widgets
    that a run did not draw; the remembered copy under ``_name`` survives)."""
    st.session_state["_" + name] = value
    st.session_state[name] = value


def remember(name: str) -> None:
    """on_change callback: remember what the viewer chose."""
    st.session_state["_" + name] = st.session_state[name]


def remember_view(name: str, key: str) -> None:
    """on_change callback of the Live switch or the step slider (``name``), drawn under widget ``key``. A value
    from a switch or slider the page has replaced since (:func:`state.set_follow`), or from the slider while
    it is disabled (Live), is a refresh sending back what the browser still showed, not a viewer's choice."""
    s = st.session_state
    if key != state.view_key(name) or (name == "scrub" and s.get("_follow", True)):
        return
    s["_" + name] = s[key]
    if name == "scrub":
        state.set_follow(False)  # picking a step means leaving live mode


def selected_panel() -> str:
    """The panel selector's value, or the last valid one: under heavy load a rerun can read the selector before
    Streamlit has restored its value, and get None."""
    panel = st.session_state.get("panel")
    return panel if panel in C.PANELS else st.session_state.get("_panel", "over-time")


def refresh_interval(run, viewers: int) -> float:
    """Seconds between this tab's refreshes (see :func:`state.refresh_interval`)."""
    return state.refresh_interval(viewers, queued=run.state == "ready",  # a queued run: check back slowly
                                  refreshes=st.session_state.get("_refreshes", 0))  # slower while loading


def _selection(cfg, steps: list[int]) -> tuple[bool, int, int, int]:
    """Live mode, shown step, layer and unit: the remembered choices, made valid for this run."""
    follow = st.session_state.get("_follow", True)
    chosen = st.session_state.get("_scrub")
    scrub = steps[-1] if follow or chosen not in steps else chosen
    layers = range(len(cfg.widths))
    layer = st.session_state.get("_layer", st.session_state.get("layer"))
    layer = layer if layer in layers else layers[-1]  # default: the last layer, as the paper's Figure 1
    unit = st.session_state.get("_unit", st.session_state.get("unit"))
    unit = unit if unit in (-1, *cfg.tracked_units(layer)) else -1
    return follow, scrub, layer, unit


def _status_line(run, cfg) -> str:
    """Where the run is: its step and state, or its place in the training queue; a followed run's step and
    whether its writer is still at it."""
    if following():
        return f"step **{run.step:,}** · {'live' if run.state == 'running' else run.state}"
    queued = registry().queue_position(cfg)
    if queued:
        return f"**queued** (position {queued}): trainings are capped at {registry().max_running} at once"
    return f"step **{run.step:,}** / {cfg.steps:,} · {run.state}"


def _layer_label(cfg, layer: int) -> str:
    """The layer picker's label: "layer 2/3", or a watched module's path."""
    return cfg.layer_name(layer) if cfg.watched is not None else f"layer {layer + 1}/{len(cfg.widths)}"


def _status_row(run, cfg, steps: list[int], selection) -> None:
    """Status line, Live switch, step slider, layer and unit pickers."""
    follow, scrub, layer, unit = selection
    status = {tok: s for tok, s in run.status.items() if s.state != "training"}
    line = _status_line(run, cfg)
    # "layer 12/25" needs more room than "layer 2/3", a module path ("layer3.1.downsample.1") more still
    widths = ([2.0, 1.0, 2.2, 2.6, 1.6] if cfg.watched is not None else
              [2.5, 1.0, 2.8, 1.7, 1.8] if len(cfg.widths) >= 10 else [2.5, 1.0, 3.1, 1.4, 1.8])
    c_status, c_live, c_scrub, c_layer, c_unit = st.columns(widths, vertical_alignment="center")
    with c_status.container(key="status"):
        st.markdown(line + "".join(f" · ⚠️ {s.message}" for s in status.values()) +
                    (f" · ❌ {state.as_text(run.error) if following() else run.error}" if run.error else ""))
    for note in (n for n in run.notes if n not in {s.message for s in status.values()}):
        # documented clamps (e.g. a batch larger than the data), in the run's words; a followed folder's skipped
        # parts, whose file names are shown as text
        st.caption(f"ℹ️ {state.as_text(note) if following() else note}")
    live_key, scrub_key = state.view_key("follow"), state.view_key("scrub")
    st.session_state[live_key], st.session_state[scrub_key] = follow, scrub
    c_live.toggle("Live", key=live_key, on_change=remember_view, args=("follow", live_key))
    c_scrub.select_slider("Show step", options=steps, key=scrub_key, on_change=remember_view,
                          args=("scrub", scrub_key),
                          disabled=follow or len(steps) < 2, label_visibility="collapsed",
                          format_func=lambda s: f"step {s:,}")
    layers = list(range(len(cfg.widths)))
    keep("layer", layer)
    c_layer.selectbox("Layer", layers, key="layer", on_change=remember, args=("layer",),
                      format_func=lambda i: _layer_label(cfg, i), label_visibility="collapsed",
                      help="Normalization layer of the watched model, in the order it runs them"
                      if cfg.watched is not None else "Hidden layer, or conv layer (1 = closest to the input)")
    keep("unit", unit)
    unit_name = views.unit_noun(cfg)  # a conv layer's unit is a channel
    c_unit.selectbox("Unit", [-1, *cfg.tracked_units(layer)], key="unit", on_change=remember, args=("unit",),
                     format_func=lambda u: f"all {unit_name}s" if u == -1 else f"{unit_name} {u}",
                     label_visibility="collapsed", help=f"One {unit_name}, or all {unit_name}s of the layer pooled")


def following() -> bool:
    """This page follows a run folder that another process writes (app.py's ``--run DIR``): no training here."""
    return bool(st.session_state.get("_following"))


def followed_run(folder: str):
    """The FollowedRun of ``folder``. While the folder holds no run: its message in words, a look again every
    AWAIT_FOLDER_SECONDS, and the script run ends here."""
    try:
        return follow(folder)  # one per folder, shared by every session
    except NoRun as exc:
        st.error(state.as_text(str(exc)), icon="🚫")
        await_folder(folder)
        st.stop()


@st.fragment(run_every=AWAIT_FOLDER_SECONDS)
def await_folder(folder: str) -> None:
    """While the followed folder holds no run: look again every few seconds, and show the page once it does."""
    try:
        follow(folder)
    except NoRun:
        return
    st.rerun(scope="app")


def live_view(run, cfg, replaying: bool, report_view: dict, refresh: float) -> None:
    """Status, step scrubber, layer and unit, and the selected panel, drawn from the run's snapshots.
    ``replaying``: the run is not trained by this page (a replayed file, or a followed folder)."""
    if st.session_state.pop("_goto", False) or rest_of_page_due():
        st.rerun(scope="app")
    opening = first_frame()
    if following():
        run.refresh()  # the parts written since (FollowedRun reads the folder at most once a second)
        cfg = run.config  # its steps: the last step written
    elif not opening:
        lease().touch()
        registry().tick()
    if not opening:
        st.session_state["_refreshes"] = st.session_state.get("_refreshes", 0) + 1
        viewers = 1 if following() else registry().viewers(cfg)
        if st.session_state["_live"] and refresh_interval(run, viewers) != refresh:
            st.rerun(scope="app")  # the audience changed enough, or the queued run started: a new refresh timer
    if st.session_state.get("_awaited") != cfg and not following():  # once per configuration trained here
        st.session_state["_awaited"] = cfg
        panels.await_first_snapshot(run)  # so that its first chart already shows the run
    snaps = run.history.snapshots()
    steps = [s.step for s in snaps] or [0]
    held = state.pinned_step(snaps)
    if held is not None and held not in steps:  # a revealed answer's step, thinned out of the History since
        steps = sorted([*steps, held])
    selection = _selection(cfg, steps)
    follow, scrub, layer, unit = selection
    drawn = state.drawn_snapshots(snaps, follow, scrub)
    upto = drawn if not drawn or drawn[-1].step == scrub else tuple(s for s in drawn if s.step <= scrub)
    # A lesson leads with its banner and the step's chart right under it; the status row follows the charts.
    lesson = classroom.lesson_open()
    row = None if lesson else st.container()  # filled after the charts on a first frame, in place above them
    if not replaying:
        state.sync_query(cfg)
    classroom.banner(upto, cfg)
    panel = selected_panel()  # the fragment reruns alone: the value may have been lost since the full run
    if not snaps:  # the panel's frame already, empty, while the run starts up (or waits in the queue)
        panels.waiting(panel, cfg, selection[2], selection[3])
    elif opening:
        panels.lead(panel, drawn, drawn[-1], cfg, layer, unit)
    else:
        shown = upto[-1]
        report_view.update(panel=panel, layer=layer, unit=unit, step=None if follow else shown.step,
                           link=classroom.share_link())
        panels.RENDER[panel](drawn, shown, cfg, layer, unit)
    if opening:
        return
    with row if row is not None else st.container():
        _status_row(run, cfg, steps, selection)
    training = run.state in ("running", "ready") and not st.session_state["view_paused"]
    if not training and st.session_state.get("_live"):
        st.rerun(scope="app")  # training ended: redraw once without the timer
