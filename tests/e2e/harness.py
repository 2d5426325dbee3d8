"""Drive the real app: serve it with `streamlit run` on a free port and find a Chromium to open it in.

Shared by the browser tests (through their conftest) and the benchmarks. A browser is looked for the way
the ecosystem does (:func:`find_browser`); none found is a reason to skip, never an error, except in CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output"
BROWSER_ENV = "BNVIZ_BROWSER"  # path (or command name) of a Chromium or Chrome executable
PATH_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOW_TO_GET_ONE = (f"install one (`apt-get install chromium`, or `python -m playwright install chromium`) "
                  f"or point {BROWSER_ENV} at a Chromium or Chrome executable")
# The page's charts, as a visitor sees them (hidden elements left out).
CHART = "[data-testid=stPlotlyChart] >> visible=true"
# Headless on a machine without a GPU or network beyond loopback: no GPU, no background fetches.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class Browser:
    """Where a Chromium was found: ``path`` to hand Playwright, ``source`` to tell a reader which one."""

    path: str
    source: str


def _executable(candidate: str) -> str | None:
    """``candidate`` as a runnable file: an existing executable path, or a name resolved on PATH."""
    if os.sep in candidate or (os.altsep and os.altsep in candidate):
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(candidate)


def _playwright_chromium() -> str | None:
    """The Chromium that `python -m playwright install chromium` put in Playwright's cache, if any."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    try:
        with sync_playwright() as pw:
            path = pw.chromium.executable_path
    except Exception:  # noqa: BLE001 - a broken driver install is the same as no browser: say how to get one
        return None
    return path if path and os.path.isfile(path) else None


def find_browser() -> Browser | None:
    """The Chromium to test with: ``$BNVIZ_BROWSER``, else the first of :data:`PATH_NAMES` on PATH, else
    Playwright's own installed Chromium; None if there is none.

    A set ``$BNVIZ_BROWSER`` that names no executable is not silently passed over: it raises ValueError,
    since the person who set it expects that browser to be used.
    """
    explicit = os.environ.get(BROWSER_ENV, "").strip()
    if explicit:
        path = _executable(explicit)
        if path is None:
            raise ValueError(f"{BROWSER_ENV}={explicit!r} is not an executable file or a command on PATH")
        return Browser(path, f"${BROWSER_ENV}")
    for name in PATH_NAMES:
        path = shutil.which(name)
        if path:
            return Browser(path, f"{name} on PATH")
    path = _playwright_chromium()
    return Browser(path, "Playwright's installed chromium") if path else None


def in_ci() -> bool:
    """True under a CI runner (CI=true/1/yes), where a missing browser must fail the run, not skip it."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def launch(pw, browser: Browser):
    """Launch ``browser`` headless through a started Playwright ``pw``."""
    return pw.chromium.launch(executable_path=browser.path, args=FLAGS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict | None = None, script: str = "app.py") -> subprocess.Popen:
    """Start ``script`` (app.py, the hosting entry point, or any page) the way a user does and wait for
    Streamlit's health check to say ok. Its console goes to ``test-output/server-PORT.log``. Without
    ``BNVIZ_RUNS`` (pytest's session sets one) it keeps finished runs in a fresh temporary folder."""
    OUT.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(OUT / f"server-{port}.log", "w")
    env = {**os.environ, **(env or {})}
    env.setdefault("BNVIZ_RUNS", tempfile.mkdtemp(prefix="bnviz-runs-"))  # never the user's store of finished runs
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
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


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def server_log(url: str) -> str:
    """What the server at ``url`` printed so far (its console)."""
    return (OUT / f"server-{url.rsplit(':', 1)[1]}.log").read_text()


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
