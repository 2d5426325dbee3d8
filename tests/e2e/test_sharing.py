"""Links, downloads, faults and hostile input in the real page (headless Chromium)."""

from __future__ import annotations

import csv
import io

import pytest

from ..helpers import wait_for as wait_until
from .harness import free_port, open_app, server_log, start_server, stop_server

pytestmark = pytest.mark.e2e
LINK = "?preset=ioffe&seed=41&steps=300&every=25&panel=evidence"


def evidence_text(page) -> str:
    """The evidence board's measured figures (the run's numbers, as the page prints them)."""
    return "\n".join(page.locator("[data-testid=stText]").all_inner_texts())


def assert_no_app_traceback(log: str) -> None:
    """No traceback from the app or bnviz in the server's console. (Streamlit's own websocket layer may log
    one when a tab navigates away during the websocket handshake, as these tests do: not ours to fix.)"""
    for block in log.split("Traceback (most recent call last):")[1:]:
        assert "/bnviz/" not in block and "app.py" not in block, block[:2000]
    assert "Uncaught app" not in log


def finished(page) -> bool:
    return "finished" in page.locator(".st-key-status").first.inner_text()


def test_a_link_reproduces_the_same_run_on_a_fresh_server(browser, server, tmp_path):
    first = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    first.goto(server + "/" + LINK)
    first.wait_for_selector("[data-testid=stApp]")
    assert wait_until(lambda: finished(first), timeout=240)
    first.wait_for_timeout(1500)
    numbers = evidence_text(first)
    assert numbers and any(ch.isdigit() for ch in numbers)
    # Another server process knows nothing of the first run (its own, empty store of finished runs): it trains the
    # link's run from scratch.
    port = free_port()
    proc = start_server(port, env={"BNVIZ_RUNS": str(tmp_path)})
    try:
        second = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        second.goto(f"http://127.0.0.1:{port}/{LINK}")
        second.wait_for_selector("[data-testid=stApp]")
        assert wait_until(lambda: finished(second), timeout=240)
        second.wait_for_timeout(1500)
        assert evidence_text(second) == numbers  # bit-identical run: the same figures to the last digit
    finally:
        stop_server(proc)


def test_downloads_the_table_and_a_self_contained_report(page, server):
    open_app(page, server + "/?preset=ioffe&seed=42&steps=100&every=25")
    assert wait_until(lambda: finished(page), timeout=60)
    with page.expect_download() as dl:
        page.get_by_role("button", name="CSV", exact=True).click()
    rows = list(csv.reader(io.StringIO(open(dl.value.path()).read())))
    assert rows[0] == ["variant", "step", "layer", "stage", "unit", "stat", "value"]
    assert {r[1] for r in rows[1:]} >= {"0", "100"}
    with page.expect_download() as dl:
        page.get_by_role("button", name="Report for a handout (HTML)").click()
    html = open(dl.value.path(), encoding="utf-8").read()
    assert dl.value.suggested_filename.endswith(".html")
    assert html.count("Plotly.newPlot") >= 1 and "C8" in html and "seed 42" in html
    assert "<script src" not in html  # self-contained: nothing fetched


def test_faults_and_hostile_links_give_messages_not_tracebacks(page, server):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_app(page, server + "/?preset=ioffe&activation=relu&lr=10&steps=300&every=25&seed=43")
    assert wait_until(lambda: "none diverged at step" in page.locator(".st-key-status").first.inner_text(),
                      timeout=60)
    assert page.locator("[data-testid=stException]").count() == 0
    page.goto(server + "/?seed=<script>alert(1)</script>&lr=[x](javascript:alert(2))&<img src=x onerror=alert(3)>=1")
    page.wait_for_selector("[data-testid=stAlert]", timeout=60_000)
    page.wait_for_timeout(1500)
    alerts = " ".join(page.locator("[data-testid=stAlert]").all_inner_texts())
    assert "<script>alert(1)</script>" in alerts and "[x](javascript:alert(2))" in alerts  # shown as text
    assert page.locator("[data-testid=stAlert] script, [data-testid=stAlert] img, [data-testid=stAlert] a").count() == 0
    assert not dialogs and page.locator("[data-testid=stException]").count() == 0
    assert_no_app_traceback(server_log(server))


def test_the_hosting_entry_point_serves_the_same_page(browser):
    port = free_port()
    proc = start_server(port, script="deploy/streamlit_app.py")
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        open_app(page, f"http://127.0.0.1:{port}/?preset=ioffe&steps=100&every=25")
        assert page.locator("[data-testid=stException]").count() == 0
        assert "bnviz" in page.title()
    finally:
        stop_server(proc)
