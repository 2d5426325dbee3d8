"""Uploads, the security boundary: malformed, oversized or hostile files fail fast with one short ReplayError
line that never echoes long content, and arbitrary bytes raise nothing else."""

import io
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnviz.table import replay, upload
from bnviz.table.schema import TABLE_COLUMNS
from bnviz.table.upload import ReplayError

from .tables import GOOD_ROW, HEADER
from .tables import csv_of as _csv

MALFORMED = {
    "empty": (b"", "x.csv", "is empty"),
    "garbage": (bytes(range(256)) * 8, "x.csv", "binary"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "x.csv", "PNG image"),
    "png named parquet": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "x.parquet", "not a Parquet file"),
    "xlsx": (b"PK\x03\x04" + b"\x00" * 64, "run.csv", "ZIP archive"),
    "not utf-8": (HEADER.encode() + b"bn,0,0,x,-1,mean,\xff\xfe\n", "x.csv", "not UTF-8"),
    "other suffix": (_csv(GOOD_ROW), "notes.txt", "expected a .csv or .parquet"),
    "wrong columns": (b"a,b,c\n1,2,3\n", "x.csv", "missing column(s) variant"),
    "extra column": (b",".join([*map(str.encode, TABLE_COLUMNS), b"note"]) + b"\n" + GOOD_ROW.encode()[:-1] + b",x\n",
                     "x.csv", "unexpected column(s) 'note'"),
    "missing column": (b"variant,step,layer,stage,unit,stat\nbn,0,0,x,-1,mean\n", "x.csv", "missing column(s) value"),
    "header only": (HEADER.encode(), "x.csv", "no rows"),
    "blank": (b"\n\r\n\n", "x.csv", "only blank lines"),
    "ragged line": (_csv(GOOD_ROW, "bn,0,0,x,-1,mean,1,2\n"), "x.csv", "line 3 has 8 fields"),
    "empty step": (_csv(GOOD_ROW, "bn,,0,x,-1,std,1\n"), "x.csv", "'step' is empty in row 2"),
    "NaN unit": (_csv("bn,0,0,x,nan,std,1\n"), "x.csv", "'unit' is empty in row 1"),
    "empty variant": (_csv(",0,0,x,-1,std,1\n"), "x.csv", "'variant' is empty"),
    "string step": (_csv(GOOD_ROW, "bn,ten,0,x,-1,std,1\n"), "x.csv", "'step' must hold numbers; row 2 has 'ten'"),
    "string value": (_csv("bn,0,0,x,-1,std,hello\n"), "x.csv", "'value' must hold numbers; row 1 has 'hello'"),
    "fractional layer": (_csv("bn,0,0.5,x,-1,std,1\n"), "x.csv", "not a whole number"),
    "negative step": (_csv("bn,-5,0,x,-1,std,1\n"), "x.csv", "negative"),
    "huge unit": (_csv("bn,0,0,x,5000,std,1\n"), "x.csv", "outside -1..1023"),
    "unknown stat": (_csv("bn,0,0,x,-1,median,1\n"), "x.csv", "unknown stat 'median'"),
    "unknown stage": (_csv("bn,0,0,z,-1,mean,1\n"), "x.csv", "unknown stage 'z'"),
    "unknown variant": (_csv("batchnorm,0,0,x,-1,mean,1\n"), "x.csv", "unknown variant 'batchnorm'"),
    "stat at the wrong stage": (_csv("bn,0,0,x,-1,loss,1\n"), "x.csv", "does not belong to stage 'x'"),
    "train with a layer": (_csv("bn,0,2,train,-1,loss,1\n"), "x.csv", "needs layer -1"),
    "duplicate": (_csv(GOOD_ROW, GOOD_ROW), "x.csv", "1 duplicate row"),
    "unpaired quote": (_csv('"bn,0,0,x,-1,mean,1\n'), "x.csv", "unpaired quote"),
    "too-long field": (_csv("bn,0,0,x,-1,mean," + "1" * 10_000 + "\n"), "x.csv", "line 2 is 10,017 characters"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_gives_one_clear_line(case):
    data, name, needle = MALFORMED[case]
    with pytest.raises(ReplayError) as err:
        upload.read_table(data, name)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg and len(msg) < 400, msg


def test_messages_never_echo_long_content():
    long = "x" * 300
    for row in (f"bn,0,0,x,-1,{long},1\n", f"bn,{long},0,x,-1,mean,1\n", f"{long},0,0,x,-1,mean,1\n"):
        data = _csv(row)
        with pytest.raises(ReplayError) as err:
            upload.read_table(data, "y" * 500 + ".csv")
        msg = str(err.value)
        assert "x" * 41 not in msg and "y" * 41 not in msg, msg
        quoted = [m for m in msg.split("'")[1::2]]
        assert all(len(q) <= 40 for q in quoted), msg


def test_oversized_upload_is_refused_before_parsing(monkeypatch):
    def no_parsing(*a, **k):
        raise AssertionError("parsed an oversized file")

    monkeypatch.setattr(pd, "read_csv", no_parsing)
    monkeypatch.setattr(pq, "ParquetFile", no_parsing)
    data = _csv(GOOD_ROW) + b"0" * (100 << 20)
    for name in ("big.csv", "big.parquet"):
        with pytest.raises(ReplayError, match=r"is 100\.0 MB, over the 20\.0 MB limit"):
            upload.read_table(data, name)
    with pytest.raises(ReplayError, match="over the 20.0 MB limit"):
        upload.read_table(b"PAR1" + data, "big.parquet")


def test_a_csv_bomb_is_refused_without_splitting_it():
    bomb = HEADER.encode() + b",".join([b"1"] * 1_000_000) + b"\n"  # one line, a million fields
    tracemalloc.start()
    with pytest.raises(ReplayError, match=r"line 2 is 1,999,999 characters long"):
        upload.read_table(bomb, "bomb.csv")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * len(bomb), peak  # refused from the line lengths, never split into a million fields
    many = HEADER.encode() + b"\n" * 5_000_000  # blank lines only count too
    with pytest.raises(ReplayError, match="lines, over the limit"):
        upload.read_table(many, "lines.csv")


def test_size_limits(monkeypatch):
    rows = [f"bn,{s},0,x,-1,mean,1\n" for s in range(10)]
    monkeypatch.setattr(upload, "MAX_ROWS", 5)
    with pytest.raises(ReplayError, match="over the limit of 5"):
        upload.read_table(_csv(*rows), "x.csv")
    monkeypatch.setattr(upload, "MAX_ROWS", 3_000_000)
    monkeypatch.setattr(upload, "MAX_STEPS", 4)
    with pytest.raises(ReplayError, match="10 distinct steps, over the limit of 4"):
        upload.read_table(_csv(*rows), "x.csv")
    monkeypatch.setattr(upload, "MAX_TRACKED", 2)
    with pytest.raises(ReplayError, match="tracks 3 distinct units"):
        upload.read_table(_csv(*[f"bn,0,0,x,{u},mean,1\n" for u in range(3)]), "x.csv")
    monkeypatch.setattr(upload, "MAX_VARIANTS", 2)
    with pytest.raises(ReplayError, match="3 variants, over the limit of 2"):
        upload.read_table(_csv(*[f"{t},0,0,x,-1,mean,1\n" for t in ("none", "bn", "ln")]), "x.csv")


def _parquet(df, **kw):
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, **kw)
    return buf.getvalue()


@pytest.mark.slow
def test_malformed_parquet(files):
    good = files["parquet", False]
    with pytest.raises(ReplayError, match="truncated Parquet"):
        upload.read_table(good[: len(good) // 2], "cut.parquet")
    with pytest.raises(ReplayError, match="not a readable Parquet file"):
        upload.read_table(b"PAR1" + b"\x00" * 100 + b"PAR1", "bad.parquet")
    df = pd.DataFrame({"variant": ["bn"], "step": ["zero"], "layer": [0], "stage": ["x"], "unit": [-1],
                       "stat": ["mean"], "value": [1.0]})
    with pytest.raises(ReplayError, match="column 'step' must hold numbers"):
        upload.read_table(_parquet(df), "s.parquet")
    with pytest.raises(ReplayError, match="column 'stage' must hold names"):
        upload.read_table(_parquet(df.assign(step=0, stage=3)), "s.parquet")
    with pytest.raises(ReplayError, match="missing column"):
        upload.read_table(_parquet(df.drop(columns="unit")), "s.parquet")
    with pytest.raises(ReplayError, match=r"missing column\(s\) variant, stage, stat"):  # the names are read first
        upload.read_table(_parquet(df.drop(columns=["variant", "stage", "stat"])), "s.parquet")
    with pytest.raises(ReplayError, match="'unit' is empty"):
        upload.read_table(_parquet(df.assign(step=0, unit=pd.array([None], dtype="Int64"))), "s.parquet")
    with pytest.raises(ReplayError, match="unknown stat 'xx"):
        upload.read_table(_parquet(df.assign(step=0, stat="xx" * 30)), "s.parquet")
    # A file named .csv whose content is Parquet is read as what it is.
    assert len(upload.read_table(_parquet(df.assign(step=0)), "s.csv")) == 1


def test_pickled_or_pandas_metadata_is_never_used():
    """A Parquet file whose pandas metadata claims other columns/types is read from its data alone."""
    df = pd.DataFrame({"variant": ["bn"], "step": [0], "layer": [0], "stage": ["x"], "unit": [-1],
                       "stat": ["mean"], "value": [1.0]})
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({b"pandas": b'{"index_columns": ["nope"], "columns": "garbage"}'})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    out = upload.read_table(buf.getvalue(), "m.parquet")
    assert out.value.tolist() == [1.0] and out.step.dtype == np.int64


def test_a_csv_of_a_byte_order_mark_alone_is_refused_in_words():
    from bnviz.table.upload import ReplayError, read_table

    with pytest.raises(ReplayError, match="holds no table, only a byte-order mark"):
        read_table(b"\xef\xbb\xbf", "f.csv")


# ----------------------------------------------------------------------------------------------------------- property

CSV_PREFIXES = st.sampled_from([b"", HEADER.encode(), b"PAR1", _csv(GOOD_ROW)])


CSV_TEXT = st.text(alphabet=',\n\r"-.0123456789eEinfabxqsty_@ ', max_size=600).map(str.encode)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(CSV_PREFIXES, st.one_of(st.binary(max_size=3000), CSV_TEXT),
       st.sampled_from(["f.csv", "f.parquet", "f", "f.pq"]), st.booleans())
def test_arbitrary_bytes_never_raise_anything_but_replay_error(prefix, body, name, par1_tail):
    data = prefix + body + (b"PAR1" if par1_tail else b"")
    try:
        rep = replay.load(data, name)
    except ReplayError:
        return
    assert isinstance(rep, replay.Replay)


@pytest.mark.parametrize("lo, hi, n", [(0, 1000, 50_000), (-1, 1023, 3), (0, 1_000_000, 20)])
def test_distinct_numbers_are_numpys_unique_of_them(lo, hi, n):
    from bnviz.table.upload import distinct, distinct_inverse

    rng = np.random.default_rng(n)
    values = rng.integers(lo, hi + 1, n)
    values[:2] = lo, hi  # both ends of the range
    want, want_inverse = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(distinct(values, lo, hi), want)
    found, inverse = distinct_inverse(values, lo, hi)
    np.testing.assert_array_equal(found, want)
    np.testing.assert_array_equal(inverse, want_inverse)


def test_the_affine_stage_holds_gamma_and_beta_of_every_unit_and_nothing_else(monkeypatch):
    monkeypatch.setattr(upload, "MAX_TRACKED", 2)
    rows = [f"bn,0,0,x,{u},mean,0.5\n" for u in (-1, 1)]
    every = [f"bn,0,0,affine,{u},{s},{1 + u / 100 if s == 'gamma' else u / 100}\n" for u in range(8)
             for s in ("gamma", "beta")]
    rep = replay.load(_csv(*rows, *every), "x.csv")  # 8 units of γ are not 8 tracked units
    layer = rep.snapshots[0].variants["bn"].layers[0]
    assert rep.config.widths == (8,) and rep.config.units == (1,)
    np.testing.assert_array_equal(layer.gamma, np.float32(1 + np.arange(8) / 100))
    np.testing.assert_array_equal(layer.beta, np.float32(np.arange(8) / 100))
    with pytest.raises(ReplayError, match="stat 'mean' does not belong to stage 'affine'"):
        upload.read_table(_csv(*rows, "bn,0,0,affine,3,mean,1\n"), "x.csv")
    with pytest.raises(ReplayError, match="gamma and beta need a unit >= 0"):
        upload.read_table(_csv(*rows, "bn,0,0,affine,-1,gamma,1\n"), "x.csv")
