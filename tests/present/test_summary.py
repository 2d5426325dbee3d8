"""The run summaries of present/summary.py against numbers worked out independently."""

import dataclasses
import math
from statistics import median

import pytest

from bnviz.measure.snapshot import Smoothness, Snapshot, VariantSnapshot
from bnviz.present import summary


def _snaps(values):
    """Snapshots of one variant 'bn' whose smoothness is each of ``values`` (None: not measured there)."""
    return tuple(Snapshot(10 * i, {"bn": VariantSnapshot(0.0, 0.0, 0.0, None, (), v)}) for i, v in enumerate(values))


def test_smoothness_is_the_median_of_each_quantity_where_it_was_measured():
    values = [Smoothness(1.0, 10.0, 0.5), None, Smoothness(4.0, 2.0, 8.0), Smoothness(2.0, 30.0, math.nan),
              None, Smoothness(3.0, 1.0, 1.0)]
    got = summary.smoothness(_snaps(values), "bn")
    measured = [v for v in values if v is not None]
    assert got == Smoothness(median([v.loss_range for v in measured]), median([v.grad_change for v in measured]),
                             median([0.5, 8.0, 1.0]))  # a NaN (no gradient to divide by) is left out
    assert dataclasses.astuple(got) == (2.5, 6.0, 1.0)


NAN = Smoothness(math.nan, math.nan, math.nan)  # measured where the network was no longer finite


@pytest.mark.parametrize("values", [[], [None, None], [Smoothness(1.0, 1.0, 1.0), None],
                                    [Smoothness(1.0, 1.0, 1.0), NAN, NAN]])
def test_smoothness_needs_two_measurements(values):
    assert summary.smoothness(_snaps(values), "bn") is None
    assert summary.smoothness(_snaps([Smoothness(1.0, 1.0, 1.0)] * 2), "none") is None  # a variant not there
