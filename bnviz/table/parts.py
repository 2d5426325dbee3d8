"""A run folder: a run written in parts as it goes, and read back while it is still being written.

Layout (docs/design.md, *Run folders*)::

    run.json                 {"config": config JSON of a watched model or null, "query": share link or null}
    part-000001.parquet      the first snapshot, written at once
    part-000002.parquet      the snapshots since, once ``per_part`` of them wait or a second has passed since the
                             last part (a slow training's every snapshot at once): a tidy table with the quantile block
    done.json                {"parts": n, "snapshots": k, "last_step": s}, once the run has ended

Each file is written whole: under a temporary name starting with "." in the same folder, flushed to disk,
then renamed over its own name, so a reader never sees half a part and a writer killed at any moment leaves
every finished part readable. Readers take only names of the form ``part-NNNNNN.parquet``.

:func:`open_run` reads such a folder, finished or still being written: a :class:`Follower` returns the
snapshots of each part once, in order, skipping (and naming) a part that cannot be read or belongs to another
run, and showing the parts before and after it.
"""

from __future__ import annotations

import json
import os
import re
import time
from urllib.parse import parse_qs

import numpy as np

from bnviz import urlstate
from bnviz.config import ExperimentConfig, config_from_json
from bnviz.measure.snapshot import POOLED, Snapshot
from bnviz.table import replay
from bnviz.table.record import TableEncoder, _arrow, _arrow_of, _watched_json
from bnviz.table.upload import MAX_BYTES, MAX_QUERY, ReplayError, read_table

RUN_FILE = "run.json"
DONE_FILE = "done.json"
PART_NAME = re.compile(r"part-(\d{6})\.parquet")
_TEMPORARY = re.compile(r"\.(part-\d{6}\.parquet|run\.json|done\.json)\.\d+\.tmp")  # _write_whole's names


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

    def __init__(self, folder, config: ExperimentConfig, per_part: int = 16, quantiles: bool = True, *,
                 query: str | None = None, data: str | None = None, seconds: float | None = 1.0) -> None:
        if per_part < 1:
            raise ValueError(f"a part holds at least one snapshot, got per_part={per_part}")
        self.folder = os.fspath(folder)
        self.where = self.folder
        self.per_part = per_part
        self.seconds = seconds  # a part at least this often while snapshots come (None: by per_part alone)
        self._written_at = 0.0
        self.quantiles = quantiles
        self.query = query
        self.data = data
        self.config_json = _watched_json(config)
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
            if PART_NAME.fullmatch(name) or _TEMPORARY.fullmatch(name):  # and what a killed writer left
                os.remove(os.path.join(self.folder, name))
        _write_json(self.folder, RUN_FILE, {"config": self.config_json, "query": self.query})
        self._encoder = TableEncoder(self.quantiles)

    def _encoder_ready(self) -> TableEncoder:
        if self._encoder is None:
            raise RuntimeError("PartRecorder.prepare() must run before the first snapshot")
        return self._encoder

    def append(self, snap: Snapshot) -> None:
        """Encode the newest snapshot (steps must increase); write a part when ``per_part`` snapshots wait or
        ``seconds`` have passed since the last part (the first snapshot is a part of its own, so a reader has
        something to show at once): a page following the run sees each snapshot within about ``seconds`` of the
        next one, and a fast run still makes few parts."""
        encoder = self._encoder_ready()
        if self._last_step is not None and snap.step <= self._last_step:
            raise ValueError(f"snapshot step {snap.step} is not after {self._last_step}")
        encoder.add(snap)
        self._pending.append(snap.step)
        self._snapshots += 1
        self._last_step = snap.step
        due = self.seconds is not None and time.monotonic() - self._written_at >= self.seconds
        if self._parts == 0 or len(self._pending) >= self.per_part or due:
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
        self._written_at = time.monotonic()
        encoder.keep_only(())
        self._pending = []

    def write(self) -> int:
        """Write the last part and done.json; returns the number of snapshots written."""
        self._encoder_ready()
        self._flush()
        _write_json(self.folder, DONE_FILE, {"parts": self._parts, "snapshots": self._snapshots,
                                             "last_step": self._last_step})
        return self._snapshots


class NoRun(ReplayError):
    """A folder that holds no run: it does not exist, or holds neither run.json nor a part."""


def open_run(folder) -> Follower:
    """A Follower of the run folder ``folder``; raises NoRun (a plain sentence naming the folder) when there is
    no run there."""
    path = os.fspath(folder)
    if not os.path.isdir(path):
        raise NoRun(f"{path} is not a folder" if os.path.exists(path) else f"the folder {path} does not exist")
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise NoRun(f"the folder {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if RUN_FILE not in names and not any(PART_NAME.fullmatch(n) for n in names):
        raise NoRun(f"the folder {path} holds no bnviz run (no {RUN_FILE} and no part-000001.parquet)")
    return Follower(path)


def _same_model(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    """Whether two configs of one watched run agree on all but how far it has come (steps)."""
    return a.replace(steps=1) == b.replace(steps=1)


class Follower:
    """The reader of one run folder: :meth:`poll` returns the snapshots of the parts not read before.

    ``config`` is the run's (a watched model's from run.json; bnviz's own from the share link, exact once the
    first part is read), its ``steps`` the last step seen. ``skipped`` holds one sentence per part that was not
    shown (corrupt, or of another run), ``notes`` what the config's reading says (as a replay's), and
    ``finished`` turns true once done.json is there and every part it counts has been read. A run recorded into
    the folder again (run.json replaced) is read from its start: ``generation`` counts those starts.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.generation = 0
        self._start()

    def _start(self) -> None:
        self.skipped: list[str] = []
        self.notes: list[str] = []
        self._run: dict | None = None  # run.json, once read
        self._config: ExperimentConfig | None = None  # as run.json or the first part gives it
        self._exact = False  # _config comes from a watched model's JSON or a part's table, not a bare link
        self._handled: set[int] = set()  # part numbers read or skipped
        self._done: dict | None = None
        self._last_step: int | None = None
        self._bins: dict = {}  # each series' histogram bins, carried from part to part
        self._run_id = self._identity()
        self._read_run()

    def _identity(self) -> tuple[int, int] | None:
        """Which run.json the folder holds (a recorder starting again replaces it): None while there is none."""
        try:
            st = os.stat(os.path.join(self.folder, RUN_FILE))
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    @property
    def config(self) -> ExperimentConfig | None:
        """The run's config, ``steps`` being the last step seen; None while neither run.json nor a part says."""
        if self._config is None or self._last_step is None:
            return self._config
        return self._config.replace(steps=max(1, self._last_step))

    @property
    def finished(self) -> bool:
        return self._done is not None and all(n in self._handled for n in range(1, self._parts_done() + 1))

    def _parts_done(self) -> int:
        n = self._done.get("parts") if self._done is not None else 0
        return n if isinstance(n, int) else 0

    def _read_json(self, name: str) -> dict | None:
        try:
            with open(os.path.join(self.folder, name), "rb") as f:
                obj = json.loads(f.read(MAX_BYTES))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            note = f"{name} in {self.folder} cannot be read ({type(exc).__name__}); the parts are read without it."
            if note not in self.notes:
                self.notes.append(note)
            return None
        return obj if isinstance(obj, dict) else None

    def _read_run(self) -> None:
        if self._run is not None:
            return
        identity = self._identity()
        run = self._read_json(RUN_FILE)
        if run is None:
            return
        self._run, self._run_id = run, identity
        text, query = run.get("config"), run.get("query")
        if isinstance(text, str):
            try:
                self._config, self._exact = config_from_json(text), True
            except ValueError as exc:
                self.notes.append(f"The model described in {RUN_FILE} cannot be read ({str(exc)[:120]}).")
        elif isinstance(query, str) and self._config is None:
            try:
                decoded = urlstate.decode(parse_qs(query[:MAX_QUERY], keep_blank_values=True, max_num_fields=100))
                self._config = decoded.config
            except ValueError:
                pass  # the first part's table says more

    def poll(self) -> tuple[Snapshot, ...]:
        """The snapshots of the parts written since the last poll, in order (a part is read once). When the run
        was started again in the folder, those of the new run from its first part on."""
        if self._run is not None and self._identity() not in (self._run_id, None):
            self.generation += 1
            self._start()
        self._read_run()
        if self._done is None:
            self._done = self._read_json(DONE_FILE)  # before the listing: every part it counts is there by then
        try:
            names = os.listdir(self.folder)
        except OSError:
            return ()
        numbers = sorted(int(m.group(1)) for m in map(PART_NAME.fullmatch, names) if m)
        out: list[Snapshot] = []
        for n in numbers:
            if n not in self._handled:
                self._handled.add(n)
                out.extend(self._read_part(n))
        for n in range(1, self._parts_done() + 1):
            if n not in self._handled:
                self._handled.add(n)
                self._skip(n, f"it is missing from {self.folder}.")
        return tuple(out)

    def _skip(self, n: int, why: str) -> tuple[Snapshot, ...]:
        self.skipped.append(f"Skipped {part_name(n)}: {why}")
        return ()

    def _read_part(self, n: int) -> tuple[Snapshot, ...]:
        name = part_name(n)
        try:
            with open(os.path.join(self.folder, name), "rb") as f:
                data = f.read(MAX_BYTES + 1)
            df = read_table(data, name)
        except OSError as exc:
            return self._skip(n, f"it cannot be opened ({exc.strerror or type(exc).__name__}).")
        except ReplayError as exc:
            text = str(exc)  # "'part-000002.parquet' is ..." or "'part-000002.parquet': what is wrong"
            if text.startswith(f"{name!r}: "):
                return self._skip(n, f"{text.removeprefix(f'{name!r}: ')}.")
            return self._skip(n, f"it {text.removeprefix(repr(name)).lstrip()}." if text.startswith(repr(name))
                              else f"{text}.")
        why = self._foreign(df)
        if why:
            return self._skip(n, f"it belongs to another run ({why}).")
        if self._config is None or not self._exact:
            try:
                cfg, notes = replay._config(df)
            except ReplayError as exc:
                return self._skip(n, f"{exc}.")
            self._config, self._exact = cfg, True
            self.notes.extend(notes)
        assert self._config is not None
        try:
            snaps = replay.snapshots_from_table(df, self._config, max_snapshots=None, bins=self._bins)
        except ReplayError as exc:
            return self._skip(n, f"{exc}.")
        if snaps:
            self._last_step = snaps[-1].step
        return snaps

    def _foreign(self, df) -> str:
        """Why the part ``df`` is not of this run ("" when it is): its model or share link is not run.json's
        (or, without run.json, the first part's), its steps are not after those read, or its table does not fit
        the run's layers."""
        text, query = df.attrs.get("bnviz.config"), df.attrs.get("bnviz.query")
        if self._run is not None:
            watched = isinstance(self._run.get("config"), str)
            if not watched and text:
                return "it describes a watched model; this run is bnviz's own"
            if not watched and self._run.get("query") != query:
                return "its share link differs from the one in run.json"
        else:
            watched = self._config is not None and self._config.watched is not None
            if self._config is not None and watched != bool(text):
                return "it is not of the same kind of run as the first part"
        if watched:
            if not text:
                return "it carries no description of the watched model"
            try:
                cfg = config_from_json(text)
            except ValueError:
                return "its description of the model cannot be read"
            if self._config is not None and self._exact and not _same_model(cfg, self._config):
                return "its model differs from the one in run.json"
        if self._last_step is not None and int(df["step"].min()) <= self._last_step:
            return f"its steps start at {int(df['step'].min())}, not after step {self._last_step}"
        if self._config is not None and self._exact:
            return _misfit(df, self._config)
        return ""


def _misfit(df, cfg: ExperimentConfig) -> str:
    """Why a part's table does not fit the run's config ("" when it does)."""
    variants = {str(v) for v in df["variant"].cat.categories}
    if not variants <= set(cfg.variants):
        return f"variants {', '.join(sorted(variants - set(cfg.variants)))[:80]} are not the run's"
    layer, unit = df["layer"].to_numpy(), df["unit"].to_numpy()
    if int(layer.max()) >= len(cfg.widths):
        return f"it has layer {int(layer.max())}, the run {len(cfg.widths)} layers"
    widths = np.asarray(cfg.widths)
    tracked = (layer >= 0) & (unit != POOLED)
    if (unit[tracked] >= widths[layer[tracked]]).any():
        return "its units do not fit the run's layers"
    return ""
