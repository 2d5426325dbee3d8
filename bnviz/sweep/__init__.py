"""Many runs: a grid of share-link values trained on local processes or a Ray cluster into the store of runs
(``python -m bnviz sweep``)."""

from bnviz.sweep.engines import ENGINES, Outcome, Unreachable, check_reachable, run
from bnviz.sweep.grid import MAX_RUNS, Job, jobs, parse_grid

__all__ = ["ENGINES", "MAX_RUNS", "Job", "Outcome", "Unreachable", "check_reachable", "jobs", "parse_grid", "run"]
