"""Shared helpers of the load benchmarks (bench_load.py, bench_churn.py): the server, the browser, /proc.

Not a benchmark itself. The server is started exactly as the browser tests start it
(tests/e2e/harness.start_server: `streamlit run app.py` on a free port); the browser is the one the tests
find (tests/e2e/harness.find_browser), driven by Playwright, one browser context per Streamlit session. Server figures come from /proc only
(nothing in the app is changed or instrumented):

- memory: VmRSS of the server process plus all its descendants (the statistics worker of each training
  and multiprocessing's resource tracker). Descendants are found through the parent pid in
  /proc/*/stat: /proc/PID/task/PID/children lists only the children of the main thread, and the
  workers are spawned from training threads;
- threads: `Threads:` of /proc/PID/status (the server process alone);
- trainings started: every training of the app spawns one statistics worker
  (`multiprocessing.spawn ... spawn_main` in its command line), so distinct worker pids seen by a
  background sampler (every 0.25 s) count the trainings started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import harness  # noqa: E402
from tests.e2e.harness import CHART, OUT, free_port, start_server  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}
_T0 = time.time()


def log(*parts) -> None:
    """Progress on stderr (the results go to stdout and JSON at the end)."""
    print(f"[{time.time() - _T0:7.1f}s]", *parts, file=sys.stderr, flush=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks still stop the server and write the JSON."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
LONG_STEPS = 1_000_000  # config.LIMITS["steps"][1]: at the default 200 steps/s a run lasts ~80 min


# --- /proc ------------------------------------------------------------------------------------------

def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (any depth), from the parent pid field of /proc/*/stat."""
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _read(f"/proc/{name}/stat")
            if stat:
                parent[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        frontier += kids
    return out


def _nfds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()


def status_field(pid: int, key: str) -> int:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid``, its reaped children and its live descendants, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *descendants(pid)]:
        fields = _read(f"/proc/{p}/stat").rsplit(")", 1)[-1].split()  # fields[11:15]: utime stime cutime cstime
        if len(fields) > 14:
            total += sum(int(x) for x in fields[11:15 if p == pid else 13])
    return total / tick


def pss_kb(pid: int) -> int:
    """Proportional set size (shared pages split between the processes that map them), from smaps_rollup."""
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _sid(pid: int) -> int | None:
    fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
    return int(fields[3]) if len(fields) > 3 else None


def all_cpu() -> dict[int, int]:
    """CPU ticks (utime + stime) of every process on the machine."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _read(f"/proc/{name}/stat").rsplit(")", 1)[-1].split()
            if len(fields) > 12:
                out[int(name)] = int(fields[11]) + int(fields[12])
    return out


class MachineCPU:
    """CPU used between start() and stop() by this benchmark's own process tree (itself, the server and its
    workers, Playwright, chromium) and by everything else on the machine (other people's jobs), in cores."""

    def start(self) -> "MachineCPU":
        self.t, self.ticks = time.time(), all_cpu()
        return self

    def stop(self) -> dict:
        now, ticks = time.time(), all_cpu()
        ours = {os.getpid(), *descendants(os.getpid())}
        # chromium re-parents some of its helpers; they stay in the browser's session
        sessions = {_sid(p) for p in ours if "chromium" in cmdline(p)}
        ours |= {p for p in ticks if _sid(p) in sessions}
        delta = {p: v - self.ticks.get(p, 0) for p, v in ticks.items()}
        hz, dt = os.sysconf("SC_CLK_TCK"), now - self.t
        mine = sum(v for p, v in delta.items() if p in ours) / hz / dt
        other = sum(v for p, v in delta.items() if p not in ours) / hz / dt
        top = sorted(((v, p) for p, v in delta.items() if p not in ours), reverse=True)[:3]
        return {"cores_benchmark": round(mine, 2), "cores_others": round(other, 2),
                "loadavg": _read("/proc/loadavg").split()[:3],
                "others_top": [f"{cmdline(p)[:70]} ({v / hz / dt:.2f})" for v, p in top if v > 0]}


def wait_quiet(max_wait: float, threshold: float = 0.3) -> dict:
    """Wait (up to ``max_wait`` s) until other people's processes use less than ``threshold`` cores over 5 s:
    the machine is shared and its 2 cores are the measurement's."""
    deadline = time.time() + max_wait
    while True:
        m = MachineCPU().start()
        time.sleep(5)
        use = m.stop()
        if use["cores_others"] < threshold or time.time() > deadline:
            return use


def thread_names(pid: int) -> dict[str, int]:
    """Python threads of a process by name (py-spy dump; {} when py-spy is not installed)."""
    import shutil
    from collections import Counter

    if not shutil.which("py-spy"):
        return {}
    try:
        text = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    names = re.findall(r'^Thread \S+ \([^)]*\): "([^"]*)"', text, re.M)
    return dict(Counter(re.sub(r"[-_]?(0x)?[0-9a-f]{6,}$|-\d+( \(.*\))?$", "", n) for n in names))


def kind(pid: int) -> str:
    """What a child of the server is: 'worker' (a training's statistics process), 'tracker', or 'other'."""
    cmd = cmdline(pid)
    if "spawn_main" in cmd:
        return "worker"
    if "resource_tracker" in cmd:
        return "tracker"
    return "other"


@dataclass
class Sample:
    t: float  # seconds since the sampler started
    rss_mb: float  # server + descendants
    server_rss_mb: float
    pss_mb: float  # server + descendants, shared pages counted once
    threads: int  # server process
    fds: int  # open file descriptors of the server process
    workers: list[int]
    others: list[int]  # resource tracker and anything else


def sample(pid: int, t0: float = 0.0) -> Sample:
    kids = descendants(pid)
    workers = [k for k in kids if kind(k) == "worker"]
    own = status_field(pid, "VmRSS")
    total = own + sum(status_field(k, "VmRSS") for k in kids)
    pss = sum(pss_kb(p) for p in [pid, *kids])
    return Sample(round(time.time() - t0, 2), round(total / 1024, 1), round(own / 1024, 1), round(pss / 1024, 1),
                  status_field(pid, "Threads"), _nfds(pid), workers, [k for k in kids if k not in workers])


class Sampler(threading.Thread):
    """Samples the server every ``interval`` seconds in the background; remembers every worker pid seen."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="sampler")
        self.pid, self.interval = pid, interval
        self.t0 = time.time()
        self.samples: list[Sample] = []
        self.workers_seen: dict[int, float] = {}  # pid -> first seen (s)
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            s = sample(self.pid, self.t0)
            with self._lock:
                self.samples.append(s)
                for w in s.workers:
                    self.workers_seen.setdefault(w, s.t)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def now(self) -> float:
        return time.time() - self.t0

    def window(self, t_from: float, t_to: float | None = None) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.t >= t_from and (t_to is None or s.t <= t_to)]

    def workers_started(self, t_from: float, t_to: float | None = None) -> list[int]:
        with self._lock:
            return [p for p, t in self.workers_seen.items() if t >= t_from and (t_to is None or t <= t_to)]


def summarize(samples: list[Sample]) -> dict:
    """Peak and median memory, threads and workers of a window of samples."""
    if not samples:
        return {}
    rss = [s.rss_mb for s in samples]
    thr = [s.threads for s in samples]
    wk = [len(s.workers) for s in samples]
    return {"rss_peak_mb": max(rss), "rss_median_mb": round(statistics.median(rss), 1),
            "pss_peak_mb": max(s.pss_mb for s in samples),
            "rss_last_mb": rss[-1], "threads_max": max(thr), "threads_median": statistics.median(thr),
            "threads_last": thr[-1], "workers_max": max(wk), "workers_last": wk[-1], "n_samples": len(samples)}


def settle(pid: int, seconds: float, names: bool = False) -> dict:
    """Wait ``seconds`` and report the server's state over the last 3 s (medians; threads also as max)."""
    time.sleep(max(0.0, seconds - 3))
    tail = []
    end = time.time() + 3
    while time.time() < end:
        tail.append(sample(pid))
        time.sleep(0.25)
    last = tail[-1]
    out = {"rss_mb": round(statistics.median(s.rss_mb for s in tail), 1),
           "server_rss_mb": round(statistics.median(s.server_rss_mb for s in tail), 1),
           "pss_mb": round(statistics.median(s.pss_mb for s in tail), 1),
           "threads": int(statistics.median(s.threads for s in tail)), "threads_max": max(s.threads for s in tail),
           "fds": last.fds,
           "workers": len(last.workers), "children": {str(p): kind(p) for p in last.workers + last.others}}
    if names:
        out["thread_names"] = thread_names(pid)
        out["fd_kinds"] = fd_kinds(pid)
    return out


def after_next_request(server: "Server", wait: float = 2.0) -> dict:
    """The server's state just after one plain HTTP request for the page (no session is opened).

    Streamlit serves files from AnyIO's worker threads; AnyIO ends the workers idle for over 10 s only
    when the next file request comes in. Threads counted right after the last page closed therefore
    include that idle pool; this reading shows what is left once the next visitor arrives."""
    import urllib.request

    with urllib.request.urlopen(server.url + "/", timeout=30) as response:
        response.read()
    return settle(server.pid, wait, names=True)


def fd_kinds(pid: int) -> dict[str, int]:
    """The server's open file descriptors by kind (socket, pipe, anon_inode, or the file's path)."""
    kinds: dict[str, int] = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return kinds
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind_ = target.split(":")[0] if ":[" in target else target
        kinds[kind_] = kinds.get(kind_, 0) + 1
    return kinds


# --- the server -------------------------------------------------------------------------------------

class Server:
    """`streamlit run app.py` on a port (a free one unless given), as the browser tests start it."""

    def __init__(self, port: int | None = None, env: dict | None = None) -> None:
        self.port = port or free_port()
        self.env = env
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> Path:
        return OUT / f"server-{self.port}.log"

    def start(self) -> "Server":
        OUT.mkdir(parents=True, exist_ok=True)
        self.proc = start_server(self.port, self.env)
        return self

    def kill(self) -> list[int]:
        """SIGKILL the server process alone (a crash); returns its descendants at that moment."""
        kids = descendants(self.pid)
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)
        return kids

    def stop(self) -> dict:
        """SIGTERM (as Ctrl-C/systemd would) and report which descendants outlived it by 5 s (then kill them)."""
        if self.proc is None or self.proc.poll() is not None:
            return {}
        kids = descendants(self.pid)
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return {"exit_code": self.proc.returncode, "children_at_stop": len(kids),
                "children_left_after_5s": reap(kids, 5)}

    def tracebacks(self) -> int:
        return _read(str(self.log)).count("Traceback")


def reap(pids: list[int], wait: float) -> list[str]:
    """Wait up to ``wait`` s for ``pids`` to exit; SIGKILL and describe those still alive."""
    deadline = time.time() + wait
    alive = list(pids)
    while alive and time.time() < deadline:
        time.sleep(0.25)
        alive = [p for p in alive if os.path.exists(f"/proc/{p}") and _read(f"/proc/{p}/stat").split()[2:3] != ["Z"]]
    left = [f"{p} {kind(p)}" for p in alive]
    for p in alive:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return left


def server_env(pairs: list[str] | None) -> dict:
    """--server-env KEY=VALUE options (e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false) as an environment dict."""
    return dict(p.split("=", 1) for p in pairs or [])


# --- the browser ------------------------------------------------------------------------------------

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
        left = lambda: max(1.0, deadline - time.time()) * 1000  # noqa: E731
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


def write_json(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(data, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__")
                               else str(o)))
    return path


def table(rows: list[dict], cols: list[str]) -> str:
    """A compact fixed-width table."""
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.rjust(w) for x, w in zip(xs, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(x) for x in cells)])


def add_server_options(parser) -> None:
    """The options every load benchmark shares: the server's environment and the wait for a quiet machine."""
    parser.add_argument("--server-env", action="append", metavar="KEY=VALUE",
                        help="environment of the server, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false (repeatable)")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="wait up to this many seconds for other jobs on the machine to go quiet first")


def start_measured_server(args) -> tuple:
    """Exit cleanly on SIGTERM, wait for a quiet machine, then start the server and its sampler.

    Returns (the machine's state before, the Server, the running Sampler)."""
    exit_on_sigterm()
    quiet = wait_quiet(args.quiet_wait)
    server = Server(env=server_env(args.server_env)).start()
    sampler = Sampler(server.pid)
    sampler.start()
    return quiet, server, sampler


def stop_measured_server(server, sampler, result: dict, name: str):
    """Stop the sampler and the server, record how the server ended and its log, write ``name``; its path."""
    sampler.stop()
    result["server"]["stop"] = server.stop()
    result["server"]["tracebacks_in_log"] = server.tracebacks()
    result["server"]["log"] = str(server.log)
    return write_json(name, result)
