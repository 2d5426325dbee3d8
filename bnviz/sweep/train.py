"""The function each worker of a sweep runs: one share link in, the finished run's stored table out.

It trains with the same Run the page uses (statistics computed inline: a sweep already keeps one run per core
busy) and returns the table as the store keeps it (Parquet with the quantiles, carrying the canonical link), so
that the driver only has to write the bytes. It never raises: a run that fails is a Result saying why.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from bnviz import urlstate
from bnviz.config import TABLE_CAP


@dataclass(frozen=True)
class Result:
    """What training one link gave: the stored table of a finished run, or why it failed."""

    state: str  # "finished" or "failed"
    seconds: float  # training time
    data: bytes | None = None  # the run's table as the store keeps it (finished runs)
    error: str | None = None  # why it failed, one line
    diverged: dict[str, int] = field(default_factory=dict)  # variant -> step it diverged at


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"


def train(query: str) -> Result:
    """Train the run the share-link query string ``query`` describes and return its table (see Result)."""
    t0 = time.perf_counter()
    try:
        decoded = urlstate.decode(parse_qs(query, keep_blank_values=True))
        if decoded.warnings:
            return Result("failed", 0.0, error=_one_line(decoded.warnings[0]))
        return _train(decoded.config)
    except Exception as exc:  # noqa: BLE001 - a failed run is an outcome with its reason, and the sweep goes on
        return Result("failed", time.perf_counter() - t0, error=_one_line(f"{type(exc).__name__}: {exc}"))


def _train(cfg) -> Result:
    from bnviz.owndata import metadata
    from bnviz.table.record import TableFile
    from bnviz.table.store import canonical_link
    from bnviz.training.run import Run

    t0 = time.perf_counter()  # training time, after the first run's imports (torch: seconds)

    with tempfile.TemporaryDirectory(prefix="bnviz-sweep-") as tmp:
        out = os.path.join(tmp, "run.parquet")
        table = TableFile(out, query=canonical_link(cfg), quantiles=True, data=metadata(cfg), cap=TABLE_CAP)
        run = Run(cfg, stats_in="inline", quick_first=False, distributions=True, table=table)
        run.start()
        run.join()
        seconds = time.perf_counter() - t0
        if run.state != "finished":
            return Result("failed", seconds, error=_one_line(run.error or f"the run ended {run.state}"))
        with open(out, "rb") as f:
            data = f.read()
    diverged = {token: s.step for token, s in run.status.items() if s.state == "diverged" and s.step is not None}
    return Result("finished", seconds, data=data, diverged=diverged)
