"""The page's live figures, measured in a real browser: first chart, update size, refresh rate, memory.

Starts `streamlit run app.py` on a free port, opens it in headless Chromium (Playwright) and reports:
- first chart: seconds from navigation to the first plotly chart drawn with the run's data (server already
  running; each page in a fresh browser context, so nothing is cached, as on a first visit), for
  --first pages each opening a new configuration (so each starts its own training);
- updates: websocket messages the browser received while training (count per second, largest, median);
- memory: the server's resident memory (with its worker processes) at the start and every minute, and
  the browser page's JS heap, over --minutes of continuous training (a run long enough never to finish).

    python benchmarks/bench_page.py [--minutes 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _loadkit import descendants, status_field  # noqa: E402
from tests.e2e.conftest import CHART, CHROMIUM, FLAGS, OUT, free_port, start_server  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the statistics worker included), in MB."""
    return sum(status_field(p, "VmRSS") for p in [pid, *descendants(pid)]) / 1024


# A chart counts once plotly has drawn it with data points from the run: an empty placeholder does not.
DRAWN = """() => [...document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot')].some(
    el => el.offsetHeight > 100 && (el._fullData || []).some(t => t.visible !== false && t._length > 0))"""


def wait_drawn(page, timeout_ms: int) -> None:
    page.wait_for_function(DRAWN, timeout=timeout_ms, polling=50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--first", type=int, default=5, help="pages opened on new configurations to time the "
                        "first chart")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    (OUT / "screenshots").mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_server(port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            # warm the server once (imports, first run), as "a running server" means
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(CHART, timeout=120_000)
            page.close()
            firsts, warm = [], []  # new configurations: each page starts its own training
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            for k in range(2 * args.first):
                # first visits: a fresh browser context each, nothing cached; then repeat visits: one context
                # whose cache (and V8's compiled code) already holds plotly.js and Streamlit's scripts
                cold = k < args.first
                page = (browser.new_page(viewport={"width": 1280, "height": 800}) if cold else context.new_page())
                t0 = time.time()
                page.goto(f"http://127.0.0.1:{port}/?preset=ioffe&seed={100 + k}")
                wait_drawn(page, 60_000)
                (firsts if cold else warm).append(time.time() - t0)
                page.close()
                time.sleep(3)  # its session is released and its run stopped before the next opens
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            frames: list[tuple[float, int]] = []
            page.on("websocket", lambda ws: ws.on("framereceived",
                                                  lambda p: frames.append((time.time(), len(p)))))
            t0 = time.time()
            page.goto(f"http://127.0.0.1:{port}/?preset=ioffe&steps=1000000&seed=5")
            wait_drawn(page, 60_000)
            first_chart = time.time() - t0
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
        server.terminate()
        server.wait(timeout=20)
    for name, times in (("first visit", firsts), ("repeat visit", warm)):
        print(f"first chart after navigation, new configuration, {name}: median {statistics.median(times):.2f} s,"
              f" max {max(times):.2f} s ({', '.join(f'{f:.2f}' for f in times)})")
    print(f"first chart after navigation (measured page): {first_chart:.2f} s")
    print(f"updates while training: {len(window) / duration:.1f} websocket messages/s, largest "
          f"{max(window) / 1024:.1f} kB, median {statistics.median(window) / 1024:.1f} kB")
    for m in mem:
        extra = f", page JS heap {m[2]:.0f} MB" if len(m) > 2 else ""
        print(f"  t={m[0]:5.1f} min: server RSS {m[1]:.0f} MB{extra}")


if __name__ == "__main__":
    main()
