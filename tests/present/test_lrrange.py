"""The learning-rate sweep: its points against C8's mean score and the Training chart, C11's width rule on
hand-computed sweeps, the figure's traces, and C11 on the board with and without the sweep's points."""

import math

import numpy as np
import pytest

from bnviz.config import PRESETS
from bnviz.present import claims, figures, lessons, lrrange, views
from bnviz.present.claims import lrrange as c11
from bnviz.present.lrrange import LR_GRID, LrPoint
from bnviz.present.numbers import score as score_text
from bnviz.present.style import variant_label


def sweep(means: dict[str, list[float]], diverged: dict[str, dict[float, int]] | None = None):
    """Synthetic points: each variant's mean score at every rate of LR_GRID (final = mean + 0.01)."""
    diverged = diverged or {}
    return tuple(LrPoint(lr, t, m + 0.01, m, diverged.get(t, {}).get(lr)) for t, ms in means.items()
                 for lr, m in zip(LR_GRID, ms))


# ------------------------------------------------------------------------------------------ the grid

def test_the_grid_steps_half_decades_from_0_001_to_10():
    logs = np.log10(LR_GRID)
    assert LR_GRID[0] == 0.001 and LR_GRID[-1] == 10 and len(LR_GRID) == 9
    assert np.allclose(np.diff(logs), 0.5, atol=0.03)  # 1-3-10 steps: log10(3) = 0.477, log10(10/3) = 0.523


def test_lr_configs_change_only_the_learning_rate():
    cfg = PRESETS["lr-range"].config
    configs = lrrange.lr_configs(cfg)
    assert [c.lr for c in configs] == list(LR_GRID)
    assert all(c.replace(lr=cfg.lr) == cfg for c in configs)
    assert len({lrrange.family(c) for c in configs}) == 1
    assert lrrange.family(cfg.replace(seed=1)) != lrrange.family(cfg)


# ------------------------------------------------------------------------------------- the width rule

def test_widths_of_a_hand_computed_sweep():
    # best mean 0.98 (bn at 0.1): trains well at >= 0.93
    pts = sweep({"bn": [0.70, 0.85, 0.94, 0.97, 0.98, 0.97, 0.96, 0.935, 0.10],
                 "none": [0.10, 0.11, 0.30, 0.62, 0.93, 0.95, 0.35, 0.09, 0.00]}, {"none": {10.0: 12}})
    n = c11.measure(pts, "bn", "none")
    assert n.best == 0.98 and n.best_at == ("bn", 0.1)
    assert n.good == {"bn": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0), "none": (0.1, 0.3)}
    assert n.spans == {"bn": (0.01, 3.0), "none": (0.1, 0.3)}
    assert n.widths["bn"] == pytest.approx(math.log10(300)) and n.widths["none"] == pytest.approx(math.log10(3))
    assert n.wider == pytest.approx(2.0)
    assert n.diverged == {"bn": (), "none": (10.0,)}
    assert c11.rule_verdict(n) == "supported"


def test_a_diverged_rate_never_trains_well_nor_sets_the_best():
    # none's 0.99 at lr 1 diverged late: it is neither good nor the sweep's best (bn's 0.95 is)
    pts = sweep({"bn": [0.1, 0.1, 0.1, 0.1, 0.95, 0.1, 0.1, 0.1, 0.1],
                 "none": [0.1, 0.1, 0.1, 0.1, 0.92, 0.93, 0.99, 0.1, 0.1]}, {"none": {1.0: 990}})
    n = c11.measure(pts, "bn", "none")
    assert n.best == 0.95 and n.best_at == ("bn", 0.1)
    assert n.good["none"] == (0.1, 0.3) and n.widths["none"] == pytest.approx(math.log10(3))
    assert n.widths["bn"] == 0.0  # one rate: no width
    assert c11.rule_verdict(n) == "refuted"


def test_ties_a_mean_exactly_at_the_margin_counts_and_equal_widths_are_not_wider():
    # best 0.95; 0.90 is exactly 5 points below it and trains well
    pts = sweep({"bn": [0.1, 0.1, 0.90, 0.95, 0.1, 0.1, 0.1, 0.1, 0.1],
                 "none": [0.1, 0.1, 0.1, 0.1, 0.1, 0.92, 0.90, 0.1, 0.1]})
    n = c11.measure(pts, "bn", "none")
    assert n.spans == {"bn": (0.01, 0.03), "none": (0.3, 1.0)}
    assert n.widths["bn"] == pytest.approx(math.log10(3)) and n.widths["none"] == pytest.approx(math.log10(1 / 0.3))
    assert c11.rule_verdict(n) == "refuted"  # 0.477 - 0.523 < 0.25: not wider


def test_the_widest_run_of_neighbouring_rates_counts_and_one_step_wider_is_mixed():
    # bn: 0.001-0.003, a gap at 0.01, then 0.03-0.3 (longer); none: 0.1 alone
    pts = sweep({"bn": [0.96, 0.96, 0.5, 0.96, 0.97, 0.96, 0.5, 0.5, 0.5],
                 "none": [0.1, 0.1, 0.1, 0.1, 0.95, 0.5, 0.1, 0.1, 0.1]})
    n = c11.measure(pts, "bn", "none")
    assert n.spans["bn"] == (0.03, 0.3) and n.widths["bn"] == pytest.approx(1.0)
    assert n.spans["none"] == (0.1, 0.1) and n.widths["none"] == 0.0
    assert c11.rule_verdict(n) == "supported"
    assert c11.widest([0.001, 0.01], LR_GRID) == (0.001, 0.001)  # two single rates: the lower one
    one_step = sweep({"bn": [0.1, 0.1, 0.1, 0.1, 0.95, 0.95, 0.1, 0.1, 0.1],
                      "none": [0.1, 0.1, 0.1, 0.1, 0.95, 0.1, 0.1, 0.1, 0.1]})
    assert c11.rule_verdict(c11.measure(one_step, "bn", "none")) == "mixed"  # 0.477 decades wider


def test_no_width_until_every_rate_is_measured():
    pts = sweep({"bn": [0.9] * 9, "none": [0.9] * 9})
    assert c11.measure(pts[:-1], "bn", "none") is None  # none lacks lr 10
    off_grid = (*pts, LrPoint(0.5, "bn", 0.99, 0.99, None))
    assert c11.measure(off_grid, "bn", "none").best == 0.9  # a rate off the grid does not count


# --------------------------------------------------------------------------------- points of real runs

@pytest.fixture(scope="module")
def tiny(small_run):
    """A real run of none and bn (the session's small run, shared with the other presentation tests)."""
    return small_run.config, small_run.history.snapshots()


def test_points_of_a_real_run_are_c8s_mean_and_the_training_charts_final_score(tiny):
    cfg, snaps = tiny
    pts = lrrange.run_points(snaps, cfg)
    assert [p.token for p in pts] == list(cfg.variants) and all(p.lr == cfg.lr for p in pts)
    steps = views.steps(snaps)
    chart = figures.training(snaps, cfg.variants, task=cfg.task).layout.title.text
    for p in pts:
        acc = views.train_stat(snaps, p.token, "test_accuracy")
        assert p.diverged_at is None
        assert p.mean == claims.learning_area(steps, acc)
        assert p.mean == pytest.approx(np.trapezoid(acc, steps) / (steps[-1] - steps[0]))
        assert p.final == acc[-1]
        assert f"{variant_label(p.token)} {score_text(p.final)}" in chart


def test_a_diverged_run_scores_0_from_its_divergence(diverged_run):
    cfg, snaps = diverged_run.config, diverged_run.history.snapshots()
    none = next(p for p in lrrange.run_points(snaps, cfg) if p.token == "none")
    assert none.diverged_at == views.diverged_at(snaps, "none") is not None
    steps = views.steps(snaps)
    acc = np.nan_to_num(views.train_stat(snaps, "none", "test_accuracy"), nan=0.0)
    if steps[-1] < cfg.steps:
        steps, acc = np.r_[steps, cfg.steps], np.r_[acc, 0.0]
    assert none.mean == pytest.approx(np.trapezoid(acc, steps) / cfg.steps)
    bn = next(p for p in lrrange.run_points(snaps, cfg) if p.token == "bn")
    assert bn.diverged_at is None and none.mean < bn.mean


def test_a_run_that_stopped_early_is_scored_over_the_steps_it_was_meant_to_train():
    # every variant diverged at step 40 of 100: its last snapshot is step 40
    steps, score = np.array([0, 20, 40]), np.array([0.1, 0.5, np.nan])
    assert lrrange.mean_score(steps, score, 40, 100) == pytest.approx((0.3 * 20 + 0.25 * 20) / 100)
    assert math.isnan(lrrange.mean_score(steps, score, None, 100))  # not diverged: a gap is not a 0


# ------------------------------------------------------------------------------------------- the figure

def test_the_figure_draws_final_and_mean_per_variant_on_a_log_axis_and_marks_divergence():
    pts = sweep({"bn": [0.70, 0.85, 0.94, 0.97, 0.98, 0.97, 0.96, 0.935, 0.10],
                 "none": [0.10, 0.11, 0.30, 0.62, 0.93, 0.95, 0.35, 0.09, 0.00]}, {"none": {10.0: 12}})
    fig = figures.lr_range(pts, ("none", "bn"), lr=0.1)
    assert fig.layout.xaxis.type == "log"
    by_name = {t.name: t for t in fig.data}
    none, bn = variant_label("none"), variant_label("bn")
    assert set(by_name) == {f"{none}: at the end", f"{none}: mean over training", f"{none}: diverged",
                            f"{bn}: at the end", f"{bn}: mean over training"}
    assert list(by_name[f"{bn}: at the end"].x) == list(LR_GRID) and by_name[f"{bn}: at the end"].line.dash is None
    assert list(by_name[f"{none}: at the end"].x) == list(LR_GRID[:-1])  # the diverged run has no final score
    assert by_name[f"{none}: mean over training"].line.dash == "dash"
    assert list(by_name[f"{none}: mean over training"].y) == [p.mean for p in pts if p.token == "none"]
    x = by_name[f"{none}: diverged"]
    assert list(x.x) == [10.0] and list(x.y) == [0.0] and x.marker.symbol == "x"
    assert "diverged at step 12" in x.text[0]
    band, line = fig.layout.shapes  # the rule's band (within 5 points of the best, 0.98) and the page's own rate
    assert (band.y0, band.y1) == (pytest.approx(0.93), 0.98) and line.x0 == line.x1 == 0.1
    n = c11.measure(pts, "bn", "none")
    # the rule's words, with its numbers
    assert fig.layout.title.text.replace("<br>", " ").startswith(c11.headline(n, variant_label))
    assert "wider range" in fig.layout.title.text


def test_the_figure_shows_only_stored_rates_and_describes_until_the_sweep_is_whole():
    pts = sweep({"bn": [0.9] * 9, "none": [0.9] * 9})
    part = tuple(p for p in pts if p.lr in (0.01, 0.3))
    fig = figures.lr_range(part, ("none", "bn"), lr=0.1)
    assert {tuple(t.x) for t in fig.data} == {(0.01, 0.3)}
    assert fig.layout.title.text.replace("<br>", " ").startswith(figures.LR_DESCRIBE)
    assert "2 of the sweep's 9 learning rates stored" in fig.layout.title.text
    empty = figures.lr_range((), ("none", "bn"), lr=0.1)
    assert not empty.data and "Sweep the learning rate" in empty.layout.annotations[0].text


# ------------------------------------------------------------------------------------------ the board

def test_c11_is_not_measured_without_the_sweep_and_says_what_measures_it(tiny):
    cfg, snaps = tiny
    v = next(x for x in claims.evidence(snaps, cfg) if x.claim == "C11")
    assert v.verdict == "not measured"
    assert "Sweep the learning rate" in v.detail and "python -m bnviz sweep --preset lr-range" in v.detail
    part = sweep({"bn": [0.9] * 9, "none": [0.9] * 9})[:5]
    v = next(x for x in claims.evidence(snaps, cfg, part) if x.claim == "C11")
    assert v.verdict == "not measured" and "of the sweep's 9 learning rates are stored" in v.detail


def test_c11_is_judged_from_the_sweeps_points(tiny):
    cfg, snaps = tiny
    pts = sweep({"bn": [0.70, 0.85, 0.94, 0.97, 0.98, 0.97, 0.96, 0.935, 0.10],
                 "none": [0.10, 0.11, 0.30, 0.62, 0.93, 0.95, 0.35, 0.09, 0.00]}, {"none": {10.0: 12}})
    board = claims.evidence(snaps, cfg, pts)
    assert [v.claim for v in board] == [c.id for c in claims.CLAIMS] and board[-1].claim == "C11"
    v = board[-1]
    assert v.verdict == "supported" and v.value == pytest.approx(2.0) and v.panel == "lr-range"
    assert "0.01–3" in v.detail and "0.1–0.3" in v.detail and "Diverged: none at lr 10." in v.detail
    fig = figures.lr_range(pts, cfg.variants, lr=cfg.lr)
    for x in (v.numbers.widths["bn"], v.numbers.widths["none"]):  # the board's numbers, on the chart
        assert claims.fmt(x) in fig.layout.title.text
    text = lessons.answer(lessons.step(11), snaps, cfg, pts)
    assert text.startswith("Supported") and "98.0%" in text and "0.01–3" in text and "0.1–0.3" in text
    assert lessons.answer(lessons.step(11), snaps, cfg).startswith("Not measured")
