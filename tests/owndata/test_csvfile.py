"""Reading your own CSV data: what a good file becomes (against references read independently with numpy's and
Python's own readers), and one clear line for every bad file, naming the column or row; arbitrary bytes raise
nothing but CsvError."""

import csv
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnviz.owndata import csvfile
from bnviz.owndata.csvfile import CsvError, prepare, read

from .files import blobs, csv_bytes, linear


def reference(data: bytes, sep=","):
    """Header and rows by Python's csv module, as a spreadsheet user would expect them."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=sep))
    return rows[0], rows[1:]


def test_a_classification_file_reads_as_its_numbers_and_sorted_labels():
    data = blobs()
    p = prepare(read(data, "blobs.csv"))
    header, rows = reference(data)
    np.testing.assert_array_equal(p.x, np.array([[float(v) for v in r[:-1]] for r in rows]))
    labels = [r[-1] for r in rows]
    assert p.info.classes == ("a", "b", "c") and p.info.task == "classification"
    assert [p.info.classes[k] for k in p.y] == labels  # class k is the k-th label in sorted order
    assert p.info.target == "label" and p.info.n_inputs == 4 and p.info.n_outputs == 3 and p.info.rows == 200
    assert p.info.columns == tuple(header)


def test_whole_number_labels_sort_as_numbers_and_many_values_make_a_regression():
    rows = [[i, [10, 2, 3][i % 3]] for i in range(30)]
    p = prepare(read(csv_bytes(["x", "digit"], rows), "d.csv"))
    assert p.info.classes == ("2", "3", "10")  # numerically, not as text ("10" < "2")
    np.testing.assert_array_equal(p.y, [{2: 0, 3: 1, 10: 2}[r[1]] for r in rows])
    reg = prepare(read(linear(), "price.csv"))
    header, body = reference(linear())
    assert reg.info.task == "regression" and reg.info.target == "price" and reg.info.n_outputs == 1
    np.testing.assert_array_equal(reg.y, [float(r[-1]) for r in body])
    few_fractions = prepare(read(csv_bytes(["x", "y"], [[i, 0.5 * (i % 2)] for i in range(20)]), "f.csv"))
    assert few_fractions.info.task == "regression"  # two values, but not whole numbers


@pytest.mark.parametrize("header, expected", [
    (["a", "Target", "b"], "Target"), (["label", "a", "b"], "label"), (["a", "b", "c"], "c"),
    (["target", "label", "b"], "label"),  # label is looked for first
])
def test_the_default_target_is_label_or_target_else_the_last_column(header, expected):
    rows = [[i % 2, (i + 1) % 2, i % 2] for i in range(20)]
    assert read(csv_bytes(header, rows), "t.csv").default_target() == expected
    assert prepare(read(csv_bytes(header, rows), "t.csv")).info.target == expected


def test_another_target_column_makes_the_others_features():
    p = prepare(read(linear(), "price.csv"), "u")
    header, rows = reference(linear())
    assert p.info.target == "u" and p.info.task == "regression" and p.info.default_target == "price"
    np.testing.assert_array_equal(p.x, [[float(r[1]), float(r[2]), float(r[3])] for r in rows])
    np.testing.assert_array_equal(p.y, [float(r[0]) for r in rows])
    with pytest.raises(CsvError, match=r"column 'label' holds text \('c' in row 1\); feature columns must hold numbers "
                       r"\(only the target, here 'f0', may hold text\)"):
        prepare(read(blobs(), "blobs.csv"), "f0")


@pytest.mark.parametrize("case", ["semicolon", "tab", "crlf", "bom", "utf-16", "cp1252", "quoted", "blank lines"])
def test_what_spreadsheets_write_is_read_alike(case):
    rows = [[f"{i * 0.5:.1f}", str(i % 2)] for i in range(12)]
    plain = csv_bytes(["größe", "label"], rows)
    data = {"semicolon": csv_bytes(["größe", "label"], rows, sep=";"),
            "tab": csv_bytes(["größe", "label"], rows, sep="\t"),
            "crlf": csv_bytes(["größe", "label"], rows, newline="\r\n"),
            "bom": b"\xef\xbb\xbf" + plain,
            "utf-16": plain.decode().encode("utf-16"),
            "cp1252": plain.decode().encode("cp1252"),
            "quoted": csv_bytes(['"größe"', '"label"'], [[f'"{a}"', b] for a, b in rows]),
            "blank lines": plain.replace(b"\n", b"\n\n")}[case]
    p = prepare(read(data, "s.csv"))
    assert p.info.columns == ("größe", "label")
    np.testing.assert_array_equal(p.x[:, 0], [float(a) for a, _ in rows])
    np.testing.assert_array_equal(p.y, [int(b) for _, b in rows])


GOOD = [[i % 3, i * 0.1, i % 2] for i in range(20)]
HEAD = ["a", "b", "label"]


def rows_with(row: int, col: int, value: str):
    out = [list(map(str, r)) for r in GOOD]
    out[row][col] = value
    return out


BAD = {
    "empty": (b"", "is empty"),
    "text in a feature": (csv_bytes(HEAD, rows_with(6, 1, "high")), "column 'b' holds text ('high' in row 7)"),
    "empty cell": (csv_bytes(HEAD, rows_with(4, 0, "")), "column 'a' has a missing value in row 5"),
    "NA cell": (csv_bytes(HEAD, rows_with(0, 2, "NA")), "column 'label' has a missing value in row 1"),
    "infinity": (csv_bytes(HEAD, rows_with(2, 1, "inf")), "column 'b' has 'inf' in row 3, not a finite number"),
    "one class": (csv_bytes(HEAD, [[r[0], r[1], 1] for r in GOOD]), "holds one class only ('1')"),
    "constant value": (csv_bytes(HEAD, [[r[0], r[1], 0.5] for r in GOOD]), "the same value in every row"),
    "header only": (b"a,b,label\n", "has a header but no rows"),
    "blank only": (b"\n\r\n \n", "only blank lines"),
    "too few rows": (csv_bytes(HEAD, GOOD[:4]), "has 4 rows; at least 10"),
    "one column": (b"a\n1\n2\n", "one column only"),
    "duplicate names": (csv_bytes(["a", "a", "label"], GOOD), "column 'a' appears twice"),
    "unnamed column": (csv_bytes(["a", "", "label"], GOOD), "column 2 has no name"),
    "ragged row": (csv_bytes(HEAD, GOOD[:5] + [[1, 2]] + GOOD[5:]), "row 6 has 2 fields, the header has 3"),
    "unclosed quote": (csv_bytes(HEAD, GOOD) + b'1,"2,3\n4,5,6\n', "is not valid CSV"),
    "many text classes": (csv_bytes(["x", "name"], [[i, f"n{i}"] for i in range(30)]), "30 different texts"),
    "png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "is a PNG image, not a CSV file"),
    "xlsx": (b"PK\x03\x04" + b"\x00" * 64, "ZIP archive (an .xlsx workbook?)"),
    "parquet renamed": (b"PAR1" + b"\x00" * 64 + b"PAR1", "is a Parquet file, not a CSV file"),
    "html page": (b"<!DOCTYPE html>\n<html><body>a,b\n1,2</body></html>", "is an HTML or XML page"),
    "binary": (bytes(range(256)) * 4, "binary data (control characters)"),
    "NUL bytes": (csv_bytes(HEAD, GOOD).replace(b"0.1", b"0\x001"), "binary data"),
    "not text": (b"a,b\n\x81\x8d,1\n" * 6, "is not text"),
    "long line": (b"a,label\n" + b"1" * 20_000 + b",1\n", "line 2 is 20,002 characters long"),
    "formula name": (csv_bytes(["=SUM(A1)", "b", "label"], GOOD), "the name of column 1 starts with '='"),
    "long name": (csv_bytes(["a" * 41, "b", "label"], GOOD), "longer than 40 characters"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_gets_one_line_naming_the_column_or_row(case):
    data, needle = BAD[case]
    with pytest.raises(CsvError) as err:
        prepare(read(data, "mine.csv"))
    msg = str(err.value)
    assert needle in msg and "\n" not in msg and len(msg) < 300, msg
    assert msg.startswith("'mine.csv'"), msg  # the file first


def test_a_target_that_is_not_there_is_named_with_the_columns_that_are():
    with pytest.raises(CsvError, match=r"has no column 'price' to predict \(its columns: 'a', 'b', 'label'\)"):
        prepare(read(csv_bytes(HEAD, GOOD), "m.csv"), "price")


def test_caps_on_size_rows_and_columns(monkeypatch):
    data = csv_bytes(HEAD, GOOD * 3)
    monkeypatch.setattr(csvfile, "MAX_BYTES", 100)
    with pytest.raises(CsvError, match=r"is 0\.0 MB, over the 0\.0 MB limit"):
        read(data, "big.csv")
    monkeypatch.setattr(csvfile, "MAX_BYTES", 5 << 20)
    monkeypatch.setattr(csvfile, "MAX_ROWS", 30)
    with pytest.raises(CsvError, match="61 lines, over the limit of 30 rows"):
        read(data, "long.csv")
    wide = csv_bytes([f"c{j}" for j in range(258)], [list(range(258))] * 12)
    with pytest.raises(CsvError, match="258 columns, over the limit of 257"):
        read(wide, "wide.csv")


HOSTILE = ["=CMD|' /C calc'!A0", "+HYPERLINK(\"http://x\")", "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"]


@pytest.mark.parametrize("cell", HOSTILE)
def test_a_formula_cell_is_refused_without_being_echoed(cell):
    with pytest.raises(CsvError) as err:
        prepare(read(csv_bytes(HEAD, rows_with(3, 0, cell)), "f.csv"))
    msg = str(err.value)
    assert "column 'a' holds text (a spreadsheet formula in row 4)" in msg, msg
    assert "cmd" not in msg.lower() and "hyperlink" not in msg.lower() and "SUM" not in msg


def test_markup_in_a_cell_is_quoted_short_never_whole():
    cell = "<script>alert(1)</script>" + "x" * 100
    with pytest.raises(CsvError) as err:
        prepare(read(csv_bytes(HEAD, rows_with(3, 1, cell)), "f.csv"))
    msg = str(err.value)
    assert "'<script>alert(1)</sc…'" in msg and "x" * 30 not in msg, msg


def test_standardize_uses_the_training_rows_alone():
    rng = np.random.default_rng(3)
    values = rng.normal(5, 3, (50, 3))
    values[:, 2] = 7.0  # a constant column is only centered
    train = np.arange(10, 50)
    out = csvfile.standardize(values, train)
    mean, std = values[train].mean(0), values[train].std(0)
    np.testing.assert_allclose(out[:, :2], (values[:, :2] - mean[:2]) / std[:2])
    np.testing.assert_allclose(out[train, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out[train, :2].std(0), 1)
    np.testing.assert_array_equal(out[:, 2], 0.0)


# ----------------------------------------------------------------------------------------------------------- property

TEXT = st.text(alphabet=',;\t\n\r"-.0123456789eEinfalbx=@ ', max_size=400).map(str.encode)
PREFIXES = st.sampled_from([b"", b"a,b,label\n", b"\xef\xbb\xbf", b"\xff\xfe", csv_bytes(HEAD, GOOD)])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(PREFIXES, st.one_of(st.binary(max_size=2000), TEXT), st.sampled_from(["", "a", "label", "zz"]))
def test_arbitrary_bytes_never_raise_anything_but_csv_error(prefix, body, target):
    try:
        p = prepare(read(prefix + body, "f.csv"), target)
    except CsvError as exc:
        assert "\n" not in str(exc)
        return
    assert p.x.shape == (p.info.rows, p.info.n_inputs) and np.isfinite(p.x).all()
