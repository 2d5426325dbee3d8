"""Real-browser fixtures: `streamlit run app.py` on a free port, driven by Playwright in headless Chromium.

The browser is found as :func:`harness.find_browser` describes. With none, the browser tests are skipped
with a reason that says how to get one; under CI=true they fail instead (`.ci/run` installs chromium).
"""

from __future__ import annotations

import pytest

from .harness import HOW_TO_GET_ONE, OUT, find_browser, free_port, in_ci, launch, start_server, stop_server


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items):
    """Every browser test is slow too: `pytest -m "not slow"` leaves them out with the rest."""
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def out_dir():
    (OUT / "screenshots").mkdir(parents=True, exist_ok=True)
    return OUT


@pytest.fixture(scope="session")
def found_browser():
    """The Chromium the browser tests use, or a skip (a failure in CI) that says how to get one."""
    try:
        found = find_browser()
    except ValueError as exc:
        pytest.fail(str(exc))
    if found is None:
        message = f"no Chromium or Chrome found for the browser tests: {HOW_TO_GET_ONE}"
        if in_ci():
            pytest.fail(message + " (CI=true: the browser tests must run)")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def server(found_browser, out_dir):
    port = free_port()
    proc = start_server(port)
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


@pytest.fixture(scope="session")
def browser(found_browser):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw, found_browser)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    yield pg
    ctx.close()

