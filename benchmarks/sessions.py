"""Browser sessions on the page: the browser the tests find, one context per Streamlit session, opened
in waves; reading a page's status line and checking that it keeps updating.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.reporting import log
from tests.e2e import harness
from tests.e2e.harness import CHART

ROOT = Path(__file__).resolve().parents[1]

VIEWPORT = {"width": 1280, "height": 800}


def launch(pw):
    """The browser the tests use, headless, with their flags."""
    found = harness.find_browser()
    if found is None:
        sys.exit(f"no browser found: {harness.HOW_TO_GET_ONE}")
    return harness.launch(pw, found)


def link(base: str, **params) -> str:
    return base + "/?" + "&".join(f"{k}={v}" for k, v in params.items())


@dataclass
class Session:
    """One Streamlit session: a browser context with one page."""

    url: str
    ctx: object = None
    page: object = None
    opened_s: float | None = None  # navigation -> status line shown
    chart_s: float | None = None  # navigation -> first plotly chart
    error: str | None = None
    t_nav: float = 0.0
    extra: dict = field(default_factory=dict)


def open_sessions(browser, urls: list[str], wave: int = 5, timeout_s: float = 120,
                  pause_s: float = 0.0, need_chart: bool = True) -> list[Session]:
    """Open one context per url, ``wave`` at a time: navigate a wave, then wait (``timeout_s`` for the whole
    wave) for each page's status line and first chart before the next wave. A page not ready in time keeps
    its context (it may still come) and gets an ``error``."""
    sessions = []
    for i in range(0, len(urls), wave):
        batch = [Session(u) for u in urls[i:i + wave]]
        for s in batch:
            s.ctx = browser.new_context(viewport=VIEWPORT)
            s.page = s.ctx.new_page()
            s.t_nav = time.time()
            try:
                s.page.goto(s.url, wait_until="commit", timeout=timeout_s * 1000)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                s.error = f"goto: {exc}".splitlines()[0]
        deadline = time.time() + timeout_s  # one deadline for the wave: its pages load side by side
        left = lambda deadline=deadline: max(1.0, deadline - time.time()) * 1000  # noqa: E731
        for s in batch:
            if s.error:
                continue
            try:
                s.page.wait_for_selector(".st-key-status", timeout=left())
                s.opened_s = round(time.time() - s.t_nav, 2)
                if need_chart:
                    s.page.wait_for_selector(CHART, timeout=left())
                    s.chart_s = round(time.time() - s.t_nav, 2)
            except Exception as exc:  # noqa: BLE001
                s.error = f"wait: {exc}".splitlines()[0]
        sessions += batch
        log(f"  {len(sessions)}/{len(urls)} open; this wave ready after "
            f"{max((x.opened_s or 0) for x in batch):.0f} s, {sum(1 for x in batch if x.error)} late")
        if pause_s:
            time.sleep(pause_s)
    return sessions


def close_sessions(sessions: list[Session]) -> None:
    for s in sessions:
        try:
            s.ctx.close()
        except Exception:  # noqa: BLE001
            pass


_STEP = re.compile(r"step\s+([\d,]+)\s*/\s*([\d,]+)\s*·\s*(\w+)")


_QUEUED = re.compile(r"queued\s*\(position\s+(\d+)\)")


def read_status(page, timeout_ms: int = 10_000) -> dict:
    """The status line: {'text', 'step', 'state', 'queued'} (step None when queued or unreadable)."""
    try:
        text = page.locator(".st-key-status").first.inner_text(timeout=timeout_ms)
    except Exception as exc:  # noqa: BLE001
        return {"text": None, "step": None, "state": None, "queued": None, "error": str(exc).splitlines()[0]}
    text = " ".join(text.split())
    m, q = _STEP.search(text), _QUEUED.search(text)
    return {"text": text[:160], "step": int(m.group(1).replace(",", "")) if m else None,
            "state": m.group(3) if m else ("queued" if q else None), "queued": int(q.group(1)) if q else None}


def count(page, selector: str) -> int:
    try:
        return page.locator(selector).count()
    except Exception:  # noqa: BLE001
        return -1


def viewers_caption(page) -> int | None:
    """The 'Shared run: N viewers watch this link' caption (from the session's last full rerun)."""
    try:
        loc = page.get_by_text(re.compile(r"\d+ viewers watch this link"))
        if loc.count() == 0:
            return None
        return int(re.search(r"(\d+) viewers", loc.first.inner_text(timeout=5000)).group(1))
    except Exception:  # noqa: BLE001
        return None


def check_updates(sessions: list[Session], window_s: float = 20.0) -> list[dict]:
    """Read every page's status line, wait ``window_s``, read again: did its step increase?

    Also counts exception elements and charts on each page at the end."""
    first = []
    for s in sessions:
        gone = s.error and s.error.startswith("goto")
        first.append((time.time(), {} if gone else read_status(s.page)))
    time.sleep(window_s)
    out = []
    for s, (t_a, a) in zip(sessions, first):
        if s.error and s.error.startswith("goto"):
            out.append({"url": s.url, "error": s.error, "updated": False})
            continue
        b = read_status(s.page)
        t_b = time.time()
        delta = (b["step"] - a["step"]) if a.get("step") is not None and b.get("step") is not None else None
        out.append({"url": s.url, "opened_s": s.opened_s, "chart_s": s.chart_s, "open_error": s.error,
                    "before": a.get("text"), "after": b.get("text"), "state": b.get("state"),
                    "step_before": a.get("step"), "step_after": b.get("step"), "queued": b.get("queued"),
                    "updated": bool(delta and delta > 0),
                    "steps_per_s": round(delta / (t_b - t_a), 1) if delta is not None else None,
                    "exceptions": count(s.page, "[data-testid=stException]"),
                    "charts": count(s.page, CHART)})
    return out
