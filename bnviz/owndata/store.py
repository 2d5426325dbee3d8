"""The data store: uploaded CSV files kept on the server under their content hash, so that a link names its data.

A file is ``<hash>.csv`` (the first DATA_HASH_LEN hex digits of its sha256) beside ``<hash>.json``, a sidecar
with the name it was uploaded under. The same bytes uploaded twice are one file. The folder is ``$BNVIZ_DATA``,
else ``bnviz/data`` in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``). Its total is capped at
MAX_TOTAL bytes: a new file evicts the least recently used ones first (a link to evicted data then says, as for
any data this server lacks, which file to upload again).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from bnviz.config import DATA_HASH_LEN, OWN_DATA
from bnviz.owndata.csvfile import MAX_BYTES, CsvError, DataInfo, Prepared, file_name, prepare, read

MAX_TOTAL = 200 << 20  # bytes of data files kept on one server (40 files at the 5 MB cap)


class MissingData(LookupError):
    """This server does not have a link's data; the message names the file to upload."""


def metadata(cfg) -> str | None:
    """What a recorded table says of its data (JSON, Parquet metadata ``bnviz.data``): the file's hash and name,
    the target column ("" for the file's default), the task and the number of inputs; None for other datasets."""
    if cfg.dataset != OWN_DATA:
        return None
    return json.dumps({"data": cfg.data, "name": cfg.data_name, "target": cfg.target, "task": cfg.data_task,
                       "inputs": cfg.data_inputs})


class Known:
    """The one data file a recorded table describes (its ``bnviz.data`` metadata), answering as Store does, so
    that a replay restores its config on a server that does not have the file."""

    def __init__(self, text: str | bytes) -> None:
        try:
            d = json.loads(text)
            self.h, self.target = str(d["data"]), str(d["target"])
            self._info = DataInfo(str(d["name"])[:200], (), self.target, "", str(d["task"]), int(d["inputs"]),
                                  0, (), 0)
        except (ValueError, KeyError, TypeError):
            raise CsvError("its description of the data is damaged") from None

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def task(self) -> str:
        return self._info.task

    def info(self, h: str, target: str = "") -> DataInfo:
        if h != self.h or target != self.target:
            raise MissingData(f"the description of data file {h[:40]} is not at hand")
        return self._info

    def name_of(self, h: str) -> str | None:
        return self._info.name if h == self.h else None


def config_changes(h: str, target: str, info: DataInfo) -> dict:
    """The ExperimentConfig fields that train on file ``h``'s column ``target`` (described by ``info``); the
    default target is written as "" so that a config names it one way only."""
    return {"dataset": OWN_DATA, "data": h, "target": "" if target in ("", info.default_target) else target,
            "data_task": info.task, "data_inputs": info.n_inputs, "data_name": info.name}


def key(data: bytes) -> str:
    """The content hash a link carries: the sha256 of the bytes, its first DATA_HASH_LEN hex digits."""
    return hashlib.sha256(data).hexdigest()[:DATA_HASH_LEN]


def cache_folder(env: str, name: str) -> Path:
    """The folder ``$env`` names, else ``bnviz/name`` in the user's cache folder (``$XDG_CACHE_HOME`` or
    ``~/.cache``)."""
    chosen = os.environ.get(env)
    if chosen:
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "bnviz" / name


def default_folder() -> Path:
    return cache_folder("BNVIZ_DATA", "data")


def default_store() -> Store:
    """The store of this server (see the module's docstring for the folder)."""
    return Store(default_folder())


class Store:
    """Data files by content hash in ``folder`` (created on the first put)."""

    def __init__(self, folder: str | Path, max_total: int = MAX_TOTAL) -> None:
        self.folder = Path(folder)
        self.max_total = max_total

    def _path(self, h: str, suffix: str) -> Path:
        if len(h) != DATA_HASH_LEN or any(c not in "0123456789abcdef" for c in h):
            raise MissingData(f"{h[:40]!r} is not a data hash ({DATA_HASH_LEN} hex digits)")
        return self.folder / f"{h}.{suffix}"

    def put(self, data: bytes, name: str) -> str:
        """Keep a checked file (csvfile.read accepted it) and return its hash; the same bytes are kept once."""
        data = bytes(data)
        if len(data) > min(MAX_BYTES, self.max_total):
            raise CsvError(f"the file is larger than the data store takes ({MAX_BYTES >> 20} MB)")
        h = key(data)
        path = self._path(h, "csv")
        if path.is_file():
            os.utime(path)
            return h
        self.folder.mkdir(parents=True, exist_ok=True)
        self._evict(len(data))
        _write(path.with_suffix(".json"), json.dumps({"name": file_name(name), "bytes": len(data)}).encode())
        _write(path, data)
        return h

    def get(self, h: str) -> bytes:
        """The bytes of file ``h``; raises MissingData when this server does not have them (or they changed)."""
        path = self._path(h, "csv")
        try:
            data = path.read_bytes()
        except OSError:
            raise MissingData(self._missing(h)) from None
        if key(data) != h:  # a damaged or replaced file is as good as none
            raise MissingData(self._missing(h))
        os.utime(path)  # recently used: evicted last
        return data

    def name_of(self, h: str) -> str | None:
        """The name file ``h`` was uploaded under, when the store has its sidecar."""
        try:
            return file_name(json.loads(self._path(h, "json").read_text())["name"])
        except (OSError, ValueError, KeyError, TypeError, MissingData):
            return None

    def _missing(self, h: str) -> str:
        return f"this server does not have the data file {h}"

    def prepared(self, h: str, target: str = "") -> Prepared:
        """File ``h`` read and made ready for column ``target``; raises MissingData or CsvError."""
        data = self.get(h)
        return prepare(read(data, self.name_of(h) or f"{h}.csv"), target)

    def info(self, h: str, target: str = "") -> DataInfo:
        """What a config needs of file ``h`` with column ``target``, cached by content (raises as prepared)."""
        return _info(str(self.folder.resolve()), h, target, self.max_total)

    def total(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.csv")) if self.folder.is_dir() else 0

    def _evict(self, incoming: int) -> None:
        files = sorted(self.folder.glob("*.csv"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for p in files:
            if total + incoming <= self.max_total:
                break
            total -= p.stat().st_size
            p.unlink(missing_ok=True)
            p.with_suffix(".json").unlink(missing_ok=True)


@functools.lru_cache(maxsize=256)
def _cached_info(folder: str, h: str, target: str, max_total: int, data_key: str) -> DataInfo:
    return Store(folder, max_total).prepared(h, target).info


def _info(folder: str, h: str, target: str, max_total: int) -> DataInfo:
    store = Store(folder, max_total)
    path = store._path(h, "csv")
    if not path.is_file():
        raise MissingData(store._missing(h))
    # Cached by content: the hash names it (the size also keys the cache, so a damaged file is read again).
    return _cached_info(folder, h, target, max_total, f"{path.stat().st_size}")


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a temporary file in the same folder, renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
