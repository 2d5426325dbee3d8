"""Reading an uploaded table: the security boundary. Everything a visitor uploads passes here first.

A file is parsed **as data only** (no pickle, no eval, no pandas metadata): CSV with pandas' C parser after
a vectorized pre-scan of the raw bytes, Parquet with pyarrow after checking its footer. Sizes, names and
structure are checked against the limits below before anything is rebuilt from it. Anything else raises
:class:`ReplayError` with one short line that never echoes more than 40 characters of the file.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from bnviz import config as C
from bnviz.config import TABLE_CAP, split_variant
from bnviz.measure.snapshot import POOLED
from bnviz.owndata.csvfile import MAGIC as _MAGIC  # file formats told apart by their first bytes: one list
from bnviz.table.schema import (
    AFFINE_STAGE,
    CONFIG_KEY,
    DATA_KEY,
    KNOWN_STATS,
    LAYER_STAGES,
    QUERY_KEY,
    STAGE_NAMES,
    STAGE_OF_STAT,
    TABLE_COLUMNS,
)

if TYPE_CHECKING:
    import pandas


class ReplayError(ValueError):
    """A file that cannot be replayed; the message is one line, safe to show as is."""

MAX_BYTES = 20 << 20  # default upload cap: a full ioffe run with quantiles is ~9 MB as Parquet

MAX_ROWS = 3_000_000  # the full ioffe run with quantiles has 1.7 million

MAX_STEPS = TABLE_CAP + 1  # distinct steps: the record command keeps at most TABLE_CAP snapshots + the final one

MAX_VARIANTS = 3 * len(C.VARIANTS)  # every kind, each at most as itself, @before and @after

MAX_LAYERS = C.LIMITS["depth"][1]

MAX_WATCHED_LAYERS = 512  # layers of a table that carries a watched model's config (a ResNet-152 has 155 BNs)

MAX_UNIT = C.LIMITS["width"][1] - 1

MAX_TRACKED = 64  # distinct tracked units (the default config tracks 5)

MAX_LINE = 512  # bytes per CSV line; the longest legitimate line is about 90

MAX_NAME = 40  # characters of a variant, stage or stat name

MAX_DECODED = 512 << 20  # Parquet: uncompressed size of the column data, per the footer

MAX_ROW_GROUPS = 10_000

MAX_QUERY = 4000  # characters of the bnviz.query metadata

MAX_CONFIG = 200_000  # characters of the bnviz.config metadata (a watched model's layer names)

_NUMERIC_NA = ["", "nan", "NaN", "NAN", "-nan", "NA", "N/A", "null", "NULL", "None"]


def _show(value, limit: int = MAX_NAME) -> str:
    """``repr`` of a user-supplied value, cut so that the whole repr is at most ``limit`` characters."""
    text = str(value)
    r = repr(text)
    if len(r) <= limit:
        return r
    cut = text[:limit]
    while cut and len(repr(cut + "…")) > limit:
        cut = cut[:-1]
    return repr(cut + "…")


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


def read_table(data: bytes, name: str, max_bytes: int = MAX_BYTES,
               max_rows: int = MAX_ROWS) -> pandas.DataFrame:
    """Parse and validate an uploaded table (CSV or Parquet) as data only.

    The format is sniffed (Parquet files start and end with ``PAR1``) and must agree with the name's suffix
    when it has one (.csv, .parquet or .pq). The result has the columns of history.TABLE_COLUMNS with
    variant/stage/stat categorical, step/layer/unit int64 and value float64 (NaN values dropped, as
    record.to_table does); ``df.attrs`` holds ``bnviz.kind``, ``bnviz.name`` and, for Parquet files that
    carry it, ``bnviz.query`` (the run's share-link query string), ``bnviz.data`` (what a run on your own
    data trained on: owndata.metadata) and ``bnviz.config`` (a watched model's config JSON).

    Raises :class:`ReplayError` (a ValueError) with a one-line message for anything else: an empty or
    oversized file (checked before any parsing), binary content, missing or extra columns, non-numeric
    numbers, empty keys, negative steps, unknown names, duplicate rows, and sizes beyond the limits of
    this module (rows, steps, variants, layers, units, line length).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ReplayError(f"expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    shown = _show(name)
    if len(data) == 0:
        raise ReplayError(f"{shown} is empty")
    if len(data) > max_bytes:
        raise ReplayError(f"{shown} is {_mb(len(data))}, over the {_mb(max_bytes)} limit for an upload")
    suffix = str(name).lower().rpartition(".")[2] if "." in str(name) else ""
    if suffix not in ("", "csv", "parquet", "pq"):
        raise ReplayError(f"{shown}: expected a .csv or .parquet file")
    if data.startswith(b"PAR1"):
        (df, query, described, config), kind = _read_parquet(data, shown, max_rows), "parquet"
    else:
        if suffix in ("parquet", "pq"):
            raise ReplayError(f"{shown} is not a Parquet file (it does not start with the PAR1 marker)")
        for magic, what in _MAGIC.items():
            if data.startswith(magic):
                raise ReplayError(f"{shown} is {what}, not a CSV or Parquet table")
        df, query, described, config, kind = _read_csv(data, shown), None, None, None, "csv"
    df.attrs["bnviz.config"] = config  # validate's layer limit depends on it
    df = validate(df, max_rows)
    df.attrs.update({"bnviz.kind": kind, "bnviz.name": str(name)[:200], "bnviz.query": query,
                     "bnviz.data": described})
    return df


def _read_csv(data: bytes, shown: str):
    """Pre-scan the raw bytes (vectorized, bounded memory), then parse with pandas' C engine."""
    import pandas as pd

    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Excel writes one)
        data = data[3:]
    if not data:
        raise ReplayError(f"{shown} holds no table, only a byte-order mark")
    b = np.frombuffer(data, dtype=np.uint8)
    control = np.zeros(256, dtype=bool)
    control[[*range(0, 9), 11, 12, *range(14, 32), 127]] = True
    if control[b].any():
        raise ReplayError(f"{shown} holds binary data (control characters), not a CSV table")
    if (b >= 128).any():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ReplayError(f"{shown} is not UTF-8 text: binary data, not a CSV table") from None
    n_lines = int(np.count_nonzero(b == 10)) + (1 if b[-1] != 10 else 0)
    if n_lines > MAX_ROWS + 1:
        raise ReplayError(f"{shown} has {n_lines:,} lines, over the limit of {MAX_ROWS:,} rows")
    ends = np.flatnonzero(b == 10)
    if b[-1] != 10:
        ends = np.r_[ends, b.size]
    starts = np.r_[0, ends[:-1] + 1]
    lengths = ends - starts
    longest = int(np.argmax(lengths))
    if lengths[longest] > MAX_LINE:
        raise ReplayError(f"{shown}: line {longest + 1} is {int(lengths[longest]):,} characters long (a bnviz "
                          f"table line has at most {MAX_LINE}): not a bnviz table")
    cr = np.zeros(len(ends), dtype=bool)
    has_end = ends > starts
    cr[has_end] = b[ends[has_end] - 1] == 13
    blank = lengths - cr == 0
    full = np.flatnonzero(~blank)
    if full.size == 0:
        raise ReplayError(f"{shown} holds only blank lines")
    header = data[starts[full[0]]:ends[full[0]]].decode("utf-8", "replace").rstrip("\r")
    names = [h.strip().strip('"').strip() for h in header.split(",")]
    _check_columns(names, shown)
    if full.size == 1:
        raise ReplayError(f"{shown} has a header but no rows")
    # Per non-blank line: commas (6 for 7 fields) and quotes (paired on the line: no field spans lines).
    seg = starts[full]
    commas = np.add.reduceat(b == 44, seg, dtype=np.int64)
    quotes = np.add.reduceat(b == 34, seg, dtype=np.int64)
    bad = np.flatnonzero((commas != len(TABLE_COLUMNS) - 1) | (quotes % 2 == 1))
    if bad.size:
        i = int(bad[0])
        what = (f"has {int(commas[i]) + 1} fields, expected {len(TABLE_COLUMNS)}" if commas[i] != len(TABLE_COLUMNS) - 1
                else "has an unpaired quote")
        raise ReplayError(f"{shown}: line {int(full[i]) + 1} {what}")
    strings = {c: "category" for c in ("variant", "stage", "stat")}
    numbers = {c: "float64" for c in ("step", "layer", "unit", "value")}
    kw = dict(engine="c", low_memory=True, keep_default_na=False, skip_blank_lines=True, encoding="utf-8")
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 3 parses floats exactly by default (and deprecates this)
        kw["float_precision"] = "round_trip"
    na = {**{c: [""] for c in strings}, **{c: _NUMERIC_NA for c in numbers}}
    try:
        return pd.read_csv(io.BytesIO(data), usecols=list(TABLE_COLUMNS), dtype={**strings, **numbers},
                           na_values=na, **kw)
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError):
        pass  # find the culprit and say which value, without echoing pandas' message (it quotes the data)
    for col in numbers:
        raw = pd.read_csv(io.BytesIO(data), usecols=[col], dtype=str, na_values={col: _NUMERIC_NA}, **kw)[col]
        num = pd.to_numeric(raw, errors="coerce")
        wrong = np.flatnonzero(num.isna().to_numpy() & raw.notna().to_numpy())
        if wrong.size:
            i = int(wrong[0])
            raise ReplayError(f"{shown}: column {col!r} must hold numbers; row {i + 1} has {_show(raw.iloc[i])}")
    raise ReplayError(f"{shown} could not be parsed as a CSV table")


def _check_columns(names, shown: str) -> None:
    if len(names) != len(set(names)):
        dup = next(n for n in names if names.count(n) > 1)
        raise ReplayError(f"{shown}: column {_show(dup)} appears twice")
    missing = [c for c in TABLE_COLUMNS if c not in names]
    extra = [n for n in names if n not in TABLE_COLUMNS]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing column(s) " + ", ".join(missing))
        if extra:
            parts.append(f"unexpected column(s) {', '.join(_show(e) for e in extra[:3])}"
                         + (f" and {len(extra) - 3} more" if len(extra) > 3 else ""))
        raise ReplayError(f"{shown}: {'; '.join(parts)} (a bnviz table has exactly {', '.join(TABLE_COLUMNS)})")


def _read_parquet(data: bytes, shown: str, max_rows: int = MAX_ROWS):
    """(DataFrame, query string or None, data description or None, config JSON or None) from Parquet bytes; the
    footer is checked before any data is read."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(data) < 12 or not data.endswith(b"PAR1"):
        raise ReplayError(f"{shown} is a truncated Parquet file (it does not end with the PAR1 marker)")
    try:
        # the columns first: reading names as dictionaries needs them there (a foreign table says what it lacks)
        _check_columns(list(pq.ParquetFile(pa.BufferReader(data)).schema_arrow.names), shown)
        pf = pq.ParquetFile(pa.BufferReader(data), read_dictionary=["variant", "stage", "stat"])
        md = pf.metadata
        schema = pf.schema_arrow
    except ReplayError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ... on a damaged footer
        raise ReplayError(f"{shown} is not a readable Parquet file ({type(exc).__name__})") from None
    if md.num_rows > max_rows:
        raise ReplayError(f"{shown} has {md.num_rows:,} rows, over the limit of {max_rows:,}")
    if md.num_rows == 0:
        raise ReplayError(f"{shown} has no rows")
    if md.num_row_groups > MAX_ROW_GROUPS:
        raise ReplayError(f"{shown} has {md.num_row_groups:,} row groups, over the limit of {MAX_ROW_GROUPS:,}")
    for name in TABLE_COLUMNS:
        t = schema.field(name).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        text = pa.types.is_string(t) or pa.types.is_large_string(t)
        number = pa.types.is_integer(t) or pa.types.is_floating(t)
        if name in ("variant", "stage", "stat") and not text:
            raise ReplayError(f"{shown}: column {name!r} must hold names, it holds {_show(t)}")
        if name not in ("variant", "stage", "stat") and not number:
            raise ReplayError(f"{shown}: column {name!r} must hold numbers, it holds {_show(t)}")
    decoded = sum(md.row_group(i).column(j).total_uncompressed_size
                  for i in range(md.num_row_groups) for j in range(md.num_columns))
    if decoded > MAX_DECODED:
        raise ReplayError(f"{shown} unpacks to {_mb(decoded)}, over the limit of {_mb(MAX_DECODED)}")
    meta = schema.metadata or {}
    query = meta.get(QUERY_KEY)
    if query is not None:
        query = query.decode("utf-8", "replace") if len(query) <= MAX_QUERY else None
    described = meta.get(DATA_KEY)
    if described is not None:
        described = described.decode("utf-8", "replace") if len(described) <= MAX_QUERY else None
    config = meta.get(CONFIG_KEY)
    if config is not None:
        config = config.decode("utf-8", "replace") if len(config) <= MAX_CONFIG else None
    try:
        table = pf.read(columns=list(TABLE_COLUMNS), use_threads=False)
    except Exception as exc:  # noqa: BLE001
        raise ReplayError(f"{shown}: its data pages cannot be read ({type(exc).__name__})") from None
    cols = {}
    for name in TABLE_COLUMNS:
        col = table.column(name)
        if name in ("variant", "stage", "stat"):
            cols[name] = _categorical(col, name, shown)
        else:
            try:
                cols[name] = np.asarray(col.to_numpy(), dtype=np.float64)
            except Exception as exc:  # noqa: BLE001
                raise ReplayError(f"{shown}: column {name!r} cannot be read as numbers ({type(exc).__name__})") \
                    from None
    return pd.DataFrame(cols), query, described, config


def _categorical(col, name: str, shown: str):
    """A pandas Categorical from a (dictionary-encoded) string column, never materializing repeated strings."""
    import pyarrow as pa

    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    cat = col.to_pandas()  # the array alone (no pandas metadata is consulted): a categorical Series
    longest = max((len(str(c)) for c in cat.cat.categories), default=0)
    if longest > 4 * MAX_NAME:
        raise ReplayError(f"{shown}: column {name!r} holds a name of {longest:,} characters")
    return cat.array


def validate(df, max_rows: int = MAX_ROWS) -> pandas.DataFrame:
    """Check a table's columns, types, names, keys and sizes; returns a normalized copy (see read_table).

    Accepts what read_table parsed or what record.to_table built; raises ReplayError. Idempotent: a
    validated frame is marked in ``df.attrs`` and returned as is. A table that carries a watched model's
    config (``df.attrs["bnviz.config"]``) may have up to MAX_WATCHED_LAYERS layers, one per normalization module.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ReplayError(f"expected a table, got {type(df).__name__}")
    if df.attrs.get("bnviz.validated") and list(df.columns) == list(TABLE_COLUMNS) and all(
            isinstance(df[c].dtype, pd.CategoricalDtype) for c in ("variant", "stage", "stat")) and all(
            df[c].dtype == np.int64 for c in ("step", "layer", "unit")) and df["value"].dtype == np.float64:
        return df  # already validated (a frame whose dtypes changed since is checked again)
    _check_columns([str(c) for c in df.columns], "the table")
    n = len(df)
    if n == 0:
        raise ReplayError("the table has no rows")
    if n > max_rows:
        raise ReplayError(f"the table has {n:,} rows, over the limit of {max_rows:,}")
    out = {}
    for col in ("variant", "stage", "stat"):
        cat = df[col]
        if not isinstance(cat.dtype, pd.CategoricalDtype):
            cat = cat.astype("category")
        codes = cat.cat.codes.to_numpy()
        if (codes < 0).any():
            raise ReplayError(f"column {col!r} is empty in row {int(np.argmax(codes < 0)) + 1}")
        # the used categories in their order, as remove_unused_categories keeps them (without its sort of the codes)
        used = np.bincount(codes, minlength=len(cat.cat.categories)) > 0
        codes = (np.cumsum(used) - 1).astype(codes.dtype)[codes]
        cats = [str(c) for c, u in zip(cat.cat.categories, used) if u]
        known = {"stage": STAGE_NAMES, "stat": KNOWN_STATS}.get(col)
        for c in cats:
            if known is not None and c not in known:
                hint = (f"known stages: {', '.join(STAGE_NAMES)}" if col == "stage"
                        else "known stats: those of the record command, gamma, beta, *_change, ics_l2, ics_cos, "
                        "smooth_*, q00..q63")
                raise ReplayError(f"unknown {col} {_show(c)} ({hint})")
            if col == "variant":
                kind, placement = split_variant(c)
                if kind not in C.VARIANTS or (placement is not None and placement not in C.PLACEMENTS):
                    raise ReplayError(f"unknown variant {_show(c)} (known: {', '.join(C.VARIANTS)}, optionally "
                                      "@before or @after)")
        if col == "variant" and len(cats) > MAX_VARIANTS:
            raise ReplayError(f"the table has {len(cats)} variants, over the limit of {MAX_VARIANTS}")
        out[col] = pd.Categorical.from_codes(codes, categories=cats)
    for col in ("step", "layer", "unit", "value"):
        s = df[col]
        if s.dtype == bool or not (pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_float_dtype(s.dtype)):
            num = pd.to_numeric(s, errors="coerce")
            wrong = np.flatnonzero(num.isna().to_numpy() & s.notna().to_numpy())
            if wrong.size or s.dtype == bool:
                i = int(wrong[0]) if wrong.size else 0
                raise ReplayError(f"column {col!r} must hold numbers; row {i + 1} has {_show(s.iloc[i])}")
            s = num
        out[col] = s.to_numpy(dtype=np.float64, na_value=np.nan)
    max_layers = MAX_WATCHED_LAYERS if df.attrs.get("bnviz.config") else int(MAX_LAYERS)
    keep = ~np.isnan(out["value"])  # an undefined value is a left-out row, as record.to_table writes it
    for col in ("step", "layer", "unit"):
        v = out[col]
        where = np.flatnonzero(np.isnan(v))
        if where.size:
            raise ReplayError(f"column {col!r} is empty in row {int(where[0]) + 1}")
        lo, hi = {"step": (0, C.LIMITS["steps"][1]), "layer": (-1, max_layers - 1), "unit": (-1, MAX_UNIT)}[col]
        bad = np.flatnonzero((v != np.round(v)) | (v < lo) | (v > hi))
        if bad.size:
            i = int(bad[0])
            what = "negative" if v[i] < 0 and col == "step" else "not a whole number" if v[i] != round(v[i]) \
                else f"outside {lo}..{hi}"
            raise ReplayError(f"column {col!r}: row {i + 1} has {v[i]:.10g}, {what}")
    frame = pd.DataFrame({"variant": out["variant"], "step": out["step"].astype(np.int64),
                          "layer": out["layer"].astype(np.int64), "stage": out["stage"],
                          "unit": out["unit"].astype(np.int64), "stat": out["stat"], "value": out["value"]})
    _check_structure(frame, max_layers)
    frame = frame[keep].reset_index(drop=True)
    if frame.empty:
        raise ReplayError("the table has no defined values (every value is empty or NaN)")
    frame.attrs = {**df.attrs, "bnviz.validated": True}
    return frame


def distinct(values, lo: float, hi: float) -> np.ndarray:
    """``np.unique(values)`` of whole numbers within ``lo..hi`` (checked by the caller): by a table of which numbers
    occur, in linear time, when the range is not much longer than ``values`` (a table's steps, units and keys:
    np.unique would sort millions of them), else by np.unique."""
    values = np.asarray(values, dtype=np.int64)
    present = _presence(values, lo, hi)
    return np.unique(values) if present is None else np.flatnonzero(present) + int(lo)


def distinct_inverse(values, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``, as :func:`distinct` finds it."""
    values = np.asarray(values, dtype=np.int64)
    present = _presence(values, lo, hi)
    if present is None:
        found, inverse = np.unique(values, return_inverse=True)
        return found, inverse.reshape(-1)
    return np.flatnonzero(present) + int(lo), (np.cumsum(present) - 1)[values - int(lo)]


def _presence(values: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """Which of lo..hi occur in ``values``, or None when that range is much longer than ``values``."""
    span = int(hi) - int(lo) + 1
    if span > 4 * values.size + 4096:
        return None
    present = np.zeros(span, dtype=bool)
    present[values - int(lo)] = True
    return present


def _check_structure(df, max_layers: int) -> None:
    """Stats at their stages, layers and units; limits on distinct steps and units; no duplicate rows."""
    stat_cats = [str(c) for c in df["stat"].cat.categories]
    stage_cats = [str(c) for c in df["stage"].cat.categories]
    sc, gc = df["stat"].cat.codes.to_numpy(), df["stage"].cat.codes.to_numpy()
    layer, unit = df["layer"].to_numpy(), df["unit"].to_numpy()
    allowed = np.array([[g in STAGE_OF_STAT[s] for g in stage_cats] for s in stat_cats], dtype=bool)
    bad = np.flatnonzero(~allowed[sc, gc])
    if bad.size:
        i = int(bad[0])
        stat = stat_cats[sc[i]]
        raise ReplayError(f"row {i + 1}: stat {stat!r} does not belong to stage {stage_cats[gc[i]]!r} (it belongs "
                          f"to {', '.join(STAGE_OF_STAT[stat])})")
    train = np.array([g == "train" for g in stage_cats])[gc]
    per_layer = np.array([g in LAYER_STAGES for g in stage_cats])[gc]
    gb = np.array([s in ("gamma", "beta") for s in stat_cats])[sc]
    for mask, what in ((train & ((layer != -1) | (unit != POOLED)), "stage 'train' needs layer -1 and unit -1"),
                       (~train & (layer < 0), "only stage 'train' has layer -1"),
                       (per_layer & (unit != POOLED), "stages 'params' and 'grad' need unit -1"),
                       (gb & (unit < 0), "gamma and beta need a unit >= 0")):
        where = np.flatnonzero(mask)
        if where.size:
            raise ReplayError(f"row {int(where[0]) + 1}: {what}")
    steps = distinct(df["step"].to_numpy(), 0, C.LIMITS["steps"][1])
    if steps.size > MAX_STEPS:
        raise ReplayError(f"the table has {steps.size:,} distinct steps, over the limit of {MAX_STEPS:,}")
    affine = np.array([g == AFFINE_STAGE for g in stage_cats])[gc]
    units = distinct(unit[~affine], POOLED, MAX_UNIT)  # the affine stage holds every unit of a layer, not tracked ones
    if int((units >= 0).sum()) > MAX_TRACKED:
        raise ReplayError(f"the table tracks {int((units >= 0).sum())} distinct units, over the limit of {MAX_TRACKED}")
    # One key per row; equal keys are the same measurement written twice.
    key = df["variant"].cat.codes.to_numpy().astype(np.int64)
    for v, size in ((df["step"].to_numpy(), C.LIMITS["steps"][1] + 1), (layer + 1, max_layers + 1),
                    (gc, len(stage_cats)), (unit + 1, MAX_UNIT + 2), (sc, len(stat_cats))):
        key = key * size + v
    key = np.sort(key, kind="stable")  # a table's rows come nearly in key order: a merge sort is 10x quicker here
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size:
        raise ReplayError(f"the table has {dup.size:,} duplicate row(s): the same variant, step, layer, stage, unit "
                          "and stat more than once")
