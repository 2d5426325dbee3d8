"""The page's verdicts across seeds: the stored runs of the page's configuration at other seeds, judged off the
page's thread, and one sentence per claim for the evidence board and the report (``claims.across``).

Looking the seeds up is cheap (a hash and ``is_file`` per seed); judging a stored run takes about a second, so it
happens on a background thread, and only each run's verdicts (not its snapshots) are kept, per stored file.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from bnviz.config import ExperimentConfig
from bnviz.present.claims import across, evidence
from bnviz.present.claims.record import Verdict
from bnviz.table.store import PAGE_ROWS, RunStore, default_folder, run_key

log = logging.getLogger(__name__)

SEEDS = range(100)  # the seeds looked up beside the page's own
CACHED = 4096  # stored runs whose verdicts are kept (a few kB each)


def stored_seeds(store: RunStore, cfg: ExperimentConfig) -> list[int]:
    """The seeds in SEEDS at which ``store`` holds the run of ``cfg``."""
    return [s for s in SEEDS if store.path(cfg.replace(seed=s)).is_file()]


class AcrossSeeds:
    """Verdicts of stored runs, judged on a background thread, cached per stored file.

    A file is known by its key, inode and size: a stored run is replaced by a rename (a new inode), while its
    mtime moves whenever the store reads it (the store's least-recently-used order), which is no change of run.
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._judged: OrderedDict[tuple, list[Verdict] | None] = OrderedDict()  # None: the file is unreadable
        self._working: dict[ExperimentConfig, threading.Thread] = {}
        self._lock = threading.Lock()

    def _ident(self, cfg: ExperimentConfig) -> tuple | None:
        try:
            st = self.store.path(cfg).stat()
        except OSError:
            return None
        return run_key(cfg), st.st_ino, st.st_size

    def lines(self, cfg: ExperimentConfig, own: Sequence[Verdict], wait: bool = False) -> dict[str, str] | None:
        """Claim id -> the across-seed sentence, for each claim measured at some seed, over the page's run (its
        verdicts ``own``, at its final step) and the stored runs of ``cfg`` at other seeds; {} when the store holds
        no other seed; None while they are judged (with ``wait``: the caller's thread waits for them instead)."""
        idents = {s: i for s in stored_seeds(self.store, cfg) if s != cfg.seed
                  and (i := self._ident(cfg.replace(seed=s))) is not None}
        if not idents:
            return {}
        with self._lock:
            todo = [s for s, i in idents.items() if i not in self._judged]
            worker = self._working.get(cfg)
            if todo and (worker is None or not worker.is_alive()):
                worker = threading.Thread(target=self._judge, args=(cfg, todo), daemon=True,
                                          name=f"bnviz-across-{run_key(cfg)}")
                self._working[cfg] = worker
                worker.start()
        if todo:
            if not wait or worker is None:
                return None
            worker.join()
            return self.lines(cfg, own, wait=False) or {}
        with self._lock:
            by_seed: dict[int, Sequence[Verdict] | None] = {s: self._judged[i] for s, i in idents.items()}
        by_seed[cfg.seed] = own
        # A claim unmeasured at every seed (one this config cannot measure, or C11, judged from a learning-rate
        # sweep rather than from a run) gets no line: it would say nothing the verdict does not.
        return {a.claim: a.sentence() for a in across.across(by_seed) if set(a.counts) != {"not measured"}}

    def _judge(self, cfg: ExperimentConfig, seeds: list[int]) -> None:
        for seed in seeds:
            c = cfg.replace(seed=seed)
            ident = self._ident(c)
            if ident is None:  # evicted meanwhile: the next lookup no longer finds it
                continue
            try:
                stored = self.store.get(c, max_rows=PAGE_ROWS)
                verdicts = None if stored is None else evidence(stored.snapshots, c)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
                log.warning("across seeds: %s seed %s: %s", run_key(cfg), seed, exc)
                verdicts = None
            with self._lock:
                self._judged[ident] = verdicts
                while len(self._judged) > CACHED:
                    self._judged.popitem(last=False)
        with self._lock:
            self._working.pop(cfg, None)


def judged_at_end(snaps: Sequence, cfg: ExperimentConfig) -> bool:
    """Whether the across-seed lines apply to the run of ``snaps``: it has reached its final step (a live run's
    verdicts still change) and bnviz trained it (a watched model has no seeds to look up)."""
    return bool(snaps) and snaps[-1].step >= cfg.steps and cfg.watched is None


def report_lines(snaps: Sequence, cfg: ExperimentConfig) -> dict[str, str] | None:
    """The lines for the HTML report, judged now if need be (the report is built on the download's thread)."""
    if not judged_at_end(snaps, cfg):
        return None
    return across_seeds().lines(cfg, evidence(tuple(snaps), cfg), wait=True)


_instances: dict[Path, AcrossSeeds] = {}
_instances_lock = threading.Lock()


def across_seeds() -> AcrossSeeds:
    """The server's verdicts across seeds for the store of runs in use ($BNVIZ_RUNS or the cache folder)."""
    folder = default_folder()
    with _instances_lock:
        if folder not in _instances:
            _instances[folder] = AcrossSeeds(RunStore(folder))
        return _instances[folder]
