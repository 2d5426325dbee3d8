"""How often the page refreshes while a run trains, for the MLP and the conv and deep presets.

Opens each preset (a run long enough never to finish) in headless Chromium, lets it settle, then for
--seconds reads the status line every 50 ms. Each refresh of the live view shows a new training step, so
distinct steps per second is the refresh rate the viewer sees (the page asks for one every 0.5 s: 2 per
second); steps per second is how fast the run trains meanwhile.

    python -m benchmarks.bench_refresh [--seconds 20] [--presets ioffe,ioffe-conv,santurkar-conv,santurkar-dln]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.sessions import launch
from tests.e2e.harness import free_port, open_app, start_server, status_step, stop_server

ROOT = Path(__file__).resolve().parents[1]


def watch(browser, url: str, seconds: float) -> tuple[float, float]:
    """(refreshes per second, training steps per second) of the page at ``url``."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        open_app(page, url)
        time.sleep(5)  # past the first frame and the first full page
        seen, t0 = [status_step(page)], time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.05)
            step = status_step(page)
            if step != seen[-1]:
                seen.append(step)
        elapsed = time.monotonic() - t0
        return (len(seen) - 1) / elapsed, (seen[-1] - seen[0]) / elapsed
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--presets", default="ioffe,ioffe-conv,santurkar-conv,santurkar-dln")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server = start_server(free_port())
    base = f"http://127.0.0.1:{server.args[server.args.index('--server.port') + 1]}"
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            for k, preset in enumerate(args.presets.split(",")):
                rate, speed = watch(browser, f"{base}/?preset={preset}&steps=1000000&seed={40 + k}", args.seconds)
                print(f"{preset:15s} {rate:.2f} refreshes/s, {speed:.0f} training steps/s", flush=True)
            browser.close()
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
