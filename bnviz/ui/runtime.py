"""Server-wide and per-session resources of the page (Streamlit caches)."""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict

import streamlit as st
from threadpoolctl import threadpool_limits

from bnviz.table.store import RunStore
from bnviz.training.registry import Registry

from . import state


class SharedResults:
    """Results of pure builders, shared by every session that shows the same snapshots.

    Thirty students on one link read the same History, so their pages need the very same figures at each
    refresh; building them once instead of thirty times is what keeps the server's single Python core
    (the GIL) for training. A result is reused only for the same builder, the same arguments and the *same
    object* as first argument (a History's snapshot tuple or one immutable Snapshot: a new snapshot makes
    a new tuple, so nothing stale is ever served). Bounded: the least recently used results go first.
    """

    def __init__(self, size: int = 96) -> None:
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __call__(self, fn, anchor, *args, **kwargs):
        key = (fn, id(anchor), args, tuple(sorted(kwargs.items())))
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] is anchor:
                self._items.move_to_end(key)
                self.hits += 1
                return hit[1]
        value = fn(anchor, *args, **kwargs)  # outside the lock: sessions showing different things build in parallel
        with self._lock:
            self.misses += 1
            self._items[key] = (anchor, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


    def forget(self, snaps) -> int:
        """Drop the results built from a run's snapshots ``snaps`` (its History's): the run is gone, so what
        was built from it, and the snapshots the entries hold, can be freed now rather than when newer
        results push them out. A tuple anchor is recognized by its first snapshot (a History always keeps its
        first), a single-snapshot anchor by itself. Returns how many results were dropped."""
        ids = {id(s) for s in snaps}

        def first(anchor):
            return anchor[0] if isinstance(anchor, tuple) and anchor else anchor

        with self._lock:
            gone = [k for k, (anchor, _) in self._items.items() if id(first(anchor)) in ids]
            for key in gone:
                del self._items[key]
        return len(gone)


shared = SharedResults()


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@st.cache_resource
def registry() -> Registry:
    """One registry for the whole server: one training per configuration, however many viewers.

    ``BNVIZ_STATS_IN=inline`` computes statistics on the training thread instead of a worker process
    (the tests use it: no process to spawn per run). Trainings run at a lower CPU priority (nice +10,
    ``BNVIZ_NICE`` to change): drawing pages comes before training, so the page stays responsive however
    many trainings run.

    It also puts numpy's BLAS on one thread for the whole server: its products here are small (a probe's
    512 x 100 matrices), and on the two cores that the page, the training and the worker share, BLAS threads
    mostly wait for each other (a run's step-0 probe, which the first chart waits for, took 10x longer).

    Finished runs go to the store of runs (``$BNVIZ_RUNS``, else the user's cache folder), and a link whose run
    is stored there opens without training, on this server and on every replica that shares the folder.
    """
    threadpool_limits(1, "blas")  # process-wide, as the worker's _WORKER_ENV sets it for the worker
    return Registry(steps_per_second=state.SPEEDS[state.DEFAULT_SPEED],
                    stats_in=os.environ.get("BNVIZ_STATS_IN", "process"), nice=_env_int("BNVIZ_NICE", 10),
                    on_drop=lambda run: shared.forget(run.history.snapshots()), store=RunStore())


@st.cache_resource(scope="session", on_release=lambda lease: lease.close())
def lease():
    """This browser session's hold on the run it watches; released within a second of the tab closing."""
    return registry().lease()


RUN_ENV = "BNVIZ_RUN"  # the run folder to follow, when app.py is not given --run DIR


def followed_folder(argv: list[str] | None = None) -> str | None:
    """The run folder this server follows: ``--run DIR`` among the script's arguments (``streamlit run app.py --
    --run DIR``), else the environment's BNVIZ_RUN; None when the page trains bnviz's own runs."""
    args = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(args):
        if arg == "--run" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--run="):
            return arg.removeprefix("--run=")
    return os.environ.get(RUN_ENV) or None

