"""Runs per minute of a sweep: the same 8 runs trained one after another in this process (plain Run, the
baseline), on the sweep's local engine, and on its Ray engine (a local Ray), in one invocation.

Each side fills its own empty temporary store with the same runs (ioffe, seeds 0-7, --steps steps, a snapshot
every 25 steps: a few seconds a run); the Ray engine's start-up (starting a local Ray, shipping bnviz to it) is
timed separately from its runs. The baseline trains each run with Run (statistics inline, as the sweep's
workers do) and stores its table, so the three sides do the same work. Prints the figures; benchmarks/README.md
quotes them.

    python -m benchmarks.bench_sweep [--steps 400] [--workers 2]
"""

import argparse
import os
import tempfile
import time

from bnviz.config import PRESETS, TABLE_CAP
from bnviz.sweep import engines, jobs, parse_grid, run
from bnviz.table.store import RunStore, canonical_link

RUNS = 8


def sequential(todo, store: RunStore) -> None:
    """The baseline: each run trained here with Run, its table stored."""
    from bnviz.owndata import metadata
    from bnviz.table.record import TableFile
    from bnviz.training.run import Run

    for job in todo:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "run.parquet")
            table = TableFile(out, query=canonical_link(job.config), quantiles=True, data=metadata(job.config),
                              cap=TABLE_CAP)
            r = Run(job.config, stats_in="inline", quick_first=False, table=table).start()
            r.join()
            assert r.state == "finished", r.error
            with open(out, "rb") as f:
                store.put(job.config, f.read())


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--no-ray", action="store_true", help="leave the Ray engine out")
    args = parser.parse_args()
    todo = jobs("ioffe", PRESETS["ioffe"].config, parse_grid([f"seed=0-{RUNS - 1}", f"steps={args.steps}"]))
    print(f"{len(todo)} runs of ioffe, {args.steps} steps each; {args.workers} workers; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        def store(name):
            return RunStore(os.path.join(tmp, name))

        def check(s):
            assert all(s.get(j.config) is not None for j in todo)

        seq = store("sequential")
        rows.append(("sequential, plain Run in this process", timed(lambda: sequential(todo, seq)), None))
        check(seq)
        loc = store("local")
        rows.append((f"local engine ({args.workers} processes)",
                     timed(lambda: run(todo, loc, workers=args.workers)), None))
        check(loc)
        if not args.no_ray:
            ray_store = store("ray")
            holder = {}
            up = timed(lambda: holder.setdefault("ray", engines._start_ray(None, args.workers)))
            try:
                rows.append((f"Ray engine (local Ray, {args.workers} CPUs)",
                             timed(lambda: run(todo, ray_store, engine="ray")), up))
            finally:
                holder["ray"].module.shutdown()
            check(ray_store)
    base = rows[0][1]
    for name, seconds, startup in rows:
        extra = f"; Ray's start-up {startup:.1f} s more" if startup is not None else ""
        print(f"{name:<42} {seconds:6.1f} s  {RUNS / seconds * 60:5.1f} runs/min  {base / seconds:4.2f}x{extra}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
