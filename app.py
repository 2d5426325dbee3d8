"""bnviz: watch batch normalization train, live. Run with `streamlit run app.py`.

The page reads the state (link or widgets), asks the shared registry for the run of that configuration,
and draws the selected panel from the run's history in a fragment that refreshes while it trains. A tab's
first run draws the leading chart alone, then the whole page (bnviz.ui.live).

`streamlit run app.py -- --run DIR` (or env BNVIZ_RUN=DIR; `python -m bnviz view DIR` starts it) follows a run
folder that another process writes, a model watched with bnviz.watch: the page then shows that run only, with
no training, preset or lesson of its own.
"""

from __future__ import annotations

import streamlit as st

from bnviz import config as C
from bnviz.table.replay import StoredRun
from bnviz.ui import classroom, controls, live, panels, runtime, state
from bnviz.ui.runtime import lease, registry

HEARTBEAT_SECONDS = 30  # a paused page still says it is open (registry.HEARTBEAT_TIMEOUT is 300 s)

st.set_page_config(page_title="bnviz — batch norm, live", page_icon="📊", layout="wide",
                   initial_sidebar_state="expanded")


panels.preload_charts()  # first: the browser fetches and compiles plotly.js while the rest arrives
state.init_from_query()
folder = runtime.followed_folder()
st.session_state["_following"] = folder is not None
if folder is not None:
    st.session_state["lesson"] = None  # lessons walk through bnviz's presets, which a followed page does not train
st.session_state.setdefault("speed", state.DEFAULT_SPEED)
st.session_state.setdefault("view_paused", False)
opening = live.first_frame()

if not opening and folder is None:
    controls.sidebar()
classroom.styles(st.session_state.get("present"))
cfg, problems = state.config_from_widgets()
replaying = st.session_state.get("replay")  # a ReplayedRun: a file loaded by this tab, shown instead
if folder is not None:
    replaying = live.followed_run(folder)  # a FollowedRun: shown like a replay that grows
    problems = []
if replaying is None:
    with st.spinner("Opening the run…"):  # shown after half a second: a stored run's table takes a few to read
        run = lease().view(cfg)
    state.sync_query(cfg)
else:
    if folder is None:
        lease().close()  # this tab no longer watches a live training: let it go (or on, for other viewers)
    run, cfg = replaying, replaying.config

if not classroom.lesson_open():  # a lesson's heading takes the title's place
    st.markdown("##### bnviz · Does batch norm fix the distribution of a layer's inputs — if γ and β change it "
                "again?")
for w in st.session_state.get("warnings", []) if folder is None else []:  # the link's preset is not shown
    st.warning(f"Link: {state.as_text(w)}", icon="⚠️")  # they quote what the visitor typed: shown as text
for p in problems:
    st.error(f"Setting not applied: {state.as_text(p)}", icon="🚫")  # may quote what the visitor typed
if "replay_error" in st.session_state:
    st.error(state.as_text(st.session_state["replay_error"]), icon="🚫")
bar, body = st.container(), st.container()  # the transport bar above the charts, filled after a first frame
if classroom.lesson_open():
    body, bar = bar, body  # a lesson leads with its question and chart; the transport bar follows them

report_view = st.session_state.setdefault("_report_view", {})  # what the report button reproduces
if opening:
    held = replaying is None and live.hold_training(run, lease())
    with body:
        st.fragment(live.live_view, run_every=live.FIRST_FRAME_SECONDS or None)(run, cfg, replaying is not None,
                                                                               report_view, 0.0)
    live.end_first_frame(run, held)
live.release_training()

classroom.sidebar(lessons_shown=folder is None)
controls.export(run, report_view, replays=folder is None)
with bar:
    if folder is not None:
        controls.follow_bar(run, folder)
    elif replaying is not None:
        controls.replay_bar(run)
    else:
        status_slot = controls.transport(run, lease())
    viewers = registry().viewers(cfg) if replaying is None else 1
    refresh = live.refresh_interval(run, viewers)
    if viewers > 1 and not isinstance(run, StoredRun):  # a stored run has no training to share
        status_slot.caption(f"Shared run: {viewers} viewers watch this link. Pause freezes your view; training "
                            f"goes on for the others. Charts refresh every {refresh:g} s.")
    st.session_state["panel"] = st.session_state["_panel"] = live.selected_panel()
    st.segmented_control("Panel", list(C.PANELS), key="panel", format_func=C.PANELS.__getitem__, required=True,
                         label_visibility="collapsed", on_change=state.show_panel)


@st.fragment(run_every=HEARTBEAT_SECONDS)
def heartbeat() -> None:
    """A sign of life while nothing else refreshes (paused view): the registry's fallback for a lost release."""
    lease().touch()


if folder is None:
    heartbeat()
is_live = run.state in ("running", "ready") and not st.session_state["view_paused"]
st.session_state["_live"] = is_live
with body:
    st.fragment(run_every=refresh if is_live else None)(live.live_view)(run, cfg, replaying is not None,
                                                                        report_view, refresh)
