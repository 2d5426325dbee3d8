"""The store of finished runs: one table per run in a folder, keyed by a hash of the run's canonical link.

A run is a pure function of its config, so a finished run's table (the tidy table with the quantile block, whose
Parquet metadata carries the share link) is the run itself: whoever holds the file can show every panel of it
without training. The key is the first 16 hex digits of the sha256 of the canonical link: every config field in
the link's names, sorted, without the preset (which names a starting point, not the run). The folder is
``$BNVIZ_RUNS``, else ``bnviz/runs`` in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``).

- Each file is written whole: a unique temporary file in the same folder, flushed to disk, renamed over
  ``<key>.parquet``. Two writers of the same key (two replicas finishing the same link) each rename a whole file;
  the last one stays, and both hold the same run.
- A file that cannot be read, or whose link is not its key's run (a foreign file), is skipped and named in
  ``skipped``; it is never shown as a run.
- A run that failed to train leaves ``<key>.failed.json`` (its link and why, written whole), so that a later
  reader can say which runs failed; storing the run removes it.
- The folder is capped at ``max_bytes`` (``$BNVIZ_RUNS_MB`` megabytes, else 2 GB): a new run evicts the least
  recently used ones first (a read counts as a use).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from bnviz import urlstate
from bnviz.config import ExperimentConfig
from bnviz.owndata.store import cache_folder
from bnviz.table import replay
from bnviz.table.upload import MAX_ROWS, ReplayError

MAX_TOTAL = 2 << 30  # bytes of stored runs on one server (a preset's run with its quantiles is 1-30 MB)
CAP_ENV = "BNVIZ_RUNS_MB"  # the cap in megabytes, for a store that holds a large sweep
MAX_FILE = 256 << 20  # a stored table is the store's own, so it is read past the upload cap (replay.load's 20 MB)
MAX_FILE_ROWS = 32_000_000  # and past the upload's rows: santurkar-dln's 25 layers x 3 variants make 14 million
# Rows a page reads from the store at once: the upload's cap. Reading takes about 190 bytes of memory a row at its
# peak (ioffe's 1.7 million rows: 0.48 GB; santurkar-dln's 14 million: 2.8 GB, too much beside thirty sessions), so
# a page trains a larger run instead; the command line reads up to MAX_FILE_ROWS.
PAGE_ROWS = MAX_ROWS
KEY_LEN = 16
SUFFIX = ".parquet"
FAILED = ".failed.json"


class StoreError(OSError):
    """A run could not be stored (the disk is full, the folder cannot be written): the message says why."""


def canonical_link(cfg: ExperimentConfig) -> str:
    """The query string that names the run of ``cfg``: its config fields in the link's names, sorted."""
    fields = urlstate.encode("", cfg)
    fields.pop("preset")
    return urlencode(sorted(fields.items()), safe=",")


def run_key(cfg: ExperimentConfig) -> str:
    """The store's key of the run of ``cfg``."""
    return hashlib.sha256(canonical_link(cfg).encode()).hexdigest()[:KEY_LEN]


def run_bytes(cfg: ExperimentConfig, snapshots) -> bytes:
    """The stored form of the run of ``cfg`` from its ``snapshots``: the tidy Parquet table with its quantiles,
    carrying the canonical link (so that its replay restores ``cfg``) and, for a run on your own data, what it
    trained on."""
    from bnviz.owndata import metadata
    from bnviz.table.record import table_to_bytes, to_arrow

    return table_to_bytes(to_arrow(snapshots, quantiles=True), "parquet", query=canonical_link(cfg),
                          data=metadata(cfg))


def stored_key(data: bytes | Path) -> str | None:
    """The key of the run whose link a stored table (its bytes, or its file: only the footer is read) carries; None
    when it carries none, or is no Parquet file. Compared with the key a file is stored under, it tells a foreign
    file, and does not depend on where the run ended (a run whose every variant diverged ends early, and its replay
    says so in its config's steps)."""
    import io

    import pyarrow.parquet as pq

    from bnviz.table.schema import QUERY_KEY

    try:
        meta = pq.read_schema(data if isinstance(data, Path) else io.BytesIO(data)).metadata or {}
    except Exception:  # noqa: BLE001 - pyarrow raises several kinds for a damaged footer
        return None
    query = meta.get(QUERY_KEY)
    if query is None:
        return None
    from urllib.parse import parse_qs

    decoded = urlstate.decode(parse_qs(query.decode("utf-8", "replace"), keep_blank_values=True))
    return None if decoded.warnings else run_key(decoded.config)


def _umask() -> int:
    """The process's umask: from /proc on Linux (reading it with os.umask means setting it for every thread a
    moment, and the store writes from a background thread), else set and set back at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _rows(path: Path) -> int | None:
    """The rows of the Parquet file at ``path``, from its footer; None when it has no readable footer."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - absent, or not Parquet: get says which
        return None


def default_folder() -> Path:
    return cache_folder("BNVIZ_RUNS", "runs")


def default_cap() -> int:
    """``$BNVIZ_RUNS_MB`` megabytes when it is a positive whole number, else MAX_TOTAL."""
    text = os.environ.get(CAP_ENV, "")
    return int(text) << 20 if text.isdigit() and int(text) > 0 else MAX_TOTAL


class RunStore:
    """Finished runs in ``folder`` (made on the first put), at most ``max_bytes`` of them."""

    def __init__(self, folder: str | Path | None = None, max_bytes: int | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()
        self.max_bytes = max_bytes if max_bytes is not None else default_cap()
        self.skipped: list[str] = []  # one sentence per file skipped since this store was made

    def path(self, cfg: ExperimentConfig) -> Path:
        return self.folder / f"{run_key(cfg)}{SUFFIX}"

    def has(self, cfg: ExperimentConfig) -> bool:
        return self.path(cfg).is_file()

    def put(self, cfg: ExperimentConfig, data: bytes) -> Path:
        """Store the table ``data`` (Parquet bytes, as record.table_to_bytes makes them with the run's query) as the
        run of ``cfg``; raises StoreError, leaving no partial file, when it cannot be written."""
        path = self.path(cfg)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._evict(len(data), keep=path)
            self._write(path, data)
            self._failed_path(cfg).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"could not store the run in {self.folder}: {exc.strerror or exc}") from None
        return path

    def _write(self, path: Path, data: bytes) -> None:
        """Write ``data`` whole as ``path``: a temporary file in the folder, flushed, renamed over it. The file is
        readable by all (0666 less the umask, as open() makes files): replicas running as other users share it."""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.folder)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def _failed_path(self, cfg: ExperimentConfig) -> Path:
        return self.folder / f"{run_key(cfg)}{FAILED}"

    def put_failure(self, cfg: ExperimentConfig, error: str) -> Path:
        """Record that the run of ``cfg`` failed to train, and why (one line); raises StoreError when it cannot."""
        path = self._failed_path(cfg)
        record = {"link": canonical_link(cfg), "error": error}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write(path, json.dumps(record).encode())
        except OSError as exc:
            raise StoreError(f"could not record a failed run in {self.folder}: {exc.strerror or exc}") from None
        return path

    def failure(self, cfg: ExperimentConfig) -> str | None:
        """Why the run of ``cfg`` failed when it was last trained, or None when no failure is recorded (or the
        record cannot be read)."""
        try:
            record = json.loads(self._failed_path(cfg).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("link") != canonical_link(cfg):
            return None
        error = record.get("error")
        return error if isinstance(error, str) else None

    def holds(self, cfg: ExperimentConfig) -> bool:
        """Whether the store holds the run of ``cfg``, checked from the file's footer alone (milliseconds, where
        ``get`` reads the whole table): it is there, is Parquet, and carries its key's link. A file that fails
        this is named in ``skipped``; one whose pages are damaged behind a sound footer is found by ``get``."""
        path = self.path(cfg)
        if not path.is_file():
            return False
        key = stored_key(path)
        if key is None:
            self._skip(path, "it cannot be read (no whole Parquet table carrying a run's link)")
        elif key != path.stem:
            self._skip(path, "it holds another run than its name says")
        return key == path.stem

    def get(self, cfg: ExperimentConfig, max_rows: int = MAX_FILE_ROWS) -> replay.Replay | None:
        """The stored run of ``cfg``, or None when the store does not hold it (or holds an unreadable or foreign
        file under its key, or one of more than ``max_rows`` rows, which is then named in ``skipped``)."""
        path = self.path(cfg)
        rows = _rows(path)
        if rows is not None and rows > max_rows:  # found from the footer, before any reading
            self.skipped.append(f"Not opened {path.name} from the store of runs: its table has {rows:,} rows, more "
                                f"than a page reads at once ({max_rows:,}).")
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            run = replay.load(data, path.name, max_bytes=MAX_FILE, max_rows=max_rows)
        except ReplayError as exc:
            self._skip(path, f"it cannot be read ({exc})")
            return None
        if stored_key(data) != path.stem:
            self._skip(path, "it holds another run than its name says")
            return None
        os.utime(path)  # recently used: evicted last
        return run

    def _skip(self, path: Path, why: str) -> None:
        self.skipped.append(f"Skipped {path.name} in the store of runs: {why}.")

    def _evict(self, incoming: int, keep: Path) -> None:
        """Remove the least recently used runs until ``incoming`` more bytes fit under the cap."""
        files = []
        for p in self.folder.glob(f"*{SUFFIX}"):
            try:
                st = p.stat()
            except OSError:  # removed meanwhile by another replica
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files) + incoming
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            try:
                p.unlink()
            except OSError:
                continue
            total -= size
