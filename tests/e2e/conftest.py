"""Real-browser fixtures: `streamlit run app.py` on a free port, driven by Playwright in Debian's chromium.

The browser tests fail (never skip) when chromium is missing: `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output"
CHROMIUM = os.environ.get("BNVIZ_CHROMIUM", "/usr/bin/chromium")
# The page's charts, as a visitor sees them (hidden elements left out).
CHART = "[data-testid=stPlotlyChart] >> visible=true"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict | None = None, script: str = "app.py") -> subprocess.Popen:
    """Start the app the way a user does (``script``: app.py, or the hosting entry point) and wait for
    Streamlit's health check to say ok."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(OUT / f"server-{port}.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return proc
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"streamlit did not become healthy on port {port}; see {log.name}")


@pytest.fixture(scope="session")
def out_dir() -> Path:
    (OUT / "screenshots").mkdir(parents=True, exist_ok=True)
    return OUT


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def server(out_dir):
    port = free_port()
    proc = start_server(port)
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


def server_log(url: str) -> str:
    """What the server at ``url`` printed so far (its console)."""
    return (OUT / f"server-{url.rsplit(':', 1)[1]}.log").read_text()


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"chromium not found at {CHROMIUM}: install it (apt-get install -y chromium); "
                    "the browser tests must not be skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def open_app(page, url: str, timeout_ms: int = 60_000):
    """Go to the page and wait for the first chart."""
    page.goto(url)
    page.wait_for_selector("[data-testid=stApp]", timeout=timeout_ms)
    page.wait_for_selector(CHART, timeout=timeout_ms)
    return page


def status_step(page) -> int:
    """The training step shown in the status line."""
    text = page.locator(".st-key-status").first.inner_text()
    return int(text.split("step", 1)[1].split("/", 1)[0].strip().replace(",", ""))
