"""The Ray engine of a sweep: on a local Ray (started once for the module, as the engine starts it), every run is
stored as a run trained directly would be; a cluster out of reach or Ray missing is one line before any training."""

import socket
import sys

import pytest

from bnviz.config import PRESETS
from bnviz.sweep import Job, Unreachable, check_reachable, engines, jobs, parse_grid, run
from bnviz.table.store import RunStore

from ..helpers import finished
from ..table.tables import assert_same_snapshot


def closed_port():
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_is_one_line_naming_it(tmp_path):
    port = closed_port()
    with pytest.raises(Unreachable) as err:
        run([], RunStore(tmp_path), engine="ray", address=f"127.0.0.1:{port}")
    assert str(err.value) == f"cannot reach the Ray cluster at 127.0.0.1:{port}: connection refused"
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing recorded


@pytest.mark.parametrize("address", ["10.0.0.5", "10.0.0.5:http", "ray://:6379", "host:70000"])
def test_an_address_that_is_not_host_and_port_is_refused(address):
    with pytest.raises(Unreachable, match=r"is not host:port \(such as 127.0.0.1:6379\)$"):
        check_reachable(address)


def test_ray_missing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # any import of ray now raises ImportError
    with pytest.raises(Unreachable, match=r"needs Ray, which is not installed: pip install -r requirements-ray.txt"):
        run([], RunStore(tmp_path), engine="ray")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs started as the engine starts one (bnviz shipped to its workers), for the module."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-ray.txt)")
    started = engines._start_ray(None, 2)
    assert started.owned
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_a_sweep_on_ray_stores_every_run_as_a_run_trained_directly(tmp_path, local_ray):
    todo = jobs("ioffe", PRESETS["ioffe"].config, parse_grid(["steps=20", "every=10", "seed=0-3"]))
    store = RunStore(tmp_path)
    started = []
    out = run(todo, store, engine="ray", on_start=lambda *a: started.append(a))
    assert started == [(0, 4, 2)] and local_ray.is_initialized()  # the caller's Ray is left running
    assert [o.state for o in out] == ["stored"] * 4 and all(o.seconds > 0 for o in out)
    for job in todo:
        got, want = store.get(job.config), finished(job.config)
        assert got is not None and [s.step for s in got.snapshots] == [s.step for s in want]
        for g, w in zip(got.snapshots, want, strict=True):
            assert_same_snapshot(g, w, hists=False, ics_rel=1e-12)
    assert [o.state for o in run(todo, store, engine="ray")] == ["skipped"] * 4


@pytest.mark.slow
def test_a_failing_run_on_ray_is_recorded_and_the_others_stored(tmp_path, local_ray):
    (good,) = jobs("ioffe", PRESETS["ioffe"].config, parse_grid(["steps=20", "every=10", "seed=9"]))
    bad = Job("lr=fast", "ioffe", good.config.replace(seed=8), "preset=ioffe&steps=20&lr=fast")
    store = RunStore(tmp_path)
    failed, stored = run([bad, good], store, engine="ray")
    assert failed.state == "failed" and failed.error.startswith("lr=fast ignored: the learning rate must be")
    assert store.failure(bad.config) == failed.error
    assert stored.state == "stored" and store.get(good.config) is not None
