"""The store of finished runs: keyed by the run's canonical link, written whole, read back as the run it holds,
capped with the least recently used runs evicted first, and never showing a file that is not its key's run."""

import multiprocessing as mp
import os

import numpy as np
import pytest

from bnviz import urlstate
from bnviz.table import record, replay
from bnviz.table.store import RunStore, StoreError, canonical_link, run_bytes, run_key, stored_key

from .tables import IOFFE, assert_same_snapshot, query_of


def stored_bytes(run, cfg=IOFFE, preset="ioffe"):
    return record.table_to_bytes(record.to_arrow(run.history.snapshots(), quantiles=True), "parquet",
                                 query=query_of(preset, cfg))


def test_the_key_names_the_run_not_the_preset_nor_the_view():
    same = urlstate.decode({k: [v] for k, v in urlstate.encode("santurkar", IOFFE).items()}).config
    assert same == IOFFE and run_key(same) == run_key(IOFFE)
    assert "preset" not in canonical_link(IOFFE) and "lr=0.5" in canonical_link(IOFFE)
    assert run_key(IOFFE.replace(lr=0.1)) != run_key(IOFFE) != run_key(IOFFE.replace(seed=1))
    assert run_key(IOFFE.replace(view="eval")) != run_key(IOFFE)  # the probe's view changes every statistic
    assert len(run_key(IOFFE)) == 16 and int(run_key(IOFFE), 16) >= 0


def test_a_stored_run_reads_back_as_the_run_it_holds(ioffe, tmp_path):
    store = RunStore(tmp_path / "runs")
    assert store.get(IOFFE) is None and not store.has(IOFFE)
    path = store.put(IOFFE, stored_bytes(ioffe))
    assert path.name == f"{run_key(IOFFE)}.parquet" and store.has(IOFFE)
    got = store.get(IOFFE)
    assert got is not None and got.config == IOFFE and got.has_distributions
    want = ioffe.history.snapshots()
    assert [s.step for s in got.snapshots] == [s.step for s in want]
    for g, w in zip(got.snapshots, want):
        assert_same_snapshot(g, w, hists=False)  # every statistic as the live run computed it
    assert os.listdir(tmp_path / "runs") == [path.name]  # no temporary file left


def test_a_foreign_or_corrupt_file_under_a_key_is_skipped_and_named_never_shown(ioffe, tmp_path):
    store = RunStore(tmp_path)
    other = IOFFE.replace(seed=7)
    store.path(other).parent.mkdir(parents=True, exist_ok=True)
    store.path(other).write_bytes(stored_bytes(ioffe))  # the seed-0 run's table under seed 7's key
    assert store.get(other) is None
    assert store.skipped == [f"Skipped {run_key(other)}.parquet in the store of runs: it holds another run than "
                             "its name says."]
    store.path(IOFFE).write_bytes(stored_bytes(ioffe)[:-100])  # truncated
    assert store.get(IOFFE) is None
    assert len(store.skipped) == 2 and store.skipped[1].startswith(f"Skipped {run_key(IOFFE)}.parquet in the store "
                                                                    "of runs: it cannot be read (")


def test_the_cap_evicts_the_least_recently_used_runs_first(ioffe, tmp_path):
    data = stored_bytes(ioffe)
    store = RunStore(tmp_path, max_bytes=int(2.5 * len(data)))
    a, b, c = (IOFFE.replace(seed=s) for s in (1, 2, 3))
    for i, cfg in enumerate((a, b)):
        store.put(cfg, data)
        os.utime(store.path(cfg), (1000 + i, 1000 + i))  # a used before b
    store.put(c, data)  # 3 runs do not fit: a goes
    assert (store.has(a), store.has(b), store.has(c)) == (False, True, True)
    os.utime(store.path(c), (900, 900))  # c is now the least recently used
    store.put(a, data)
    assert (store.has(a), store.has(b), store.has(c)) == (True, True, False)


def test_a_full_disk_raises_a_clear_error_and_leaves_no_partial_file(ioffe, tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    real_fsync = os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreError, match="could not store the run in .*: No space left on device"):
        store.put(IOFFE, stored_bytes(ioffe))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert os.listdir(tmp_path) == [] and store.get(IOFFE) is None


def _write_many(folder, data, times):
    store = RunStore(folder)
    for _ in range(times):
        store.put(IOFFE, data)


@pytest.mark.slow
def test_two_writers_of_the_same_key_never_leave_a_broken_file(ioffe, tmp_path):
    data = stored_bytes(ioffe)
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(tmp_path, data, 20)) for _ in range(2)]
    for w in writers:
        w.start()
    reads = 0
    store = RunStore(tmp_path)
    while any(w.is_alive() for w in writers):
        if store.has(IOFFE):
            assert store.path(IOFFE).read_bytes() == data  # whole, whenever it is there
            reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert reads > 0 and store.get(IOFFE) is not None and store.skipped == []
    assert sorted(os.listdir(tmp_path)) == [f"{run_key(IOFFE)}.parquet"]


def test_the_preset_in_a_stored_link_does_not_matter_to_the_key(ioffe, tmp_path):
    store = RunStore(tmp_path)
    store.put(IOFFE, stored_bytes(ioffe, preset="gamma-beta"))  # opened from another preset, same settings
    got = store.get(IOFFE)
    assert got is not None and got.config == IOFFE


def test_a_run_that_ended_early_is_still_found_under_its_key(ioffe, tmp_path):
    # A run whose every variant diverged stops at the step of the last divergence, and its replay's config says
    # so (steps = the last step); the store finds it by the link it carries, not by that config.
    store = RunStore(tmp_path)
    early = ioffe.history.snapshots()[:3]
    store.put(IOFFE, run_bytes(IOFFE, early))
    got = store.get(IOFFE)
    assert got is not None and store.skipped == []
    assert got.config.steps == early[-1].step != IOFFE.steps
    assert [s.step for s in got.snapshots] == [s.step for s in early]


def test_the_stored_form_carries_the_canonical_link_and_reads_back_whole(ioffe, tmp_path):
    data = run_bytes(IOFFE, ioffe.history.snapshots())
    assert stored_key(data) == run_key(IOFFE)
    assert stored_key(b"PAR1 not a table PAR1") is None and stored_key(stored_bytes(ioffe)) == run_key(IOFFE)
    got = RunStore(tmp_path).put(IOFFE, data) and RunStore(tmp_path).get(IOFFE)
    assert got is not None and got.config == IOFFE
    for g, w in zip(got.snapshots, ioffe.history.snapshots(), strict=True):
        assert_same_snapshot(g, w, hists=False)


@pytest.mark.parametrize(("text", "cap"), [("", 2 << 30), ("500", 500 << 20), ("0", 2 << 30), ("-5", 2 << 30),
                                           ("lots", 2 << 30)])
def test_the_cap_is_set_in_megabytes_by_the_environment(text, cap, tmp_path, monkeypatch):
    monkeypatch.setenv("BNVIZ_RUNS_MB", text)
    assert RunStore(tmp_path).max_bytes == cap
    assert RunStore(tmp_path, max_bytes=10).max_bytes == 10


def test_holds_reads_only_the_footer_and_names_what_it_cannot_use(ioffe, tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    assert not store.holds(IOFFE) and store.skipped == []  # absent: nothing to name
    store.put(IOFFE, stored_bytes(ioffe))
    monkeypatch.setattr("bnviz.table.replay.load", lambda *a, **k: pytest.fail("holds parsed the whole table"))
    assert store.holds(IOFFE)
    other = IOFFE.replace(seed=7)
    store.path(other).write_bytes(stored_bytes(ioffe))  # the seed-0 run under seed 7's key
    assert not store.holds(other)
    store.path(IOFFE).write_bytes(stored_bytes(ioffe)[:-100])  # truncated: its footer is gone
    assert not store.holds(IOFFE)
    assert store.skipped == [
        f"Skipped {run_key(other)}.parquet in the store of runs: it holds another run than its name says.",
        f"Skipped {run_key(IOFFE)}.parquet in the store of runs: it cannot be read (no whole Parquet table carrying "
        "a run's link)."]

@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_stored_runs_and_failure_records_are_readable_as_the_umask_allows(tmp_path, umask):
    store = RunStore(tmp_path)
    old = os.umask(umask)
    try:
        run = store.put(IOFFE, b"PAR1 not a run PAR1")
        failed = store.put_failure(IOFFE.replace(seed=3), "it diverged")
        opened = tmp_path / "opened"
        opened.write_bytes(b"")  # what open() makes under this umask: the mode the store's files should have
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert want == opened.stat().st_mode & 0o777
    assert run.stat().st_mode & 0o777 == want and failed.stat().st_mode & 0o777 == want


def test_a_stored_run_has_gamma_and_beta_of_every_unit_and_the_live_runs_c2_numbers(ioffe, tmp_path):
    from dataclasses import astuple

    from bnviz.present import claims

    store = RunStore(tmp_path)
    store.put(IOFFE, run_bytes(IOFFE, ioffe.history.snapshots()))
    got, want = store.get(IOFFE).snapshots, ioffe.history.snapshots()
    checked = 0
    for g, w in zip(got, want, strict=True):
        for token, wv in w.variants.items():
            for gl, wl in zip(g.variants[token].layers, wv.layers, strict=True):
                assert (gl.gamma is None) == (wl.gamma is None)
                if wl.gamma is not None:  # every unit, as the live run (PyTorch's BatchNorm1d.weight/.bias) held it
                    assert len(wl.gamma) == 100 and gl.gamma.dtype == wl.gamma.dtype
                    np.testing.assert_array_equal(gl.gamma, wl.gamma)
                    np.testing.assert_array_equal(gl.beta, wl.beta)
                    checked += 1
    assert checked == len(want) * len(IOFFE.widths)  # the bn variant's layers at every snapshot
    c2 = lambda snaps: next(v for v in claims.evidence(snaps, IOFFE) if v.claim == "C2")  # noqa: E731
    live, stored = c2(want), c2(got)
    assert (stored.verdict, stored.figure) == (live.verdict, live.figure)
    np.testing.assert_array_equal(astuple(stored.numbers)[1:-1], astuple(live.numbers)[1:-1])  # NaN equal too
    assert live.numbers.gamma_mean != np.nanmean(want[-1].variants["bn"].layers[-1].gamma[list(IOFFE.units)])


def test_a_table_without_the_affine_rows_replays_gamma_and_beta_of_its_tracked_units(ioffe):
    import pyarrow.compute as pc

    table = record.to_arrow(ioffe.history.snapshots(), quantiles=False)
    old = table.filter(pc.invert(pc.equal(pc.cast(table["stage"], "string"), "affine")))
    assert old.num_rows < table.num_rows
    got = replay.load(record.table_to_bytes(old, "parquet", query=query_of("ioffe", IOFFE)), "old.parquet")
    want = ioffe.history.snapshots()
    for g, w in zip(got.snapshots, want, strict=True):
        gl, wl = g.variants["bn"].layers[0], w.variants["bn"].layers[0]
        tracked = list(IOFFE.units)
        np.testing.assert_array_equal(gl.gamma[tracked], wl.gamma[tracked])
        np.testing.assert_array_equal(gl.beta[tracked], wl.beta[tracked])
        others = np.setdiff1d(np.arange(100), tracked)
        assert len(gl.gamma) == 100 and np.isnan(gl.gamma[others]).all() and np.isnan(gl.beta[others]).all()


def test_the_store_reads_its_own_tables_past_the_uploads_row_limit(ioffe, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bnviz.table import replay, store
    from bnviz.table.upload import ReplayError

    data = stored_bytes(ioffe)
    rows = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
    with pytest.raises(ReplayError, match=f"over the limit of {rows - 1:,}"):
        replay.load(data, "run.parquet", max_rows=rows - 1)  # an upload this long is refused
    s = RunStore(tmp_path / "runs")
    s.put(IOFFE, data)
    assert store.MAX_FILE_ROWS > 4 * store.PAGE_ROWS  # santurkar-dln's 14 million rows are read by the commands
    assert s.get(IOFFE, max_rows=rows) is not None and s.skipped == []


def test_get_refuses_a_table_over_its_row_limit_from_the_footer_alone(ioffe, tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = RunStore(tmp_path)
    data = stored_bytes(ioffe)
    store.put(IOFFE, data)
    rows = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
    with monkeypatch.context() as m:
        m.setattr("bnviz.table.replay.load", lambda *a, **k: pytest.fail("the table was read"))
        assert store.get(IOFFE, max_rows=rows - 1) is None
    assert store.skipped == [f"Not opened {run_key(IOFFE)}.parquet from the store of runs: its table has {rows:,} "
                             f"rows, more than a page reads at once ({rows - 1:,})."]
    assert store.get(IOFFE, max_rows=rows) is not None
