"""Presenter mode's figures (style.presented) against the figures they scale, and lines told apart without color:
each stage by its own dash and marker with its own legend entry, γ and β's legend one entry per kind of line,
and an infinite KL written in words where nothing can be drawn."""

import math
import re

import numpy as np
import pytest

from bnviz.config import STAGES
from bnviz.measure.snapshot import POOLED
from bnviz.present import figures, views
from bnviz.present.style import (
    LEGEND_ROW,
    MARKERS_SHOWN,
    PLOTLY_LINE,
    PLOTLY_MARKER,
    PRESENT_SCALE,
    STAGE_DASHES,
    STAGE_MARKERS,
    STAGE_SYMBOLS,
    THEME_AXIS_TITLE,
    THEME_TICK,
    described,
    figure,
    presented,
)

from ..helpers import SMALL


def some_figures(small):
    """Figures with every kind of element: legends, cell titles and notes, shapes, markers, text, a color bar."""
    return {"gamma_beta": figures.gamma_beta(small, "bn", 0),
            "normality": figures.normality_over_time(small, "bn", 1, 0),
            "bands": figures.percentile_bands(small, SMALL.variants, 0, scrub_step=10),
            "histograms": figures.layer_histograms(small[-1], SMALL.variants, 0),
            "heatmap": figures.histogram_heatmap(small, "bn", 0, "x", POOLED, 10),
            "stability": figures.stability(small, SMALL.variants, 1),
            "smoothness": figures.smoothness(small, SMALL.variants),
            "waiting": figures.training((), SMALL.variants)}


def px(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"font-size:\s*([0-9.]+)px", text or "")]


def near(a, b) -> bool:
    return math.isclose(a, b, rel_tol=1e-9)


@pytest.mark.parametrize("name", ["gamma_beta", "normality", "bands", "histograms", "heatmap", "stability",
                                  "smoothness", "waiting"])
def test_presented_enlarges_every_font_line_and_marker_by_the_scale(small, name):
    fig = some_figures(small)[name]
    big = presented(fig)
    s, lay, out = PRESENT_SCALE, fig.layout, big.layout
    assert s > 1
    assert near(out.font.size, lay.font.size * s)
    assert near(out.title.font.size, lay.title.font.size * s)
    assert px(out.title.text) == [v * s for v in px(lay.title.text)]  # the note line under the title
    assert near(out.legend.font.size, lay.legend.font.size * s)
    assert near(out.hoverlabel.font.size, lay.hoverlabel.font.size * s)
    for a, b in zip(lay.annotations, out.annotations, strict=True):
        assert near(b.font.size, (a.font.size or lay.font.size) * s), a.text
    for a, b in zip(lay.shapes, out.shapes, strict=True):
        assert near(b.line.width, (a.line.width or PLOTLY_LINE) * s)
    axes = [k for k in lay.to_plotly_json() if re.fullmatch(r"[xy]axis\d*", k)]
    assert axes
    for key in axes:  # where a figure sets no size, the page draws Streamlit's theme sizes
        assert near(out[key].tickfont.size, (lay[key].tickfont.size or THEME_TICK) * s), key
        assert near(out[key].title.font.size, (lay[key].title.font.size or THEME_AXIS_TITLE) * s), key
    for a, b in zip(fig.data, big.data, strict=True):
        mode = getattr(a, "mode", None) or ""
        if "lines" in mode:
            assert near(b.line.width, (a.line.width if a.line.width is not None else PLOTLY_LINE) * s), a.name
        if "markers" in mode:
            np.testing.assert_allclose(b.marker.size, np.asarray(a.marker.size or PLOTLY_MARKER) * s)
        if "text" in mode:
            assert near(b.textfont.size, (a.textfont.size or lay.font.size) * s)
        if a.type == "heatmap":
            assert near(b.colorbar.thickness, a.colorbar.thickness * s)
            assert near(b.colorbar.tickfont.size, THEME_TICK * s)
        for key in ("x", "y", "z"):  # the data are the same
            if isinstance(getattr(a, key, None), np.ndarray):
                np.testing.assert_array_equal(getattr(b, key), getattr(a, key))


@pytest.mark.parametrize("name", ["gamma_beta", "normality", "histograms", "waiting"])
def test_presented_grows_the_title_block_and_margins_with_the_fonts(small, name):
    fig = some_figures(small)[name]
    big = presented(fig)
    s, lay, out = PRESENT_SCALE, fig.layout, big.layout
    for side in "lrb":
        assert near(out.margin[side], lay.margin[side] * s)
    assert out.margin.t >= lay.margin.t * s  # and more if the larger legend needs another row
    # The cells keep their height: the figure grows by exactly what its margins gained.
    assert near(out.height - out.margin.t - out.margin.b, lay.height - lay.margin.t - lay.margin.b)
    # The title and the legend start s times further from the top (container coordinates count from the bottom),
    # the title 3 px more (plotly draws a larger first line further above its place).
    assert near((1 - out.title.y) * out.height, (1 - lay.title.y) * lay.height * s + 3)
    assert near((1 - out.legend.y) * out.height, (1 - lay.legend.y) * lay.height * s)
    if lay.showlegend:
        assert (1 - out.legend.y) * out.height < out.margin.t  # the legend starts inside the top margin


def test_presented_copies_and_keeps_the_plain_title_for_lessons(small):
    fig = figures.gamma_beta(small, "bn", 0)
    before = fig.to_json()
    big = presented(described(fig))
    assert fig.to_json() == before  # the input is not changed
    assert big.layout.title.text.split("<br>")[0] == fig.layout.meta["describe"].split("<br>")[0]
    assert px(big.layout.title.text) == [v * PRESENT_SCALE for v in px(fig.layout.meta["describe"])]


def test_a_legend_that_needs_more_rows_at_the_larger_font_gets_them():
    many = [dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name=f"a long legend entry number {i}")
            for i in range(12)]
    fig = figure(many, dict(xaxis={}, yaxis={}), "title", height=400)
    # 12 entries of ~26 characters: ~3 rows at 1000 px, ~5 at 1000 / 1.4 px (see style._legend_rows).
    px_needed = sum(40 + 7.5 * len(t["name"]) for t in many)
    extra = math.ceil(px_needed / int(1000 / PRESENT_SCALE)) - math.ceil(px_needed / 1000)
    assert extra > 0
    grown = fig.layout.margin.t * PRESENT_SCALE + extra * LEGEND_ROW * PRESENT_SCALE
    assert near(presented(fig).layout.margin.t, grown)


# ------------------------------------------------------------------------------ told apart without color

def test_every_stage_has_its_own_dash_and_marker():
    assert set(STAGE_DASHES) == set(STAGE_MARKERS) == set(STAGES)
    pairs = {(STAGE_DASHES[s], STAGE_MARKERS[s]) for s in STAGES}
    assert len(pairs) == len(STAGES)
    assert len(set(STAGE_DASHES.values())) == len(STAGE_DASHES)  # each alone tells them apart too
    assert len(set(STAGE_MARKERS.values())) == len(STAGE_MARKERS)


def test_normality_draws_each_stage_with_its_dash_and_marker_and_one_legend_entry(small):
    fig = figures.normality_over_time(small, "bn", 1, 0)
    legend = [t for t in fig.data if t.showlegend is not False and t.name]
    assert [t.name for t in legend] == [STAGE_SYMBOLS[s] for s in STAGES]  # one entry per stage, in order
    marked = {}
    for stage in STAGES:
        lines = [t for t in fig.data if t.legendgroup == stage]
        assert len(lines) == 2  # its W and its KL, one legend entry for both
        for t in lines:
            assert (t.line.dash, t.marker.symbol) == (STAGE_DASHES[stage], STAGE_MARKERS[stage])
            assert "markers" in t.mode and t.unselected.marker.opacity == 0  # only the selected points show one
        marked[stage] = set(lines[0].selectedpoints)
        assert marked[stage] == set(lines[1].selectedpoints)
        assert 1 <= len(marked[stage]) <= min(MARKERS_SHOWN + 1, len(small) / 2)  # thinned, not one per snapshot
    # Lines on top of each other (x, x̂ and y under BN) show each stage's symbol: no point is marked twice.
    assert sum(map(len, marked.values())) == len(set().union(*marked.values()))


def test_gamma_beta_gives_each_kind_of_line_its_own_legend_entry_and_look(small):
    fig = figures.gamma_beta(small, "bn", 0)
    legend = [t for t in fig.data if t.showlegend is not False and t.name]
    names = [t.name for t in legend]
    assert len(names) == len(set(names)) == 5, names
    assert any(n.startswith("all ") for n in names) and "tracked units" in names
    assert {"change of W", "change of γ", "change of β"} <= set(names)
    looks = {(t.line.color, t.line.width, t.line.dash or "solid", t.marker.symbol if "markers" in t.mode else None)
             for t in legend}
    assert len(looks) == len(legend)  # no two entries drawn alike


def said_infinite(notes: str) -> dict:
    """Stage symbol -> "every step" or "N of M steps", read back from the KL cell's sentences."""
    said = {}
    for names, when in re.findall(r"KL of ([^:<]+): ∞ at (every step|\d+ of \d+ steps)", notes):
        for sym in re.split(r", | and ", names):
            said[sym] = when
    return said


def test_an_infinite_kl_is_said_in_words(others):
    """bn@after standardizes a ReLU's output, a point mass at its zeros: KL = ∞ where nothing can be drawn."""
    fig = figures.normality_over_time(others, "bn@after", 0)
    notes = " ".join(a.text for a in fig.layout.annotations)
    expected = {}
    for stage in STAGES:
        kl = views.unit_stat(others, "bn@after", 0, stage, "kl_gaussian", POOLED)
        n = int(np.isinf(kl).sum())
        if n:
            expected[STAGE_SYMBOLS[stage]] = "every step" if n == len(kl) else f"{n} of {len(kl)} steps"
    assert "every step" in expected.values() and any(w != "every step" for w in expected.values()), \
        f"bn@after was expected to have a KL that is ∞ at every step and one that is ∞ at some: {expected}"
    assert said_infinite(notes) == expected
    assert "point mass" in notes
    finite = figures.normality_over_time(others, "bn_noaffine", 0)  # only a is ∞ there
    assert said_infinite(" ".join(a.text for a in finite.layout.annotations)) == {"a": "every step"}
