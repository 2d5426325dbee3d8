"""The widgets: the experiment settings in the sidebar, the transport bar above the charts."""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import urlencode

import streamlit as st

from bnviz import config as C
from bnviz import owndata, urlstate
from bnviz.table import replay as replay_mod
from bnviz.table import upload
from bnviz.table.schema import TABLE_COLUMNS
from bnviz.training.registry import Lease
from bnviz.training.run import Run

from . import seeds, state

_L = C.LIMITS
_NONE = SimpleNamespace(step=-1)


def sidebar() -> None:
    """Preset and every setting of the experiment; each widget's key is its share-link name."""
    with st.sidebar:
        st.selectbox("Preset", list(C.PRESETS), key="preset", on_change=state.apply_preset,
                     help="Each preset is a documented experiment; choosing one resets the settings below.")
        if not state.answer_hidden():  # what the preset shows is a lesson's answer
            st.caption(C.PRESETS[st.session_state["preset"]].shows)
        st.selectbox("Dataset", list(C.DATASETS), key="dataset", help=C.DATASETS[st.session_state["dataset"]])
        own_data()
        st.segmented_control("Network", list(C.ARCHITECTURES), key="arch", required=True,
                             format_func={"mlp": "fully connected", "conv": "convolutional"}.__getitem__,
                             help=" / ".join(f"{k}: {v}" for k, v in C.ARCHITECTURES.items()))
        features = st.session_state["dataset"] in C.SYNTHETIC_INPUTS
        c1, c2 = st.columns([3, 2])
        c1.selectbox("Input distribution", list(C.INPUT_DISTS), key="dist", disabled=not features,
                     help="Feature distribution of the synthetic inputs (features, regression): "
                          + C.INPUT_DISTS[st.session_state["dist"]])
        c2.number_input("Inputs", *_L["n_features"], key="features", step=1, disabled=not features)
        c1, c2 = st.columns(2)
        c1.selectbox("Activation", list(C.ACTIVATIONS), key="activation")
        if st.session_state["arch"] == "conv":
            c2.text_input("Channels", key="widths", help="Comma-separated channels per 3x3 conv layer, e.g. 16,32,32")
        else:
            c2.text_input("Hidden widths", key="widths",
                          help="Comma-separated units per hidden layer, e.g. 100,100,100")
        st.multiselect("Variants (trained side by side)", state.VARIANT_OPTIONS, key="variants",
                       help="; ".join(f"{k}: {v}" for k, v in C.VARIANTS.items()) +
                       ". A suffix @before/@after overrides the placement.")
        st.radio("Normalization placement", list(C.PLACEMENTS), key="placement", horizontal=True,
                 help=" / ".join(f"{k}: {v}" for k, v in C.PLACEMENTS.items()))
        c1, c2 = st.columns(2)
        c1.number_input("Batch size", *_L["batch"], key="batch", step=1)
        c2.number_input("Learning rate", *_L["lr"], key="lr", format="%.4g", step=0.05)
        c1, c2 = st.columns(2)
        c1.selectbox("Optimizer", list(C.OPTIMIZERS), key="optimizer")
        c2.number_input("Steps", *_L["steps"], key="steps", step=500)
        st.selectbox("Initialization", list(C.INITS), key="init",
                     help="How the initial weights are drawn (the same for every variant): "
                          + C.INITS[st.session_state["init"]])
        st.number_input("Seed", *_L["seed"], key="seed", step=1,
                        help="Initial weights, data, batch order and noise all follow the seed: the same link "
                        "gives the same run.")


def own_data() -> None:
    """Your own data: the CSV uploader, what the file holds, and the target column picker."""
    s = st.session_state
    n = s.get("_csv_n", 0)
    st.file_uploader("Your own data (CSV)", type=["csv"], key=f"csv_{n}", on_change=_load_csv, args=(f"csv_{n}",),
                     max_upload_size=owndata.csvfile.MAX_BYTES >> 20,
                     help=f"Numeric feature columns and one target column (by default one named label or target, "
                     f"else the last): at most {owndata.csvfile.MAX_BYTES >> 20} MB, "
                     f"{owndata.csvfile.MAX_ROWS:,} rows and {owndata.csvfile.MAX_COLUMNS} columns. At most "
                     f"{owndata.csvfile.MAX_CLASSES} different whole numbers or texts in the target make a "
                     "classification, other numbers a regression. It is kept on this server under its content hash, "
                     "which the link names.")
    if "csv_error" in s:
        st.error(state.as_text(s["csv_error"]), icon="🚫")
    if s.get("dataset") != C.OWN_DATA or not s.get("data"):
        return
    try:
        info = owndata.default_store().info(s["data"], "")
    except (owndata.CsvError, owndata.MissingData):
        return  # config_from_widgets says why
    if s.get("target") not in info.columns:
        s["target"] = info.default_target
    st.selectbox("Target column", info.columns, key="target",
                 help="The column to predict; the others are the inputs (standardized with the training split's "
                      "mean and std)")
    try:
        chosen = owndata.default_store().info(s["data"], s["target"])
    except owndata.CsvError:
        return  # the page's error says why this column cannot be the target
    what = (f"a classification of {chosen.n_outputs} classes" if chosen.task == "classification"
            else "a regression (the target standardized; scored by R²)")
    st.caption(state.as_text(f"{chosen.name}: {chosen.rows:,} rows, {chosen.n_inputs} inputs, {what}."))


def _load_csv(key: str) -> None:
    """on_change of the data uploader: check the file (as data only), keep it, and train on it; a bad file gets
    one message and changes nothing else."""
    s = st.session_state
    file = s.get(key)
    if file is None:
        return
    s.pop("csv_error", None)
    data, name = file.getvalue(), file.name
    try:
        frame = owndata.read(data, name)
        if frame.columns == TABLE_COLUMNS:
            raise owndata.CsvError(f"{owndata.csvfile.show(name, 40)} is a table recorded by bnviz, not data to "
                                   "train on: load it under Replay a recorded run")
        prepared = owndata.prepare(frame)
        h = owndata.default_store().put(data, name)
    except owndata.CsvError as exc:
        s["csv_error"] = f"Data file not loaded: {exc}"
        s["_csv_n"] = s.get("_csv_n", 0) + 1  # an empty uploader for the next try
        return
    s.update({"dataset": C.OWN_DATA, "data": h, "target": prepared.info.default_target})


def _owner_action(lease: Lease, action) -> None:
    if lease.sole_viewer():
        action()


def stored_bar(lease: Lease):
    """In place of the transport buttons for a run opened from the store of finished runs: that nothing trains,
    and the way to watch it train; returns the slot beside them (for the status line)."""
    def train_again() -> None:
        st.session_state["view_paused"] = False
        lease.restart()

    c1, c2, c3 = st.columns([6.2, 2.2, 1.4], vertical_alignment="center")
    c1.markdown("**Finished** · opened from the store of finished runs, no training needed")
    c2.button("Train it again live", key="train_again", icon=":material/replay:", on_click=train_again,
              disabled=not lease.sole_viewer(), width="stretch",
              help="Train this run from step 0 here, to watch it learn: the same run, since its settings decide it "
              "(offered while nobody else watches this link)")
    return c3


def transport(run: Run | replay_mod.StoredRun, lease: Lease):
    """Play, pause, single step, reset and speed; returns the slot beside them (for the status line). A run
    from the store of finished runs gets :func:`stored_bar` instead."""
    if isinstance(run, replay_mod.StoredRun):
        return stored_bar(lease)
    shared = not lease.sole_viewer()
    view_paused = st.session_state.get("view_paused", False)

    def play() -> None:
        st.session_state["view_paused"] = False
        _owner_action(lease, run.resume)

    def pause() -> None:
        st.session_state["view_paused"] = True
        _owner_action(lease, run.pause)

    def step() -> None:
        st.session_state["view_paused"] = True
        if lease.sole_viewer():
            run.pause()
            target = min(run.step + run.config.snapshot_every, run.config.steps)
            run.step_once(target - run.step)
            # The view is paused (no timer): wait briefly so this rerun already shows the new snapshot.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and ((run.history.latest() or _NONE).step < target) and run.alive:
                time.sleep(0.02)

    def reset() -> None:
        st.session_state["view_paused"] = False
        lease.restart()

    def speed() -> None:
        _owner_action(lease, lambda: setattr(run, "steps_per_second", state.SPEEDS[st.session_state["speed"]]))

    cols = st.columns([1.3, 1.45, 1.3, 1.4, 2, 2.6], vertical_alignment="center")
    cols[0].button("Play", key="play", icon=":material/play_arrow:", on_click=play, width="stretch",
                   disabled=not view_paused and run.state == "running")
    cols[1].button("Pause", key="pause", icon=":material/pause:", on_click=pause, disabled=view_paused,
                   width="stretch")
    cols[2].button("Step", key="step", icon=":material/skip_next:", on_click=step, disabled=shared,
                   help=f"Train {run.config.snapshot_every} steps (one snapshot) and pause", width="stretch")
    cols[3].button("Reset", key="reset", icon=":material/replay:", on_click=reset, disabled=shared,
                   width="stretch", help="Start this run again from step 0")
    cols[4].select_slider("Speed", list(state.SPEEDS), key="speed", on_change=speed, disabled=shared,
                          label_visibility="collapsed", help="Training steps per second (slow motion for a class)")
    return cols[5]


def table_bytes(run: Run, kind: str, query: str | None = None) -> bytes:
    """The run's tidy table (the record command's) as CSV or Parquet bytes.

    Parquet also holds the 64 quantiles of every series and the share link (``query``), or a watched model's
    config, so that loading it back replays every panel with the exact settings; CSV keeps the plain table
    (with the quantiles it would be 5x larger, over the upload cap for a full run).
    """
    from bnviz.table.record import table_to_bytes, to_arrow, to_table

    history = run.history
    table = to_arrow(history.snapshots(), quantiles=True) if kind == "parquet" else to_table(history.snapshots())
    return table_to_bytes(table, kind, query=query, data=owndata.metadata(run.config), config=run.config)


def report_bytes(run: Run, view: dict) -> bytes:
    """The self-contained HTML report of what the page shows (``view``: panel, layer, unit, step, link)."""
    from bnviz.present.report import html_report

    snaps = run.history.snapshots()
    if not snaps:
        return b"<!doctype html><title>bnviz</title><p>No snapshot yet: the run has not started.</p>"
    step = view.get("step")
    step = snaps[-1].step if step is None else step
    return html_report(snaps, run.config, panel=view.get("panel", "over-time"), layer=view.get("layer", 0),
                       unit=view.get("unit", -1), step=step, link=view.get("link"),
                       across=seeds.report_lines(snaps, run.config)).encode()


def export(run: Run, view: dict, replays: bool = True) -> None:
    """Download the current run as the record command's tidy table, or the current view as an HTML report;
    and, with ``replays``, load a recorded run to replay (a followed run is the page's only run).

    Everything is built only when clicked, on Streamlit's download thread: ``view`` is a plain dict the
    page keeps up to date on every refresh (the download thread cannot read session state).
    """
    with st.sidebar:
        st.markdown("**Export**")
        watched = run.config.watched
        if watched is not None:  # no preset, seed or link: the model's name says what it is
            name = f"bnviz-{watched.model}-step{run.step}"
            query = None
        else:
            name = f"bnviz-{st.session_state['preset']}-seed{run.config.seed}-step{run.step}"
            query = urlencode(urlstate.encode(st.session_state["preset"], run.config), safe=",")
        c1, c2 = st.columns(2)
        c1.download_button("CSV", lambda: table_bytes(run, "csv", query), f"{name}.csv", "text/csv", key="dl_csv",
                           icon=":material/download:", width="stretch", on_click="ignore",
                           help="The tidy table of `python -m bnviz record` for this run so far")
        c2.download_button("Parquet", lambda: table_bytes(run, "parquet", query), f"{name}.parquet",
                           "application/octet-stream", key="dl_parquet", icon=":material/download:",
                           width="stretch", on_click="ignore", help="The same table plus 64 quantiles of every "
                           "series and this run's settings: load it in bnviz to replay every panel")
        st.download_button("Report for a handout (HTML)", lambda: report_bytes(run, view), f"{name}.html",
                           "text/html", key="dl_report", icon=":material/description:", width="stretch",
                           on_click="ignore", help="One file that opens offline: the charts of the shown panel "
                           "and step, the training curves, Figure 1 and the evidence board")
        if replays:
            replay_upload()


def replay_upload() -> None:
    """Load a recorded table (this page's export or `python -m bnviz record`) to replay it in every panel."""
    n = st.session_state.get("_upload_n", 0)
    st.file_uploader("Replay a recorded run", type=["csv", "parquet"], key=f"upload_{n}", on_change=_load_upload,
                     args=(f"upload_{n}",), help="A table from the Export buttons above or from `python -m bnviz "
                     f"record`: at most {upload.MAX_BYTES >> 20} MB. Parquet files replay everything, with the "
                     "exact settings; CSV files hold no distributions.")


def _load_upload(key: str) -> None:
    """on_change: parse the uploaded file as data (never code) and switch this tab to replaying it."""
    st.session_state.pop("replay_error", None)
    file = st.session_state.get(key)
    if file is None:
        return
    try:
        st.session_state["replay"] = replay_mod.ReplayedRun(replay_mod.load(file.getvalue(), file.name))
        state.set_follow(True)
        st.session_state["_scrub"] = None
    except upload.ReplayError as exc:
        st.session_state["replay_error"] = f"{file.name[:60]} not loaded: {exc}"


def leave_replay() -> None:
    """Button callback: back to the live run (and an empty uploader)."""
    st.session_state.pop("replay", None)
    st.session_state["_upload_n"] = st.session_state.get("_upload_n", 0) + 1


def follow_bar(run, folder: str) -> None:
    """In place of the transport buttons while the page follows a run folder: what it follows, and that nothing
    trains here (the step and whether the writer goes on are in the live status line below)."""
    w = run.config.watched
    what = (f"{w.model}, {len(w.names)} normalization layers ({', '.join(dict.fromkeys(w.kinds))}), a snapshot "
            f"every {run.config.snapshot_every} steps on {run.config.probe_size} probe examples"
            if w is not None else "a bnviz run")
    st.markdown(f"**Following** {state.as_text(folder)} — {state.as_text(what)}. Nothing trains here: the page "
                "shows each snapshot as the training writes it.")


def replay_bar(run) -> None:
    """In place of the transport buttons while a file is replayed: what is shown, and the way back."""
    c1, c2 = st.columns([5, 1.3], vertical_alignment="center")
    r = run.replay
    c1.markdown(f"**Replaying** {state.as_text(r.name)} ({r.kind}, {len(r.snapshots)} snapshots, steps "
                f"{r.snapshots[0].step:,}–{r.snapshots[-1].step:,}). Nothing trains; scrub with the step slider.")
    c2.button("Back to live", key="leave_replay", icon=":material/sensors:", on_click=leave_replay, width="stretch")
    for note in r.notes:
        st.caption(f"ℹ️ {state.as_text(note)}")
