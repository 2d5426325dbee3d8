"""The run folder's writer: whole parts, one per ``per_part`` snapshots (the first at once), run.json and
done.json, and the metadata each part carries."""

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bnviz.config import PRESETS, config_from_json
from bnviz.table import parts
from bnviz.table.parts import PartRecorder, part_name
from bnviz.table.schema import CONFIG_KEY, DATA_KEY, QUANTILE_STATS, QUERY_KEY
from bnviz.table.upload import read_table

from .watched import CONFIG, EVERY, watched_snapshots

ROOT = Path(__file__).resolve().parents[2]


def part_steps(path: Path) -> list[int]:
    return sorted(set(pq.read_table(path, columns=["step"]).column("step").to_pylist()))


def test_first_snapshot_is_a_part_at_once_then_one_part_per_per_part(tmp_path):
    rec = PartRecorder(tmp_path / "run", CONFIG, per_part=3, seconds=None)
    rec.prepare()
    folder = tmp_path / "run"
    assert sorted(os.listdir(folder)) == ["run.json"]
    snaps = watched_snapshots(8)
    seen = []
    for snap in snaps:
        rec.append(snap)
        seen.append(sorted(n for n in os.listdir(folder) if n.startswith("part-")))
    assert [len(s) for s in seen] == [1, 1, 1, 2, 2, 2, 3, 3]
    assert rec.write() == 8
    names = sorted(os.listdir(folder))
    assert names == ["done.json", part_name(1), part_name(2), part_name(3), part_name(4), "run.json"]
    steps = [part_steps(folder / part_name(n)) for n in range(1, 5)]
    assert steps == [[0], [10, 20, 30], [40, 50, 60], [70]]
    assert json.loads((folder / "done.json").read_text()) == {"parts": 4, "snapshots": 8, "last_step": 70}


def test_a_part_is_written_once_a_second_has_passed_since_the_last_so_slow_runs_show_each_snapshot(tmp_path,
                                                                                                   monkeypatch):
    clock = iter([0.0, 0.0, 0.4, 0.9, 1.2, 1.2, 5.0, 5.0])  # monotonic() at each append, then at each part written
    monkeypatch.setattr(parts.time, "monotonic", lambda: next(clock))
    rec = PartRecorder(tmp_path, CONFIG, per_part=16, seconds=1.0)
    rec.prepare()
    for snap in watched_snapshots(5):
        rec.append(snap)
    # step 0 at once (t=0); 10 and 20 wait (t=0.4, 0.9); 30 at t=1.2 takes them along; 40, 5 s later, at once.
    assert [part_steps(tmp_path / part_name(n)) for n in (1, 2, 3)] == [[0], [10, 20, 30], [40]]


def test_parts_are_tidy_tables_with_the_quantile_block_and_the_watched_config(tmp_path):
    rec = PartRecorder(tmp_path, CONFIG, seconds=None)
    rec.prepare()
    rec.append(watched_snapshots(1)[0])
    data = (tmp_path / part_name(1)).read_bytes()
    df = read_table(data, part_name(1))  # the upload's own checks: a valid tidy table
    assert set(QUANTILE_STATS) <= set(df["stat"].cat.categories)
    meta = pq.read_schema(tmp_path / part_name(1)).metadata
    assert config_from_json(meta[CONFIG_KEY].decode()) == CONFIG
    assert QUERY_KEY not in meta and DATA_KEY not in meta
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["query"] is None and config_from_json(run["config"]) == CONFIG


def test_own_run_parts_carry_the_query_and_no_config(tmp_path):
    cfg = PRESETS["ioffe"].config
    rec = PartRecorder(tmp_path, cfg, query="preset=ioffe&seed=0", data='{"data": "x"}', quantiles=False, seconds=None)
    rec.prepare()
    rec.append(watched_snapshots(1)[0])
    meta = pq.read_schema(tmp_path / part_name(1)).metadata
    assert meta[QUERY_KEY] == b"preset=ioffe&seed=0" and meta[DATA_KEY] == b'{"data": "x"}'
    assert CONFIG_KEY not in meta
    assert json.loads((tmp_path / "run.json").read_text()) == {"config": None, "query": "preset=ioffe&seed=0"}


def test_recorder_pickles_as_settings_before_prepare(tmp_path):
    rec = PartRecorder(tmp_path / "run", CONFIG, seconds=None)
    copy = pickle.loads(pickle.dumps(rec))
    assert not (tmp_path / "run").exists()  # nothing is written where the recorder is made
    copy.prepare()
    copy.append(watched_snapshots(1)[0])
    assert (tmp_path / "run" / part_name(1)).exists()


def test_append_before_prepare_and_a_bad_per_part_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one snapshot"):
        PartRecorder(tmp_path, CONFIG, per_part=0, seconds=None)
    with pytest.raises(RuntimeError, match="prepare"):
        PartRecorder(tmp_path, CONFIG, seconds=None).append(watched_snapshots(1)[0])


def test_prepare_clears_an_earlier_run_in_the_folder_and_only_that(tmp_path):
    first = PartRecorder(tmp_path, CONFIG, per_part=1, seconds=None)
    first.prepare()
    for snap in watched_snapshots(3):
        first.append(snap)
    first.write()
    left = [".part-000004.parquet.4242.tmp", ".done.json.17.tmp"]  # what a killed writer leaves
    mine = [".hidden", "notes.txt", "part-1.parquet"]
    for name in left + mine:
        (tmp_path / name).write_text("x")
    second = PartRecorder(tmp_path, CONFIG, seconds=None)
    second.prepare()
    assert sorted(os.listdir(tmp_path)) == sorted(["run.json", *mine])


def test_a_part_that_fails_to_write_leaves_no_file_of_its_name(tmp_path, monkeypatch):
    rec = PartRecorder(tmp_path, CONFIG, per_part=1, seconds=None)
    rec.prepare()
    snaps = watched_snapshots(2)
    rec.append(snaps[0])

    def half_then_fail(table, where, **kw):
        where.write(b"PAR1 half a part")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        rec.append(snaps[1])
    assert sorted(os.listdir(tmp_path)) == [part_name(1), "run.json"]
    read_table((tmp_path / part_name(1)).read_bytes(), part_name(1))


WRITER = """
import sys
from bnviz.table.parts import PartRecorder
from tests.table.watched import CONFIG, watched_snapshots
rec = PartRecorder(sys.argv[1], CONFIG, per_part=1, seconds=None)
rec.prepare()
for snap in watched_snapshots(400):
    rec.append(snap)
rec.write()
"""


@pytest.mark.slow  # a writer process per seed
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_writer_killed_at_any_moment_leaves_every_part_readable(tmp_path, seed):
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while len(list(folder.glob("part-*.parquet"))) < 3 and proc.poll() is None:
            assert time.monotonic() < deadline, "the writer made no parts"
            time.sleep(0.02)
        time.sleep(random.Random(seed).uniform(0, 0.3))  # a moment anywhere in the writing of a part
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the writer ended before it was killed"
    names = os.listdir(folder)
    found = sorted(n for n in names if parts.PART_NAME.fullmatch(n))
    assert len(found) >= 3
    assert found == [part_name(i) for i in range(1, len(found) + 1)]  # no gap
    for i, name in enumerate(found):
        df = read_table((folder / name).read_bytes(), name)
        assert sorted(set(df["step"])) == [i * EVERY]
    assert set(names) - set(found) <= {"run.json"} | {n for n in names if n.startswith(".")}
    assert "done.json" not in names
