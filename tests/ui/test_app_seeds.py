"""The evidence board's line across seeds: a finished page whose configuration the store holds at other seeds
shows, under each verdict, how many seeds gave each verdict; so does the HTML report."""

import time

import pytest

from bnviz.config import PRESETS
from bnviz.present.claims import evidence

from ..helpers import finished_run
from .pages import SHORT, open_page, the_run

CFG = PRESETS["ioffe"].config.replace(steps=int(SHORT["steps"]), snapshot_every=int(SHORT["every"]))
VERDICT_WORDS = ("supported", "refuted", "mixed", "not measured")


@pytest.fixture
def other_seeds(tmp_path, monkeypatch):
    """The store ($BNVIZ_RUNS) holding the page's configuration at seeds 1 and 2, and their verdicts judged on the
    live runs' snapshots."""
    from bnviz.table.store import RunStore, run_bytes

    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path))
    store, judged = RunStore(tmp_path), {}
    for seed in (1, 2):
        cfg = CFG.replace(seed=seed)
        snaps = finished_run(cfg).history.snapshots()
        store.put(cfg, run_bytes(cfg, snaps))
        judged[seed] = evidence(snaps, cfg)
    return judged


def board_lines(at, timeout: float = 60) -> list[str]:
    """The board's across-seed captions, once the background thread has judged the stored runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        lines = [c.value for c in at.caption if "across 3 seeds" in c.value]
        if lines:
            return lines
        time.sleep(0.2)
    raise AssertionError("the across-seed lines never appeared")


@pytest.mark.slow
def test_the_board_shows_each_claims_counts_over_the_stored_seeds(other_seeds):
    at = open_page({"preset": "ioffe", "panel": "evidence", "seed": "0", **SHORT}, wait_snapshots=10 ** 6)
    run = the_run()
    assert run.state == "finished", run.error
    judged = {0: evidence(run.history.snapshots(), run.config), **other_seeds}
    lines = board_lines(at)
    claims = [v.claim for v in judged[0]]
    # a line under every claim measured at some seed (ioffe trains none and bn: not C7, C8, C9)
    measurable = [c for i, c in enumerate(claims) if any(judged[s][i].verdict != "not measured" for s in judged)]
    assert "C7" not in measurable and len(lines) == len(measurable) >= 5
    for claim, line in zip(measurable, lines):
        i = claims.index(claim)
        counted = {w: sum(judged[s][i].verdict == w for s in judged) for w in VERDICT_WORDS}
        said = ", ".join(f"{w} {n}" for w, n in counted.items() if n)
        assert f"across 3 seeds (0–2): {said}" in line, (claim, line)


@pytest.mark.slow
def test_the_report_carries_the_line(other_seeds):
    from bnviz.ui.controls import report_bytes

    at = open_page({"preset": "ioffe", "panel": "evidence", "seed": "0", **SHORT}, wait_snapshots=10 ** 6)
    run = the_run()
    html = report_bytes(run, {"panel": "evidence"}).decode()
    assert html.count('<div class="across">across 3 seeds (0–2): ') == len(board_lines(at))  # the board's lines
    assert '<tr id="C1">' in html and html.index('<div class="across">') > html.index('<tr id="C1">')


@pytest.mark.slow
def test_no_line_without_other_seeds_in_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path))
    at = open_page({"preset": "ioffe", "panel": "evidence", "seed": "0", **SHORT}, wait_snapshots=10 ** 6)
    at.run()
    assert not at.exception, at.exception
    assert not [c.value for c in at.caption if "across" in c.value.lower()]
