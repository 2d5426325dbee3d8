"""Lessons at a projector's size (1280x800), with and without presenter mode: every lesson control reads in
full, and the question and the chart it asks about are on screen together, before and after Reveal. A
screenshot of each step before and after Reveal is kept under test-output/screenshots/."""

from __future__ import annotations

import pytest

from bnviz.present import lessons
from bnviz.ui.classroom import FOCUS

from .harness import open_app

pytestmark = pytest.mark.e2e
VIEWPORT = {"width": 1280, "height": 800}

# Each lesson button's label and whether its text is cut (an element narrower than what it holds).
CONTROLS = """() => [...document.querySelectorAll('.st-key-lesson button')].map(b => ({
    label: b.innerText.split('\\n').pop().trim(),
    cut: [b, ...b.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)}))"""
# Top and bottom on the screen of an element, in px.
BOX = "(e) => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; }"
# Top and bottom on the screen of each row of plot cells whose y-axis title names ``label``, as plotly laid
# them out (the axis' offset and length in the chart), with how many bar traces each row draws.
ROWS = """([e, label]) => { const gd = e.querySelector('.js-plotly-plot'), top = gd.getBoundingClientRect().top;
  return Object.values(gd._fullLayout).filter(a => a && a._id && a._id[0] === 'y' &&
      ((a.title && a.title.text) || '').split('<br>')[0] === label)
    .map(a => [top + a._offset, top + a._offset + a._length,
               gd._fullData.filter(t => t.yaxis === a._id && t.type === 'bar').length]); }"""


def on_screen(page, locator) -> tuple[float, float]:
    top, bottom = locator.evaluate(BOX)
    assert 0 <= top < bottom <= VIEWPORT["height"], (top, bottom)
    return top, bottom


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
        chart = page.locator(f".st-key-{FOCUS[step.claim]} [data-testid=stPlotlyChart]")
        chart.wait_for(timeout=60_000)  # the step's chart, once the run has the snapshots it draws
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length", timeout=30_000)
        assert labels(page) == {"Back", "Next", "Close", "Reveal the answer"}, step.number
        question = page.locator(".st-key-lesson_question")
        assert step.question.split()[0] in question.inner_text()
        q_top, q_bottom = on_screen(page, question)
        c_top, c_bottom = on_screen(page, chart)
        assert q_bottom <= c_top, (step.number, q_bottom, c_top)  # the chart under its question
        if step.claim == "C3":  # the BN row of the histograms, with its bars, inside the window
            (row,) = page.evaluate(ROWS, [chart.element_handle(), "BN"])
            assert c_top <= row[0] < row[1] <= c_bottom and row[2] == 4, row
        page.screenshot(path=str(out_dir / "screenshots" / f"{name}.png"))

        page.locator(".st-key-reveal_btn button").click()
        answer = page.locator(".st-key-lesson [data-testid=stAlert]")
        answer.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # the charts redrawn with their concluding titles
        assert labels(page) == {"Back", "Next", "Close", "Follow training"}, step.number  # the step held
        on_screen(page, question)
        on_screen(page, answer)
        assert chart.evaluate(BOX)[0] < VIEWPORT["height"]  # the chart starts on the screen under the answer
        held = answer.inner_text(), chart.locator(".gtitle").first.text_content()
        page.wait_for_timeout(2500)  # refreshes come and go while the run trains on
        assert (answer.inner_text(), chart.locator(".gtitle").first.text_content()) == held, step.number
        page.screenshot(path=str(out_dir / "screenshots" / f"{name}-revealed.png"))
        page.context.close()
