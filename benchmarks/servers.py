"""The server under measurement: `streamlit run app.py` started as the browser tests start it
(tests/e2e/harness.py), with its /proc sampler, restarted or killed on demand.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from benchmarks.procstat import Sampler, descendants, kind, read_proc, settle, wait_quiet
from benchmarks.reporting import exit_on_sigterm, write_json
from tests.e2e.harness import OUT, free_port, start_server

ROOT = Path(__file__).resolve().parents[1]

LONG_STEPS = 1_000_000  # config.LIMITS["steps"][1]: at the default 200 steps/s a run lasts ~80 min


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

    def start(self) -> Server:
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
        return read_proc(str(self.log)).count("Traceback")


def reap(pids: list[int], wait: float) -> list[str]:
    """Wait up to ``wait`` s for ``pids`` to exit; SIGKILL and describe those still alive."""
    deadline = time.time() + wait
    alive = list(pids)
    while alive and time.time() < deadline:
        time.sleep(0.25)
        alive = [p for p in alive
                 if os.path.exists(f"/proc/{p}") and read_proc(f"/proc/{p}/stat").split()[2:3] != ["Z"]]
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


def after_next_request(server: Server, wait: float = 2.0) -> dict:
    """The server's state just after one plain HTTP request for the page (no session is opened).

    Streamlit serves files from AnyIO's worker threads; AnyIO ends the workers idle for over 10 s only
    when the next file request comes in. Threads counted right after the last page closed therefore
    include that idle pool; this reading shows what is left once the next visitor arrives."""
    import urllib.request

    with urllib.request.urlopen(server.url + "/", timeout=30) as response:
        response.read()
    return settle(server.pid, wait, names=True)
