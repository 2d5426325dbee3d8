"""The panels: each reads the snapshots, calls the pure figure builders, and lays out the result."""

from __future__ import annotations

import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from bnviz import config as C
from bnviz import stats
from bnviz.measure import clt
from bnviz.measure.snapshot import POOLED, Snapshot
from bnviz.present import claims, figures, views
from bnviz.present.claims import sums
from bnviz.present.claims.record import RunView
from bnviz.present.style import STAGE_TITLES, described, message, presented

from . import classroom, lrsweep, seeds, state
from .runtime import shared

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2},
                 "modeBarButtonsToAdd": ["toImage"]}
# The stage selectors show a stage's short formula; the help says what each stage is.
STAGES_HELP = "\n\n".join(f"**{STAGE_TITLES[s]}**: {what}" for s, what in C.STAGES.items())
VERDICT_BADGE = {"supported": ":green-badge[supported]", "refuted": ":red-badge[refuted]",
                 "mixed": ":orange-badge[mixed]", "not measured": ":gray-badge[not measured]"}


def preload_charts() -> None:
    """On a tab's first run only, before anything else: a hidden, empty chart at the top of the sidebar.

    Streamlit's chart renderer (plotly.js, a 4.7 MB script) is fetched only when the page first holds a chart.
    This one makes it the page's first download, while the server waits for the run's step 0 to draw the
    real chart.
    """
    if st.session_state.get("_preloaded"):
        return
    st.session_state["_preloaded"] = True
    with st.sidebar.container(key="chart_preload"):
        st.markdown("<style>.st-key-chart_preload{display:none}</style>", unsafe_allow_html=True)
        chart(go.Figure(), "fig_preload")


def await_first_snapshot(run, timeout: float = 1.5) -> bool:
    """Wait up to ``timeout`` s for a run that just started to record its step 0, and no longer than it trains
    (a failed, stopped or queued run has nothing to wait for). The tab's first chart then shows the run instead
    of an empty chart that a refresh, seconds later, would have to replace. True once a snapshot exists."""
    deadline = time.monotonic() + timeout
    while not run.history.snapshots() and run.state in ("running", "paused") and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(run.history.snapshots())


def chart(fig, key: str) -> None:
    """One plotly chart, full width, downloadable as PNG (and SVG via the toolbar's menu). While a lesson's
    answer is hidden, its title describes what is drawn instead of stating the conclusion; in presenter mode
    its fonts, lines and markers are drawn larger."""
    if state.answer_hidden() and fig.layout.meta:
        fig = described(fig)
    if st.session_state.get("present"):
        fig = presented(fig)
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch", theme="streamlit")


def _select(label: str, options, key: str, **kwargs):
    """A selectbox; in a lesson its label sits beside it: one row less between the question and its chart."""
    if not classroom.lesson_open():
        return st.selectbox(label, options, key=key, **kwargs)
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown(f"**{label}**", width="content")
        return st.selectbox(label, options, key=key, label_visibility="collapsed", width=320, **kwargs)


def _normalized(variants) -> list[str]:
    return [v for v in variants if not v.startswith("none")]


def training(snaps, shown: Snapshot, cfg) -> None:
    """Loss and test score (accuracy, or R² of a regression) of every variant."""
    chart(shared(figures.training, snaps, cfg.variants, task=cfg.task), "fig_training")


def layer(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """Histograms of x, x_hat, y, a for each variant at the shown step (in a lesson about them: the normalized
    variants' rows, the ones its question compares, so that they fit under the question)."""
    variants = (classroom.focus() == "fig_layer" and tuple(_normalized(cfg.variants))) or cfg.variants
    chart(shared(figures.layer_histograms, shown, variants, layer_idx, unit, noun=views.unit_noun(cfg),
                 layer_name=cfg.layer_name(layer_idx)),
          "fig_layer")


def figure_1(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """Figure 1 of the paper: percentile bands of the layer's input over training."""
    chart(shared(figures.percentile_bands, snaps, cfg.variants, layer_idx, unit, shown and shown.step,
                 noun=views.unit_noun(cfg), layer_name=cfg.layer_name(layer_idx), **classroom.sized("fig_bands")),
          "fig_bands")


def over_time(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """Figure 1 of the paper, and the distribution over time."""
    figure_1(snaps, shown, cfg, layer_idx, unit)
    c1, c2 = st.columns(2)
    variant = c1.selectbox("Variant", cfg.variants, key="heat_variant")
    stages = [s for s in C.STAGES if views.stage_of(shown, variant, layer_idx, s) is not None] or ["x"]
    stage = c2.selectbox("Stage", stages, key="heat_stage", format_func=STAGE_TITLES.__getitem__, help=STAGES_HELP)
    chart(shared(figures.histogram_heatmap, snaps, variant, layer_idx, stage, unit, shown.step,
                 noun=views.unit_noun(cfg), layer_name=cfg.layer_name(layer_idx)), "fig_heat")


def gamma_beta(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """γ/β trajectories and the what-if lab."""
    affine = [v for v in cfg.variants if (lay := views.layer_of(shown, v, layer_idx)) is not None
              and lay.gamma is not None]
    if not affine:
        st.info("No variant in this run learns γ and β (try the gamma-beta preset).")
        return
    noun = views.unit_noun(cfg)
    if classroom.focus() == "fig_whatif":  # a lesson about the lab: the lab right under its question
        c0, *cols = st.columns(4)
        variant = c0.selectbox("Variant", affine, key="gb_variant")
        whatif_lab(shown, cfg, variant, layer_idx, noun, cols)
        chart(shared(figures.gamma_beta, snaps, variant, layer_idx, noun=noun, layer_name=cfg.layer_name(layer_idx)),
              "fig_gb")
        return
    variant = _select("Variant", affine, key="gb_variant")
    chart(shared(figures.gamma_beta, snaps, variant, layer_idx, noun=noun, layer_name=cfg.layer_name(layer_idx),
                 **classroom.sized("fig_gb")), "fig_gb")
    st.markdown(f"**What-if lab** — apply your own γ and β to x̂ of one {noun} and watch its histogram, W and KL.")
    whatif_lab(shown, cfg, variant, layer_idx, noun, st.columns(3))


def whatif_lab(shown: Snapshot, cfg, variant: str, layer_idx: int, noun: str, cols) -> None:
    """Your own γ and β applied to x̂ of one unit (pickers in the three columns ``cols``): its histogram, W and
    KL before and after."""
    st_x = views.stage_of(shown, variant, layer_idx, "x_hat")
    assert st_x is not None  # a variant that learns γ and β normalizes: it has x̂
    c1, c2, c3 = cols
    tracked = [u for u in st_x.units if u != POOLED]
    lab_unit = c1.selectbox(noun.capitalize(), tracked or [POOLED], key="lab_unit")
    g = c2.slider("γ", -3.0, 3.0, 1.0, 0.1, key="lab_gamma")
    b = c3.slider("β", -3.0, 3.0, 0.0, 0.1, key="lab_beta")
    sample = st_x.quantiles[st_x.units.index(lab_unit)].astype(np.float64)
    if not np.isfinite(sample).all():
        i = st_x.units.index(lab_unit)
        why = figures.NO_DISTRIBUTIONS if figures.no_distributions(st_x, i) else "its values are not finite"
        st.info(f"The what-if lab needs the distribution of x̂ at this step: {why}.")
        return
    before = stats.normality(sample)
    after = stats.normality(g * sample + b) if g != 0 else None
    if after is None:
        st.warning("γ = 0 maps every value to β: a constant, not a distribution. Pick γ ≠ 0.")
        return
    chart(figures.whatif(sample, g, b, before, after, noun=noun, **classroom.sized("fig_whatif")), "fig_whatif")
    st.caption(f"Sample: the {len(sample)} quantiles of {noun} {lab_unit}'s x̂ at step {shown.step} (a sketch of "
               f"its {cfg.series_values(layer_idx):,} probe values; on all of them the engine measured "
               f"W = {st_x.stat('shapiro_w', lab_unit):.4f}, KL = {st_x.stat('kl_gaussian', lab_unit):.4f}).")


def normality(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """W and KL over training per stage; a Q-Q plot."""
    variant = _select("Variant", cfg.variants, key="norm_variant", index=len(cfg.variants) - 1)
    chart(shared(figures.normality_over_time, snaps, variant, layer_idx, unit, noun=views.unit_noun(cfg),
                 layer_name=cfg.layer_name(layer_idx), **classroom.sized("fig_norm")), "fig_norm")
    stages = [s for s in C.STAGES if views.stage_of(shown, variant, layer_idx, s) is not None] or ["x"]
    stage = _select("Q-Q plot of stage", stages, key="qq_stage", format_func=STAGE_TITLES.__getitem__, help=STAGES_HELP)
    chart(shared(figures.qq_plot, shown, variant, layer_idx, stage, unit, noun=views.unit_noun(cfg),
                 layer_name=cfg.layer_name(layer_idx)), "fig_qq")


def _stability_chart(key: str, snaps, cfg, layer_idx: int) -> None:
    """One of the panel's charts: drift, gradient shift and saturation (fig_stab), or the smoothness of the loss
    along the gradient (fig_smooth)."""
    if key == "fig_smooth" and cfg.watched is not None:
        st.info("Santurkar et al.'s gradient shift and smoothness step along the training's own gradient, which "
                "bnviz.watch does not take: a watched model's run does not measure them.", icon="ℹ️")
        return
    if key == "fig_stab":
        chart(shared(figures.stability, snaps, cfg.variants, layer_idx, layer_name=cfg.layer_name(layer_idx),
                     **classroom.sized(key)), key)
    else:
        chart(shared(figures.smoothness, snaps, cfg.variants, **classroom.sized(key)), key)


def _stability_order() -> tuple[str, str]:
    """The panel's charts in the order drawn: the smoothness first when a lesson asks about it, so that it sits
    under the question."""
    return ("fig_smooth", "fig_stab") if classroom.focus() == "fig_smooth" else ("fig_stab", "fig_smooth")


def stability_lead(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """The panel's leading chart."""
    _stability_chart(_stability_order()[0], snaps, cfg, layer_idx)


def stability(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """The leading chart, then the other."""
    for key in _stability_order():
        _stability_chart(key, snaps, cfg, layer_idx)


def why_gaussian(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """The central limit theorem experiment and a bimodal input through BN."""
    c1, c2 = st.columns([2, 1])  # room for the five default distributions in one row at 1280 px
    dists = c1.multiselect("Input feature distributions", list(C.INPUT_DISTS), default=list(clt.PAGE_DISTS),
                           key="clt_dists", label_visibility="collapsed" if classroom.lesson_open() else "visible")
    sparse = c2.toggle("Also: weights on only 2 inputs", key="clt_sparse",
                       help="Like trained, concentrated weights: Wu + b then sums only 2 inputs, and the central "
                            "limit theorem has little to work with")
    results = [clt.clt_experiment(d, seed=cfg.seed) for d in dists]
    if sparse:
        results += [clt.clt_experiment(d, weights="sparse", seed=cfg.seed) for d in dists]
    upto = tuple(s for s in snaps if s.step <= shown.step)
    _, layers = sums.run_layers(RunView(upto, cfg))  # the board's C5 figure for this run's own layers
    if results or layers:
        chart(figures.clt_curves(results, run_layers=layers, **classroom.sized("fig_clt")), "fig_clt")
    chart(figures.bimodal_demo(clt.bimodal_through_bn(seed=cfg.seed)), "fig_bimodal")


SWEEP_REFRESH_SECONDS = 1.0  # the sweep's progress and points while it runs (the page's own run may have ended)


def lr_range(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """The learning-rate sweep of this network: the score at each stored rate, and the button that sweeps."""
    if cfg.watched is not None or st.session_state.get("_following"):
        st.info("The learning-rate sweep trains bnviz's own network at 9 learning rates: a followed run cannot be "
                "swept. Open the lr-range preset on a page that follows no run folder.", icon="ℹ️")
        return
    job = lrsweep.sweeps().job(cfg)
    live = job is not None and job.alive
    st.fragment(_lr_sweep, run_every=SWEEP_REFRESH_SECONDS if live else None)(cfg)


def _lr_sweep(cfg) -> None:
    """The sweep's figure, button and progress (a fragment refreshing while the sweep runs)."""
    points = lrsweep.points(cfg)
    chart(figures.lr_range(points, cfg.variants, lr=cfg.lr, task=cfg.task, **classroom.sized("fig_lr")), "fig_lr")
    job = lrsweep.sweeps().job(cfg)
    with st.container(horizontal=True, vertical_alignment="center"):
        if st.button("Sweep the learning rate", key="lr_sweep", icon=":material/play_arrow:", width="content",
                     help="Train this network at each learning rate of the figure, one run at a time, in the "
                          "server's queue; runs already stored are not trained again"):
            job = lrsweep.sweeps().start(cfg)
            st.rerun(scope="app")  # the fragment starts refreshing with the sweep under way
        if job is not None:
            st.caption(job.progress() if job.alive else f"Sweep ended: {job.progress()}")


def evidence(snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """Every claim of docs/claims.md with a verdict computed from this run."""
    final = shared(_evidence_upto, snaps, snaps[-1].step, cfg) if seeds.judged_at_end(snaps, cfg) else None
    lines = across_lines(final, cfg)
    # One paragraph whatever the lines' state: the elements below keep their places while the lines arrive.
    st.markdown("Each verdict is computed from this run's numbers up to the shown step; a different run can "
                "give a different verdict." + _across_note(lines, scrubbed=shown.step != snaps[-1].step))
    for v in shared(_evidence_upto, snaps, shown.step, cfg, lrsweep.points(cfg)):
        with st.container(border=True):
            # The button takes the width its label needs (beside the text, or below it on a narrow page).
            with st.container(horizontal=True, vertical_alignment="center"):
                with st.container(width="stretch"):
                    st.markdown(f"**{v.claim}** {VERDICT_BADGE.get(v.verdict, v.verdict)} {v.title}")
                    st.text(v.detail)  # text, not markdown: the numbers are shown as measured
                    if lines and v.claim in lines:
                        st.caption(":material/stacks: " + lines[v.claim].replace("[", "\\[").replace("*", "\\*"))
                claim = claims.BY_ID.get(v.claim)
                if v.verdict == "not measured" and (cfg.watched is not None or st.session_state.get("_following")):
                    pass  # a followed run is the page's only run: no preset to open here
                elif v.verdict == "not measured" and claim is not None and not claim.needs(cfg):
                    st.button(f"Open {v.preset}", key=f"preset_{v.claim}", on_click=state.open_preset,
                              args=(v.preset, v.panel), icon=":material/open_in_new:", width="content",
                              help=f"Open the {v.preset} preset, which trains what this claim needs")
                else:
                    st.button(C.PANELS.get(v.panel, v.panel), key=f"goto_{v.claim}", on_click=goto, args=(v.panel,),
                              icon=":material/arrow_forward:", help="Open the panel that shows this evidence",
                              width="content")
            with st.expander("Measured figure and the rule it was judged by"):
                st.text(f"Measured: {v.figure}\nRule: {v.threshold}")
    if lines is None and final is not None:
        _await_across(cfg, final)


def across_lines(final, cfg) -> dict[str, str] | None:
    """The across-seed sentence per claim, given the verdicts ``final`` of the page's finished run (None while it
    trains: a live run's verdicts still change); {} without other stored seeds; None while they are judged, off
    this thread."""
    if final is None or st.session_state.get("_following"):
        return {}
    return seeds.across_seeds().lines(cfg, final)


def _across_note(lines: dict[str, str] | None, scrubbed: bool) -> str:
    """The board's second line about the across-seed lines: loading, or at which step they judge."""
    if lines is None:
        return "  \n*Across-seed verdicts loading…*"
    if lines and scrubbed:
        return "  \nThe lines *across seeds* judge each run at its final step."
    return ""


@st.fragment(run_every=1.0)
def _await_across(cfg, own) -> None:
    """Redraws the page once the stored seeds are judged (the board itself no longer refreshes: its run ended)."""
    if seeds.across_seeds().lines(cfg, own) is not None:
        st.rerun(scope="app")


def _evidence_upto(snaps, step: int, cfg, lr_points=()) -> list:
    """The verdicts from the snapshots up to ``step`` (what the evidence board shows at the scrubbed step), C11's
    from the stored points of this network's learning-rate sweep."""
    return claims.evidence(tuple(s for s in snaps if s.step <= step), cfg, lr_points)


def goto(panel: str) -> None:
    """Button callback: open ``panel`` (the page reruns in full to move the panel selector)."""
    st.session_state["panel"] = panel
    state.show_panel()
    st.session_state["_goto"] = True


RENDER = {
    "training": lambda snaps, shown, cfg, layer_idx, unit: training(snaps, shown, cfg),
    "layer": layer, "over-time": over_time, "gamma-beta": gamma_beta, "normality": normality,
    "stability": stability, "why-gaussian": why_gaussian, "lr-range": lr_range, "evidence": evidence,
}
# A panel's leading chart, where it has one that needs no widget: what a tab's first frame draws of the panel,
# and, empty, what the panel shows before its run's first snapshot (no snapshots, ``shown`` None).
LEAD = {"training": RENDER["training"], "layer": layer, "over-time": figure_1, "stability": stability_lead}


def lead(panel: str, snaps, shown: Snapshot, cfg, layer_idx: int, unit: int) -> None:
    """The part of ``panel`` that a tab's first frame draws before the rest of the page."""
    LEAD.get(panel, RENDER[panel])(snaps, shown, cfg, layer_idx, unit)


def waiting(panel: str, cfg, layer_idx: int, unit: int) -> None:
    """``panel`` before its run's first snapshot: its leading chart, empty, under the same key (the data then
    fills that chart in place), or an empty chart named after the panel. Either way the page's first drawing
    is the panel it opens on."""
    if panel in LEAD:
        LEAD[panel]((), None, cfg, layer_idx, unit)
    else:
        chart(message(title=C.PANELS[panel]), "fig_waiting")
