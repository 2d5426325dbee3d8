"""The HTML report (the handout) in headless Chromium: it fits a 1280 px screen and an A4 page.

Widths are measured in the browser (bounding boxes of every element), against the screen's width and A4's
printable width worked out here from millimetres; the PDF is Chromium's own print of the file.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from bnviz import config as C
from bnviz import urlstate
from bnviz.measure.snapshot import POOLED
from bnviz.present import report

from ..helpers import SMALL

pytestmark = pytest.mark.e2e
SCREEN = {"width": 1280, "height": 800}
A4_MM = (210, 297)
PX_PER_MM = 96 / 25.4  # CSS pixels: 96 to the inch
# The preset whose description is longest: the widest line a header can have besides the share link.
LONGEST = max(C.PRESETS, key=lambda name: len(C.PRESETS[name].shows))
# Every element that sticks out past [0, width], as "tag.class left..right" (empty boxes left out, and plotly's
# text-measuring SVG, which it parks at x = -10000 where it is never seen or printed).
OVERFLOW_JS = """width => Array.from(document.querySelectorAll('body *')).filter(e => {
  if (e.closest('#js-plotly-tester')) return false;
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && (r.right > width + 0.5 || r.left < -0.5);
}).map(e => e.tagName + '.' + (e.className.baseVal ?? e.className) + ' ' + Math.round(e.getBoundingClientRect().left)
        + '..' + Math.round(e.getBoundingClientRect().right))"""
SVG_WIDTHS_JS = ("() => Array.from(document.querySelectorAll('.plot .main-svg'))"
                 ".map(s => s.getBoundingClientRect().width)")


def share_link(preset: str, cfg) -> str:
    """The link the page's address bar holds for ``cfg`` (the report's longest unbroken line)."""
    view = {"panel": "over-time", "layer": len(cfg.widths) - 1, "unit": POOLED}
    return "http://127.0.0.1:8501/?" + urlencode(urlstate.encode(preset, cfg, view), safe=",")


@pytest.fixture(scope="module")
def handouts(small_run, tmp_path_factory):
    """Report files: a short real run with its share link on every panel (named by the panel), and the preset
    with the longest description ("preset"; no snapshots yet: its header is what is measured)."""
    folder = tmp_path_factory.mktemp("handout")
    snaps = small_run.history.snapshots()
    texts = {panel: report.html_report(snaps, SMALL, panel=panel, layer=1, unit=POOLED, step=snaps[-1].step,
                                       link=share_link("ioffe", SMALL)) for panel in C.PANELS}
    cfg = C.PRESETS[LONGEST].config
    texts["preset"] = report.html_report((), cfg, panel="training", layer=0, unit=POOLED, step=0,
                                         link=share_link(LONGEST, cfg))
    paths = {}
    for name, text in texts.items():
        paths[name] = folder / f"{name}.html"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def open_report(browser, path, viewport):
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('.plot .main-svg').length > 0")
    return ctx, page


def printable_width_px(html: str) -> float:
    """A4's width less the left and right margins the report's @page rule asks for, in CSS pixels."""
    rule = re.search(r"@page\s*\{([^}]*)\}", html).group(1)
    assert re.search(r"size\s*:\s*A4", rule), rule
    margin = float(re.search(r"margin\s*:\s*([\d.]+)mm", rule).group(1))
    return (A4_MM[0] - 2 * margin) * PX_PER_MM


@pytest.mark.parametrize("which", [*C.PANELS, "preset"])
def test_the_handout_fits_a_1280_screen_without_scrolling_sideways(browser, handouts, which, out_dir):
    ctx, page = open_report(browser, handouts[which], SCREEN)
    try:
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= SCREEN["width"], f"the report is {width} px wide at a {SCREEN['width']} px viewport"
        assert page.evaluate(OVERFLOW_JS, SCREEN["width"]) == []
        link = page.locator("dd a").bounding_box()
        assert link["x"] + link["width"] <= SCREEN["width"]
        svgs = page.evaluate(SVG_WIDTHS_JS)
        body = page.evaluate("document.querySelector('main').getBoundingClientRect().width")
        assert svgs and all(body - 2 <= w <= body + 0.5 for w in svgs), (svgs, body)  # figures span the page
        page.screenshot(path=str(out_dir / "screenshots" / f"handout-{which}-1280.png"))
    finally:
        ctx.close()


@pytest.mark.parametrize("which", [*C.PANELS, "preset"])
def test_printed_on_a4_no_element_reaches_past_the_page(browser, handouts, which):
    html = handouts[which].read_text(encoding="utf-8")
    width = printable_width_px(html)
    ctx, page = open_report(browser, handouts[which], {"width": round(width), "height": 1000})
    try:
        page.emulate_media(media="print")
        # The figures are laid out again for paper: wait until every one fits the page.
        page.wait_for_function(f"() => ({SVG_WIDTHS_JS})().every(w => w <= {width})", timeout=10_000)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= round(width)
        assert page.evaluate(OVERFLOW_JS, width) == []
        assert all(w >= 0.9 * width for w in page.evaluate(SVG_WIDTHS_JS))  # figures use the page's width
        header = page.locator("header").bounding_box()
        assert header["x"] >= 0 and header["x"] + header["width"] <= width + 0.5
    finally:
        ctx.close()


def test_chromium_prints_the_handout_to_a4_pages(browser, handouts, out_dir):
    ctx, page = open_report(browser, handouts["over-time"], SCREEN)
    try:
        pdf = page.pdf(format="A4")
    finally:
        ctx.close()
    (out_dir / "handout-a4.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF-")
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", pdf)
    assert len(pages) >= 2  # header and figures, then the evidence board
    boxes = [[float(v) for v in m.split()] for m in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", pdf)]
    a4_pt = [mm / 25.4 * 72 for mm in A4_MM]  # 595.3 x 841.9 points
    assert len(boxes) == len(pages)
    for box in boxes:  # A4 to within 1.5 points (Chromium rounds the paper to 8.27 x 11.71 inches)
        assert box[:2] == [0, 0] and all(abs(a - b) <= 1.5 for a, b in zip(box[2:], a4_pt)), box
