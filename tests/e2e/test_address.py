"""The address bar in headless Chromium: it follows every panel change, by the selector or by a button of the
evidence board, on a finished and on a running run."""

from __future__ import annotations

import time

import pytest

from bnviz import config as C

from ..helpers import wait_for as wait_until
from .harness import open_app

pytestmark = pytest.mark.e2e
FINISHED = "?preset=ioffe&steps=200&every=20&seed=41"  # done within seconds
RUNNING = "?preset=ioffe&steps=200000&seed=42"  # never done during a test


def address_shows(page, panel: str, within: float = 1.0) -> bool:
    """``panel=<panel>`` appears in the page's address within ``within`` seconds. Polled through Playwright's
    own waits: its ``page.url`` is a copy that takes in the page's navigations only while Playwright runs."""
    deadline = time.monotonic() + within
    while f"panel={panel}" not in page.url:
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(25)
    return True


def status(page) -> str:
    return page.locator(".st-key-status").first.inner_text()


@pytest.mark.parametrize("link", [FINISHED, RUNNING], ids=["finished", "running"])
def test_the_address_follows_the_panel_selector_and_the_boards_buttons(page, server, link):
    open_app(page, server + "/" + link)
    if link == FINISHED:
        assert wait_until(lambda: "finished" in status(page), timeout=120)
    page.wait_for_timeout(1000)  # the whole page, after its first frame
    assert "panel=over-time" in page.url
    for panel in ("stability", "training", "evidence"):
        page.get_by_role("radio", name=C.PANELS[panel], exact=True).click()
        assert address_shows(page, panel), (panel, page.url)
        assert page.evaluate("location.search").count("panel=") == 1
    to_stability = page.locator("[class*=st-key-goto_] button").filter(has_text=C.PANELS["stability"]).first
    to_stability.wait_for(timeout=30_000)
    to_stability.click()
    assert address_shows(page, "stability"), page.url
    selected = page.get_by_role("radio", name=C.PANELS["stability"], exact=True)
    assert wait_until(selected.is_checked, timeout=30)  # and the page moves to that panel
    if link == RUNNING:
        assert "running" in status(page)
    assert page.locator("[data-testid=stException]").count() == 0
