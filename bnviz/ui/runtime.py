"""Server-wide and per-session resources of the page (Streamlit caches)."""

from __future__ import annotations

import os

import streamlit as st

from bnviz.training.registry import Registry
from . import panels, state


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
    """
    return Registry(steps_per_second=state.SPEEDS[state.DEFAULT_SPEED],
                    stats_in=os.environ.get("BNVIZ_STATS_IN", "process"), nice=_env_int("BNVIZ_NICE", 10),
                    on_drop=lambda run: panels.shared.forget(run.history.snapshots()))


@st.cache_resource(scope="session", on_release=lambda lease: lease.close())
def lease():
    """This browser session's hold on the run it watches; released within a second of the tab closing."""
    return registry().lease()
