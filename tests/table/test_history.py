"""The bounded History: at most its cap of snapshots, evenly spaced, the first and final steps kept, and
never seen half written by a reader while a run appends to it."""

import time

import numpy as np
import pytest

from bnviz.measure.snapshot import Snapshot, VariantSnapshot
from bnviz.table.history import History
from bnviz.training.run import Run

from ..helpers import TINY
from ..helpers import finished_run as finished


def _snap(step):
    return Snapshot(step, {"none": VariantSnapshot(0.0, 0.0, 0.0, None, ())}, nbytes=1000)


def test_history_stays_bounded_and_evenly_spaced():
    h = History(snapshot_every=5, cap=64)
    for k in range(10_000):
        h.append(_snap(5 * k))
        assert len(h) <= 65
    steps = np.array(h.steps())
    assert steps[0] == 0 and steps[-1] == 5 * 9_999
    grid = np.diff(steps[:-1])
    assert len(set(grid)) == 1  # evenly spaced (the latest may sit off the grid)
    assert h.nbytes() <= 65 * 1000


@pytest.mark.slow
def test_history_of_a_long_real_run_is_bounded():
    run = finished(TINY.replace(steps=400, snapshot_every=1, ics_every=0, variants=("bn",)), history_cap=32)
    assert len(run.history) <= 33
    assert run.history.steps()[0] == 0 and run.history.steps()[-1] == 400


@pytest.mark.slow
def test_readers_never_see_a_half_written_history():
    run = Run(TINY.replace(steps=150, snapshot_every=1, ics_every=0), stats_in="inline", history_cap=16).start()
    seen = 0
    while run.alive:
        snaps = run.history.snapshots()
        steps = [s.step for s in snaps]
        assert steps == sorted(steps) and all(isinstance(s, Snapshot) for s in snaps)
        seen += 1
        time.sleep(0.002)  # a reader that never yields the GIL would starve the training thread
    assert run.state == "finished" and seen > 0
