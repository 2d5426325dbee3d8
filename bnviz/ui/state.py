"""Page state: query string <-> widget keys <-> ExperimentConfig. The only code that knows both sides.

Every widget has a stable key equal to its share-link name (``seed``, ``lr``, ``panel``...), so the link,
the session state and the widgets speak one vocabulary.
"""

from __future__ import annotations

import math
import string

import streamlit as st

from bnviz import config as C
from bnviz import owndata, urlstate
from bnviz.config import ExperimentConfig
from bnviz.present import lessons

REFRESH_SECONDS = 0.5  # charts refresh twice a second while training ...
MAX_REFRESHES_PER_RUN = 12.0  # ... but the pages watching one run refresh at most this often per second in all


QUEUED_REFRESH_SECONDS = 2.0  # a queued page has nothing new to draw: it only checks whether its turn came
# A page that has just opened is still compiling plotly.js (4.7 MB) in the browser; refreshes arriving
# meanwhile only make the browser re-render what it has not drawn yet. Its first WARMUP_REFRESHES refreshes
# come every WARMUP_SECONDS instead, which shortens the first chart on a link that 30 pages watch.
WARMUP_SECONDS = 2.0
WARMUP_REFRESHES = 2


def refresh_interval(viewers: int, queued: bool = False, refreshes: int | None = None) -> float:
    """Seconds between a page's chart refreshes while its run trains.

    Twice a second, up to 6 viewers of a run; beyond, the interval grows (in steps of 0.5 s) so that all
    the pages on one run refresh at most MAX_REFRESHES_PER_RUN times a second in all: the server's Python
    runs one thread at a time (the GIL), and the training thread must keep its share however many watch.
    30 students on one link: every 2.5 s each. A page whose run is queued (waiting for a training slot)
    checks every QUEUED_REFRESH_SECONDS. ``refreshes``: how many times this page has refreshed so far; while
    fewer than WARMUP_REFRESHES, at least every WARMUP_SECONDS (the page is still loading).
    """
    need = max(viewers, 1) / MAX_REFRESHES_PER_RUN
    interval = max(REFRESH_SECONDS, math.ceil(need / REFRESH_SECONDS) * REFRESH_SECONDS)
    if refreshes is not None and refreshes < WARMUP_REFRESHES:
        interval = max(interval, WARMUP_SECONDS)
    return max(interval, QUEUED_REFRESH_SECONDS) if queued else interval


SPEEDS = {"slow motion": 20.0, "slow": 60.0, "normal": 200.0, "fast": 800.0, "max": None}  # steps per second
DEFAULT_SPEED = "normal"
VARIANT_OPTIONS = (*C.VARIANTS, "bn@before", "bn@after", "ln@after")


def as_text(text: str) -> str:
    """``text`` escaped for Streamlit's markdown so that it shows literally: every ASCII punctuation gets a
    backslash (CommonMark lets any of them be escaped), so no markdown, HTML, link or Streamlit directive
    (``:red[...]``, ``:material/...:``) in it is interpreted. For anything a visitor typed."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)


def widget_values(cfg: ExperimentConfig) -> dict:
    """Widget key -> value for a config (what the sidebar shows)."""
    return {
        "arch": cfg.architecture, "dataset": cfg.dataset, "dist": cfg.input_dist, "features": cfg.n_features,
        "activation": cfg.activation, "widths": ",".join(str(w) for w in cfg.widths),
        "variants": list(cfg.variants), "placement": cfg.placement, "batch": cfg.batch,
        "lr": float(cfg.lr), "optimizer": cfg.optimizer, "steps": cfg.steps, "seed": cfg.seed, "init": cfg.init,
        # your own data: kept when a config trains on something else, so that dataset csv finds the file again
        **({"data": cfg.data, "target": cfg.target} if cfg.dataset == C.OWN_DATA else {}),
    }


def init_from_query() -> None:
    """On a session's first run: decode the link into widget keys and remember its warnings."""
    if st.session_state.get("_initialized"):
        return
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    decoded = urlstate.decode(params)
    st.session_state["preset"] = decoded.preset
    st.session_state.update(widget_values(decoded.config))
    st.session_state["_extra"] = {"view": decoded.config.view, "snapshot_every": decoded.config.snapshot_every}
    st.session_state["panel"] = decoded.view.get("panel", "over-time")  # the paper's Figure 1, live
    st.session_state["_layer"] = decoded.view.get("layer")
    st.session_state["_unit"] = decoded.view.get("unit", -1)
    st.session_state["lesson"] = decoded.view.get("lesson")
    st.session_state["present"] = bool(decoded.view.get("present", False))
    st.session_state["warnings"] = decoded.warnings
    st.session_state["last_config"] = decoded.config
    st.session_state["_initialized"] = True
    lesson = decoded.view.get("lesson")
    if lesson and "preset" not in params:  # a bare lesson link: the step decides preset, panel, layer, unit
        try:
            open_step(lesson)
            st.session_state.pop("_goto", None)
            st.session_state["last_config"] = C.PRESETS[st.session_state["preset"]].config
        except ValueError as exc:
            st.session_state["warnings"].append(f"lesson={lesson} ignored: {exc}")
            st.session_state["lesson"] = None


def answer_hidden() -> bool:
    """A lesson step is open and its answer not yet revealed: the page then says what it shows, not what it
    means, so that the class finds the conclusion itself."""
    return bool(st.session_state.get("lesson")) and not st.session_state.get("reveal")


def reveal(snaps) -> None:
    """Reveal callback: show the answer and pin the shown step. ``snaps`` are the snapshots up to the step the
    page showed at the click; the view leaves Live at that step and draws them, the very snapshots the answer
    reads, until the teacher goes Live again, picks another step or another lesson step."""
    s = st.session_state
    s["reveal"] = True
    if snaps:
        s["_pinned"] = tuple(snaps)
        s["_scrub"] = snaps[-1].step
        set_follow(False)


def follow_live() -> None:
    """Callback: the view follows training again (a revealed answer then reads the latest snapshots)."""
    set_follow(True)


def set_follow(on: bool) -> None:
    """Turn Live on or off from code. The Live switch and the step slider then get new keys (:func:`view_key`):
    a refresh already under way sends back the values the browser still shows, which would otherwise undo
    this as if the viewer had clicked them."""
    s = st.session_state
    s["_follow"] = on
    s["_follow_version"] = s.get("_follow_version", 0) + 1


def view_key(name: str) -> str:
    """The widget key of the Live switch (``follow``) or the step slider (``scrub``), see :func:`set_follow`."""
    return f"{name}_{st.session_state.get('_follow_version', 0)}"


def pinned_step(snaps) -> int | None:
    """The step a revealed answer holds, when it belongs to this run (``snaps``, the run's snapshots)."""
    pinned = st.session_state.get("_pinned")
    # A History keeps its first snapshot forever: the same first snapshot means the same run.
    return pinned[-1].step if pinned and snaps and pinned[0] is snaps[0] else None


def drawn_snapshots(snaps, follow: bool, scrub: int) -> tuple:
    """The snapshots the charts draw and a revealed answer reads.

    While a lesson's answer is revealed and the view is not live: the snapshots up to the shown step, held
    from the first time that step is shown (the History goes on adding and thinning snapshots; the held tuple
    does not change, so the answer and the charts hold still). Otherwise all of ``snaps``.
    """
    s = st.session_state
    if follow or answer_hidden() or not s.get("lesson") or not snaps:
        s.pop("_pinned", None)
        return snaps
    if pinned_step(snaps) != scrub:
        s["_pinned"] = tuple(x for x in snaps if x.step <= scrub) or snaps[:1]
    return s["_pinned"]


def apply_preset() -> None:
    """Callback of the preset selector: every setting takes the preset's value."""
    cfg = C.PRESETS[st.session_state["preset"]].config
    st.session_state.update(widget_values(cfg))
    st.session_state["_extra"] = {"view": cfg.view, "snapshot_every": cfg.snapshot_every}


def open_step(number: int) -> None:
    """Go to lesson step ``number``: its preset, panel, layer and unit (a callback, or before widgets)."""
    step = lessons.step(number)
    s = st.session_state
    s["lesson"] = step.number
    s["preset"] = step.preset
    apply_preset()
    s["panel"] = step.panel
    layers = len(C.PRESETS[step.preset].config.widths)
    s["_layer"] = layers - 1 if step.layer is None else min(step.layer, layers - 1)
    s["_unit"] = step.unit
    set_follow(True)
    s["reveal"] = False
    s["_goto"] = True  # clicked inside the live fragment: the whole page must rerun to apply the preset


def open_preset(name: str, panel: str) -> None:
    """Open preset ``name`` on ``panel`` (a callback: the board's offer for a claim this run cannot measure)."""
    st.session_state["preset"] = name
    apply_preset()
    st.session_state["panel"] = panel
    st.session_state["_goto"] = True


def close_lesson() -> None:
    """Leave the walkthrough (the page stays where it is)."""
    st.session_state["lesson"] = None
    st.session_state["_goto"] = True


def config_from_widgets() -> tuple[ExperimentConfig, list[str]]:
    """The config the widgets describe, or the last valid one plus the problems that prevent it."""
    s = st.session_state
    base = C.PRESETS[s["preset"]].config
    problems: list[str] = []
    try:
        widths = urlstate.BY_NAME["widths"].parse(str(s["widths"]))
    except ValueError as exc:  # in the link's words: what was typed and which widths are allowed
        problems.append(urlstate.refusal(urlstate.BY_NAME["widths"], str(s["widths"]), exc))
        widths = s["last_config"].widths
    extra = s.get("_extra", {})
    data: dict = {}
    if s["dataset"] == C.OWN_DATA:
        try:
            data = own_data_changes()
        except (owndata.CsvError, owndata.MissingData) as exc:
            problems.append(str(exc))
            return s["last_config"], problems
    try:
        cfg = base.replace(
            architecture=s["arch"], dataset=s["dataset"], input_dist=s["dist"], n_features=int(s["features"]),
            activation=s["activation"],
            widths=widths, variants=tuple(s["variants"]), placement=s["placement"], batch=int(s["batch"]),
            lr=float(s["lr"]), optimizer=s["optimizer"], steps=int(s["steps"]), seed=int(s["seed"]),
            init=s["init"], view=extra.get("view", base.view),
            snapshot_every=extra.get("snapshot_every", base.snapshot_every),
            **{k: v for k, v in data.items() if k != "dataset"})
    except (ValueError, TypeError) as exc:
        problems.append(str(exc).removeprefix("invalid experiment config: "))  # config's own words follow
        cfg = s["last_config"]
    if not problems:
        s["last_config"] = cfg
    return cfg, problems


def own_data_changes() -> dict:
    """The config fields of the uploaded file and target column the sidebar holds; raises owndata.CsvError or
    MissingData in words."""
    s = st.session_state
    h = s.get("data") or ""
    if not h:
        raise owndata.MissingData(f"dataset {C.OWN_DATA} trains on your own file: upload a CSV file under Your own "
                                  "data in the sidebar")
    target = s.get("target") or ""
    return owndata.config_changes(h, target, owndata.default_store().info(h, target))


def show_panel() -> None:
    """Callback of every panel change (the selector, a board button): the address bar takes the new panel at
    once, before the rerun that draws it (a rerun can be slow on a loaded server). A page whose address holds no
    state (a replayed file) is left alone."""
    panel = st.session_state.get("panel")
    if "panel" in st.query_params and panel in C.PANELS and st.query_params["panel"] != panel:
        st.query_params["panel"] = panel


def sync_query(cfg: ExperimentConfig) -> None:
    """Write the current state into the address bar (only when it changed, to keep history clean)."""
    s = st.session_state
    view = {"panel": s.get("panel"), "layer": s.get("_layer", s.get("layer")), "unit": s.get("_unit", s.get("unit")),
            "lesson": s.get("lesson")}
    if st.session_state.get("present"):
        view["present"] = True
    wanted = urlstate.encode(st.session_state["preset"], cfg, {k: v for k, v in view.items() if v is not None})
    current = {k: st.query_params.get(k) for k in st.query_params}
    if current != wanted:
        st.query_params.from_dict(wanted)
