"""Engines that train a sweep's runs: local processes (the default) or a Ray cluster.

The driver (this process) decides which runs are already in the store, hands the others to the engine, and
writes each finished run into the store as it comes back (workers send their tables; they never write the
store). A run that fails is an Outcome saying why, recorded in the store, and the sweep goes on.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bnviz.sweep.grid import Job
from bnviz.sweep.train import Result, train
from bnviz.table.store import RunStore

ENGINES = ("local", "ray")
CONNECT_TIMEOUT = 3.0  # seconds for the first TCP connect to a Ray cluster's address
PR_SET_PDEATHSIG = 1  # linux/prctl.h
DIED = "the worker process died (killed, or out of memory)"


@dataclass(frozen=True)
class Outcome:
    """What became of one job of a sweep."""

    job: Job
    state: str  # "stored" (trained now and stored), "skipped" (already in the store), "failed"
    seconds: float  # training time (0 for skipped)
    error: str | None = None  # why it failed, one line
    diverged: Mapping[str, int] = field(default_factory=dict)  # variant -> step it diverged at


class Unreachable(RuntimeError):
    """The engine's cluster cannot be reached (or the engine cannot start); the message says where and why."""


Deliver = Callable[[int, Result], None]  # the job's index, its result


def run(jobs: Sequence[Job], store: RunStore, engine: str = "local", address: str | None = None,
        workers: int | None = None, on_outcome: Callable[[Outcome], None] | None = None,
        on_start: Callable[[int, int, int], None] | None = None) -> list[Outcome]:
    """Run every job not in the store through ``engine`` and store each finished run as it comes.

    Returns one Outcome per job, in the jobs' order; ``on_outcome`` hears each as it is known (the skipped ones
    first), and ``on_start(skipped, to_train, workers)`` once the engine is up, before any training. Raises
    Unreachable (before any training) when the engine cannot start; StoreError when the store cannot be written
    (the runs already stored stay); KeyboardInterrupt propagates after the workers are stopped.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if address is not None and engine != "ray":
        raise ValueError("an address names a Ray cluster: use it with the ray engine")
    ray = _start_ray(address, workers) if engine == "ray" else None  # a cluster out of reach: said before all else
    try:
        return _run(jobs, store, ray, workers, on_outcome, on_start)
    finally:
        if ray is not None and ray.owned:
            ray.module.shutdown()


def _run(jobs: Sequence[Job], store: RunStore, ray: _Ray | None, workers: int | None,
         on_outcome: Callable[[Outcome], None] | None, on_start: Callable[[int, int, int], None] | None,
         ) -> list[Outcome]:
    outcomes: dict[int, Outcome] = {}

    def tell(i: int, outcome: Outcome) -> None:
        outcomes[i] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    todo = []
    for i, job in enumerate(jobs):
        if store.holds(job.config):
            tell(i, Outcome(job, "skipped", 0.0))
        else:
            todo.append(i)

    def deliver(i: int, result: Result) -> None:
        job = jobs[i]
        if result.state == "finished" and result.data is not None:
            store.put(job.config, result.data)
            tell(i, Outcome(job, "stored", result.seconds, diverged=dict(result.diverged)))
        else:
            error = result.error or "the run did not finish"
            store.put_failure(job.config, error)
            tell(i, Outcome(job, "failed", result.seconds, error=error))

    queries = [(i, jobs[i].query) for i in todo]
    n = (int(ray.module.cluster_resources().get("CPU", 0)) if ray is not None
         else max(1, min(workers or os.cpu_count() or 1, len(todo) or 1)))
    if on_start is not None:
        on_start(len(jobs) - len(todo), len(todo), n)
    if todo:
        if ray is not None:
            _on_ray(ray.module, queries, deliver)
        else:
            _local(queries, n, deliver)
    return [outcomes[i] for i in range(len(jobs))]


# --- local processes --------------------------------------------------------------------------------

def _worker_start(driver: int) -> None:
    """A worker's start: Ctrl-C is the driver's to handle (it stops the workers), and on Linux the worker is
    killed with its driver (a driver killed with -9 leaves no worker training on)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: the worker ends when it next asks the driver for work
            return
    if os.getppid() != driver:  # the driver died before the line above
        os._exit(1)


def _stop(pool) -> None:
    """Stop a process pool now: its workers are terminated, queued work is dropped."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join(5)


def _local(queries: Sequence[tuple[int, str]], workers: int, deliver: Deliver,
           fn: Callable[[str], Result] = train) -> None:
    """Train ``queries`` with ``fn`` in ``workers`` spawned processes, at most ``workers`` in flight, so that a
    worker that dies fails only the runs in flight and a new pool takes the rest."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from bnviz.measure.worker import without_main

    pending = deque(queries)
    ctx = mp.get_context("spawn")
    while pending:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_start,
                                   initargs=(os.getpid(),))
        in_flight: dict = {}
        try:
            broken = False
            while (pending or in_flight) and not broken:
                while pending and len(in_flight) < workers:
                    i, query = pending.popleft()
                    try:
                        with without_main():  # the pool spawns its workers in submit
                            in_flight[pool.submit(fn, query)] = i
                    except BrokenProcessPool:
                        pending.appendleft((i, query))
                        broken = True
                        break
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = in_flight.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        result, broken = Result("failed", 0.0, error=DIED), True
                    except Exception as exc:  # noqa: BLE001 - e.g. a result that could not be sent back
                        result = Result("failed", 0.0, error=f"{type(exc).__name__}: {exc}")
                    deliver(i, result)
            if broken:  # every run still in flight went down with the pool
                for fut, i in list(in_flight.items()):
                    deliver(i, Result("failed", 0.0, error=DIED))
                    del in_flight[fut]
        except BaseException:
            _stop(pool)
            raise
        if broken:
            _stop(pool)
        else:
            pool.shutdown(wait=True)


# --- Ray -----------------------------------------------------------------------------------------------

def _host_port(address: str) -> tuple[str, int] | None:
    """The host and port a Ray address names (``host:port`` or ``ray://host:port``); None for ``auto``."""
    if address == "auto":
        return None
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Unreachable(f"the Ray address {address!r} is not host:port (such as 127.0.0.1:6379)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise Unreachable, in one line, when nothing answers a TCP connect at ``address``."""
    where = _host_port(address)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout):
            pass
    except TimeoutError:
        raise Unreachable(f"cannot reach the Ray cluster at {address}: no answer in {timeout:g} s") from None
    except OSError as exc:
        why = (exc.strerror or str(exc) or type(exc).__name__).lower()
        raise Unreachable(f"cannot reach the Ray cluster at {address}: {why}") from None


@dataclass(frozen=True)
class _Ray:
    module: Any  # the ray package
    owned: bool  # whether the sweep started (so shuts down) this Ray


def _start_ray(address: str | None, workers: int | None) -> _Ray:
    """Import Ray and connect to the cluster at ``address`` (or start a local one); raises Unreachable in one
    line."""
    if address is not None:  # before importing Ray (a second or more)
        check_reachable(address)
    try:
        import ray
    except ImportError:
        raise Unreachable("the ray engine needs Ray, which is not installed: pip install -r requirements-ray.txt") \
            from None
    if ray.is_initialized():  # a caller's own Ray (e.g. a notebook, a test): used as it is
        return _Ray(ray, False)
    import bnviz

    # bnviz travels with the jobs, so cluster nodes need only the requirements (and local workers run this
    # checkout's code, not another one installed).
    env = {"py_modules": [os.path.dirname(os.path.abspath(bnviz.__file__))]}
    try:
        if address is not None:
            ray.init(address=address, runtime_env=env, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, runtime_env=env,
                     logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user gets one line, no traceback
        where = f"the Ray cluster at {address}" if address is not None else "a local Ray"
        raise Unreachable(f"cannot start {where}: {_first_line(exc)}") from None
    return _Ray(ray, True)


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _on_ray(ray, queries: Sequence[tuple[int, str]], deliver: Deliver) -> None:
    """One Ray task per run (one CPU each), collected as they finish; Ray schedules them."""
    task = ray.remote(num_cpus=1, max_retries=0)(train)
    refs = {task.remote(query): i for i, query in queries}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                i = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a task or worker that died: its run failed
                    result = Result("failed", 0.0, error=f"the Ray task failed: {_first_line(exc)}")
                deliver(i, result)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
