"""Lessons at a projector's size (1280x800), with and without presenter mode: every lesson control reads in
full, and the question and the chart it asks about are on screen together, before and after Reveal. A
screenshot of each step before and after Reveal is kept under test-output/screenshots/."""

from __future__ import annotations

import pytest

from bnviz.config import PRESETS
from bnviz.present import lessons

from ..helpers import wait_for
from .harness import open_app, status_step

pytestmark = pytest.mark.e2e
VIEWPORT = {"width": 1280, "height": 800}

# Each lesson button's label and whether its text is cut (an element narrower than what it holds).
CONTROLS = """() => [...document.querySelectorAll('.st-key-lesson button')].map(b => ({
    label: b.innerText.split('\\n').pop().trim(),
    cut: [b, ...b.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)}))"""
# The chart under widget key ``key`` as plotly drew it: its top and bottom on the screen, its title, and per
# row of cells whose y-axis title starts with ``label``, the row's top and bottom (the axis' offset and length
# in the chart) and how many bar traces the row's cells draw. While Streamlit swaps a chart during a rerun,
# the outgoing copy lingers for a moment with no size: the drawn chart is the one with a height.
CHART = """([key, label]) => {
  const e = [...document.querySelectorAll(`.st-key-${key} [data-testid=stPlotlyChart]`)].find(
      e => e.getBoundingClientRect().height > 100 && e.querySelector('.main-svg .gtitle'));
  if (!e) return null;
  const gd = e.querySelector('.js-plotly-plot'), r = e.getBoundingClientRect(), top = gd.getBoundingClientRect().top;
  const ys = Object.values(gd._fullLayout).filter(a => a && a._id && a._id[0] === 'y');
  const rows = ys.filter(a => ((a.title && a.title.text) || '').split('<br>')[0] === label).map(a => {
    const row = ys.filter(b => b.domain[0] === a.domain[0] && b.domain[1] === a.domain[1]).map(b => b._id);
    return [top + a._offset, top + a._offset + a._length,
            gd._fullData.filter(t => row.includes(t.yaxis) && t.type === 'bar').length]; });
  return {box: [r.top, r.bottom], title: e.querySelector('.gtitle').textContent, rows}; }"""
# Top and bottom on the screen of an element, in px.
BOX = "(e) => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; }"


def drawn(page, key: str, label: str = "BN") -> dict:
    """The chart under ``key`` once plotly has drawn it (see CHART), read in the same evaluation that found it:
    a live rerun can swap the chart out between two separate evaluations."""
    return page.wait_for_function(CHART, arg=[key, label], timeout=60_000).json_value()


def in_window(box, what: str) -> None:
    assert 0 <= box[0] < box[1] <= VIEWPORT["height"], (what, box)


def labels(page) -> set[str]:
    controls = page.evaluate(CONTROLS)
    assert not [c for c in controls if c["cut"]], controls
    return {c["label"] for c in controls}


@pytest.mark.parametrize("present", [False, True], ids=["page", "presenter"])
def test_each_lesson_question_and_its_chart_share_the_screen_at_1280x800(browser, server, out_dir, present):
    for step in lessons.STEPS:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        name = f"lesson-{step.number}{'-present' if present else ''}"
        open_app(page, f"{server}/?lesson={step.number}" + ("&present=1" if present else ""))
        page.wait_for_selector(".st-key-status", timeout=30_000)  # the whole page, after its first frame
        # A few snapshots in, enough for every claim's verdict (claims.MIN_SNAPS, one every 25 steps); C10 also
        # needs its second smoothness measurement, at the gradient shift's cadence.
        cfg = PRESETS[step.preset].config
        needed = max(150, cfg.ics_every + cfg.snapshot_every) if step.claim == "C10" else 150
        assert wait_for(lambda page=page, needed=needed: status_step(page) >= needed
                        or "finished" in page.locator(".st-key-status").inner_text(), timeout=120)
        key = step.chart
        chart = drawn(page, key)
        page.wait_for_selector(".st-key-reveal_btn button", timeout=30_000)
        assert labels(page) == {"Back", "Next", "Close", "Reveal the answer"}, step.number
        question = page.locator(".st-key-lesson_question")
        assert step.question.split()[0] in question.inner_text()
        in_window(question.evaluate(BOX), f"question {name}")
        in_window(chart["box"], f"chart {name}")
        assert question.evaluate(BOX)[1] <= chart["box"][0], name  # the chart under its question
        if step.claim == "C3":  # the BN row of the histograms, with its four stages' bars, inside the window
            (row,) = chart["rows"]
            assert chart["box"][0] <= row[0] < row[1] <= chart["box"][1] and row[2] == 4, row
        page.screenshot(path=str(out_dir / "screenshots" / f"{name}.png"))

        page.locator(".st-key-reveal_btn button").click()
        answer = page.locator(".st-key-lesson [data-testid=stAlert]")
        answer.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # the charts redrawn with their concluding titles
        if step.claim == "C11" and "Not measured" in answer.inner_text():
            # no sweep of this network in the server's store: nothing to hold, the view keeps following training
            assert "Sweep the learning rate" in answer.inner_text()
            assert labels(page) == {"Back", "Next", "Close", "Hold this step"}, step.number
            in_window(answer.evaluate(BOX), f"answer {name}")
            page.context.close()
            continue
        assert labels(page) == {"Back", "Next", "Close", "Follow training"}, step.number  # the step held
        in_window(question.evaluate(BOX), f"question {name} revealed")
        in_window(answer.evaluate(BOX), f"answer {name}")
        held = answer.inner_text(), drawn(page, key)
        assert held[1]["box"][0] < VIEWPORT["height"], name  # the chart starts on the screen under the answer
        page.wait_for_timeout(2500)  # refreshes come and go while the run trains on
        again = answer.inner_text(), drawn(page, key)
        assert again[0] == held[0] and again[1]["title"] == held[1]["title"], name  # the step held
        page.screenshot(path=str(out_dir / "screenshots" / f"{name}-revealed.png"))
        page.context.close()
