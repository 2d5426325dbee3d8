"""A run folder: a run written in parts as it goes, and read back while it is still being written.

Layout (docs/design.md, *Run folders*)::

    run.json                 {"config": config JSON of a watched model or null, "query": share link or null}
    part-000001.parquet      the first snapshot, written at once
    part-000002.parquet      the next ``per_part`` snapshots, and so on: each a tidy table with the quantile block
    done.json                {"parts": n, "snapshots": k, "last_step": s}, once the run has ended

Each file is written whole: under a temporary name starting with "." in the same folder, flushed to disk,
then renamed over its own name, so a reader never sees half a part and a writer killed at any moment leaves
every finished part readable. Readers take only names of the form ``part-NNNNNN.parquet``.
"""

from __future__ import annotations

import json
import os
import re

from bnviz.config import ExperimentConfig, config_to_json
from bnviz.measure.snapshot import Snapshot
from bnviz.table.record import TableEncoder, _arrow, _arrow_of

RUN_FILE = "run.json"
DONE_FILE = "done.json"
PART_NAME = re.compile(r"part-(\d{6})\.parquet")


def part_name(n: int) -> str:
    """The file name of part ``n`` (1-based)."""
    return f"part-{n:06d}.parquet"


def _write_whole(folder: str, name: str, write) -> None:
    """Write ``folder/name`` whole: ``write(f)`` fills a temporary file beside it (".name.PID.tmp"), which is
    flushed to disk and renamed over ``name``; a failed write leaves no file of that name."""
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(folder, name))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(folder: str, name: str, obj: dict) -> None:
    _write_whole(folder, name, lambda f: f.write(json.dumps(obj).encode()))


class PartRecorder:
    """Snapshots written to a run folder in parts as they arrive: a measure.worker.Recorder.

    Made where the run starts and pickled to wherever the snapshots are made (the statistics worker), it holds
    only its settings until ``prepare``. Every part carries the run's metadata: a watched model's config
    (CONFIG_KEY), or, for bnviz's own runs, the share link's query (QUERY_KEY) and the description of your own
    data (DATA_KEY), as the record command's single table does.
    """

    def __init__(self, folder, config: ExperimentConfig, per_part: int = 4, quantiles: bool = True, *,
                 query: str | None = None, data: str | None = None) -> None:
        if per_part < 1:
            raise ValueError(f"a part holds at least one snapshot, got per_part={per_part}")
        self.folder = os.fspath(folder)
        self.where = self.folder
        self.per_part = per_part
        self.quantiles = quantiles
        self.query = query
        self.data = data
        self.config_json = config_to_json(config) if config.watched is not None else None
        self._encoder: TableEncoder | None = None  # made by prepare(), where the snapshots are made
        self._pending: list[int] = []  # steps encoded but not yet written
        self._parts = 0
        self._snapshots = 0
        self._last_step: int | None = None

    def prepare(self) -> None:
        """Make the folder and write run.json. Parts and done.json of an earlier run in the folder are removed
        first, so that a reader never mixes two runs."""
        import pyarrow.parquet  # noqa: F401 - imported now rather than at the first part

        os.makedirs(self.folder, exist_ok=True)
        old = os.path.join(self.folder, DONE_FILE)
        if os.path.exists(old):
            os.remove(old)
        for name in os.listdir(self.folder):
            if PART_NAME.fullmatch(name):
                os.remove(os.path.join(self.folder, name))
        _write_json(self.folder, RUN_FILE, {"config": self.config_json, "query": self.query})
        self._encoder = TableEncoder(self.quantiles)

    def _encoder_ready(self) -> TableEncoder:
        if self._encoder is None:
            raise RuntimeError("PartRecorder.prepare() must run before the first snapshot")
        return self._encoder

    def append(self, snap: Snapshot) -> None:
        """Encode the newest snapshot (steps must increase); write a part when one is full (the first snapshot
        is a part of its own, so a reader has something to show at once)."""
        encoder = self._encoder_ready()
        if self._last_step is not None and snap.step <= self._last_step:
            raise ValueError(f"snapshot step {snap.step} is not after {self._last_step}")
        encoder.add(snap)
        self._pending.append(snap.step)
        self._snapshots += 1
        self._last_step = snap.step
        if self._parts == 0 or len(self._pending) >= self.per_part:
            self._flush()

    def __len__(self) -> int:
        return self._snapshots

    def _flush(self) -> None:
        """Write the pending snapshots as the next part."""
        import pyarrow.parquet as pq

        encoder = self._encoder_ready()
        if not self._pending:
            return
        table = _arrow(_arrow_of(encoder.columns(self._pending)), self.query, self.data, self.config_json)
        _write_whole(self.folder, part_name(self._parts + 1),
                     lambda f: pq.write_table(table, f, compression="zstd"))
        self._parts += 1
        encoder.keep_only(())
        self._pending = []

    def write(self) -> int:
        """Write the last part and done.json; returns the number of snapshots written."""
        self._encoder_ready()
        self._flush()
        _write_json(self.folder, DONE_FILE, {"parts": self._parts, "snapshots": self._snapshots,
                                             "last_step": self._last_step})
        return self._snapshots
