"""bnviz: watch batch normalization train, live. Run with `streamlit run app.py`.

The page reads the state (link or widgets), asks the shared registry for the run of that configuration,
and draws the selected panel from the run's history in a fragment that refreshes while it trains.
"""

from __future__ import annotations

import streamlit as st

from bnviz import config as C
from bnviz import figures
from bnviz.ui import classroom, controls, panels, state
from bnviz.ui.runtime import lease, registry

HEARTBEAT_SECONDS = 30  # a paused page still says it is open (registry.HEARTBEAT_TIMEOUT is 300 s)

st.set_page_config(page_title="bnviz — batch norm, live", page_icon="📊", layout="wide",
                   initial_sidebar_state="expanded")


panels.preload_charts()  # first: the browser fetches and compiles plotly.js while the rest arrives
state.init_from_query()
st.session_state.setdefault("speed", state.DEFAULT_SPEED)
st.session_state.setdefault("view_paused", False)

controls.sidebar()
if st.session_state.get("present"):
    st.markdown(classroom.PRESENTER_CSS, unsafe_allow_html=True)  # our own CSS, no user text
cfg, problems = state.config_from_widgets()
replaying = st.session_state.get("replay")  # a ReplayedRun: a file loaded by this tab, shown instead
if replaying is None:
    run = lease().view(cfg)
    state.sync_query(cfg)
else:
    lease().close()  # this tab no longer watches a live training: let it go (or on, for other viewers)
    run, cfg = replaying, replaying.config
classroom.sidebar()

# Less empty space above the page, so a 1280x800 projector shows controls and a full chart together.
st.markdown("<style>.block-container{padding-top:2.2rem;padding-bottom:1rem}</style>", unsafe_allow_html=True)
st.markdown("##### bnviz · Does batch norm fix the distribution of a layer's inputs — if γ and β change it "
            "again?")
for w in st.session_state.get("warnings", []):
    st.warning(f"Link: {state.as_text(w)}", icon="⚠️")  # they quote what the visitor typed: shown as text
for p in problems:
    st.error(f"Setting not applied: {state.as_text(p)}", icon="🚫")  # may quote what the visitor typed
if "replay_error" in st.session_state:
    st.error(state.as_text(st.session_state["replay_error"]), icon="🚫")

report_view = st.session_state.setdefault("_report_view", {})  # what the report button reproduces
controls.export(run, report_view)
if replaying is not None:
    controls.replay_bar(run)
else:
    status_slot = controls.transport(run, lease())
viewers = registry().viewers(cfg) if replaying is None else 1


def refresh_interval(viewers: int) -> float:
    return state.refresh_interval(viewers, queued=run.state == "ready",  # a queued run: check back slowly
                                  refreshes=st.session_state.get("_refreshes", 0))  # slower while loading


def selected_panel() -> str:
    """The panel selector's value, or the last valid one: under heavy load it once came back None."""
    panel = st.session_state.get("panel")
    return panel if panel in C.PANELS else st.session_state.get("_panel", "over-time")


refresh = refresh_interval(viewers)
if viewers > 1:
    status_slot.caption(f"Shared run: {viewers} viewers watch this link. Pause freezes your view; training "
                        f"goes on for the others. Charts refresh every {refresh:g} s.")

st.session_state["panel"] = st.session_state["_panel"] = selected_panel()
st.segmented_control("Panel", list(C.PANELS), key="panel", format_func=C.PANELS.get, required=True,
                     label_visibility="collapsed")


def keep(name: str, value) -> None:
    """Give widget ``name`` its remembered value before it is drawn (Streamlit forgets the state of widgets
    that a run did not draw; the remembered copy under ``_name`` survives)."""
    st.session_state["_" + name] = value
    st.session_state[name] = value


def remember(name: str) -> None:
    """on_change callback: remember what the viewer chose."""
    st.session_state["_" + name] = st.session_state[name]
    if name == "scrub":
        st.session_state["_follow"] = False  # picking a step means leaving live mode


def live_view() -> None:
    """Status, step scrubber, layer and unit, and the selected panel, drawn from the run's snapshots."""
    if st.session_state.pop("_goto", False):
        st.rerun(scope="app")
    st.session_state["_refreshes"] = st.session_state.get("_refreshes", 0) + 1
    lease().touch()
    registry().tick()
    if st.session_state["_live"] and refresh_interval(registry().viewers(cfg)) != refresh:
        st.rerun(scope="app")  # the audience changed enough, or the queued run started: a new refresh timer
    if st.session_state.get("_awaited") != cfg:  # once per configuration shown
        st.session_state["_awaited"] = cfg
        panels.await_first_snapshot(run)  # so that its first chart already shows the run
    snaps = run.history.snapshots()
    steps = [s.step for s in snaps] or [0]
    status = {tok: s for tok, s in run.status.items() if s.state != "training"}
    queued = registry().queue_position(cfg)
    line = f"step **{run.step:,}** / {cfg.steps:,} · {run.state}"
    if queued:
        line = f"**queued** (position {queued}): trainings are capped at {registry().max_running} at once"
    c_status, c_live, c_scrub, c_layer, c_unit = st.columns([2.5, 1.0, 3.4, 1.4, 1.5], vertical_alignment="center")
    with c_status.container(key="status"):
        st.markdown(line + "".join(f" · ⚠️ {s.message}" for s in status.values()) +
                    (f" · ❌ {run.error}" if run.error else ""))
    for note in (n for n in run.notes if n not in {s.message for s in status.values()}):
        st.caption(f"ℹ️ {note}")  # documented clamps (e.g. a batch larger than the data), in the run's words
    keep("follow", st.session_state.get("_follow", True))
    follow = c_live.toggle("Live", key="follow", on_change=remember, args=("follow",))
    chosen = st.session_state.get("_scrub")
    keep("scrub", steps[-1] if follow or chosen not in steps else chosen)
    c_scrub.select_slider("Show step", options=steps, key="scrub", on_change=remember, args=("scrub",),
                          disabled=follow or len(steps) < 2, label_visibility="collapsed",
                          format_func=lambda s: f"step {s:,}")
    layers = list(range(len(cfg.widths)))
    layer = st.session_state.get("_layer", st.session_state.get("layer"))
    keep("layer", layer if layer in layers else layers[-1])  # default: the last layer, as the paper's Figure 1
    c_layer.selectbox("Layer", layers, key="layer", on_change=remember, args=("layer",),
                      format_func=lambda i: f"layer {i + 1}/{len(layers)}", label_visibility="collapsed",
                      help="Hidden layer (1 = closest to the input)")
    units = [-1, *cfg.tracked_units(st.session_state["layer"])]
    unit = st.session_state.get("_unit", st.session_state.get("unit"))
    keep("unit", unit if unit in units else -1)
    c_unit.selectbox("Unit", units, key="unit", on_change=remember, args=("unit",),
                     format_func=lambda u: "all units" if u == -1 else f"unit {u}", label_visibility="collapsed",
                     help="One unit, or all units of the layer pooled")
    if replaying is None:
        state.sync_query(cfg)
    classroom.banner(snaps, cfg)
    if not snaps:  # an empty chart already: the browser starts loading plotly while the run starts up
        panels.chart(figures.training((), cfg.variants), "fig_waiting")
        return
    shown = snaps[steps.index(st.session_state["scrub"])]
    panel = selected_panel()  # the fragment reruns alone: the value may have been lost since the full run
    report_view.update(panel=panel, layer=st.session_state["layer"],
                       unit=st.session_state["unit"], step=None if follow else shown.step,
                       link=classroom.share_link())
    panels.RENDER[panel](snaps, shown, cfg, st.session_state["layer"],
                                             st.session_state["unit"])
    training = run.state in ("running", "ready") and not st.session_state["view_paused"]
    if not training and st.session_state.get("_live"):
        st.rerun(scope="app")  # training ended: redraw once without the timer


@st.fragment(run_every=HEARTBEAT_SECONDS)
def heartbeat() -> None:
    """A sign of life while nothing else refreshes (paused view): the registry's fallback for a lost release."""
    lease().touch()


heartbeat()
is_live = run.state in ("running", "ready") and not st.session_state["view_paused"]
st.session_state["_live"] = is_live
st.fragment(run_every=refresh if is_live else None)(live_view)()
