"""Failed runs recorded in the store of runs: ``<key>.failed.json`` beside the runs, written whole, read back only for
its own run, removed when the run is stored."""

import json
import os

import pytest

from bnviz.config import PRESETS
from bnviz.table.store import RunStore, StoreError, canonical_link, run_key

CFG = PRESETS["ioffe"].config.replace(steps=20, snapshot_every=10)


def test_a_failure_is_recorded_with_its_link_and_read_back(tmp_path):
    store = RunStore(tmp_path / "runs")
    path = store.put_failure(CFG, "RuntimeError: out of memory")
    assert path == tmp_path / "runs" / f"{run_key(CFG)}.failed.json"
    assert json.loads(path.read_text()) == {"link": canonical_link(CFG), "error": "RuntimeError: out of memory"}
    assert store.failure(CFG) == "RuntimeError: out of memory"
    assert store.failure(CFG.replace(seed=1)) is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_storing_the_run_removes_its_failure(tmp_path):
    store = RunStore(tmp_path)
    store.put_failure(CFG, "failed once")
    store.put(CFG, b"PAR1 the run's table bytes")
    assert store.failure(CFG) is None and not list(tmp_path.glob("*.failed.json"))


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"link": "seed=99", "error": "another run"}',
                                  '{"error": 3}'])
def test_a_record_that_is_unreadable_or_not_its_runs_says_nothing(tmp_path, text):
    store = RunStore(tmp_path)
    (tmp_path / f"{run_key(CFG)}.failed.json").write_text(text)
    assert store.failure(CFG) is None


def test_a_full_disk_while_recording_a_failure_raises_store_error(tmp_path, monkeypatch):
    import errno

    def full(self, path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RunStore, "_write", full)
    with pytest.raises(StoreError, match=f"^could not record a failed run in {tmp_path}: No space left on device$"):
        RunStore(tmp_path).put_failure(CFG, "why")
