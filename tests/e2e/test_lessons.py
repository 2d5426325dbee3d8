"""Lessons at a projector's size: every lesson control reads in full at 1280x800, with and without presenter
mode; a screenshot of each step is kept under test-output/screenshots/."""

from __future__ import annotations

import pytest

from bnviz.present import lessons

from .harness import open_app

pytestmark = pytest.mark.e2e

# Each lesson button's label and whether its text is cut (an element narrower than what it holds).
CONTROLS = """() => [...document.querySelectorAll('.st-key-lesson button')].map(b => ({
    label: b.innerText.split('\\n').pop().trim(),
    cut: [b, ...b.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)}))"""
LABELS = {"Back", "Next", "Close", "Reveal the answer from this run's numbers"}


@pytest.mark.parametrize("present", [False, True], ids=["page", "presenter"])
def test_every_lesson_control_reads_in_full_at_1280x800(page, server, out_dir, present):
    for step in lessons.STEPS:
        open_app(page, f"{server}/?lesson={step.number}" + ("&present=1" if present else ""))
        page.wait_for_selector(".st-key-status", timeout=30_000)  # the whole page, after its first frame
        page.wait_for_selector(".st-key-lesson button", timeout=30_000)
        controls = page.evaluate(CONTROLS)
        assert {c["label"] for c in controls} == LABELS, (step.number, controls)
        assert not [c for c in controls if c["cut"]], (step.number, controls)
        page.screenshot(path=str(out_dir / "screenshots" / f"lesson-{step.number}{'-present' if present else ''}.png"))
