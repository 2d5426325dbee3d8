"""Sessions coming and going, in real browsers: what the server keeps afterwards, and a server restart.

Starts `streamlit run app.py` on a free port and headless Chromium, then:

1. warm-up: one session opens and closes (imports done, one run started and stopped); after --settle
   seconds the server is measured: "before";
2. churn: --sessions sessions (default 50), each on its own link (presets and seeds vary; every other one
   is short, steps=400, so it can finish while watched, the others never finish), --at-once at a time:
   a wave opens, stays --hold seconds, its status lines are read, it closes;
3. "halfway": --settle seconds after half the waves closed (sessions keep opening afterwards), and
   "after": --settle seconds after the last close, and again at --late seconds (Streamlit keeps a
   disconnected session for reconnection for 2 minutes);
4. restart: one page trains; the server is killed (SIGKILL) mid-training and started again on the same
   port; does the open page reconnect by itself, show its status and charts again, with no exception?

Server figures: RSS (and PSS) of the server process plus its child processes, threads and open file
descriptors of the server process, statistics-worker processes (one per training) — all from /proc;
thread names from `py-spy dump` when py-spy is installed. Prints a table, writes
test-output/bench_churn.json.

    python -m benchmarks.bench_churn [--sessions 50] [--at-once 5] [--hold 6] [--settle 30] [--late 150]
                                     [--no-restart] [--server-env KEY=VALUE ...]

Progress goes to stderr; the JSON is written after the churn and again at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from benchmarks.procstat import MachineCPU, Sampler, kind, settle, summarize
from benchmarks.reporting import log, table, write_json
from benchmarks.servers import (
    LONG_STEPS,
    Server,
    add_server_options,
    reap,
    start_measured_server,
    stop_measured_server,
)
from benchmarks.sessions import close_sessions, count, launch, link, open_sessions, read_status
from tests.e2e.harness import CHART

PRESETS = ("ioffe", "santurkar", "gamma-beta", "why-gaussian", "small-batch", "placement")
SHORT_STEPS = 400


def churn_links(base: str, n: int) -> list[str]:
    """n distinct links: presets in turn, a seed each; every other one short enough to finish while watched."""
    return [link(base, preset=PRESETS[i % len(PRESETS)], seed=100 + i, steps=SHORT_STEPS if i % 2 else LONG_STEPS)
            for i in range(n)]


def restart_test(server: Server, browser, sampler_factory) -> tuple[dict, Server]:
    """Kill the server under an open page, start it again on the same port, watch the page recover."""
    s = open_sessions(browser, [link(server.url, preset="ioffe", steps=LONG_STEPS, seed=4242)])[0]
    out: dict = {"opened_s": s.opened_s, "error": s.error}
    page = s.page
    a = read_status(page)
    time.sleep(3)
    b = read_status(page)
    out["before_kill"] = {"status": b["text"], "training": (b["step"] or 0) > (a["step"] or 0),
                          "charts": count(page, CHART)}
    children = server.kill()
    out["children_at_kill"] = {str(p): kind(p) for p in children}
    out["children_left_20s_after_kill"] = reap(children, 20)  # orphans: a worker should exit with its parent
    time.sleep(1)
    out["page_while_down"] = {"status_widget": _status_widget(page),
                              "exceptions": count(page, "[data-testid=stException]")}
    old_log = server.log.with_name(f"server-{server.port}-killed.log")
    os.replace(server.log, old_log)
    t_restart = time.time()
    new = Server(port=server.port, env=server.env).start()
    out["restart_healthy_s"] = round(time.time() - t_restart, 1)
    try:
        sampler = sampler_factory(new.pid)
        # the page keeps showing the killed server's last status until it reconnects; the new server trains
        # the link from step 0 again, so "recovered" = a new status line whose step then increases
        stale, seen_step, changed, recovered, trace = b["text"], None, None, None, []
        deadline = time.time() + 120
        while time.time() < deadline:
            st = read_status(page, timeout_ms=2000)
            trace.append((round(time.time() - t_restart, 1), st["text"]))
            if st["text"] != stale and changed is None:
                changed = round(time.time() - t_restart, 1)
            if changed is not None and st["step"] is not None:
                if seen_step is not None and st["step"] > seen_step:
                    recovered = round(time.time() - t_restart, 1)
                    break
                seen_step = st["step"]
            time.sleep(1)
        out["new_status_after_restart_s"] = changed
        time.sleep(3)
        out.update({
            "recovered": recovered is not None, "recovered_after_restart_s": recovered,
            "status_after": read_status(page)["text"], "charts_after": count(page, CHART),
            "exceptions_after": count(page, "[data-testid=stException]"), "url_after": page.url,
            "status_widget_after": _status_widget(page),
            "trainings_started_after_restart": len(sampler.workers_started(0)),
            "status_trace": trace[:8] + (["..."] if len(trace) > 8 else []),
            "killed_server_log_tracebacks": old_log.read_text(errors="replace").count("Traceback"),
        })
        sampler.stop()
        close_sessions([s])
    except BaseException:
        new.stop()
        raise
    return out, new


def _status_widget(page) -> str | None:
    """Streamlit's connection/running indicator at the top right ("Connecting", "Running", ...)."""
    try:
        loc = page.locator("[data-testid=stStatusWidget]")
        return " ".join(loc.first.inner_text(timeout=1000).split()) or "(icon only)" if loc.count() else None
    except Exception:  # noqa: BLE001
        return None


def history_bytes(urls: list[str]) -> dict:
    """History bytes a finished short run keeps, per preset: the same configs trained inline in this process
    (after the server is gone), as the registry would keep them."""
    code = r"""
import json, sys
from urllib.parse import parse_qsl, urlsplit
from bnviz.training.run import Run
from bnviz.urlstate import decode
out = {}
for url in sys.argv[1:]:
    q = dict(parse_qsl(urlsplit(url).query))
    run = Run(decode(q).config, stats_in="inline").start()
    run.join()
    out[q["preset"]] = [run.state, run.history.nbytes()]
print(json.dumps(out))
"""
    picks = {}
    for u in urls:
        preset = u.split("preset=")[1].split("&")[0]
        if f"steps={SHORT_STEPS}" in u and preset not in picks:
            picks[preset] = u
    try:
        res = subprocess.run([sys.executable, "-c", code, *picks.values()], capture_output=True,
                             text=True, timeout=600)
        import json
        return json.loads(res.stdout.strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)[:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--at-once", type=int, default=5)
    parser.add_argument("--hold", type=float, default=6.0, help="seconds each wave stays open")
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--late", type=float, default=150.0, help="second measurement, seconds after the last close")
    parser.add_argument("--no-restart", action="store_true", help="skip the kill-and-restart test")
    add_server_options(parser)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    quiet, server, sampler = start_measured_server(args)
    result: dict = {"args": vars(args), "machine_before": quiet, "server": {"port": server.port}}
    urls = churn_links(server.url, args.sessions)
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            warm = open_sessions(browser, [link(server.url, preset="ioffe", steps=LONG_STEPS, seed=9999)])
            time.sleep(3)
            close_sessions(warm)
            result["before"] = settle(server.pid, args.settle, names=True)
            t0, machine = sampler.now(), MachineCPU().start()
            waves = []
            for i in range(0, len(urls), args.at_once):
                wave = open_sessions(browser, urls[i:i + args.at_once], wave=args.at_once, timeout_s=90)
                time.sleep(args.hold)
                states = [read_status(s.page, timeout_ms=3000) for s in wave]
                waves.append({"opened_s": [s.opened_s for s in wave], "errors": [s.error for s in wave if s.error],
                              "states": [st["state"] for st in states],
                              "exceptions": sum(max(count(s.page, "[data-testid=stException]"), 0) for s in wave)})
                close_sessions(wave)
                result["waves_so_far"] = waves
                write_json("bench_churn.json", result)  # a run cut short still leaves its waves
                log(f"wave {len(waves)}: opened in {max(s.opened_s or 0 for s in wave):.0f} s, states "
                    f"{waves[-1]['states']}")
                if len(waves) == (len(urls) // args.at_once + 1) // 2 and "halfway" not in result:
                    # half the sessions gone: does what stays behind keep growing with more sessions?
                    result["halfway"] = {"sessions": i + len(wave), **settle(server.pid, args.settle, names=True)}
                    log(f"halfway: {result['halfway']['rss_mb']} MB, {result['halfway']['threads']} threads, "
                        f"{result['halfway']['fds']} open files")
            t_end = sampler.now()
            result["machine_cpu_churn"] = machine.stop()
            result["churn"] = {
                "seconds": round(t_end - t0, 1), "waves": waves,
                "trainings_started": len(sampler.workers_started(t0)),
                "workers_alive_max": summarize(sampler.window(t0)).get("workers_max"),
                "during": summarize(sampler.window(t0)),
                "finished_while_watched": sum(w["states"].count("finished") for w in waves),
                "queued_seen": sum(w["states"].count("queued") for w in waves),
                "pages_failed": sum(len(w["errors"]) for w in waves),
                "pages_with_exception": sum(w["exceptions"] > 0 for w in waves),
            }
            log("all closed; settling")
            result["after"] = settle(server.pid, args.settle, names=True)
            result["after_late"] = settle(server.pid, max(0.0, args.late - args.settle), names=True)
            write_json("bench_churn.json", result)
            if not args.no_restart:
                log("restart test")
                result["restart"], server = restart_test(server, browser, lambda pid: _started(Sampler(pid)))
            browser.close()
    finally:
        path = stop_measured_server(server, sampler, result, "bench_churn.json")
    result["finished_history_bytes_per_preset"] = history_bytes(urls)
    path = write_json("bench_churn.json", result)
    report(result)
    print(f"\nJSON: {path}")


def _started(s: Sampler) -> Sampler:
    s.start()
    return s


def report(r: dict) -> None:
    rows = []
    for name in ("before", "halfway", "after", "after_late"):
        x = r.get(name)
        if x:
            rows.append({"when": name, "rss_mb": x["rss_mb"], "server_rss": x["server_rss_mb"], "pss_mb": x["pss_mb"],
                         "threads": x["threads"], "fds": x["fds"], "workers": x["workers"],
                         "feeders": sum(x.get("thread_names", {}).get(n, 0)
                                        for n in ("bnviz-send", "bnviz-collect", "QueueFeederThread")),
                         "children": ",".join(sorted(x["children"].values()))})
    print(table(rows, ["when", "rss_mb", "server_rss", "pss_mb", "threads", "fds", "workers", "feeders", "children"]))
    c = r.get("churn", {})
    if c:
        print(f"churn: {r['args']['sessions']} sessions in {c['seconds']} s, trainings started {c['trainings_started']}"
              f" (at most {c['workers_alive_max']} at once), finished while watched {c['finished_while_watched']}, "
              f"queued seen {c['queued_seen']}, pages failed {c['pages_failed']}, waves with an exception "
              f"{c['pages_with_exception']}, peak RSS {c['during'].get('rss_peak_mb')} MB, "
              f"threads max {c['during'].get('threads_max')}")
        print(f"machine during churn: {r.get('machine_cpu_churn')}")
    hb = r.get("finished_history_bytes_per_preset")
    if hb:
        print(f"history kept by a finished {SHORT_STEPS}-step run: "
              + ", ".join(f"{k} {v[1] / 2**20:.1f} MB" for k, v in hb.items() if isinstance(v, list)))
    rs = r.get("restart")
    if rs:
        print(f"restart: before kill {rs['before_kill']}; "
              f"children left 20 s after kill {rs['children_left_20s_after_kill']}; "
              f"while down: {rs['page_while_down']}; recovered={rs['recovered']} "
              f"({rs['recovered_after_restart_s']} s after restart), charts {rs['charts_after']}, exceptions "
              f"{rs['exceptions_after']}, status {rs['status_after']!r}")


if __name__ == "__main__":
    main()
