"""Reading a run folder: the Follower (parts read once, in order; corrupt and foreign parts skipped and named)
and FollowedRun (what the page follows). The truth they are held to is independent of the parts: the
snapshots as the Summarizer made them, and one whole table of the same snapshots replayed."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bnviz.config import WatchedModel
from bnviz.table import follow, record, replay
from bnviz.table.follow import FollowedRun
from bnviz.table.parts import NoRun, PartRecorder, open_run, part_name
from bnviz.table.upload import ReplayError

from .tables import IOFFE, assert_same_snapshot, every_panel_figure, query_of
from .watched import CONFIG, EVERY, WATCHED, watched_snapshots

ROOT = Path(__file__).resolve().parents[2]


def write_run(folder, snaps, per_part=3, config=CONFIG, finish=True, **kw):
    rec = PartRecorder(folder, config, per_part=per_part, seconds=None, **kw)
    rec.prepare()
    for snap in snaps:
        rec.append(snap)
    if finish:
        rec.write()
    return rec


def test_parts_read_back_equal_one_whole_table_of_the_same_snapshots(tmp_path):
    snaps = watched_snapshots(11)
    write_run(tmp_path, snaps)
    follower = open_run(tmp_path)
    got = follower.poll()
    assert follower.poll() == ()  # each part is read once
    whole = replay.snapshots_from_table(record.to_table(snaps, quantiles=True), CONFIG)
    assert [s.step for s in got] == [s.step for s in snaps]
    for g, w in zip(got, whole):
        assert_same_snapshot(g, w)  # histograms too: their bins carry from part to part
    for g, live in zip(got, snaps):  # what the Summarizer measured, before any table
        assert_same_snapshot(g, live, hists=False)
    assert follower.finished and follower.skipped == [] and follower.notes == []
    assert follower.config == CONFIG.replace(steps=10 * EVERY)
    assert follower.config.layer_name(0) == "features.0.bn"


def test_own_run_folder_reads_with_the_config_of_its_share_link(ioffe, tmp_path):
    snaps = ioffe.history.snapshots()
    query = query_of("ioffe", IOFFE)
    write_run(tmp_path, snaps, config=IOFFE, query=query)
    follower = open_run(tmp_path)
    got = follower.poll()
    assert follower.config == IOFFE and follower.notes == [] and follower.skipped == []
    for g, live in zip(got, snaps, strict=True):
        assert_same_snapshot(g, live, hists=False)


def test_a_follower_sees_only_new_parts_and_finishes_with_done_json(tmp_path):
    snaps = watched_snapshots(9)
    rec = write_run(tmp_path, snaps[:5], per_part=2, finish=False)  # parts: [0], [10, 20], [30, 40]
    follower = open_run(tmp_path)
    assert [s.step for s in follower.poll()] == [0, 10, 20, 30, 40]
    assert not follower.finished and follower.config.steps == 40
    for snap in snaps[5:8]:
        rec.append(snap)  # one more part: [50, 60]; 70 waits
    assert [s.step for s in follower.poll()] == [50, 60]
    assert not follower.finished
    rec.append(snaps[8])
    rec.write()
    assert [s.step for s in follower.poll()] == [70, 80]
    assert follower.finished and follower.config.steps == 80


def corrupt(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif how == "text":
        path.write_bytes(b"step,value\n1,2\n")
    elif how == "no bnviz columns":
        pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), path)
    elif how == "another model":
        other = CONFIG.replace(watched=WatchedModel(
            model="Other", names=("bn1", "bn2"), kinds=WATCHED.kinds, fan_ins=WATCHED.fan_ins, values=WATCHED.values,
            activations=WATCHED.activations))
        write_run(path.parent / "other", watched_snapshots(8), per_part=3, config=other)
        os.replace(path.parent / "other" / path.name, path)  # the same steps, from another model
    elif how == "own run":
        write_run(path.parent / "other", watched_snapshots(8), per_part=3, config=IOFFE, query="preset=ioffe")
        os.replace(path.parent / "other" / path.name, path)


@pytest.mark.parametrize("how", ["truncated", "text", "no bnviz columns", "another model", "own run"])
def test_a_corrupt_or_foreign_part_is_skipped_and_named_and_the_others_shown(tmp_path, how):
    folder = tmp_path / "run"
    snaps = watched_snapshots(8)
    write_run(folder, snaps)  # parts [0], [10, 20, 30], [40, 50, 60], [70]
    corrupt(folder / part_name(2), how)
    follower = open_run(folder)
    got = follower.poll()
    assert [s.step for s in got] == [0, 40, 50, 60, 70]
    assert len(follower.skipped) == 1 and part_name(2) in follower.skipped[0]
    assert follower.finished


@pytest.mark.parametrize("how, why", [
    ("truncated", "it is a truncated Parquet file (it does not end with the PAR1 marker)."),
    ("text", "it is not a Parquet file (it does not start with the PAR1 marker)."),
    ("no bnviz columns", "missing column(s) variant, step, layer, stage, unit, stat, value; unexpected column(s) "),
    ("another model", "it belongs to another run (its model differs from the one in run.json)."),
])
def test_skipped_part_sentences_say_why(tmp_path, how, why):
    write_run(tmp_path, watched_snapshots(5))
    corrupt(tmp_path / part_name(2), how)
    follower = open_run(tmp_path)
    follower.poll()
    (sentence,) = follower.skipped
    assert sentence.startswith(f"Skipped {part_name(2)}: {why}") and sentence.endswith(".")


def test_a_part_missing_from_a_finished_run_is_named(tmp_path):
    write_run(tmp_path, watched_snapshots(8))
    (tmp_path / part_name(3)).unlink()
    follower = open_run(tmp_path)
    assert [s.step for s in follower.poll()] == [0, 10, 20, 30, 70]
    assert follower.skipped == [f"Skipped {part_name(3)}: it is missing from {tmp_path}."]
    assert follower.finished


def test_a_folder_without_a_run_raises_no_run_naming_it(tmp_path):
    for path in (tmp_path / "absent", tmp_path):
        with pytest.raises(NoRun, match=str(path)):
            open_run(path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NoRun, match="not a folder"):
        open_run(tmp_path / "file.txt")
    assert issubclass(NoRun, ReplayError)


def test_a_run_folder_without_run_json_is_read_from_its_parts(tmp_path):
    snaps = watched_snapshots(5)
    write_run(tmp_path, snaps)
    (tmp_path / "run.json").unlink()
    follower = open_run(tmp_path)
    assert [s.step for s in follower.poll()] == [s.step for s in snaps]
    assert follower.config == CONFIG.replace(steps=40)


READER_WRITER = """
import sys, time
from bnviz.table.parts import PartRecorder
from tests.table.watched import CONFIG, watched_snapshots
rec = PartRecorder(sys.argv[1], CONFIG, per_part=2, seconds=None)
rec.prepare()
for snap in watched_snapshots(int(sys.argv[2])):
    rec.append(snap)
    time.sleep(0.01)
rec.write()
"""


@pytest.mark.slow  # a writer process
def test_a_reader_polling_a_writer_process_sees_whole_parts_and_ends_with_every_snapshot(tmp_path):
    n = 60
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", READER_WRITER, str(folder), str(n)], cwd=ROOT)
    steps, polls = [], 0
    try:
        deadline = time.monotonic() + 120
        while not (folder / "run.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        follower = open_run(folder)
        while not follower.finished:
            assert time.monotonic() < deadline, "the reader never saw the run finish"
            new = follower.poll()
            polls += bool(new)
            steps += [s.step for s in new]
            assert follower.skipped == []  # a half-written part would be skipped as corrupt
            time.sleep(0.003)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert steps == [i * EVERY for i in range(n)]
    assert polls > 3  # read while it was written, not all at the end


def test_followed_run_follows_a_folder_as_it_grows(tmp_path, monkeypatch):
    monkeypatch.setattr(follow, "REFRESH_SECONDS", 0.0)
    snaps = watched_snapshots(9)
    rec = write_run(tmp_path, snaps[:1], finish=False)
    run = FollowedRun(tmp_path)
    assert run.state == "running" and run.alive and run.error is None
    assert run.history.steps() == [0] and run.step == 0
    assert run.config.layer_name(1) == "head.norm" and run.status["bn"].state == "training"
    for snap in snaps[1:]:
        rec.append(snap)
    corrupt(tmp_path / part_name(2), "text")
    run.refresh()
    assert run.history.steps() == [0, 40, 50, 60] and run.config.steps == 60
    assert run.state == "running"
    assert len(run.notes) == 1 and part_name(2) in run.notes[0]
    rec.write()
    run.refresh()
    assert run.history.steps() == [0, 40, 50, 60, 70, 80] and run.state == "finished" and not run.alive


def test_followed_run_refreshes_at_most_once_a_second(tmp_path):
    snaps = watched_snapshots(5)
    rec = write_run(tmp_path, snaps[:1], per_part=1, finish=False)
    run = FollowedRun(tmp_path)
    rec.append(snaps[1])
    run.refresh()  # within the second of the first read
    assert run.history.steps() == [0]
    run._polled -= follow.REFRESH_SECONDS  # as if a second had passed
    run.refresh()
    assert run.history.steps() == [0, 10]


def test_a_run_recorded_again_into_the_folder_is_followed_from_its_start(tmp_path, monkeypatch):
    monkeypatch.setattr(follow, "REFRESH_SECONDS", 0.0)
    write_run(tmp_path, watched_snapshots(8))
    run = FollowedRun(tmp_path)
    assert run.history.steps()[-1] == 70 and run.state == "finished"
    second = watched_snapshots(5, seed=1)
    rec = write_run(tmp_path, second[:2], per_part=1, finish=False)
    run.refresh()
    assert run.history.steps() == [0, 10] and run.state == "running" and run.notes == []
    for g, w in zip(run.history.snapshots(), second):
        assert_same_snapshot(g, w, hists=False)
    for snap in second[2:]:
        rec.append(snap)
    rec.write()
    run.refresh()
    assert run.history.steps() == [0, 10, 20, 30, 40] and run.state == "finished"


def test_follow_shares_one_followed_run_per_folder(tmp_path):
    write_run(tmp_path / "a", watched_snapshots(2))
    assert follow.follow(tmp_path / "a") is follow.follow(str(tmp_path / "a") + "/")
    with pytest.raises(NoRun):
        follow.follow(tmp_path / "absent")


@pytest.mark.slow  # a second or more
def test_every_panel_and_the_board_work_on_a_followed_watched_run(tmp_path):
    from bnviz.present import claims

    snaps = watched_snapshots(9)
    write_run(tmp_path, snaps)
    run = FollowedRun(tmp_path)
    figs = list(every_panel_figure(run.history.snapshots(), run.config))
    assert len(figs) > 50 and all(f.layout.title.text for f in figs)
    live = claims.evidence(snaps, CONFIG.replace(steps=snaps[-1].step))
    followed = claims.evidence(run.history.snapshots(), run.config)
    assert [(e.claim, e.verdict, e.value) for e in followed] == [(e.claim, e.verdict, e.value) for e in live]


def test_a_followed_folder_that_is_removed_says_so(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(follow, "REFRESH_SECONDS", 0.0)
    write_run(tmp_path / "run", watched_snapshots(3), per_part=1, finish=False)
    run = FollowedRun(tmp_path / "run")
    shutil.rmtree(tmp_path / "run")
    run.refresh()
    assert run.error == f"the folder {tmp_path / 'run'} is gone" and not run.alive
    assert run.history.steps() == [0, 10, 20]  # what was read stays
