"""Writing the tidy table: snapshots encoded into columns, one at a time (TableEncoder, thinned as a History
is), and written as CSV or Parquet. The record command encodes in the statistics worker (TableRecorder) and
the page's export encodes a History's snapshots; both go through the same encoder.
"""

from __future__ import annotations

import os
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from bnviz import stats
from bnviz.config import TABLE_CAP, ExperimentConfig, config_to_json
from bnviz.measure.snapshot import POOLED, Snapshot
from bnviz.table.history import History
from bnviz.table.schema import (
    AFFINE_MAX_WIDTH,
    AFFINE_STAGE,
    CONFIG_KEY,
    DATA_KEY,
    QUANTILE_STATS,
    QUERY_KEY,
    SMOOTH_STATS,
    TABLE_COLUMNS,
    TRAIN_STATS,
)

if TYPE_CHECKING:
    import pandas

Column: TypeAlias = "np.ndarray | tuple[np.ndarray, list[str]]"  # numbers, or a text column's (codes, names)


def _rows(snap: Snapshot, quantiles: bool = False):
    """Yield column blocks (variant, layer, stage, units array, stat names, values matrix) of one snapshot."""
    for token, v in snap.variants.items():
        train = np.array([[v.loss, v.accuracy, v.test_accuracy]])
        if v.diverged_at is not None:
            train = np.array([[v.loss, v.accuracy, v.test_accuracy, float(v.diverged_at)]])
        names = TRAIN_STATS + (("diverged_at",) if v.diverged_at is not None else ())
        yield token, -1, "train", np.array([POOLED]), names, train
        if v.smooth is not None:
            yield token, -1, "train", np.array([POOLED]), SMOOTH_STATS, np.array([astuple(v.smooth)])
        for li, layer in enumerate(v.layers):
            for stage, s in layer.stages.items():
                units = np.array(s.units)
                yield token, li, stage, units, stats.UNIT_STATS, s.table
                extra = np.column_stack([s.drift_prev, s.drift_first])
                yield token, li, stage, units, ("w1_prev", "w1_first"), extra
                if quantiles:
                    yield token, li, stage, units, QUANTILE_STATS, s.quantiles
                if stage == layer.act_stage:
                    yield token, li, stage, units, ("saturation",), layer.saturation[:, None]
                if stage == "y" and layer.gamma is not None:
                    assert layer.beta is not None  # learned together with gamma
                    tracked = units[1:]
                    gb = np.column_stack([layer.gamma[tracked], layer.beta[tracked]])
                    yield token, li, stage, tracked, ("gamma", "beta"), gb
            if layer.gamma is not None and len(layer.gamma) <= AFFINE_MAX_WIDTH:
                assert layer.beta is not None
                every = np.arange(len(layer.gamma))
                yield token, li, AFFINE_STAGE, every, ("gamma", "beta"), np.column_stack([layer.gamma, layer.beta])
            if layer.change:
                names = tuple(f"{k}_change" for k in layer.change)
                yield token, li, "params", np.array([POOLED]), names, np.array([list(layer.change.values())])
            if layer.ics is not None:
                yield token, li, "grad", np.array([POOLED]), ("ics_l2", "ics_cos"), np.array([layer.ics])


class TableEncoder:
    """The tidy table's columns, encoded one snapshot at a time (``add``), assembled for any kept subset of
    them (``columns``): what lets the record command's worker encode each snapshot as it comes instead of
    all of them at the end.

    Text columns are coded, not written out (factorizing ~300k strings would cost more than the rest), with
    codes in order of first appearance, remapped in ``columns`` to the sorted names (the order pandas gives
    the categories of strings). The per-block unit and stat columns repeat a few patterns, so they are built
    once per pattern. NaN (undefined) values are left out; a name stays a category while any kept snapshot
    has a row with it, even a left-out one, as when the table is encoded in one go.
    """

    _TEXT = ("variant", "stage", "stat")

    def __init__(self, quantiles: bool = False) -> None:
        self.quantiles = quantiles
        self._vocab: dict[str, dict[str, int]] = {c: {} for c in self._TEXT}
        self._patterns: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._blocks: dict[int, tuple] = {}  # step -> (columns without step, codes used per text column)

    def _code(self, column: str, name: str) -> int:
        vocab = self._vocab[column]
        return vocab.setdefault(name, len(vocab))

    def add(self, snap: Snapshot) -> None:
        """Encode ``snap`` (replacing an earlier snapshot of the same step)."""
        lengths, variant, layer, stage, unit, stat, value = [], [], [], [], [], [], []
        for token, li, stage_name, units, names, values in _rows(snap, self.quantiles):
            key = (tuple(int(u) for u in units), tuple(names))
            if key not in self._patterns:
                self._patterns[key] = (
                    np.repeat(np.asarray(key[0], dtype=np.int64), len(names)),
                    np.tile(np.array([self._code("stat", n) for n in names], dtype=np.int64), len(key[0])))
            u, st = self._patterns[key]
            lengths.append(len(u))
            variant.append(self._code("variant", token))
            layer.append(li)
            stage.append(self._code("stage", stage_name))
            unit.append(u)
            stat.append(st)
            value.append(np.asarray(values, dtype=np.float64).reshape(-1))
        n = np.asarray(lengths, dtype=np.int64)
        # compact while kept (a record run may keep thousands of snapshots); int64 in the table
        cols: dict[str, np.ndarray] = {
            "variant": np.repeat(np.asarray(variant, dtype=np.int32), n),
            "layer": np.repeat(np.asarray(layer, dtype=np.int32), n),
            "stage": np.repeat(np.asarray(stage, dtype=np.int32), n),
            "unit": np.concatenate(unit).astype(np.int32) if unit else np.zeros(0, np.int32),
            "stat": np.concatenate(stat).astype(np.int32) if stat else np.zeros(0, np.int32),
            "value": np.concatenate(value) if value else np.zeros(0),
        }
        used = {c: np.unique(cols[c]) for c in self._TEXT}
        keep = ~np.isnan(cols["value"])
        self._blocks[snap.step] = ({k: v[keep] for k, v in cols.items()}, used)

    def __len__(self) -> int:
        return len(self._blocks)

    def keep_only(self, steps) -> None:
        """Forget the snapshots whose step is not in ``steps`` (those a History thinned out)."""
        steps = set(steps)
        self._blocks = {k: v for k, v in self._blocks.items() if k in steps}

    def columns(self, steps) -> dict[str, Column]:
        """The table's columns for the encoded snapshots of ``steps``, in that order, as numpy arrays; the text
        columns as ``(codes, names)`` with ``names`` sorted."""
        blocks = [self._blocks[s] for s in steps]
        cat = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)  # noqa: E731
        cols: dict[str, np.ndarray] = {k: cat([b[0][k] for b in blocks])
                                       for k in ("variant", "layer", "stage", "unit", "stat")}
        cols["value"] = np.concatenate([b[0]["value"] for b in blocks]) if blocks else np.zeros(0)
        cols["step"] = np.repeat(np.asarray(list(steps), dtype=np.int64), [len(b[0]["value"]) for b in blocks])
        out: dict[str, Column] = {}
        for k in TABLE_COLUMNS:
            if k not in self._TEXT:
                out[k] = cols[k]
                continue
            by_code = {c: n for n, c in self._vocab[k].items()}
            names = sorted(by_code[int(c)] for c in np.unique(cat([b[1][k] for b in blocks])))
            remap = np.zeros(len(by_code), dtype=np.int64)
            remap[[self._vocab[k][n] for n in names]] = np.arange(len(names))
            out[k] = (remap[cols[k]], names)
        return out


def _encoded(snapshots, quantiles: bool = False) -> dict[str, Column]:
    """The tidy table's columns for ``snapshots`` (see TableEncoder.columns)."""
    enc = TableEncoder(quantiles)
    for snap in snapshots:
        enc.add(snap)
    return enc.columns([s.step for s in snapshots])


@dataclass(frozen=True)
class TableFile:
    """Where a run's tidy table goes, and with what: the record command's ``--out``, share link and
    ``--quantiles``, and how many snapshots to keep at most (more are thinned evenly, as History does)."""

    path: str
    query: str | None = None
    quantiles: bool = False
    data: str | None = None  # owndata.metadata of a run on your own data
    cap: int = TABLE_CAP


@dataclass(frozen=True)
class _Step:
    step: int  # all a History reads of what it keeps, when only the steps are wanted


class TableRecorder:
    """Snapshots encoded into the tidy table as they arrive, thinned as a History thins them, written at the end.

    Used where the snapshots are made (the record command's statistics worker, or inline): each snapshot is
    encoded once, when it comes (0.3 ms for ioffe, while the worker waits for the next one), so that only
    the file is left to write when training ends, and no snapshot has to travel back to the training process.
    The snapshots themselves are not kept. It is a measure.worker.Recorder: made by the record command, it holds
    only its settings until ``prepare``, so that it can be sent to the worker process.
    """

    def __init__(self, snapshot_every: int, target: TableFile) -> None:
        _kind(target.path)  # a bad suffix fails now, not after the training
        self.target = target
        self.where = target.path
        self._snapshot_every = snapshot_every
        self._steps: History[_Step] | None = None  # made by prepare(), where the snapshots are made
        self._encoder: TableEncoder | None = None

    def prepare(self) -> None:
        """Start an empty table, and import the writer's modules now (pyarrow: 0.05 s) rather than when training
        has ended."""
        self._steps = History(self._snapshot_every, self.target.cap)
        self._encoder = TableEncoder(self.target.quantiles)
        if _kind(self.target.path) == "parquet":
            import pyarrow.parquet  # noqa: F401

    def _parts(self) -> tuple[History[_Step], TableEncoder]:
        if self._steps is None or self._encoder is None:
            raise RuntimeError("TableRecorder.prepare() must run before the first snapshot")
        return self._steps, self._encoder

    def append(self, snap: Snapshot) -> None:
        """Encode the newest snapshot (steps must increase)."""
        steps, encoder = self._parts()
        steps.append(_Step(snap.step))
        encoder.add(snap)
        if len(encoder) > len(steps):  # the History thinned its grid: forget those too
            encoder.keep_only(steps.steps())

    def __len__(self) -> int:
        return 0 if self._steps is None else len(self._steps)

    def write(self) -> int:
        """Write the table to the target file; returns the number of snapshots in it.

        The file appears whole or not at all: it is written beside the target under a temporary name, then
        renamed over it, so a write that fails (a full disk, a killed worker) leaves an earlier file as it was.
        """
        steps, encoder = self._parts()
        cols = encoder.columns(steps.steps())
        kind = _kind(self.target.path)
        folder, name = os.path.split(os.path.abspath(self.target.path))
        part = os.path.join(folder, f".{name}.{os.getpid()}.part.{kind}")  # the suffix tells write_table the kind
        try:
            write_table(_arrow_of(cols) if kind == "parquet" else _frame_of(cols), part, query=self.target.query,
                        data=self.target.data)
            os.replace(part, self.target.path)
        finally:
            if os.path.exists(part):
                os.remove(part)
        return len(steps)


def to_table(snapshots, quantiles: bool = False) -> pandas.DataFrame:
    """Build the tidy table (columns TABLE_COLUMNS) from snapshots; NaN (undefined) values are left out.

    With ``quantiles=True`` every (variant, step, layer >= 0, stage, unit) also gets the stats q00..q63:
    StageStats.quantiles, which bnviz.table.replay turns back into histograms and Q-Q plots. Off by default, so
    the record command's table stays as docs/design.md (contract 3) describes it. Infinite values stay (a KL of
    +inf is a measurement: the data has a point mass). variant, stage and stat are categorical.
    """
    return _frame_of(_encoded(snapshots, quantiles))


def _frame_of(cols: dict[str, Column]) -> pandas.DataFrame:
    import pandas as pd

    return pd.DataFrame({k: pd.Categorical.from_codes(*v) if isinstance(v, tuple) else v for k, v in cols.items()})


def to_arrow(snapshots, quantiles: bool = False):
    """:func:`to_table` as a pyarrow Table (text columns dictionary-encoded), built without pandas.

    What the record command writes to Parquet. pyarrow's own converters (``pa.array`` of an ndarray or of a
    list of strings) import pandas on their first call, 0.2-0.3 s of the record command's time for nothing,
    so the columns are made from their buffers: numpy's memory as it is, and the few category names as
    UTF-8 bytes with int32 offsets. ``to_arrow(s).to_pandas()`` equals ``to_table(s)`` (tested).
    """
    return _arrow_of(_encoded(snapshots, quantiles))


def _arrow_of(cols: dict[str, Column]):
    import pyarrow as pa

    def numbers(v: np.ndarray):
        v = np.ascontiguousarray(v)
        return pa.Array.from_buffers(pa.from_numpy_dtype(v.dtype), len(v), [None, pa.py_buffer(v)])

    def strings(names: list[str]):
        data = [n.encode("utf-8") for n in names]
        offsets = np.zeros(len(data) + 1, dtype=np.int32)
        np.cumsum([len(d) for d in data], out=offsets[1:])
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
        return pa.Array.from_buffers(pa.string(), len(data), buffers)

    def column(v):
        if isinstance(v, tuple):
            codes, names = v
            return pa.DictionaryArray.from_arrays(numbers(codes.astype(np.int8 if len(names) < 128 else np.int32)),
                                                  strings(names))
        return numbers(v)

    return pa.table({k: column(v) for k, v in cols.items()})


def _arrow(table, query: str | None, data: str | None = None, config: str | None = None):
    """``table`` (a DataFrame or a pyarrow Table) as a pyarrow Table with the share-link query string in
    the key-value metadata (QUERY_KEY), the description of your own data (DATA_KEY) and a watched model's
    config JSON (CONFIG_KEY) when given."""
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    for key, value in ((QUERY_KEY, query), (DATA_KEY, data), (CONFIG_KEY, config)):
        if value is not None:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), key: str(value).encode()})
    return table


def _watched_json(config: ExperimentConfig | None) -> str | None:
    """The CONFIG_KEY metadata of a run's table: a watched model's config JSON (None for bnviz's own runs)."""
    return config_to_json(config) if config is not None and config.watched is not None else None


def _frame(table):
    """``table`` as a DataFrame (a pyarrow Table is converted)."""
    return table if hasattr(table, "to_csv") else table.to_pandas()


def _kind(path_or_kind: str) -> str:
    lower = str(path_or_kind).lower()
    for kind in ("parquet", "csv"):
        if lower == kind or lower.endswith("." + kind):
            return kind
    raise ValueError(f"output file must end in .csv or .parquet, got {str(path_or_kind)[:80]!r}")


def write_table(df, path: str, query: str | None = None, data: str | None = None,
                config: ExperimentConfig | None = None) -> None:
    """Write the tidy table (a DataFrame, or to_arrow's Table) as CSV or Parquet, chosen by the file's suffix.

    Parquet is written with zstd compression and, when ``query`` is given (the run's share-link query
    string, ``preset=ioffe&seed=0&...``), carries it as key-value metadata ``bnviz.query``, from which
    bnviz.table.replay restores the exact configuration; ``data`` (owndata.metadata) says which file of your own
    data the run trained on (``bnviz.data``); a ``config`` of a watched model is written whole (``bnviz.config``,
    config_to_json: its layer names and all), and the config of bnviz's own runs, which the query holds, not at
    all. CSV has no place for metadata: ``query``, ``data`` and ``config`` are ignored.
    """
    if _kind(path) == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(_arrow(df, query, data, _watched_json(config)), path, compression="zstd")
    else:
        _frame(df).to_csv(path, index=False)


def table_to_bytes(df, kind: str, query: str | None = None, data: str | None = None,
                   config: ExperimentConfig | None = None) -> bytes:
    """The bytes of :func:`write_table`'s file, for a download button: ``kind`` is "csv" or "parquet"."""
    if _kind(kind) == "parquet":
        import io

        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(_arrow(df, query, data, _watched_json(config)), buf, compression="zstd")
        return buf.getvalue()
    return _frame(df).to_csv(index=False).encode("utf-8")
