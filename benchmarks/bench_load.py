"""Many viewers at once, in real browsers: server memory, threads, trainings started, every page updating.

Starts `streamlit run app.py` on a free port and headless Chromium (one browser, one context per Streamlit
session), then:

1. baseline: ONE session on the link L0 = ?preset=ioffe&steps=1000000&seed=0 (a run that never finishes
   during the measurement). It stays open all along as the "anchor";
2. phase `one`: N-1 more sessions on L0 (N sessions on one link), opened --wave at a time; every page's
   status-line step is read twice, --window seconds apart; the N-1 close; --settle seconds later the
   server is measured again (back to one session);
3. phase `many`: N-1 sessions on N-1 other links (seeds 1..N-1), as above. With the cap of concurrent
   trainings (= CPU cores) only the first ones train; the others show "queued";
4. the anchor closes too: the level with no session.

For each phase: server memory (RSS of the server process plus its child processes: peak, median while all
pages are open, settled after they close), server threads (before / max during / after), trainings
started (distinct statistics-worker processes the server spawned, from /proc), threads again just after one
plain request for the page (Streamlit serves files from AnyIO's worker threads, and AnyIO ends those idle
for over 10 s only when the next request comes), pages whose step increased
over the window, queued pages, exception elements, server CPU. Prints a table and writes
test-output/bench_load.json.

    python -m benchmarks.bench_load [--sessions 30] [--phase one|many|both] [--settle 30] [--window 20]
                                    [--wave 5] [--out bench_load.json] [--server-env KEY=VALUE ...]

--server-env sets the server's environment, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false to compare without
Streamlit's full garbage collection after every script run. The machine is shared: the script first waits
(--quiet-wait, up to 120 s) for other jobs to go quiet, and reports the cores they used during each window.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.procstat import MachineCPU, Sampler, cpu_seconds, sample, settle, summarize
from benchmarks.reporting import log, table, write_json
from benchmarks.servers import (
    LONG_STEPS,
    Server,
    add_server_options,
    after_next_request,
    start_measured_server,
    stop_measured_server,
)
from benchmarks.sessions import check_updates as _check
from benchmarks.sessions import close_sessions, launch, link, open_sessions, read_status, viewers_caption


def measure_phase(name: str, server: Server, sampler: Sampler, browser, anchor, urls: list[str],
                  args) -> dict:
    """Open ``urls`` (beside the anchor), check every page updates, close them, let the server settle."""
    before = sample(server.pid)
    t_start = sampler.now()
    log(f"{name}: opening {len(urls)} sessions, {args.wave} at a time")
    opened = open_sessions(browser, urls, wave=args.wave)
    t_open = sampler.now()
    log(f"{name}: opened in {t_open - t_start:.0f} s ({sum(1 for s in opened if s.error)} not in time); "
        f"checking updates over {args.window:g} s")
    time.sleep(3)  # let the last wave's first reruns finish
    cpu0, t_cpu0, machine = cpu_seconds(server.pid), time.time(), MachineCPU().start()
    pages = _check([anchor, *opened], args.window)
    cpu = (cpu_seconds(server.pid) - cpu0) / (time.time() - t_cpu0)
    machine = machine.stop()
    t_check = sampler.now()
    caption = viewers_caption(opened[-1].page) if opened else None
    during = summarize(sampler.window(t_open, t_check))
    log(f"{name}: {sum(p['updated'] for p in pages)}/{len(pages)} pages updated; closing, settling {args.settle:g} s")
    close_sessions(opened)
    t_closed = sampler.now()
    after = settle(server.pid, args.settle, names=True)
    after_request = after_next_request(server)  # AnyIO's idle file-serving threads end on the next request
    everything = summarize(sampler.window(t_start))
    workers = sampler.workers_started(t_start)
    rates = [p["steps_per_s"] for p in pages if p.get("steps_per_s") is not None]
    steps = [p["step_after"] for p in pages if p.get("step_after") is not None]
    opened_s = [s.opened_s for s in opened if s.opened_s is not None]
    chart_s = [s.chart_s for s in opened if s.chart_s is not None]
    return {
        "phase": name, "sessions": len(pages), "links": len({p["url"] for p in pages}),
        "before": {"rss_mb": before.rss_mb, "pss_mb": before.pss_mb, "threads": before.threads,
                   "fds": before.fds, "workers": len(before.workers)},
        "during": during, "after": after, "after_next_request": after_request,
        "peak_rss_mb": everything.get("rss_peak_mb"),
        "trainings_started": len(workers), "workers_alive_max": everything.get("workers_max"),
        "server_cpu_pct_during": round(100 * cpu), "machine_cpu_during": machine,
        "pages_updated": sum(p["updated"] for p in pages),
        "pages_queued": sum(p.get("state") == "queued" for p in pages),
        "pages_with_exception": sum((p.get("exceptions") or 0) > 0 for p in pages),
        "pages_without_chart": sum(p.get("charts", 0) <= 0 for p in pages),
        "pages_failed_to_open": sum(1 for s in opened if s.error),
        "steps_per_s_median": statistics.median(rates) if rates else None,
        "steps_per_s_min": min(rates) if rates else None,
        "open_s_median": statistics.median(opened_s) if opened_s else None,
        "open_s_max": max(opened_s) if opened_s else None,
        "chart_s_max": max(chart_s) if chart_s else None,
        "viewers_caption_last_page": caption,
        "step_spread_across_pages": (max(steps) - min(steps)) if steps else None,
        "seconds": {"open": round(t_open - t_start, 1), "close_to_settled": round(sampler.now() - t_closed, 1)},
        "pages": pages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30, help="sessions per phase, the anchor included")
    parser.add_argument("--phase", choices=("one", "many", "both"), default="both")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait after the pages close")
    parser.add_argument("--window", type=float, default=20.0, help="seconds between the two status reads")
    parser.add_argument("--wave", type=int, default=5, help="pages opened at once")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds the anchor trains before baseline")
    parser.add_argument("--out", default="bench_load.json", help="JSON file name under test-output/")
    add_server_options(parser)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    quiet, server, sampler = start_measured_server(args)
    base_link = dict(preset="ioffe", steps=LONG_STEPS)
    result: dict = {"args": vars(args), "machine_before": quiet, "server": {"port": server.port}, "phases": []}
    try:
        idle = settle(server.pid, 2)
        result["server"]["started"] = idle
        with sync_playwright() as pw:
            browser = launch(pw)
            anchor = open_sessions(browser, [link(server.url, **base_link, seed=0)])[0]
            if anchor.error:
                raise RuntimeError(f"the first page did not open: {anchor.error}")
            t0 = sampler.now()
            time.sleep(args.warmup)
            cpu0, tc, machine = cpu_seconds(server.pid), time.time(), MachineCPU().start()
            page = _check([anchor], args.window)[0]
            cpu = (cpu_seconds(server.pid) - cpu0) / (time.time() - tc)
            baseline = {**settle(server.pid, 3, names=True), **summarize(sampler.window(t0)),
                        "machine_cpu": machine.stop()}
            baseline.update(steps_per_s=page["steps_per_s"], updated=page["updated"], open_s=anchor.opened_s,
                            chart_s=anchor.chart_s, server_cpu_pct=round(100 * cpu),
                            trainings_started=len(sampler.workers_started(0)), exceptions=page["exceptions"])
            result["baseline_single_session"] = baseline
            log(f"baseline: {baseline['rss_mb']} MB, {baseline['threads']} threads, {page['steps_per_s']} steps/s")
            n = args.sessions - 1
            if args.phase in ("one", "both"):
                urls = [link(server.url, **base_link, seed=0)] * n
                result["phases"].append(measure_phase("one link", server, sampler, browser, anchor, urls, args))
                write_json(args.out, result)
            if args.phase in ("many", "both"):
                urls = [link(server.url, **base_link, seed=i) for i in range(1, n + 1)]
                result["phases"].append(measure_phase("many links", server, sampler, browser, anchor, urls, args))
                write_json(args.out, result)
            for p in result["phases"]:
                p["after_vs_single_session"] = {"threads": p["after"]["threads"] - baseline["threads"],
                                                "rss_mb": round(p["after"]["rss_mb"] - baseline["rss_mb"], 1),
                                                "fds": p["after"]["fds"] - baseline["fds"]}
            result["anchor_at_end"] = read_status(anchor.page)
            close_sessions([anchor])
            result["no_session"] = settle(server.pid, args.settle, names=True)
            result["no_session_after_next_request"] = after_next_request(server)
            browser.close()
    finally:
        path = stop_measured_server(server, sampler, result, args.out)
    report(result)
    print(f"\nJSON: {path}")


def report(r: dict) -> None:
    b = r.get("baseline_single_session", {})
    rows = [{"phase": "1 session", "sess": 1, "trainings": b.get("trainings_started"),
             "rss_peak": b.get("rss_peak_mb"), "rss_open": b.get("rss_median_mb"), "rss_after": b.get("rss_mb"),
             "thr_before": "", "thr_during": b.get("threads_max"), "thr_after": b.get("threads"),
             "updated": f"{int(bool(b.get('updated')))}/1", "queued": 0, "exc": b.get("exceptions"),
             "steps/s": b.get("steps_per_s"), "open_s": b.get("open_s"), "cpu%": b.get("server_cpu_pct"),
             "fds": b.get("fds"), "others": b.get("machine_cpu", {}).get("cores_others")}]
    for p in r["phases"]:
        d, a = p["during"], p["after"]
        rows.append({"phase": p["phase"], "sess": p["sessions"],
                     "trainings": f"+{p['trainings_started']} (alive<={p['workers_alive_max']})",
                     "rss_peak": p["peak_rss_mb"], "rss_open": d.get("rss_median_mb"), "rss_after": a["rss_mb"],
                     "thr_before": p["before"]["threads"], "thr_during": d.get("threads_max"),
                     "thr_after": f"{a['threads']}->{p['after_next_request']['threads']}",
                     "updated": f"{p['pages_updated']}/{p['sessions']}",
                     "queued": p["pages_queued"], "exc": p["pages_with_exception"],
                     "steps/s": p["steps_per_s_median"], "open_s": f"{p['open_s_median']}/{p['open_s_max']}",
                     "cpu%": p["server_cpu_pct_during"], "fds": f"{p['before']['fds']}->{a['fds']}",
                     "others": p["machine_cpu_during"]["cores_others"]})
    if "no_session" in r:
        ns = r["no_session"]
        nr = r.get("no_session_after_next_request", ns)
        rows.append({"phase": "0 sessions", "sess": 0, "rss_after": ns["rss_mb"],
                     "thr_after": f"{ns['threads']}->{nr['threads']}",
                     "fds": ns["fds"],
                     "trainings": f"workers left {ns['workers']}"})
    print(table(rows, ["phase", "sess", "trainings", "rss_peak", "rss_open", "rss_after", "thr_before",
                       "thr_during", "thr_after", "fds", "updated", "queued", "exc", "steps/s", "open_s", "cpu%",
                       "others"]))
    print("(rss in MB: server + child processes; open_s: navigation -> status line, median/max; "
          "steps/s: median over pages of the status step's rise; cpu%: server+workers, of one core; "
          "thr_after: threads once the pages closed -> just after the next plain request for the page (AnyIO "
          "ends its idle file-serving threads then); fds: server's open files; others: cores used by other jobs "
          "on the machine meanwhile)")
    print(f"baseline threads by name: {b.get('thread_names')}")
    for p in r["phases"]:
        print(f"{p['phase']}: after vs single session {p.get('after_vs_single_session')}; threads by name after: "
              f"{p['after'].get('thread_names')}")
        stale = [x for x in p["pages"] if not x["updated"]]
        if stale:
            print(f"{p['phase']}: {len(stale)} pages did not update, e.g. {stale[0].get('after')!r}")
        if p["viewers_caption_last_page"] is not None:
            print(f"{p['phase']}: last page's caption says {p['viewers_caption_last_page']} viewers")


if __name__ == "__main__":
    main()
