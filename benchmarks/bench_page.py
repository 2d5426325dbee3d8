"""The page's live figures, measured in a real browser: first chart against Streamlit's floor, update size,
refresh rate, memory.

Starts `streamlit run app.py` and `streamlit run benchmarks/floor_page.py` (the lightest page that draws one
plotly chart) on free ports, opens them in headless Chromium (Playwright) and reports:
- first chart: seconds from navigation to the first plotly chart on screen with data (the run's data, for
  the app). Floor and app pages alternate in ABBA order over --pairs pairs, each page in a fresh browser
  context (nothing cached, as on a first visit), each app page on a new configuration (so it starts its
  own training); the figure is the median of the pairs' ratios app / floor;
- updates: websocket messages the browser received while training (count per second, largest, median);
- memory: the server's resident memory (with its worker processes) at the start and every minute, and
  the browser page's JS heap, over --minutes of continuous training (a run long enough never to finish).

    python -m benchmarks.bench_page [--pairs 8] [--minutes 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.procstat import descendants, status_field
from benchmarks.sessions import launch
from tests.e2e.harness import OUT, free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]

VIEWPORT = {"width": 1280, "height": 800}
# A chart counts once plotly has drawn it, visible, with data points: an empty placeholder does not.
DRAWN = """() => [...document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot')].some(
    el => el.offsetHeight > 100 && (el._fullData || []).some(t => t.visible !== false && t._length > 0))"""


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the statistics worker included), in MB."""
    return sum(status_field(p, "VmRSS") for p in [pid, *descendants(pid)]) / 1024


def first_chart(browser, url: str, timeout_ms: int = 60_000) -> float:
    """Seconds from navigating a fresh browser context to ``url`` until a chart is drawn with data."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(DRAWN, timeout=timeout_ms, polling=50)
        return time.perf_counter() - t0
    finally:
        context.close()


def compare_first_charts(browser, app: str, floor: str, pairs: int) -> list[tuple[float, float]]:
    """(floor, app) first-chart times of ``pairs`` pairs, in ABBA order."""
    timed = []
    for k in range(pairs):
        order = ("floor", "app") if k % 2 == 0 else ("app", "floor")
        times = {}
        for which in order:
            url = floor if which == "floor" else f"{app}/?preset=ioffe&seed={100 + k}"
            times[which] = first_chart(browser, url)
            time.sleep(3)  # the closed tab's session is released and its run stopped before the next opens
        timed.append((times["floor"], times["app"]))
        print(f"  pair {k + 1}: floor {times['floor']:.2f} s, app {times['app']:.2f} s, "
              f"ratio {times['app'] / times['floor']:.2f}", flush=True)
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8, help="floor/app pairs timed for the first chart")
    parser.add_argument("--minutes", type=float, default=2.0, help="training watched for updates and memory")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    (OUT / "screenshots").mkdir(parents=True, exist_ok=True)
    server = start_server(free_port())
    floor_server = start_server(free_port(), script="benchmarks/floor_page.py")
    app_url = f"http://127.0.0.1:{server.args[server.args.index('--server.port') + 1]}"
    floor_url = f"http://127.0.0.1:{floor_server.args[floor_server.args.index('--server.port') + 1]}/"
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            for url in (app_url + "/", floor_url):  # warm both servers once (imports, first run)
                first_chart(browser, url, timeout_ms=120_000)
            time.sleep(3)
            pairs = compare_first_charts(browser, app_url, floor_url, args.pairs)
            stop_server(floor_server)
            page = browser.new_page(viewport=VIEWPORT)
            frames: list[tuple[float, int]] = []
            page.on("websocket", lambda ws: ws.on("framereceived",
                                                  lambda p: frames.append((time.time(), len(p)))))
            page.goto(f"{app_url}/?preset=ioffe&steps=1000000&seed=5")
            page.wait_for_function(DRAWN, timeout=60_000, polling=50)
            mem = [(0.0, rss_mb(server.pid))]
            start = time.time()
            while time.time() - start < args.minutes * 60:
                time.sleep(min(60.0, args.minutes * 60 / 4))
                heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0") / 2**20
                mem.append(((time.time() - start) / 60, rss_mb(server.pid), heap))
            window = [n for t, n in frames if t >= start]
            duration = time.time() - start
            browser.close()
    finally:
        stop_server(server)
        stop_server(floor_server)
    floors, apps = [f for f, _ in pairs], [a for _, a in pairs]
    ratios = sorted(a / f for f, a in pairs)
    print(f"first chart, floor page: median {statistics.median(floors):.2f} s "
          f"({', '.join(f'{f:.2f}' for f in floors)})")
    print(f"first chart, app on a new configuration: median {statistics.median(apps):.2f} s "
          f"({', '.join(f'{a:.2f}' for a in apps)})")
    print(f"ratio app / floor: median of {len(ratios)} pairs {statistics.median(ratios):.2f}x "
          f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}x); ratio of medians "
          f"{statistics.median(apps) / statistics.median(floors):.2f}x")
    print(f"updates while training: {len(window) / duration:.1f} websocket messages/s, largest "
          f"{max(window) / 1024:.1f} kB, median {statistics.median(window) / 1024:.1f} kB")
    for m in mem:
        extra = f", page JS heap {m[2]:.0f} MB" if len(m) > 2 else ""
        print(f"  t={m[0]:5.1f} min: server RSS {m[1]:.0f} MB{extra}")


if __name__ == "__main__":
    main()
