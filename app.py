"""bnviz: watch batch normalization train, live. Run with `streamlit run app.py`.

The page reads the state (link or widgets), asks the shared registry for the run of that configuration,
and draws the selected panel from the run's history in a fragment that refreshes while it trains.
"""

from __future__ import annotations

import streamlit as st

from bnviz import config as C
from bnviz.ui import controls, panels, state
from bnviz.ui.runtime import lease, registry

REFRESH_SECONDS = 0.5  # charts refresh twice a second while training

st.set_page_config(page_title="bnviz — batch norm, live", page_icon="📊", layout="wide",
                   initial_sidebar_state="expanded")


state.init_from_query()
st.session_state.setdefault("speed", state.DEFAULT_SPEED)
st.session_state.setdefault("view_paused", False)

controls.sidebar()
cfg, problems = state.config_from_widgets()
run = lease().view(cfg)
state.sync_query(cfg)

st.markdown("#### Does batch norm fix the distribution of a layer's inputs — if γ and β change it again?")
for w in st.session_state.get("warnings", []):
    st.warning(f"Link: {w}", icon="⚠️")
for p in problems:
    st.error(f"Setting not applied: {p}", icon="🚫")

controls.transport(run, lease())

c_panel, c_layer, c_unit = st.columns([6, 1.2, 1.3], vertical_alignment="bottom")
c_panel.segmented_control("Panel", list(C.PANELS), key="panel", format_func=C.PANELS.get, required=True,
                          label_visibility="collapsed")
layers = list(range(len(cfg.widths)))
if st.session_state.get("layer") not in layers:
    st.session_state["layer"] = layers[-1]  # the last hidden layer: the one in the paper's Figure 1
c_layer.selectbox("Layer", layers, key="layer", format_func=lambda i: f"layer {i + 1} of {len(layers)}")
units = [-1, *cfg.tracked_units(st.session_state["layer"])]
if st.session_state.get("unit") not in units:
    st.session_state["unit"] = -1
c_unit.selectbox("Unit", units, key="unit", format_func=lambda u: "all units" if u == -1 else f"unit {u}")


def live_view() -> None:
    """Status, step scrubber and the selected panel, drawn from the run's snapshots."""
    if st.session_state.pop("_goto", False):
        st.rerun(scope="app")
    registry().tick()
    snaps = run.history.snapshots()
    status = {tok: s for tok, s in run.status.items() if s.state != "training"}
    queued = registry().queue_position(cfg)
    line = f"step **{run.step:,}** / {cfg.steps:,} · {run.state}"
    if queued:
        line = f"**queued** (position {queued}): trainings are capped at {registry().max_running} at once"
    with st.container(key="status"):
        st.markdown(line + "".join(f" · ⚠️ {s.message}" for s in status.values()) +
                    (f" · ❌ {run.error}" if run.error else ""))
    if not snaps:
        st.info("Waiting for the first snapshot…")
        return
    steps = [s.step for s in snaps]
    st.session_state.setdefault("follow", True)
    c1, c2 = st.columns([1, 7], vertical_alignment="center")
    follow = c1.toggle("Follow live", key="follow", help="Show the newest snapshot; turn off to scrub back")
    if follow or st.session_state.get("scrub") not in steps:
        st.session_state["scrub"] = steps[-1]
    c2.select_slider("Show step", options=steps, key="scrub", disabled=follow, label_visibility="collapsed")
    shown = snaps[steps.index(st.session_state["scrub"])]
    panels.RENDER[st.session_state["panel"]](snaps, shown, cfg, st.session_state["layer"],
                                             st.session_state["unit"])
    training = run.state in ("running", "ready") and not st.session_state["view_paused"]
    if not training and st.session_state.get("_live"):
        st.rerun(scope="app")  # training ended: redraw once without the timer


is_live = run.state in ("running", "ready") and not st.session_state["view_paused"]
st.session_state["_live"] = is_live
st.fragment(run_every=REFRESH_SECONDS if is_live else None)(live_view)()
