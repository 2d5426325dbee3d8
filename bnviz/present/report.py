"""A self-contained HTML report of the current view, for a class handout: figures plus the evidence board.

Pure (no streamlit): snapshots, config and the view (panel, layer, unit, step) in, one HTML string out. It
opens offline (plotly.js inline, a Content-Security-Policy forbids every fetch), and everything that comes
from the data or the caller is escaped. What it holds and the choices it makes: docs/report.md.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from bnviz import config as C
from bnviz import stats
from bnviz.config import ExperimentConfig
from bnviz.measure import clt
from bnviz.measure.snapshot import POOLED, Snapshot
from bnviz.present import claims, figures, views
from bnviz.present.style import fit_title, unit_text, variant_label

__all__ = ["html_report", "report_filename", "describe_config", "QUESTION"]

QUESTION = "Does batch norm fix the distribution of a layer's inputs — if γ and β change it again?"
CLT_DISTS = clt.PAGE_DISTS  # the page's default selection
WHATIF = claims.C6_PAIRS[0]  # (γ, β) applied in the what-if lab: a stretch and a shift
PRINT_WIDTH_PX = 680  # widest figure on paper: A4 less 12 mm margins is 186 mm = 703 CSS px (narrower: theirs)
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}
# Okabe-Ito colors (colorblind-safe) with the verdict's word written on the badge; text colors for contrast.
VERDICT_STYLE = {"supported": ("#0072B2", "#fff"), "refuted": ("#D55E00", "#000"),
                 "mixed": ("#E69F00", "#000"), "not measured": ("#DDDDDD", "#000")}
# A light, print-friendly look: the page's figures set no template (Streamlit's theme supplies one), and
# plotly's default one draws white grid lines, invisible on paper.
TEMPLATE = go.layout.Template(layout=dict(
    font=dict(color="#222"), hoverlabel=dict(font=dict(color="#222"), bgcolor="#fff"),
    xaxis=dict(gridcolor="#e4e4e4", zerolinecolor="#bbb", linecolor="#888", showline=True, ticks="outside"),
    yaxis=dict(gridcolor="#e4e4e4", zerolinecolor="#bbb", linecolor="#888", showline=True, ticks="outside"),
))

CSS = """
:root{color-scheme:light}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;background:#fff;
margin:0 auto;padding:16px 24px;max-width:1120px;overflow-wrap:break-word}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.2em 0 .4em;border-bottom:1px solid #ccc}
.question{font-size:1.1em;font-style:italic;margin:0}
dl.cfg{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 12px;margin:.6em 0}
dl.cfg dt{font-weight:600}dl.cfg dd{margin:0;min-width:0;overflow-wrap:anywhere}a{overflow-wrap:anywhere}
.meta{color:#555;font-size:.9em}.across{margin-top:.4em;color:#333;font-style:italic}
figure.fig{margin:12px 0 20px;break-inside:avoid;page-break-inside:avoid}
figcaption{font-size:.85em;color:#555}.plot{width:100%;max-width:100%}
.note{background:#f4f4f4;border-left:4px solid #999;padding:6px 10px;break-inside:avoid}
table.board{border-collapse:collapse;width:100%;table-layout:fixed;font-size:.85em}
table.board th,table.board td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left;
overflow-wrap:anywhere}
table.board th{background:#f0f0f0}table.board tr{break-inside:avoid;page-break-inside:avoid}
col.c-id{width:4.4em}col.c-title{width:13%}col.c-verdict{width:7.4em}col.c-fig{width:26%}col.c-rule{width:21%}
.badge{display:inline-block;padding:1px 6px;border-radius:9px;font-weight:700;text-align:center;overflow-wrap:normal;
border:1px solid #555;-webkit-print-color-adjust:exact;print-color-adjust:exact}
@page{size:A4;margin:12mm}
@media print{body{max-width:none;padding:0;font-size:10.5pt}h2,h3{break-after:avoid;page-break-after:avoid}
header{break-inside:avoid}.modebar-container{display:none!important}
a{color:inherit}a[href]::after{content:""}}
"""

# Draws every figure, and lays them out again to fit the paper while printing (plotly sizes its SVG in pixels).
SCRIPT = """
(function(){
var cfg=%(cfg)s, pw=%(pw)d, plots=[];
document.querySelectorAll('script[type="application/json"][data-plot]').forEach(function(s){
  var fig=JSON.parse(s.textContent), div=document.getElementById(s.getAttribute('data-plot'));
  Plotly.newPlot(div, fig.data, fig.layout, cfg); plots.push(div);
});
function fit(print){plots.forEach(function(d){
  var room=d.parentElement.clientWidth||pw;
  Plotly.relayout(d,print?{width:Math.min(pw,room)}:{width:null,autosize:true});
});}
window.addEventListener('beforeprint',function(){fit(true);});
window.addEventListener('afterprint',function(){fit(false);});
var mq=window.matchMedia&&window.matchMedia('print');
if(mq&&mq.addEventListener){mq.addEventListener('change',function(e){fit(e.matches);});}
})();
"""

CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:")


@dataclass
class _Figure:
    key: str  # the page's chart key (bnviz/ui/panels.py), used as the element id
    heading: str
    fig: go.Figure
    caption: str


# ------------------------------------------------------------------------------------------ helpers

def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _shown(snaps: tuple[Snapshot, ...], step: int) -> Snapshot | None:
    """The snapshot at ``step``, else the last one before it, else the first (None without snapshots)."""
    if not snaps:
        return None
    before = [s for s in snaps if s.step <= step]
    return before[-1] if before else snaps[0]


def _preset_of(cfg: ExperimentConfig) -> str | None:
    return next((name for name, p in C.PRESETS.items() if p.config == cfg), None)


def _variant_text(cfg: ExperimentConfig, token: str) -> str:
    kind, _ = C.split_variant(token)
    if kind == "none":
        return f"{variant_label(token)} ({token})"
    return f"{variant_label(token)} ({token}, {cfg.placement_of(token)} the activation)"


def describe_config(cfg: ExperimentConfig) -> list[tuple[str, str]]:
    """The run's configuration in words: (label, sentence) pairs, plain text (not yet escaped)."""
    if cfg.watched is not None:
        return _describe_watched(cfg)
    preset = _preset_of(cfg)
    rows = [("Preset", f"{preset}: {C.PRESETS[preset].shows}" if preset else "custom settings (no preset)")]
    if cfg.dataset in C.SYNTHETIC_INPUTS:
        targets = (f"{C.REGRESSION_TARGETS} real-valued targets, a fixed random linear map of the inputs plus noise "
                   f"of std {C.REGRESSION_NOISE:g} (squared-error loss, scored by R²)" if cfg.task == "regression"
                   else "labels from a fixed random teacher network")
        data = (f"{cfg.dataset}: {cfg.n_features} synthetic inputs, each {C.INPUT_DISTS[cfg.input_dist]} "
                f"({cfg.input_dist}); {targets}")
    elif cfg.dataset == C.OWN_DATA:
        target = f"column {cfg.target}" if cfg.target else "its default target column"
        score = "squared-error loss, scored by R²" if cfg.task == "regression" else "cross-entropy, scored by accuracy"
        data = (f"your own data: {cfg.data_name or 'a CSV file'} (data={cfg.data}), {cfg.n_inputs} inputs standardized "
                f"with the training split's mean and std, predicting {target}: a {cfg.task} ({score})")
    else:
        data = f"{cfg.dataset}: {C.DATASETS[cfg.dataset]}"
    rows.append(("Data", data))
    widths = cfg.widths
    sizes = str(widths[0]) if len(set(widths)) == 1 else ", ".join(map(str, widths))
    conv = cfg.architecture == "conv"
    kind = "3x3 conv layer" if conv else "hidden layer"
    layers = f"1 {kind}" if len(widths) == 1 else f"{len(widths)} {kind}s"
    head = "linear regression output" if cfg.task == "regression" else "softmax output"
    rows.append(("Network", f"{layers} of {sizes} {cfg.activation} {views.unit_noun(cfg)}s, "
                            + ("global average pooling, " if conv else "") + f"{head} "
                            f"({cfg.activation}: {C.ACTIVATIONS[cfg.activation]})"))
    rows.append(("Initial weights", f"{cfg.init}: {C.INITS[cfg.init]}"))
    rows.append(("Variants", "; ".join(_variant_text(cfg, t) for t in cfg.variants)
                 + " — trained side by side from the same initial weights on the same mini-batches"))
    rows.append(("Training", f"optimizer {cfg.optimizer}, learning rate {cfg.lr:g}, batch {cfg.batch}, "
                             f"{cfg.steps:,} steps, seed {cfg.seed} ({cfg.optimizer}: {C.OPTIMIZERS[cfg.optimizer]})"))
    per_unit = (f" ({cfg.series_length:,} values per channel: every position of every example)"
                if conv else "")
    rows.append(("Measured", f"a snapshot every {cfg.snapshot_every} steps on {cfg.probe_examples} fixed training "
                             f"examples{per_unit}, {cfg.view} view: {C.VIEWS[cfg.view]}"))
    return rows


def _describe_watched(cfg: ExperimentConfig) -> list[tuple[str, str]]:
    """A watched model in words: bnviz did not build or train it, so no dataset, learning rate or batch of its
    own describes it; its normalization layers and how they were probed do."""
    w = cfg.watched
    assert w is not None
    kinds = ", ".join(f"{n} {k}" for k, n in Counter(w.kinds).items())
    noun = views.unit_noun(cfg)
    sizes = str(min(cfg.widths)) if min(cfg.widths) == max(cfg.widths) else f"{min(cfg.widths)} to {max(cfg.widths)}"
    values = sorted(set(w.values))
    per_unit = f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,} to {values[-1]:,}"
    view = "the probe's own batch statistics" if cfg.view == "train" else "the layers' running statistics"
    return [
        ("Model", f"{w.model}, watched with bnviz.watch in its own training loop (bnviz neither built nor trained it)"),
        ("Layers", f"{len(w.names)} normalization layers ({kinds}), {w.names[0]} to {w.names[-1]}, {sizes} "
                   f"{noun}s each"),
        ("Measured", f"a snapshot every {cfg.snapshot_every} steps, last step {cfg.steps:,}, on a fixed probe batch "
                     f"of {cfg.probe_size} examples ({per_unit} values per {noun}: examples x positions), "
                     f"normalized with {view}"),
        ("Compared", "one network: no twin trained without normalization from the same start, so the claims that "
                     "compare twins are not measured"),
    ]


def _safe_link(link: str) -> str | None:
    """``link`` if it is an absolute http(s) URL without spaces or control characters, else None."""
    text = link.strip()
    if not text or re.search(r"[\s\x00-\x1f\x7f]", text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else None


# ------------------------------------------------------------------------------------------ figures

def _panel_figures(snaps, shown: Snapshot | None, cfg: ExperimentConfig, panel: str, layer: int,
                   unit: int) -> tuple[list[_Figure], list[str]]:
    """The figures of one panel, built as bnviz/ui/panels.py builds them, and notes shown instead of figures."""
    out, notes = [], []
    noun, name = views.unit_noun(cfg), cfg.layer_name(layer)
    at = f"{name}, {unit_text(unit, noun)}"
    scrub = shown.step if shown is not None else None
    if panel == "training":
        score = views.score_name(cfg.task)
        out.append(_Figure("fig_training", f"Loss and {score}", figures.training(snaps, cfg.variants, task=cfg.task),
                           f"Training loss (log scale) and {score} of every variant."))
    elif panel == "layer":
        out.append(_Figure("fig_layer", f"Histograms of x, x̂, y and a at step {scrub}",
                           figures.layer_histograms(shown, cfg.variants, layer, unit, noun=noun, layer_name=name),
                           f"Histograms of x, x̂, y and a at step {scrub}, {at}, with the Gaussian of equal "
                           "mean and standard deviation."))
    elif panel == "over-time":
        out.append(_bands(snaps, cfg, layer, unit, scrub))
        variant = cfg.variants[0]
        stages = ([s for s in C.STAGES if views.stage_of(shown, variant, layer, s) is not None]
                  if shown is not None else []) or ["x"]
        stage = stages[0]
        out.append(_Figure("fig_heat", "The whole distribution over training",
                           figures.histogram_heatmap(snaps, variant, layer, stage, unit, scrub, noun=noun,
                                                    layer_name=name),
                           f"Variant {variant}, stage {stage} ({C.STAGES[stage]}), {at}; the dotted line marks "
                           f"step {scrub}. (The page's default choice of variant and stage.)"))
    elif panel == "gamma-beta":
        affine = [v for v in cfg.variants if shown is not None and (lay := views.layer_of(shown, v, layer))
                  is not None and lay.gamma is not None]
        if not affine:
            notes.append("No variant in this run learns γ and β (try the gamma-beta preset).")
        else:
            assert shown is not None  # affine is empty without a shown snapshot
            variant = affine[0]
            out.append(_Figure("fig_gb", f"γ and β per {noun}",
                               figures.gamma_beta(snaps, variant, layer, noun=noun, layer_name=name),
                               f"γ and β of every {noun} of {name}, variant {variant} (the first variant "
                               "that learns them), and how fast they change compared with the weights."))
            lab = _whatif(shown, variant, layer, cfg)
            if isinstance(lab, str):
                notes.append(lab)
            else:
                out.append(lab)
    elif panel == "normality":
        variant = cfg.variants[-1]
        out.append(_Figure("fig_norm", "Shapiro–Wilk W and KL over training",
                           figures.normality_over_time(snaps, variant, layer, unit, noun=noun, layer_name=name),
                           f"Shapiro–Wilk W and KL to the Gaussian of x, x̂, y and a over training, variant "
                           f"{variant} (the page's default: the run's last variant), {at}."))
        stages = ([s for s in C.STAGES if views.stage_of(shown, variant, layer, s) is not None]
                  if shown is not None else []) or ["x"]
        out.append(_Figure("fig_qq", "Q-Q plot against the Gaussian",
                           figures.qq_plot(shown, variant, layer, stages[0], unit, noun=noun, layer_name=name),
                           f"Q-Q plot of stage {stages[0]} against the Gaussian at step {scrub}, variant {variant}, "
                           f"{at}."))
    elif panel == "stability":
        out.append(_Figure("fig_stab", "Drift, gradient shift and saturation",
                           figures.stability(snaps, cfg.variants, layer, layer_name=name),
                           f"Drift per snapshot, gradient-based covariate shift and saturation of {name}'s "
                           "activation input."))
        out.append(_Figure("fig_smooth", "Smoothness of the loss along the gradient",
                           figures.smoothness(snaps, cfg.variants),
                           "Santurkar et al.'s loss range, gradient change and effective β-smoothness along the "
                           "gradient of one mini-batch, per variant, wherever the gradient shift was measured."))
    elif panel == "why-gaussian":
        results = [clt.clt_experiment(d, seed=cfg.seed) for d in CLT_DISTS]
        out.append(_Figure("fig_clt", "The central limit theorem at work", figures.clt_curves(results),
                           "Normality of a linear layer's output Wu + b as the fan-in grows, for inputs "
                           f"distributed as {', '.join(CLT_DISTS)} (random weights; the page's default choice)."))
        out.append(_Figure("fig_bimodal", "A bimodal input through BN",
                           figures.bimodal_demo(clt.bimodal_through_bn(seed=cfg.seed)),
                           "A bimodal layer input before and after batch normalization."))
    elif panel == "lr-range":
        notes.append("The learning-rate sweep (this network trained at 9 learning rates) is drawn on the page's "
                     "Learning rates panel from the server's store of finished runs; this handout holds one run.")
    return out, notes


def _bands(snaps, cfg, layer: int, unit: int, scrub: int | None) -> _Figure:
    return _Figure("fig_bands", "Figure 1 of Ioffe & Szegedy: percentiles of the activation input",
                   figures.percentile_bands(snaps, cfg.variants, layer, unit, scrub, noun=views.unit_noun(cfg),
                                            layer_name=cfg.layer_name(layer)),
                   f"15th, 50th and 85th percentiles and the 2–98% band of the activation input of "
                   f"{cfg.layer_name(layer)}, {unit_text(unit, views.unit_noun(cfg))}, over training; the dotted "
                   f"line marks step {scrub}.")


def _whatif(shown: Snapshot, variant: str, layer: int, cfg: ExperimentConfig) -> _Figure | str:
    """The what-if lab of the γ and β panel with (γ, β) = WHATIF on the first tracked unit's x̂."""
    st_x = views.stage_of(shown, variant, layer, "x_hat")
    if st_x is None:
        return f"No x̂ recorded for variant {variant} at step {shown.step}."
    tracked = [u for u in st_x.units if u != POOLED] or [POOLED]
    lab_unit, (g, b) = tracked[0], WHATIF
    sample = st_x.quantiles[st_x.units.index(lab_unit)].astype("float64")
    before, after = stats.normality(sample), stats.normality(g * sample + b)
    noun = views.unit_noun(cfg)
    return _Figure("fig_whatif", "What-if lab: your own γ and β",
                   figures.whatif(sample, g, b, before, after, noun=noun),
                   f"γ = {g:g}, β = {b:g} applied to the {len(sample)} stored quantiles of "
                   f"{unit_text(lab_unit, noun)}'s x̂ at step {shown.step}, variant {variant}: the histogram moves "
                   "and stretches, W and KL do not change.")


def _plot_html(f: _Figure) -> str:
    """A figure as a titled <figure>: an empty div, and its data as a JSON block drawn by SCRIPT."""
    fig = fit_title(f.fig, PRINT_WIDTH_PX)  # titles wrapped for paper: plotly clips what runs past its width
    fig.update_layout(template=TEMPLATE)
    payload = pio.to_json(fig, validate=False, pretty=False, remove_uids=True)
    payload = payload.replace("<", "\\u003c")  # never a "</script>" inside the block (plotly escapes it too)
    height = int(fig.layout.height or 450)
    return (f'<figure class="fig"><h3>{_e(f.heading)}</h3>'
            f'<div id="{_e(f.key)}" class="plot" style="height:{height}px"></div>'
            f'<script type="application/json" data-plot="{_e(f.key)}">{payload}</script>'
            f"<figcaption>{_e(f.caption)}</figcaption></figure>")


# ------------------------------------------------------------------------------------------ evidence

def _board_html(verdicts: list[claims.Verdict], across: Mapping[str, str]) -> str:
    rows = []
    for v in verdicts:
        line = across.get(v.claim)
        below = f'<div class="across">{_e(line)}</div>' if line else ""
        bg, fg = VERDICT_STYLE.get(v.verdict, ("#DDDDDD", "#000"))
        panel = C.PANELS.get(v.panel, v.panel)
        rows.append(
            f'<tr id="{_e(v.claim)}"><td>{_e(v.claim)}</td><td>{_e(v.title)}<br>'
            f'<span class="meta">shown in: {_e(panel)}</span></td>'
            f'<td><span class="badge" style="background:{bg};color:{fg}">{_e(v.verdict)}</span></td>'
            f"<td>{_e(v.figure)}</td><td>{_e(v.threshold)}</td><td>{_e(v.detail)}{below}</td></tr>")
    return ('<table class="board"><colgroup><col class="c-id"><col class="c-title"><col class="c-verdict">'
            '<col class="c-fig"><col class="c-rule"><col class="c-detail"></colgroup>'
            "<thead><tr><th>Claim</th><th>Title</th><th>Verdict</th><th>Measured figure</th><th>Rule</th>"
            "<th>Detail</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


# ------------------------------------------------------------------------------------------ the report

def html_report(snaps: tuple[Snapshot, ...], cfg: ExperimentConfig, *, panel: str, layer: int, unit: int,
                step: int, link: str | None = None, title: str | None = None,
                across: Mapping[str, str] | None = None) -> str:
    """One self-contained HTML page of the view (panel, layer, unit, step) of a run: figures, evidence board.

    ``snaps`` are the run's snapshots (the whole run: figures show all of it with the shown step marked,
    as the page does; the evidence board uses those up to ``step``). ``step`` picks the shown snapshot: the
    one at ``step``, else the last before it. ``layer`` is 0-based; ``unit`` is -1 (all units pooled) or a
    tracked unit of that layer. ``link`` (the share link) becomes an anchor if it is an http(s) URL. ``across``:
    claim id -> the line across seeds (``claims.across.lines``), printed under that claim's detail.
    Raises ValueError for an unknown panel, a layer the network lacks or an untracked unit.
    """
    if panel not in C.PANELS:
        raise ValueError(f"panel {panel!r} is not one of {', '.join(C.PANELS)}")
    if not 0 <= layer < len(cfg.widths):
        raise ValueError(f"layer {layer} is outside 0..{len(cfg.widths) - 1} (0-based hidden layer)")
    if unit != POOLED and unit not in cfg.tracked_units(layer):
        raise ValueError(f"unit {unit} is not tracked in layer {layer}: use -1 (pooled) or one of "
                         f"{', '.join(map(str, cfg.tracked_units(layer))) or 'none'}")
    snaps = tuple(snaps)
    shown = _shown(snaps, int(step))
    shown_step = shown.step if shown is not None else int(step)
    preset = _preset_of(cfg)
    run_name = cfg.watched.model if cfg.watched is not None else preset or "custom run"
    title = title if title is not None else f"bnviz report: {run_name}, step {shown_step:,}"

    figs, notes = _panel_figures(snaps, shown, cfg, panel, layer, unit)
    extra = []
    if panel != "training":
        extra += _panel_figures(snaps, shown, cfg, "training", layer, unit)[0]
    if panel != "over-time":
        extra.append(_bands(snaps, cfg, layer, unit, shown.step if shown is not None else None))
    verdicts = claims.evidence(tuple(s for s in snaps if s.step <= shown_step), cfg)

    js = plotly.offline.get_plotlyjs().replace("</script", "<\\/script")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    safe = _safe_link(link) if link is not None else None
    if link is None:
        link_html = ""
    elif safe is not None:
        link_html = f'<dt>Share link</dt><dd><a href="{_e(safe)}">{_e(safe)}</a></dd>'
    else:
        link_html = f"<dt>Share link</dt><dd>{_e(link)} <span class=\"meta\">(not an http(s) link)</span></dd>"
    view = (f"step {shown_step:,} of {cfg.steps:,}"
            + (" (no snapshot yet)" if shown is None else "")
            + (f"; {cfg.layer_name(layer)}, normalization layer {layer + 1} of {len(cfg.widths)}"
               if cfg.watched is not None else f"; layer {layer + 1} of {len(cfg.widths)}")
            + f"; {unit_text(unit, views.unit_noun(cfg))}; "
              f"panel {C.PANELS[panel]}")
    cfg_rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in describe_config(cfg))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="bnviz">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f'<header><p class="question">{_e(QUESTION)}</p><h1>{_e(title)}</h1>',
        f'<dl class="cfg"><dt>Shown</dt><dd>{_e(view)}</dd>{cfg_rows}{link_html}'
        f"<dt>Generated</dt><dd>{_e(now)} by bnviz</dd></dl></header>",
        f"<main><section id=\"panel\"><h2>{_e(C.PANELS[panel])}</h2>",
        *(f'<p class="note">{_e(n)}</p>' for n in notes),
        *(_plot_html(f) for f in figs),
    ]
    if panel == "evidence":
        parts.append('<p class="note">The evidence board is below.</p>')
    parts.append("</section>")
    if extra:
        names = [C.PANELS[k] for k in ("training", "over-time") if k != panel]
        parts.append(f'<section id="context"><h2>Also: {_e(" and ".join(names))}</h2>')
        parts += [_plot_html(f) for f in extra]
        parts.append("</section>")
    parts += [
        f'<section id="evidence"><h2>Evidence board</h2><p>Each verdict is computed from this run\'s numbers up '
        f"to step {_e(f'{shown_step:,}')}, by the rule stated beside it; a different run can give a different "
        "verdict.</p>",
        _board_html(verdicts, across or {}),
        "</section></main>",
        f"<script>{js}</script>",
        "<script>" + SCRIPT.replace("%(cfg)s", json.dumps(PLOTLY_CONFIG)).replace("%(pw)d", str(PRINT_WIDTH_PX))
        + "</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def report_filename(cfg: ExperimentConfig, step: int) -> str:
    """A safe ASCII file name for the report, e.g. ``bnviz-report-digits-seed0-step5000.html``."""
    dataset = re.sub(r"[^A-Za-z0-9_-]+", "-", cfg.dataset).strip("-") or "run"
    return f"bnviz-report-{dataset}-seed{int(cfg.seed)}-step{max(0, int(step))}.html"
