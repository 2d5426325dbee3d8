"""A long run: does memory stay bounded and does the page's payload stay small at 10k and 100k steps?

Trains the `ioffe` network for --steps (default 100,000) through the same Run and History the page uses
(statistics in the worker process, the page's history cap of 256 snapshots), as fast as the CPU allows.
At 10,000 steps and at the end it reports:
- the history: snapshots kept, bytes held (History.nbytes) and the process's resident memory;
- the payload of every panel: the bytes of each chart's plotly JSON as the page sends it (the figures are
  built by the same builders with the page's arguments), and the time to build them (what a page refresh
  costs the server).

    python -m benchmarks.bench_long [--steps 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from bnviz import config as C
from bnviz.present import report
from bnviz.training.run import Run

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "test-output" / "bench_long.json"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(run: Run) -> dict:
    snaps = run.history.snapshots()
    cfg = run.config
    layer, unit = len(cfg.widths) - 1, -1
    panels = {}
    for panel in C.PANELS:
        if panel == "evidence":
            continue  # text only: no chart
        t0 = time.perf_counter()
        figs, _ = report._panel_figures(snaps, snaps[-1], cfg, panel, layer, unit)
        sizes = {f.key: len(f.fig.to_json()) for f in figs}
        panels[panel] = {"charts": sizes, "largest_kB": round(max(sizes.values()) / 1e3, 1),
                         "build_s": round(time.perf_counter() - t0, 3)}
    return {"step": run.step, "snapshots": len(snaps), "history_kB": round(run.history.nbytes() / 1e3, 1),
            "rss_MB": round(rss_mb(), 1), "panels": panels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    cfg = C.PRESETS["ioffe"].config.replace(steps=args.steps)
    run = Run(cfg, stats_in="process", history_cap=C.HISTORY_CAP, quick_first=False)
    t0 = time.perf_counter()
    run.start()
    marks, results = sorted({min(10_000, args.steps), args.steps}), []
    for mark in marks:
        while run.step < mark and run.alive:
            time.sleep(0.2)
        if mark == args.steps:
            run.join()
        else:
            run.pause()
            time.sleep(1.0)  # let the worker deliver the snapshots up to the pause
        results.append(measure(run))
        r = results[-1]
        print(f"step {r['step']:>7,}: {r['snapshots']} snapshots kept, history {r['history_kB']:,} kB, "
              f"process RSS {r['rss_MB']} MB, elapsed {time.perf_counter() - t0:.0f} s", flush=True)
        for name, p in r["panels"].items():
            print(f"    {name:<13} largest chart {p['largest_kB']:6.1f} kB   built in {p['build_s']:.2f} s")
        if mark != args.steps:
            run.resume()
    print(f"run state: {run.state}; {time.perf_counter() - t0:.0f} s in all")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
