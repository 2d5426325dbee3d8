"""No label is cut at a projector's size: at 1280x800, with and without presenter mode, every panel, every lesson
step and the evidence board show their buttons, toggles, radio and checkbox labels, select values, multiselect
chips and panel tabs in full. Their charts keep title, legend and cells apart, inside the chart, with presenter
mode's larger fonts too. A screenshot of each view goes under test-output/screenshots/labels/."""

from __future__ import annotations

import pytest

from bnviz import config as C
from bnviz.present import lessons
from bnviz.present.style import PRESENT_SCALE, THEME_TICK

from .harness import open_app

pytestmark = pytest.mark.e2e

# What shows that a panel's own content has been drawn (its last widget, or its chart when it has none).
DRAWN = {"training": ".st-key-fig_training", "layer": ".st-key-fig_layer", "over-time": ".st-key-heat_stage",
         "gamma-beta": ".st-key-lab_beta", "normality": ".st-key-qq_stage", "stability": ".st-key-fig_stab",
         "why-gaussian": ".st-key-clt_sparse", "lr-range": ".st-key-lr_sweep",
         "evidence": ".st-key-goto_C8, .st-key-preset_C8"}

# Every text of a labelled control, measured where the browser laid it out: a text is cut when it reaches past
# the box of an ancestor that clips it (overflow other than visible, as an ellipsis needs), within the control's
# own element. Each finding: what kind of control, its whole text, and how many pixels of the text are hidden.
CUT_LABELS = """() => {
  const kinds = {button: 'button', toggle: '[data-testid=stCheckbox] label', radio: '[data-testid=stRadio] label',
                 select: '[data-testid=stSelectbox]', chip: '[data-testid=stMultiSelect]',
                 tab: '[data-baseweb=tab]'};
  const found = [];
  const report = (kind, text, hidden) => found.push({kind, text: text.trim(), hidden: Math.round(hidden)});
  for (const [kind, selector] of Object.entries(kinds)) {
    for (const root of document.querySelectorAll(selector)) {
      if (!root.checkVisibility() || root.closest('[data-stale=true]')) continue;
      // A select shows its value in an input, which scrolls what does not fit out of sight.
      for (const input of root.querySelectorAll('input')) {
        const over = input.scrollWidth - input.clientWidth;
        if (input.value && over > 1) report(kind, input.value, over);
      }
      const owner = root.closest('[data-testid=stElementContainer]') || root;
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const text = range.getBoundingClientRect();
        if (!text.width) continue;
        for (let box = node.parentElement; box; box = box.parentElement) {
          const style = getComputedStyle(box);
          if (style.overflowX !== 'visible' || style.textOverflow === 'ellipsis') {
            const r = box.getBoundingClientRect();
            // A box that fades its right edge out (a multiselect's chips) hides what lies under the fade.
            const fade = +((style.maskImage.match(/calc\\(100% - (\\d+)px\\)/) || [0, 0])[1]);
            const left = r.left + box.clientLeft, right = left + box.clientWidth - fade;
            const top = r.top + box.clientTop, bottom = top + box.clientHeight;
            const hidden = Math.max(text.right - right, left - text.left, text.bottom - bottom, top - text.top);
            if (hidden > 1) {
              report(kind, node.textContent, hidden);
              break;
            }
          }
          if (box === owner) break;
        }
      }
    }
  }
  return found;
}"""


# Every chart's title, legend and cells as the browser drew them: the title above the legend, the legend above the
# cells and their titles, both inside the chart; and the tick labels' font size, in pixels.
CHART_LAYOUT = """() => {
  const found = [];
  const rect = e => { const r = e && e.getBoundingClientRect(); return r && r.width && r.height ? r : null; };
  for (const chart of document.querySelectorAll('[data-testid=stPlotlyChart]')) {
    if (!chart.checkVisibility() || chart.closest('[data-stale=true]')) continue;
    const frame = rect(chart.querySelector('svg.main-svg'));
    const cells = [...chart.querySelectorAll('.draglayer .nsewdrag')].map(rect).filter(Boolean);
    if (!frame || !cells.length) continue;
    const name = ((chart.querySelector('.gtitle') || {}).textContent || '(untitled)').slice(0, 60);
    const top = Math.min(...cells.map(c => c.top));
    const title = rect(chart.querySelector('.gtitle')), legend = rect(chart.querySelector('.legend'));
    const heads = [...chart.querySelectorAll('g.annotation')].map(rect).filter(r => r && r.bottom <= top + 2);
    const above = Math.min(top, ...heads.map(r => r.top));  // where the cells and their titles begin
    const overlaps = [];
    const bad = (what, px) => { if (px > 1) overlaps.push(`${what} by ${Math.round(px)} px`); };
    if (title) {
      bad('title beyond the chart', Math.max(title.right - frame.right, frame.top - title.top));
      bad('title over the legend or cells', legend ? title.bottom - legend.top : title.bottom - above);
    }
    if (legend) {
      bad('legend beyond the chart', legend.right - frame.right);
      bad('legend over the cells', legend.bottom - above);
    }
    // The largest: a log axis writes its minor digits smaller.
    const ticks = [...chart.querySelectorAll('.xtick text, .ytick text')].map(
        t => parseFloat(getComputedStyle(t).fontSize));
    found.push({chart: name, overlaps, tick: ticks.length ? Math.max(...ticks) : null});
  }
  return found;
}"""


def settle(page, drawn: str) -> None:
    """Wait until ``drawn`` is on the page and nothing shown is left over from the previous view."""
    page.wait_for_selector(".st-key-status", timeout=60_000)
    page.wait_for_selector(f"{drawn} >> visible=true", timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-stale=true]')", timeout=30_000)


def problems(page, view: str, present: bool, out_dir) -> list[dict]:
    """Every cut label of the view, every chart whose title, legend and cells overlap, and in presenter mode
    every chart whose tick labels are not enlarged."""
    page.screenshot(path=str(out_dir / "screenshots" / "labels" / f"{view}.png"))
    found = [dict(view=view, **c) for c in page.evaluate(CUT_LABELS)]
    tick = THEME_TICK * (PRESENT_SCALE if present else 1)  # what Streamlit's theme draws, times the scale
    for chart in page.evaluate(CHART_LAYOUT):
        if chart["overlaps"]:
            found.append(dict(view=view, chart=chart["chart"], overlaps=chart["overlaps"]))
        if chart["tick"] is not None and abs(chart["tick"] - tick) > 0.5:
            found.append(dict(view=view, chart=chart["chart"], tick_px=chart["tick"], expected=tick))
    return found


@pytest.mark.parametrize("present", [False, True], ids=["page", "presenter"])
def test_no_label_is_cut_and_no_chart_overlaps_at_1280x800(page, server, out_dir, present):
    (out_dir / "screenshots" / "labels").mkdir(parents=True, exist_ok=True)
    mode = "&present=1" if present else ""
    suffix = "-present" if present else ""
    found = []
    open_app(page, f"{server}/?panel=training{mode}")
    for panel, label in C.PANELS.items():  # one session: a click on the panel's tab opens it
        page.locator("[data-testid=stButtonGroup] button").filter(has_text=label).first.click()
        settle(page, DRAWN[panel])
        found += problems(page, f"panel-{panel}{suffix}", present, out_dir)
    for step in lessons.STEPS:
        open_app(page, f"{server}/?lesson={step.number}{mode}")
        page.wait_for_selector(".st-key-lesson button", timeout=60_000)
        settle(page, DRAWN[step.panel])
        found += problems(page, f"lesson-{step.number}{suffix}", present, out_dir)
    assert not found, "at 1280x800:\n" + "\n".join(map(str, found))
