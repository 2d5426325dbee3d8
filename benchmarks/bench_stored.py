"""A link whose run is in the store of finished runs against the same kind of link trained: first chart in a real
browser.

Fills a fresh store folder with finished runs (`python -m bnviz record --link ... --store`, one per repeat: the
preset's full run, its table with the quantiles), starts `streamlit run app.py` on that folder (`$BNVIZ_RUNS`) and
opens, in headless Chromium, each repeat's stored link and a link of the same preset with a seed the store does
not hold (so it trains), alternating in ABBA order, each in a fresh browser context (a first visit). Two figures
per page, in seconds from navigation: the first plotly chart drawn with data (a trained link's shows step 0), and
the whole run on screen (the status line says finished; the page trains at its default speed). Each page is
also checked for what it claims (the stored one says it was opened from the store, the trained one does not).

    python -m benchmarks.bench_stored [--repeats 4] [--preset ioffe]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.bench_page import DRAWN, VIEWPORT
from benchmarks.reporting import ROOT, exit_on_sigterm, log, table, write_json
from benchmarks.sessions import launch
from tests.e2e.harness import free_port, start_server, stop_server

STORED_SAYS = "opened from the store of finished runs"


def store_runs(folder: str, links: list[str]) -> float:
    """Record the run of each link into the store in ``folder``; returns the seconds it took."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        for query in links:
            subprocess.run([sys.executable, "-m", "bnviz", "record", "--link", query, "--out", f"{out}/run.parquet",
                            "--quantiles", "--store", "--quiet"], cwd=ROOT, check=True,
                           env={**os.environ, "BNVIZ_RUNS": folder})
            log(f"  stored {query}")
    return time.perf_counter() - t0


FINISHED = """() => { const s = document.querySelector('.st-key-status');
    return s !== null && s.innerText.includes('finished'); }"""


def first_chart(browser, url: str, stored: bool, timeout_ms: int = 300_000) -> tuple[float, float]:
    """Seconds from navigating a fresh context to ``url`` until a chart is drawn with data, and until the status
    line says the run is finished; checks that the page says it was opened from the store exactly when
    ``stored``."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(DRAWN, timeout=timeout_ms, polling=50)
        chart = time.perf_counter() - t0
        page.wait_for_function(FINISHED, timeout=timeout_ms, polling=100)
        whole = time.perf_counter() - t0
        says = page.get_by_text(STORED_SAYS).count() > 0
        if says != stored:
            raise SystemExit(f"{url}: the page {'does not say' if stored else 'says'} it was opened from the store")
        return chart, whole
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=4, help="stored/trained pairs, in ABBA order")
    parser.add_argument("--preset", default="ioffe", help="the preset of every link")
    args = parser.parse_args()
    exit_on_sigterm()
    from playwright.sync_api import sync_playwright

    stored = [f"preset={args.preset}&seed={200 + k}" for k in range(args.repeats)]
    trained = [f"preset={args.preset}&seed={300 + k}" for k in range(args.repeats)]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        log(f"recording {args.repeats} runs into the store")
        recorded_s = store_runs(folder, stored)
        server = start_server(free_port(), env={"BNVIZ_RUNS": folder})
        base = f"http://127.0.0.1:{server.args[server.args.index('--server.port') + 1]}/?"
        try:
            with sync_playwright() as pw:
                browser = launch(pw)
                first_chart(browser, base + f"preset={args.preset}&seed=999&steps=100", stored=False)  # warm up
                time.sleep(3)
                for k in range(args.repeats):
                    order = ("stored", "trained") if k % 2 == 0 else ("trained", "stored")
                    times = {}
                    for which in order:
                        query = stored[k] if which == "stored" else trained[k]
                        times[which] = first_chart(browser, base + query, stored=which == "stored")
                        time.sleep(3)  # the closed tab's session is released
                    (s_chart, s_whole), (t_chart, t_whole) = times["stored"], times["trained"]
                    rows.append({"pair": k + 1, "order": "/".join(order), "stored_s": round(s_chart, 2),
                                 "trained_s": round(t_chart, 2), "ratio": round(s_chart / t_chart, 2),
                                 "stored_whole_s": round(s_whole, 2), "trained_whole_s": round(t_whole, 2)})
                    log(f"  pair {k + 1}: first chart stored {s_chart:.2f} s, trained {t_chart:.2f} s; whole run "
                        f"stored {s_whole:.2f} s, trained {t_whole:.2f} s")
                browser.close()
        finally:
            stop_server(server)
    med = {c: statistics.median(r[c] for r in rows) for c in ("stored_s", "trained_s", "ratio", "stored_whole_s",
                                                               "trained_whole_s")}
    print(table(rows, ["pair", "order", "stored_s", "trained_s", "ratio", "stored_whole_s", "trained_whole_s"]))
    print(f"first chart, stored link: median {med['stored_s']:.2f} s; trained link: median {med['trained_s']:.2f} s; "
          f"median ratio stored / trained {med['ratio']:.2f} ({args.repeats} pairs)")
    print(f"whole run on screen, stored link: median {med['stored_whole_s']:.2f} s; trained link: median "
          f"{med['trained_whole_s']:.2f} s (recording the {args.repeats} stored runs took {recorded_s:.0f} s)")
    path = write_json("bench_stored.json", {"preset": args.preset, "rows": rows, "recorded_s": recorded_s})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
