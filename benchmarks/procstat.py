"""What the load benchmarks read from /proc: memory, threads, CPU, file descriptors and processes of the
server and its statistics workers, sampled in a background thread. Nothing in the app is instrumented.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]



def read_proc(path: str) -> str:
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
            stat = read_proc(f"/proc/{name}/stat")
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
    return read_proc(f"/proc/{pid}/cmdline").replace("\0", " ").strip()


def status_field(pid: int, key: str) -> int:
    for line in read_proc(f"/proc/{pid}/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid``, its reaped children and its live descendants, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *descendants(pid)]:
        fields = read_proc(f"/proc/{p}/stat").rsplit(")", 1)[-1].split()  # fields[11:15]: utime stime cutime cstime
        if len(fields) > 14:
            total += sum(int(x) for x in fields[11:15 if p == pid else 13])
    return total / tick


def pss_kb(pid: int) -> int:
    """Proportional set size (shared pages split between the processes that map them), from smaps_rollup."""
    for line in read_proc(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _sid(pid: int) -> int | None:
    fields = read_proc(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
    return int(fields[3]) if len(fields) > 3 else None


def all_cpu() -> dict[int, int]:
    """CPU ticks (utime + stime) of every process on the machine."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = read_proc(f"/proc/{name}/stat").rsplit(")", 1)[-1].split()
            if len(fields) > 12:
                out[int(name)] = int(fields[11]) + int(fields[12])
    return out


class MachineCPU:
    """CPU used between start() and stop() by this benchmark's own process tree (itself, the server and its
    workers, Playwright, chromium) and by everything else on the machine (other people's jobs), in cores."""

    def start(self) -> MachineCPU:
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
                "loadavg": read_proc("/proc/loadavg").split()[:3],
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
