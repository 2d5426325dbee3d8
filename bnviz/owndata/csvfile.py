"""Reading a CSV file of your own data as numbers only: the security boundary for data files.

A file is decoded as text (UTF-8, with or without a byte-order mark, UTF-16 with one, or Windows-1252), split by
Python's csv module (comma, semicolon or tab, whichever the header uses most) and converted column by column.
Nothing in it is ever evaluated. Every refusal is one :class:`CsvError` line that names the column or row and
quotes at most a short, printable piece of a cell, never a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from bnviz.config import LIMITS

MAX_BYTES = 5 << 20  # a data file; the digits as CSV are 0.5 MB
MAX_ROWS = 50_000
MAX_COLUMNS = LIMITS["n_features"][1] + 1  # 256 feature columns and the target
MAX_LINE = 16_384  # characters of one line: 257 columns of long numbers fit
MAX_NAME = 40  # characters of a column name
MAX_FILE_NAME = 120  # characters of a file's name kept and put in a link
MAX_CLASSES = 20  # a target with at most this many distinct whole numbers or texts is a classification
MIN_ROWS = 10  # the fixed 80/20 split leaves 8 to train on and 2 to test
SHOWN = 20  # characters of a cell quoted in a message
DEFAULT_TARGETS = ("label", "target")  # the default target column, else the last column
MISSING = {"", "na", "n/a", "nan", "-nan", "null", "none", "?", "#n/a"}
FORMULA = ("=", "+", "-", "@")  # a cell or name starting so is a formula to a spreadsheet

MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
         b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?)",
         b"\x1f\x8b": "a gzip archive", b"\x80": "a Python pickle", b"BZh": "a bzip2 archive",
         b"\xfd7zXZ": "an xz archive", b"\x93NUMPY": "a NumPy array", b"\x89HDF": "an HDF5 file",
         b"SQLite format": "an SQLite database", b"\xd0\xcf\x11\xe0": "an old Office document",
         b"PAR1": "a Parquet file"}


class CsvError(ValueError):
    """A data file that cannot be used; the message is one line, safe to show as is (once escaped as text)."""


@dataclass(frozen=True)
class Frame:
    """A CSV file's columns: numbers where every cell is one, else the cells' texts."""

    name: str
    columns: tuple[str, ...]
    numbers: dict[str, np.ndarray]  # column -> float64 values, for the columns that hold only numbers
    texts: dict[str, list[str]]  # column -> stripped cells, for the columns that hold text

    @property
    def n_rows(self) -> int:
        first = self.columns[0]
        return len(self.numbers[first]) if first in self.numbers else len(self.texts[first])

    def default_target(self) -> str:
        """A column named label or target (any case), else the last."""
        for wanted in DEFAULT_TARGETS:
            for c in self.columns:
                if c.lower() == wanted:
                    return c
        return self.columns[-1]


@dataclass(frozen=True)
class Prepared:
    """A file made ready to train on: features, the target (class index or value) and what they are."""

    x: np.ndarray  # (n, d) float64, not yet standardized
    y: np.ndarray  # (n,) int64 class indices 0..k-1, or float64 values
    info: DataInfo


@dataclass(frozen=True)
class DataInfo:
    """What a run needs to know of its file without reading it: names, task and sizes."""

    name: str  # the file's name as uploaded (file_name: printable, short, not like a formula)
    columns: tuple[str, ...]
    target: str  # the target column, resolved (owndata.Known: as a recorded config names it, "" for the default)
    default_target: str
    task: str  # "classification" or "regression" (config.TASKS)
    n_inputs: int
    n_outputs: int  # classes, or 1 for a regression
    classes: tuple[str, ...]  # the class labels in the order of their indices (empty for a regression)
    rows: int


def show(text: str, limit: int = SHOWN) -> str:
    """A cell or name for a message: printable characters only, cut to ``limit``, quoted; a formula never."""
    if text.startswith(FORMULA) and not _is_number(text):
        return "a spreadsheet formula"
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return repr(clean if len(clean) <= limit else clean[:limit] + "…")


_CONTROL = np.zeros(256, dtype=bool)  # bytes that never occur in text: ASCII controls but tab, line feed, return
_CONTROL[[*range(0, 9), 11, 12, *range(14, 32), 127]] = True


def file_name(name: str) -> str:
    """A file's name as a link's ``dataname`` may carry it: printable, at most MAX_FILE_NAME characters, not
    starting like a formula."""
    clean = "".join(c for c in str(name) if c.isprintable())[:MAX_FILE_NAME].lstrip("=+-@ ")
    return clean or "data.csv"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


def _decode(data: bytes, shown: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise CsvError(f"{shown} starts like UTF-16 text but is not: not a CSV file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "cp1252"):  # Excel's "CSV UTF-8", then its plain "CSV" on Windows
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvError(f"{shown} is not text (neither UTF-8 nor Windows-1252): not a CSV file")


def read(data: bytes, name: str) -> Frame:
    """Parse a CSV file's bytes into columns; raises CsvError with one line for anything else.

    Checked, in order: size (before decoding), known binary formats, encoding, control characters, an HTML page,
    line lengths and counts, the header (names present, unique, short, not formulas; at least 2 and at most
    MAX_COLUMNS columns), rows (at least one; each as long as the header), missing values, non-finite numbers.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CsvError(f"expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    shown = show(str(name)[:200], 40)
    if not data:
        raise CsvError(f"{shown} is empty")
    if len(data) > MAX_BYTES:
        raise CsvError(f"{shown} is {_mb(len(data))}, over the {_mb(MAX_BYTES)} limit for a data file")
    for magic, what in MAGIC.items():
        if data.startswith(magic):
            raise CsvError(f"{shown} is {what}, not a CSV file")
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16 and _CONTROL[np.frombuffer(data, dtype=np.uint8)].any():  # UTF-16 is checked once decoded
        raise CsvError(f"{shown} holds binary data (control characters), not a CSV file")
    text = _decode(data, shown)
    if utf16 and any(ord(c) < 32 and c not in "\t\n\r" or c == "\x7f" for c in text):
        raise CsvError(f"{shown} holds binary data (control characters), not a CSV file")
    if text.lstrip().startswith("<"):
        raise CsvError(f"{shown} is an HTML or XML page, not a CSV file")
    lines = text.splitlines()
    if len(lines) > MAX_ROWS + 1 + lines.count(""):
        raise CsvError(f"{shown} has {len(lines):,} lines, over the limit of {MAX_ROWS:,} rows")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]), default=0)
    if lines and len(lines[longest]) > MAX_LINE:
        raise CsvError(f"{shown}: line {longest + 1} is {len(lines[longest]):,} characters long, over the limit of "
                       f"{MAX_LINE:,}")
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise CsvError(f"{shown} holds only blank lines")
    delimiter = max(",;\t", key=header_line.count)
    rows = _rows(text, delimiter, shown)
    if not rows:
        raise CsvError(f"{shown} holds no values, only separators and blank lines")
    header, body = rows[0], rows[1:]
    names = _header(header, shown)
    if not body:
        raise CsvError(f"{shown} has a header but no rows")
    if len(body) > MAX_ROWS:
        raise CsvError(f"{shown} has {len(body):,} rows, over the limit of {MAX_ROWS:,}")
    for i, row in enumerate(body):
        if len(row) != len(names):
            raise CsvError(f"{shown}: row {i + 1} has {len(row)} fields, the header has {len(names)}")
    numbers: dict[str, np.ndarray] = {}
    texts: dict[str, list[str]] = {}
    for j, col in enumerate(names):
        cells = [row[j].strip() for row in body]
        _column(col, cells, numbers, texts, shown)
    return Frame(file_name(name), names, numbers, texts)


def _rows(text: str, delimiter: str, shown: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):  # blank lines are skipped
                rows.append(row)
    except csv.Error:
        raise CsvError(f"{shown}: line {reader.line_num} is not valid CSV (a quote that is not closed or a stray "
                       "quote inside a field)") from None
    return rows


def _header(header: list[str], shown: str) -> tuple[str, ...]:
    names = tuple(h.strip() for h in header)
    if len(names) < 2:
        raise CsvError(f"{shown} has one column only: a data file needs feature columns and a target column, "
                       "separated by commas")
    if len(names) > MAX_COLUMNS:
        raise CsvError(f"{shown} has {len(names):,} columns, over the limit of {MAX_COLUMNS} ({MAX_COLUMNS - 1} "
                       "features and a target)")
    for j, n in enumerate(names):
        if not n:
            raise CsvError(f"{shown}: column {j + 1} has no name (the first line must name every column)")
        if len(n) > MAX_NAME:
            raise CsvError(f"{shown}: the name of column {j + 1} is longer than {MAX_NAME} characters")
        if n.startswith(FORMULA):
            raise CsvError(f"{shown}: the name of column {j + 1} starts with {n[0]!r}, as a spreadsheet formula "
                           "does; rename it")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise CsvError(f"{shown}: column {show(n)} appears twice")
        seen.add(n)
    return names


def _column(col: str, cells: list[str], numbers: dict, texts: dict, shown: str) -> None:
    missing = [i for i, c in enumerate(cells) if c.lower() in MISSING]
    if missing:
        raise CsvError(f"{shown}: column {show(col)} has a missing value in row {missing[0] + 1}")
    try:
        values = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        texts[col] = cells
        return
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise CsvError(f"{shown}: column {show(col)} has {show(cells[i])} in row {i + 1}, not a finite number")
    numbers[col] = values


def prepare(frame: Frame, target: str = "") -> Prepared:
    """Features and target of ``frame`` for training on column ``target`` ("" = the default one).

    The target is a classification when it holds at most MAX_CLASSES distinct whole numbers or texts (labels
    mapped to 0..k-1 in sorted order: numerically, or as texts), a regression when it holds numbers otherwise.
    Raises CsvError naming the column: a target not in the file, text in a feature column, text in more than
    MAX_CLASSES distinct values, one class only, a constant target, too few rows.
    """
    shown = show(frame.name, 40)
    default = frame.default_target()
    target = target or default
    if target not in frame.columns:
        names = ", ".join(show(c) for c in frame.columns[:6]) + (", …" if len(frame.columns) > 6 else "")
        raise CsvError(f"{shown} has no column {show(target)} to predict (its columns: {names})")
    features = tuple(c for c in frame.columns if c != target)
    for c in features:
        if c in frame.texts:
            cells = frame.texts[c]
            i = next(i for i, v in enumerate(cells) if not _is_number(v))
            raise CsvError(f"{shown}: column {show(c)} holds text ({show(cells[i])} in row {i + 1}); feature "
                           f"columns must hold numbers (only the target, here {show(target)}, may hold text)")
    n = frame.n_rows
    if n < MIN_ROWS:
        raise CsvError(f"{shown} has {n} row{'s' if n != 1 else ''}; at least {MIN_ROWS} are needed to split it "
                       "into training and test examples")
    x = np.column_stack([frame.numbers[c] for c in features])
    if target in frame.texts:
        cells = frame.texts[target]
        labels = sorted(set(cells))
        if len(labels) > MAX_CLASSES:
            raise CsvError(f"{shown}: target column {show(target)} holds {len(labels):,} different texts; a target "
                           f"holds numbers (a regression) or at most {MAX_CLASSES} classes")
        index = {v: k for k, v in enumerate(labels)}
        y = np.array([index[v] for v in cells], dtype=np.int64)
        task, classes = "classification", tuple(labels)
    else:
        values = frame.numbers[target]
        distinct = np.unique(values)
        if len(distinct) <= MAX_CLASSES and np.all(distinct == np.round(distinct)):
            y = np.searchsorted(distinct, values).astype(np.int64)
            task, classes = "classification", tuple(f"{v:g}" for v in distinct)
        elif len(distinct) == 1:
            raise CsvError(f"{shown}: target column {show(target)} holds the same value in every row; there is "
                           "nothing to predict")
        else:
            y, task, classes = values, "regression", ()
    if task == "classification" and len(classes) < 2:
        raise CsvError(f"{shown}: target column {show(target)} holds one class only ({show(classes[0])}); a "
                       "classification needs at least two")
    info = DataInfo(frame.name, frame.columns, target, default, task, len(features),
                    len(classes) if task == "classification" else 1, classes, n)
    return Prepared(x, y, info)


def standardize(values: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``values`` (rows x columns) minus the training rows' mean, divided by their std (population, ddof 0); a
    column constant over the training rows is only centered."""
    mean = values[train].mean(axis=0)
    std = values[train].std(axis=0)
    return (values - mean) / np.where(std > 0, std, 1.0)
