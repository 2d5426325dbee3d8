"""The real page in headless Chromium: charts appear, move while training, stop when paused."""

from __future__ import annotations

import math
import time

import pytest

from bnviz import config as C

from ..helpers import wait_for as wait_until
from .harness import CHART, open_app, status_step

pytestmark = pytest.mark.e2e
SLOW = "?preset=ioffe&steps=200000&seed=11"  # long enough never to finish during a test


def chart_signature(page) -> str:
    """What the first chart draws right now (its SVG paths), to tell whether it changed."""
    return page.locator(CHART).first.evaluate(
        "el => Array.from(el.querySelectorAll('path')).map(p => p.getAttribute('d')).join('|')")


def settled(page) -> bool:
    """The status line shows the same step a second apart."""
    before = status_step(page)
    time.sleep(1.0)
    return status_step(page) == before


def test_charts_appear_and_move_while_training(page, server, out_dir):
    frames: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(len(payload))))
    open_app(page, server + "/" + SLOW)
    assert page.locator("[data-testid=stException]").count() == 0
    first_step, first_sig = status_step(page), chart_signature(page)
    assert wait_until(lambda: status_step(page) > first_step + 50)
    assert wait_until(lambda: chart_signature(page) != first_sig)
    page.screenshot(path=str(out_dir / "screenshots" / "opening.png"))
    assert frames and max(frames) < 250_000, f"largest update {max(frames)} bytes"
    assert page.locator("[data-testid=stException]").count() == 0


def test_pause_stops_and_play_step_work(page, server):
    open_app(page, server + "/" + SLOW.replace("seed=11", "seed=12"))
    page.locator(".st-key-pause button").first.click()
    # let the last refresh land (on a loaded machine a refresh already under way can arrive late)
    assert wait_until(lambda: settled(page), timeout=30)
    step, sig = status_step(page), chart_signature(page)
    time.sleep(2.0)
    assert status_step(page) == step and chart_signature(page) == sig  # paused: nothing moves
    page.locator(".st-key-step button").first.click()
    assert wait_until(lambda: status_step(page) >= step + 25)
    stepped = status_step(page)
    time.sleep(1.5)
    assert status_step(page) == stepped  # a single step leaves it paused
    page.locator(".st-key-play button").first.click()
    assert wait_until(lambda: status_step(page) > stepped + 100)
    assert page.locator("[data-testid=stException]").count() == 0


def test_a_conv_run_keeps_refreshing_while_it_trains(page, server):
    """The conv twins of ioffe-conv: the page sends a new frame of charts about twice a second."""
    open_app(page, server + "/?preset=ioffe-conv&steps=200000&seed=13")
    assert wait_until(lambda: status_step(page) > 0)
    steps, t0 = set(), time.monotonic()
    while time.monotonic() - t0 < 6.0:
        steps.add(status_step(page))
        time.sleep(0.1)
    # 0.5 s refreshes give about 12 distinct steps in 6 s; at least 6 leaves room for a loaded machine
    assert len(steps) >= 6, sorted(steps)
    assert page.locator("[data-testid=stException]").count() == 0


@pytest.mark.parametrize("preset", ["ioffe", "why-gaussian", "santurkar-conv", "santurkar-dln"])
def test_every_panel_draws_and_is_screenshotted(page, server, out_dir, preset):
    open_app(page, f"{server}/?preset={preset}&seed=21")
    for key, label in C.PANELS.items():
        page.get_by_role("radio", name=label, exact=True).click()
        page.wait_for_timeout(300)
        if key != "evidence":
            page.wait_for_selector(CHART, timeout=30_000)
        page.wait_for_timeout(1200)
        assert page.locator("[data-testid=stException]").count() == 0, (preset, key)
        page.screenshot(path=str(out_dir / "screenshots" / f"{preset}-{key}.png"), full_page=True)


def test_a_copied_link_opens_the_same_settings_and_numbers(browser, server):
    first = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    open_app(first, f"{server}/?preset=gamma-beta&seed=31&steps=300&lr=0.4&panel=over-time")
    assert wait_until(lambda: "finished" in first.locator(".st-key-status").first.inner_text(), timeout=60)
    first.wait_for_timeout(1500)
    first.get_by_role("button", name="Share this run").click()
    link = first.locator("[data-testid=stCode] code").first.inner_text().strip()
    assert "seed=31" in link and "lr=0.4" in link and "preset=gamma-beta" in link and "panel=over-time" in link
    title = first.locator("[data-testid=stPlotlyChart] .gtitle").first.text_content()
    # a second browser, as a student would: the copied link, nothing else
    second = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    open_app(second, link)
    assert wait_until(lambda: "finished" in second.locator(".st-key-status").first.inner_text(), timeout=60)
    second.wait_for_timeout(1500)
    assert second.locator("[data-testid=stSidebar] input[aria-label='Learning rate']").input_value() == "0.4"
    assert second.locator("[data-testid=stPlotlyChart] .gtitle").first.text_content() == title
    assert any(ch.isdigit() for ch in title)


# Records, in page time, when a chart is first drawn with data and when the first widget appears.
FIRST_FRAME_PROBE = """
window.__seen = {};
const note = (k) => { if (!(k in window.__seen)) window.__seen[k] = performance.now(); };
new MutationObserver(() => {
  if (document.querySelector('[data-testid=stSelectbox], [data-testid=stButton]')) note('widget');
  if ([...document.querySelectorAll('.js-plotly-plot')].some(el => el.offsetHeight > 100 &&
      (el._fullData || []).some(t => t.visible !== false && t._length > 0))) note('chart');
}).observe(document, {childList: true, subtree: true, attributes: true});
"""


def test_the_first_chart_is_drawn_before_the_rest_of_the_page(page, server):
    page.add_init_script(FIRST_FRAME_PROBE)
    open_app(page, server + "/?preset=ioffe&seed=12")
    page.wait_for_function("() => 'chart' in window.__seen && 'widget' in window.__seen", timeout=60_000)
    seen = page.evaluate("window.__seen")
    assert seen["chart"] < seen["widget"], seen
    assert wait_until(lambda: status_step(page) > 0)  # the training held during the first frame goes on


def test_inside_a_layer_draws_the_shape_variants_x_hat_in_their_shapes(page, server, out_dir):
    """BN beside the three shape variants: the x̂ histograms the browser draws have the targets' densities at
    their peaks (standard normal 1/sqrt(2 pi), uniform 1/(2 sqrt 3) and flat, Laplace with b = 1/sqrt 2:
    1/(2b), a bin's average near the cusp a little less)."""
    variants = ("bn", "bn_gauss", "bn_uniform", "bn_laplace")
    open_app(page, f"{server}/?preset=ioffe&variants={','.join(variants)}&steps=300&seed=23&panel=layer&layer=1")
    assert wait_until(lambda: status_step(page) == 300, timeout=120)
    page.wait_for_timeout(1500)  # the last refresh lands
    bars = page.locator(CHART).first.evaluate(
        "el => el.querySelector('.js-plotly-plot')._fullData.filter(t => t.type === 'bar')"
        ".map(t => ({name: t.name, axis: t.xaxis, y: Array.from(t.y)}))")
    x_hat = {b["name"]: [v for v in b["y"] if v > 0] for b in bars if b["axis"] in ("x2", "x6", "x10", "x14")}
    assert set(x_hat) == {"BN", "BN→Gauss", "BN→uniform", "BN→Laplace"}
    assert abs(max(x_hat["BN→Gauss"]) - 1 / (2 * math.pi) ** 0.5) < 0.06
    inner = x_hat["BN→uniform"][1:-1]  # the two edge bins cover the support only in part
    assert max(inner) < 0.36 and min(inner) > 0.7 * max(inner)  # flat over [-sqrt 3, sqrt 3]
    assert max(x_hat["BN→Laplace"]) > 0.55  # peaked: the Gaussian's peak is 0.40
    page.locator(CHART).first.evaluate("el => el.scrollIntoView({block: 'end'})")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out_dir / "screenshots" / "layer-shape-variants.png"))
    assert page.locator("[data-testid=stException]").count() == 0
