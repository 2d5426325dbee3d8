"""The data store: files under their content hash (sha256 from hashlib), the same bytes kept once, the upload's
name kept beside, the total capped with the least recently used files evicted first, damaged files refused."""

import hashlib
import os

import pytest

from bnviz.owndata import MissingData, Store
from bnviz.owndata.store import default_folder

from .files import blobs, linear


def test_a_file_is_kept_under_the_start_of_its_sha256(tmp_path):
    store = Store(tmp_path / "data")
    data = blobs()
    h = store.put(data, "blobs.csv")
    assert h == hashlib.sha256(data).hexdigest()[:16]
    assert (tmp_path / "data" / f"{h}.csv").read_bytes() == data
    assert store.get(h) == data and store.name_of(h) == "blobs.csv"


def test_the_same_bytes_uploaded_twice_are_one_file(tmp_path):
    store = Store(tmp_path)
    h1 = store.put(blobs(), "first.csv")
    h2 = store.put(blobs(), "second name.csv")
    assert h1 == h2 and len(list(tmp_path.glob("*.csv"))) == 1
    assert store.name_of(h1) == "first.csv"  # the name it was first uploaded under
    assert store.put(linear(), "other.csv") != h1 and len(list(tmp_path.glob("*.csv"))) == 2


def test_data_it_does_not_have_or_that_changed_is_missing(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(MissingData, match="does not have the data file 0123456789abcdef"):
        store.get("0123456789abcdef")
    h = store.put(blobs(), "b.csv")
    (tmp_path / f"{h}.csv").write_bytes(b"a,b\n1,2\n")  # replaced behind the store's back
    with pytest.raises(MissingData):
        store.get(h)
    for bad in ("../../etc/passwd", "0123456789ABCDEF0", ""):
        with pytest.raises(MissingData, match="is not a data hash"):
            store.get(bad)


def test_the_total_is_capped_and_the_least_recently_used_go_first(tmp_path):
    files = [blobs(n=100, seed=s) for s in range(3)]
    size = max(len(f) for f in files)
    store = Store(tmp_path, max_total=2 * size + 10)
    a, b = store.put(files[0], "a.csv"), store.put(files[1], "b.csv")
    os.utime(tmp_path / f"{a}.csv", (1000, 1000))
    os.utime(tmp_path / f"{b}.csv", (2000, 2000))
    store.get(a)  # a is used again: b is now the least recently used
    c = store.put(files[2], "c.csv")
    kept = {p.stem for p in tmp_path.glob("*.csv")}
    assert kept == {a, c} and not (tmp_path / f"{b}.json").exists()
    assert store.total() <= store.max_total


def test_the_folder_is_bnviz_data_or_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BNVIZ_DATA", str(tmp_path / "x"))
    assert default_folder() == tmp_path / "x"
    monkeypatch.delenv("BNVIZ_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_folder() == tmp_path / "cache" / "bnviz" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_folder() == tmp_path / "home" / ".cache" / "bnviz" / "data"
