"""The tidy table: the pandas and Arrow encoders agree, quantiles are an opt-in block, the writers agree and
Parquet carries the share link, and a table recorded where the statistics are made is the History's table,
written whole or not at all."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bnviz.measure.snapshot import QQ_POINTS
from bnviz.table import record
from bnviz.table.record import TableFile
from bnviz.table.schema import QUANTILE_STATS, TABLE_COLUMNS
from bnviz.training.run import Run

from ..helpers import TINY
from ..helpers import finished_run as finished


@pytest.mark.slow
@pytest.mark.parametrize("quantiles", [False, True])
def test_the_arrow_table_is_the_pandas_table(ioffe, quantiles):
    """The record command writes Parquet from to_arrow (no pandas); it must be to_table's table exactly."""
    df = record.to_table(ioffe.history.snapshots(), quantiles=quantiles)
    back = record.to_arrow(ioffe.history.snapshots(), quantiles=quantiles).to_pandas()
    pd.testing.assert_frame_equal(back, df)
    assert len(df) > 10_000 and df["variant"].dtype == "category"
    empty = record.to_arrow(()).to_pandas()
    pd.testing.assert_frame_equal(empty, record.to_table(()), check_index_type=False)


@pytest.mark.slow
def test_quantiles_are_off_by_default_and_add_only_the_quantile_block(ioffe):
    plain, full = record.to_table(ioffe.history.snapshots()), record.to_table(ioffe.history.snapshots(), quantiles=True)
    assert not set(QUANTILE_STATS) & set(plain.stat.astype(str))
    assert QUANTILE_STATS == tuple(f"q{i:02d}" for i in range(QQ_POINTS))
    extra = full[full.stat.isin(QUANTILE_STATS)]
    rest = full[~full.stat.isin(QUANTILE_STATS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest.astype({c: str for c in ("variant", "stage", "stat")}),
                                  plain.astype({c: str for c in ("variant", "stage", "stat")}))
    # One block of 64 per (variant, step, layer, stage, unit) that has statistics, equal to the live quantiles.
    snap = ioffe.history.latest()
    st_ = snap.variants["bn"].layers[2].stages["x_hat"]
    for k, u in enumerate(st_.units):
        rows = extra[(extra.variant == "bn") & (extra.step == snap.step) & (extra.layer == 2) & (extra.stage == "x_hat")
                     & (extra.unit == u)].sort_values("stat")
        assert list(rows.stat) == list(QUANTILE_STATS)
        np.testing.assert_array_equal(rows.value.to_numpy(), st_.quantiles[k].astype(np.float64))
    assert len(extra) == QQ_POINTS * len(plain[plain.stat == "mean"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_writers_agree_and_parquet_carries_the_share_link(ioffe, files, kind, tmp_path):
    df = record.to_table(ioffe.history.snapshots(), quantiles=True)
    path = tmp_path / f"x.{kind}"
    record.write_table(df, path, query="preset=ioffe&steps=200")
    assert path.read_bytes() == record.table_to_bytes(df, kind, query="preset=ioffe&steps=200")
    back = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    assert tuple(back.columns) == TABLE_COLUMNS and len(back) == len(df)
    if kind == "parquet":
        assert pq.read_schema(path).metadata[b"bnviz.query"] == b"preset=ioffe&steps=200"
    with pytest.raises(ValueError, match=".csv or .parquet"):
        record.write_table(df, tmp_path / "x.txt")


# ----------------------------------------------------------------------------- recorded where the statistics are made

@pytest.mark.slow
@pytest.mark.parametrize("stats_in, variants", [("inline", TINY.variants), ("process", TINY.variants),
                                                 ("process", ("none", "bn_gauss", "bn_laplace@after"))],
                         ids=["inline", "process", "process-shapes"])
def test_a_table_recorded_where_the_statistics_are_made_is_the_historys_table(stats_in, variants, tmp_path):
    """The record command's path: snapshots encoded one by one where they are made (thinned to the cap as a
    History thins them, the final step kept) and written when training ends, with nothing sent back. The file
    must hold exactly the table a History of the same run gives, and the share link as metadata."""
    import pandas as pd
    import pyarrow.parquet as pq

    cfg = TINY.replace(steps=95, snapshot_every=5, variants=variants)
    ref = finished(cfg, stats_in="inline", history_cap=4)
    assert ref.history.steps() == [0, 40, 80, 95]  # thinned to every 8th snapshot, plus the final step
    out = tmp_path / "t.parquet"
    run = finished(cfg, stats_in=stats_in, table=TableFile(str(out), query="preset=x", cap=4))
    assert run.written == 4 and len(run.history) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), record.to_table(ref.history.snapshots()))
    assert pq.read_schema(out).metadata[b"bnviz.query"] == b"preset=x"
    csv = tmp_path / "t.csv"
    finished(cfg, stats_in=stats_in, table=TableFile(str(csv), quantiles=True, cap=4))
    back = pd.read_csv(csv)
    want = record.to_table(ref.history.snapshots(), quantiles=True)
    assert len(back) == len(want) and (back.stat == want.stat.astype(str)).all()
    np.testing.assert_allclose(back.value, want.value, rtol=1e-15)


def test_a_failed_write_leaves_an_earlier_file_whole_and_no_partial_file(tmp_path, monkeypatch):
    from bnviz.table import record

    out = tmp_path / "t.parquet"
    out.write_bytes(b"yesterday's table")

    def disk_full(table, path, query=None, data=None):
        with open(path, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(record, "write_table", disk_full)
    run = Run(TINY.replace(steps=20), stats_in="inline", table=TableFile(str(out))).start()
    assert run.join(timeout=120)
    assert run.state == "failed" and "No space left on device" in run.error
    assert out.read_bytes() == b"yesterday's table" and sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
