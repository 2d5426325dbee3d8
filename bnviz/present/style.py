"""The shared look of every bnviz figure: colors and labels per variant, the cell grid, the title block, and
the small traces (densities, Gaussians, notes) that figures are built from.

Pure: data in, plotly dicts and Figures out; no streamlit, no I/O. :mod:`distributions` and :mod:`figures`
build on this module, and :mod:`report` and :mod:`lessons` take their labels from it.

Choices that hold in every figure, and why:

- one Okabe-Ito color per variant token (:func:`variant_color`), colorblind-safe and the same everywhere;
- no template and no text color are set: Streamlit's theme supplies both, light or dark; backgrounds are
  transparent and the Gaussian reference is a mid grey that reads on either;
- axes are laid out by hand (:func:`grid`): ``make_subplots`` costs 10-20 ms, most of the budget of a
  figure rebuilt twice a second;
- trace arrays are float32 (plotly sends them as base64 typed arrays, a quarter of the JSON of decimal
  floats) and histograms go out binned, never as samples.
"""

from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pandas  # noqa: F401  (see below)
import plotly.graph_objects as go

# pandas is imported here, before any figure is built, because plotly checks values against pandas types
# through sys.modules: if another thread of the server (a download, say) were importing pandas for the
# first time at that moment, plotly would find it half initialized and fail. Imported once, here, it is
# complete before any page draws.
from bnviz import stats
from bnviz.config import split_variant
from bnviz.measure.snapshot import POOLED
from bnviz.present import numbers, views

# --------------------------------------------------------------------------------------------- style

KIND_COLORS = {"none": "#D55E00", "bn": "#0072B2", "bn_noaffine": "#009E73", "bn_noisy": "#CC79A7",
               "ln": "#E69F00",  # Okabe & Ito (2008), "Color Universal Design"
               # the shape variants: violet, brown, magenta, chosen to stay apart (CIELAB distance > 13) from
               # the colors above under simulated deuteranopia, protanopia and tritanopia, and readable on
               # light and dark backgrounds
               "bn_gauss": "#7F3C8D", "bn_uniform": "#8C564B", "bn_laplace": "#AA3377"}
AFTER_COLOR = "#56B4E9"  # sky blue: normalization placed after the activation
OTHER_COLOR = "#999999"
KIND_LABELS = {"none": "no norm", "bn": "BN", "bn_noaffine": "BN, γ=1 β=0", "bn_noisy": "noisy BN",
               "ln": "LayerNorm", "bn_gauss": "BN→Gauss", "bn_uniform": "BN→uniform", "bn_laplace": "BN→Laplace"}
GREY = "rgba(128,128,128,0.9)"  # references (Gaussian, y = x, scrub line): mid grey reads on light and dark
CLEAR = "rgba(0,0,0,0)"
FONT = 14
WAITING = "waiting for the first snapshot…"
LEGEND_ROW = 30  # pixels per row of a horizontal legend whose entries show markers (measured in Chromium)
STAGE_TITLES = {"x": "x = Wu+b", "x_hat": "x̂ (standardized)", "y": "y = γx̂+β", "a": "a = act(y)"}
STAGE_SYMBOLS = {"x": "x", "x_hat": "x̂", "y": "y", "a": "a"}
# How a stage's line is told apart from the others' in the variant's one color, in grey too: a dash and a marker.
STAGE_DASHES = {"x": "solid", "x_hat": "dash", "y": "dot", "a": "dashdot"}
STAGE_MARKERS = {"x": "circle", "x_hat": "square", "y": "diamond", "a": "triangle-up"}
MARKERS_SHOWN = 9  # markers per marked line: enough to follow it, few enough that coincident lines stay apart


def variant_color(token: str) -> str:
    """The one color of variant ``token`` in every chart (Okabe-Ito; ``@after`` tokens sky blue)."""
    kind, placement = split_variant(token)
    if placement == "after":
        return AFTER_COLOR
    return KIND_COLORS.get(kind, OTHER_COLOR)


def variant_label(token: str) -> str:
    """Short human name of variant ``token``, e.g. ``"BN"`` or ``"BN (after act.)"``."""
    kind, placement = split_variant(token)
    label = KIND_LABELS.get(kind, kind)
    return label + (f" ({placement} act.)" if placement else "")


def rgba(color: str, alpha: float) -> str:
    """``#RRGGBB`` as an ``rgba(...)`` string with opacity ``alpha``."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"


def f32(values, positive: bool = False) -> np.ndarray:
    """Trace data as float32 with every non-finite value (and, for log axes, every value <= 0) as NaN."""
    a = np.array(values, dtype=np.float64)
    bad = ~np.isfinite(a)
    if positive:
        bad |= ~(a > 0)
    a[bad] = np.nan
    return a.astype(np.float32)


fmt_kl = numbers.kl  # a KL on a chart: ∞ for a point mass
fmt_wpk = numbers.wpk  # the normality line written on every histogram


def axis(k: int) -> tuple[str, str]:
    """Trace references ("x3", "y3") of the k-th cell (1-based, row-major) of a :func:`grid`."""
    return ("x", "y") if k == 1 else (f"x{k}", f"y{k}")


def grid(rows: int, cols: int, titles=(), hgap: float = 0.07, vgap: float = 0.12,
         share_y: bool = False) -> tuple[dict, list[dict]]:
    """Layout axes of a rows x cols grid of cells, and their title annotations (see the module notes)."""
    w, h = (1 - hgap * (cols - 1)) / cols, (1 - vgap * (rows - 1)) / rows
    axes, notes = {}, []
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c + 1
            xa, ya = axis(k)
            x0, y1 = c * (w + hgap), 1 - r * (h + vgap)
            # Clipped: the sums above can land a rounding error outside [0, 1], which plotly rejects.
            axes["xaxis" + xa[1:]] = dict(domain=[max(x0, 0.0), min(x0 + w, 1.0)], anchor=ya, automargin=True)
            axes["yaxis" + ya[1:]] = dict(domain=[max(y1 - h, 0.0), min(y1, 1.0)], anchor=xa, automargin=True)
            if share_y and c:  # same scale in every column, so the eye compares heights directly
                axes["yaxis" + ya[1:]].update(matches=axis(r * cols + 1)[1], showticklabels=False)
            if k <= len(titles) and titles[k - 1]:
                notes.append(dict(text=titles[k - 1], x=x0 + w / 2, y=y1, xref="paper", yref="paper",
                                  xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=FONT)))
    return axes, notes


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` characters: plotly does not wrap titles, and the page may be narrow."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _head_px(lines: int, notes: int) -> int:
    """Pixels the title block takes: title lines (the longer of the title and its plain twin), then notes."""
    return 12 + 22 * lines + 18 * notes


def _note_line(text: str) -> str:
    return f"<span style='font-size:13px'>{text}</span>"


def _legend_rows(traces, width_px: int = 1000) -> int:
    """Rows the horizontal legend needs at about ``width_px`` (~7.5 px a character, 40 px per symbol)."""
    px = sum(40 + 7.5 * len(t.get("name") or "") for t in traces if t.get("showlegend", True) and t.get("name"))
    return max(1, math.ceil(px / width_px))


def figure(traces, axes: dict, title: str, note: str = "", height: int = 380, annotations=(), shapes=(),
           cell_titles: bool = False, legend: bool = True, describe: str | None = None, plain_note: str = "",
           **layout) -> go.Figure:
    """Assemble a figure in the shared style: title, a line of measured numbers, legend, then the cells.

    ``title`` may state what the figure shows about the run (a conclusion) and ``note`` the numbers behind it;
    ``describe`` and ``plain_note`` then say only what is drawn, for a class that is asked to find the
    conclusion itself (:func:`described`).
    """
    lines = _wrap(title, 84)
    plain = _wrap(describe or title, 84)
    notes = _wrap(note, 120) if note else []
    plain_notes = _wrap(plain_note, 120) if plain_note else []
    head = _head_px(max(len(lines), len(plain)), max(len(notes), len(plain_notes)))
    top = head + (_legend_rows(traces) * LEGEND_ROW + 4 if legend else 0) + (24 if cell_titles else 0)
    text = "<br>".join(lines + [_note_line(n) for n in notes])
    base = dict(
        height=height, margin=dict(l=60, r=16, t=top, b=50),
        meta=dict(describe="<br>".join(plain + [_note_line(n) for n in plain_notes])),
        paper_bgcolor=CLEAR, plot_bgcolor=CLEAR, font=dict(size=FONT),
        # plotly places a title's first line a few pixels above the requested top: start 16 px down.
        title=dict(text=text, x=0, xref="paper", xanchor="left", y=1 - 16 / height, yref="container",
                   yanchor="top", font=dict(size=FONT + 3)),
        showlegend=legend, bargap=0,
        legend=dict(orientation="h", x=0, xanchor="left", y=1 - (head + 2) / height, yref="container",
                    yanchor="top", font=dict(size=FONT - 1)),
        annotations=list(annotations), shapes=list(shapes), hoverlabel=dict(font=dict(size=FONT - 1)),
    )
    base.update(axes)
    base.update(layout)
    return go.Figure(data=list(traces), layout=base)


def described(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` whose title says what is drawn, without the conclusion (see :func:`figure`)."""
    plain = go.Figure(fig)
    plain.layout.title.text = fig.layout.meta["describe"]
    return plain


def fit_title(fig: go.Figure, width_px: int) -> go.Figure:
    """A copy of ``fig`` (built by :func:`figure`) with its title block wrapped again for a chart
    ``width_px`` wide, such as a printed page: the title, its plain twin, the notes and the legend take as
    many lines as they need there, and the top margin and the height grow by as much, so the cells keep
    their size. A figure not built by :func:`figure` comes back unchanged."""
    lay = fig.layout
    describe = (lay.meta or {}).get("describe") if isinstance(lay.meta, dict) else None
    if not lay.title.text or describe is None:
        return go.Figure(fig)

    def split(text: str) -> tuple[list[str], list[str]]:
        lines = text.split("<br>")
        notes = [x for x in lines if x.startswith("<span")]
        return [x for x in lines if not x.startswith("<span")], [x[x.index(">") + 1:-len("</span>")] for x in notes]

    (title, notes), (plain, plain_notes) = split(lay.title.text), split(describe)
    room = width_px - lay.margin.l - lay.margin.r
    # Wide-character estimates (DejaVu Sans, the fallback in headless Chromium): 8.6 px at the title's 17 px,
    # 6.4 px at the notes' 13 px.
    lines, plain2 = _wrap(" ".join(title), int(room / 8.6)), _wrap(" ".join(plain), int(room / 8.6))
    notes2 = _wrap(" ".join(notes), int(room / 6.4)) if notes else []
    plain_notes2 = _wrap(" ".join(plain_notes), int(room / 6.4)) if plain_notes else []
    old_head = _head_px(max(len(title), len(plain)), max(len(notes), len(plain_notes)))
    head = _head_px(max(len(lines), len(plain2)), max(len(notes2), len(plain_notes2)))
    traces = [t.to_plotly_json() for t in fig.data]
    grow = head - old_head
    if lay.showlegend is not False:
        grow += LEGEND_ROW * (_legend_rows(traces, room) - _legend_rows(traces))
    height = (lay.height or 450) + grow
    out = go.Figure(fig)
    out.update_layout(height=height, margin_t=lay.margin.t + grow,
                      title_text="<br>".join(lines + [_note_line(n) for n in notes2]), title_y=1 - 16 / height,
                      meta=dict(describe="<br>".join(plain2 + [_note_line(n) for n in plain_notes2])))
    if lay.legend.yref == "container":
        out.update_layout(legend_y=1 - (head + 2) / height)
    return out


# --------------------------------------------------------------------------------------- presenter mode

PRESENT_SCALE = 1.4  # presenter mode: fonts, lines, markers and the title block, for the back row of a class
# Sizes the page draws where a figure sets none: Streamlit's chart theme puts ticks at 12 px and axis titles at
# 14 px; plotly draws lines 2 px wide and markers 6 px across.
THEME_TICK, THEME_AXIS_TITLE, PLOTLY_LINE, PLOTLY_MARKER = 12, 14, 2, 6
PLOTLY_MARGIN = dict(l=80, r=80, t=100, b=80)
_PX = re.compile(r"font-size:\s*([0-9.]+)px")


def _scaled(text, scale: float):
    """Inline ``font-size:Npx`` of an HTML text (the title's note line) times ``scale``."""
    if not isinstance(text, str):
        return text
    return _PX.sub(lambda m: f"font-size:{float(m.group(1)) * scale:g}px", text)


def _font(spec: dict, key: str, default: float, scale: float) -> None:
    """``spec[key]``'s font size (``default`` where unset) times ``scale``, set explicitly."""
    font = spec.setdefault(key, {})
    font["size"] = (font.get("size") or default) * scale


def _from_top(y, height: float, new_height: float, scale: float):
    """A container coordinate ``y`` whose distance from the top, in pixels, grows by ``scale``."""
    return y if y is None else 1 - (1 - y) * height * scale / new_height


def presented(fig: go.Figure, scale: float = PRESENT_SCALE) -> go.Figure:
    """A copy of ``fig`` for a projector: every font (title and its note line, ticks, axis titles, legend,
    annotations, hover, trace text, color bar), line width and marker size ``scale`` times larger.

    The title block, the legend's place and the margins grow with the fonts, and the figure grows by what its
    margins gained, so the cells keep their size and nothing overlaps or is cut."""
    spec = {"data": [t.to_plotly_json() for t in fig.data], "layout": fig.layout.to_plotly_json()}  # copies
    lay = spec["layout"]
    base = (lay.get("font") or {}).get("size") or FONT
    _font(lay, "font", base, scale)
    margin = lay.setdefault("margin", {})
    old = {side: margin.get(side, dflt) for side, dflt in PLOTLY_MARGIN.items()}
    margin.update({side: v * scale for side, v in old.items()})
    if lay.get("showlegend", True) is not False:  # a wider legend may need more rows than its margin holds
        extra = _legend_rows(spec["data"], int(1000 / scale)) - _legend_rows(spec["data"])
        margin["t"] += max(0, extra) * LEGEND_ROW * scale
    height = lay.get("height") or 450
    lay["height"] = height + (margin["t"] - old["t"]) + (margin["b"] - old["b"])
    title = lay.setdefault("title", {})
    _font(title, "font", base + 3, scale)
    title["text"] = _scaled(title.get("text"), scale)
    if title.get("yref") == "container":  # 3 px lower: plotly places a larger first line further above its y
        title["y"] = _from_top(title.get("y"), height, lay["height"], scale) - 3 / lay["height"]
    meta = lay.get("meta")
    if isinstance(meta, dict) and "describe" in meta:
        meta["describe"] = _scaled(meta["describe"], scale)
    legend = lay.setdefault("legend", {})
    _font(legend, "font", base, scale)
    if legend.get("yref") == "container":
        legend["y"] = _from_top(legend.get("y"), height, lay["height"], scale)
    _font(lay.setdefault("hoverlabel", {}), "font", base, scale)
    for note in lay.get("annotations", ()):
        _font(note, "font", base, scale)
        note["text"] = _scaled(note.get("text"), scale)
    for shape in lay.get("shapes", ()):
        line = shape.setdefault("line", {})
        line["width"] = (line.get("width") or PLOTLY_LINE) * scale
    for key, ax in lay.items():
        if re.fullmatch(r"[xy]axis\d*", key) and isinstance(ax, dict):
            _font(ax, "tickfont", THEME_TICK, scale)
            ax["title"] = {"text": ax["title"]} if isinstance(ax.get("title"), str) else ax.get("title") or {}
            _font(ax["title"], "font", THEME_AXIS_TITLE, scale)
    for trace in spec["data"]:
        _trace_presented(trace, base, scale)
    return go.Figure(spec)


def _trace_presented(trace: dict, base: float, scale: float) -> None:
    """One trace of :func:`presented`: its lines, markers, text and color bar ``scale`` times larger."""
    kind, mode = trace.get("type", "scatter"), trace.get("mode") or ""
    if kind in ("scatter", "scattergl"):
        if "lines" in mode or trace.get("fill"):
            line = trace.setdefault("line", {})
            line["width"] = (line.get("width") if line.get("width") is not None else PLOTLY_LINE) * scale
        if "markers" in mode:
            marker = trace.setdefault("marker", {})
            size = marker.get("size")
            marker["size"] = (np.asarray(size) * scale if isinstance(size, (list, tuple, np.ndarray))
                              else (size or PLOTLY_MARKER) * scale)
        if "text" in mode:
            _font(trace, "textfont", base, scale)
    marker_line = (trace.get("marker") or {}).get("line")
    if marker_line and marker_line.get("width"):
        marker_line["width"] *= scale
    if "colorbar" in trace:
        bar = trace["colorbar"]
        bar["thickness"] = (bar.get("thickness") or 30) * scale
        _font(bar, "tickfont", THEME_TICK, scale)
        bar["title"] = {"text": bar["title"]} if isinstance(bar.get("title"), str) else bar.get("title") or {}
        _font(bar["title"], "font", THEME_AXIS_TITLE, scale)


NO_DISTRIBUTIONS = "this file holds no distributions: record it with --quantiles"


def no_distributions(st, i: int) -> bool:
    """Whether row i of a StageStats has statistics but no distribution: a replayed table recorded without
    quantiles (bnviz.table.replay). A live run leaves out histograms only where the values were not finite."""
    return not st.hists and bool(np.isfinite(st.table[i]).any()) and not np.isfinite(st.quantiles[i]).any()


def message(text: str = WAITING, title: str = "", height: int = 300) -> go.Figure:
    """A figure holding only a centered message (no data yet, nothing to show)."""
    note = dict(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=FONT + 2))
    hidden = dict(visible=False)
    return figure([], dict(xaxis=hidden, yaxis=hidden), title, height=height, annotations=[note], legend=False)


def cell_note(axes: dict, k: int, text: str, x: float = 0.5, y: float = 0.5, size: int = FONT,
              color: str | None = None, **kw) -> dict:
    """An annotation at (x, y) in 0..1 of cell k, placed in paper coordinates (cells without traces have no
    axes to refer to)."""
    xa, ya = axis(k)
    (x0, x1), (y0, y1) = axes["xaxis" + xa[1:]]["domain"], axes["yaxis" + ya[1:]]["domain"]
    font = dict(size=size) if color is None else dict(size=size, color=color)
    return dict(text=text, x=x0 + x * (x1 - x0), y=y0 + y * (y1 - y0), xref="paper", yref="paper",
                showarrow=False, font=font, **kw)


def gauss_trace(x: np.ndarray, mean: float, std: float, k: int, show: bool) -> dict:
    """The dashed grey N(mean, std) density curve drawn over a histogram."""
    xa, ya = axis(k)
    return dict(type="scatter", x=f32(x), y=f32(views.gaussian_pdf(x, mean, std)), mode="lines",
                line=dict(color=GREY, dash="dash", width=2), name="Gaussian N(mean, std)",
                legendgroup="gauss", showlegend=show, hoverinfo="skip", xaxis=xa, yaxis=ya)


def density_bars(hist: stats.Histogram, color: str, k: int, name: str, show: bool = False,
                 alpha: float = 0.6) -> dict:
    """A stored histogram as density bars (views.density: counts / (total * width))."""
    xa, ya = axis(k)
    centers, dens = views.density(hist)
    return dict(type="bar", x=f32(centers), y=f32(dens), width=hist.width, name=name, legendgroup=name,
                showlegend=show, marker=dict(color=rgba(color, alpha), line=dict(width=0)),
                hovertemplate="%{x:.3g}: %{y:.3g}<extra></extra>", xaxis=xa, yaxis=ya)


# --------------------------------------------------------------------------- one snapshot, one layer

def unit_text(unit: int, noun: str = "unit") -> str:
    """How a unit is named in titles: ``unit 3``, or ``all units pooled`` for POOLED. ``noun``: what a unit is
    (views.unit_noun: ``channel`` in a conv network)."""
    return f"all {noun}s pooled" if unit == POOLED else f"{noun} {unit}"


def layer_text(layer: int, layer_name: str | None = None) -> str:
    """How a hidden layer is named in titles: ``layer_name`` (the caller's ``cfg.layer_name(layer)``: a watched
    module's path), else ``layer 2`` for the 0-based ``layer``."""
    return layer_name or f"layer {layer + 1}"
