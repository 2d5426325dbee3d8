"""Classroom features on the page: lesson links, next/back, answers from the run, presenter mode, export."""

import io
import json
import time

import pandas as pd
import pytest

from bnviz import config as C
from bnviz.present import figures, lessons, lrrange
from bnviz.table.schema import TABLE_COLUMNS
from bnviz.table.store import run_bytes
from bnviz.ui import classroom
from bnviz.ui.runtime import registry

from ..helpers import wait_for
from .pages import SHORT, open_page, the_run


def chart_titles(at) -> dict:
    """Chart key -> (the title shown, the title that only says what is drawn) of the page's charts."""
    specs = {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")}
    return {k: (lay["title"]["text"], lay["meta"]["describe"]) for k, lay in specs.items() if lay.get("meta")}


def shown_step(at) -> int:
    """The step slider's value: the step the page shows."""
    (slider,) = [s for s in at.select_slider if s.label == "Show step"]
    return slider.value


@pytest.mark.slow
@pytest.mark.parametrize("number", [s.number for s in lessons.STEPS])
def test_every_lesson_link_renders_its_step_and_reveals_an_answer_with_the_runs_numbers(number):
    step = lessons.step(number)
    at = open_page({"lesson": str(number)}, wait_snapshots=6)
    assert not at.exception
    assert at.session_state["preset"] == step.preset and at.session_state["panel"] == step.panel
    assert the_run().config.variants == C.PRESETS[step.preset].config.variants
    text = " ".join(m.value for m in at.markdown)
    assert f"Lesson {number} of {len(lessons.STEPS)}" in text and step.question in text
    at.button(key="pause").click().run()  # freeze the run so the page and the test read the same snapshots
    run = the_run()
    n = -1
    while n != len(run.history):
        n = len(run.history)
        time.sleep(0.5)
    points: tuple = ()
    if step.panel == "lr-range":  # C11 is judged on a learning-rate sweep: one stored, this run at every rate
        store = registry().store
        for c in lrrange.lr_configs(run.config):
            store.put(c, run_bytes(c, run.history.snapshots()))
        points = tuple(p for c in lrrange.lr_configs(run.config)
                       for p in lrrange.run_points(run.history.snapshots(), c))
    at.run()  # the page drawn from the settled snapshots
    hidden = chart_titles(at)
    assert hidden and all(title == plain for title, plain in hidden.values())  # only what is drawn
    assert C.PRESETS[step.preset].shows not in " ".join(c.value for c in at.caption)
    at.button(key="reveal_btn").click().run()
    assert not at.exception
    revealed = chart_titles(at)
    concluded = {k: title for k, (title, plain) in revealed.items() if title != plain}
    assert concluded, revealed  # once revealed, the step's charts say what they show about the run
    for key, title in concluded.items():  # a conclusion in the title, or the measured numbers under it
        assert title != hidden[key][0]
    shown = " ".join(s.value for s in at.success)
    assert shown == lessons.answer(step, run.history.snapshots(), run.config, points)
    assert any(ch.isdigit() for ch in shown)


@pytest.mark.slow
def test_a_revealed_answer_and_its_chart_hold_the_shown_step_while_the_run_trains():
    step = lessons.step(1)  # ioffe: 5,000 steps, long enough to go on training under the test
    at = open_page({"lesson": "1"}, wait_snapshots=6)
    run = the_run()
    shown = shown_step(at)  # the step the page showed when Reveal is clicked
    at.button(key="reveal_btn").click().run()
    assert not at.exception and at.session_state["_follow"] is False
    assert [t.value for t in at.toggle if t.label == "Live"] == [False] and shown_step(at) == shown
    answer, titles = " ".join(s.value for s in at.success), chart_titles(at)
    every = run.config.snapshot_every
    assert wait_for(lambda: run.history.steps()[-1] >= shown + 3 * every, timeout=60)  # it trained on
    for _ in range(2):
        at.run()
        assert " ".join(s.value for s in at.success) == answer and chart_titles(at) == titles
    assert shown_step(at) == shown and run.state == "running"
    # The answer and Figure 1 are those of the snapshots up to the shown step, the History's own.
    upto = tuple(s for s in run.history.snapshots() if s.step <= shown)
    assert answer == lessons.answer(step, upto, run.config)
    bands = figures.percentile_bands(upto, run.config.variants, len(run.config.widths) - 1, step.unit, shown,
                                     height=classroom.LESSON_HEIGHT)
    assert titles["fig_bands"][0] == bands.layout.title.text
    # Following training again, the answer reads the latest snapshots.
    at.button(key="lesson_live").click().run()
    assert wait_for(lambda: run.history.steps()[-1] >= shown + 6 * every, timeout=60)
    at.run()
    later = " ".join(s.value for s in at.success)
    assert at.session_state["_follow"] is True and later != answer
    # Holding a step again: the answer reads the snapshots up to the step now shown.
    now = shown_step(at)
    at.button(key="lesson_hold").click().run()
    assert at.session_state["_follow"] is False and shown_step(at) == now
    upto = tuple(s for s in run.history.snapshots() if s.step <= now)
    assert " ".join(s.value for s in at.success) == lessons.answer(step, upto, run.config)


@pytest.mark.slow
def test_an_answer_revealed_before_the_run_measures_it_keeps_following_training():
    # 50 steps: 3 snapshots, one fewer than C1's drift needs (claims.MIN_SNAPS), however long it runs.
    at = open_page({"lesson": "1", "preset": "ioffe", "steps": "50", "panel": "over-time"}, wait_snapshots=3)
    the_run().join(30)
    at.run()
    at.button(key="reveal_btn").click().run()
    assert not at.exception and [t.value for t in at.toggle if t.label == "Live"] == [True]
    assert "Not measured" in " ".join(s.value for s in at.success)
    assert [b.label for b in at.button if b.key in ("lesson_live", "lesson_hold")] == ["Hold this step"]


@pytest.mark.slow  # a second or more
def test_next_and_back_move_through_the_steps():
    at = open_page({"lesson": "1"})
    at.button(key="lesson_next").click().run()
    assert at.session_state["lesson"] == 2 and at.session_state["preset"] == lessons.step(2).preset
    at.button(key="lesson_prev").click().run()
    assert at.session_state["lesson"] == 1 and not at.exception


@pytest.mark.slow
def test_unknown_lesson_is_a_warning():
    at = open_page({"lesson": "99"})
    assert not at.exception
    assert any("lesson" in w.value for w in at.warning)


def test_presenter_mode_from_the_link_hides_the_sidebar():
    at = open_page({"present": "1", **SHORT})
    assert not at.exception and at.session_state["present"] is True
    assert any("stSidebar" in m.value and "display: none" in m.value for m in at.markdown)
    assert at.query_params["present"] == "1"


@pytest.mark.slow
def test_presenter_mode_sends_charts_with_larger_fonts_and_lines():
    from bnviz.present.style import PRESENT_SCALE

    def bands(params):
        at = open_page(params)
        assert not at.exception
        charts = at.main.get("plotly_chart")
        (spec,) = [json.loads(c.proto.spec) for c in charts if c.proto.id.endswith("-fig_bands")]
        return spec

    plain, big = bands(SHORT), bands({"present": "1", **SHORT})
    for part in ("title", "legend"):
        size = plain["layout"][part]["font"]["size"]
        assert big["layout"][part]["font"]["size"] == pytest.approx(size * PRESENT_SCALE)
    widths = [(a["line"]["width"], b["line"]["width"]) for a, b in zip(plain["data"], big["data"])
              if "width" in a.get("line", {})]
    assert widths and all(b == pytest.approx(a * PRESENT_SCALE) for a, b in widths)


@pytest.mark.slow
def test_export_buttons_give_the_record_table():
    at = open_page(SHORT)
    assert len(at.get("download_button")) == 3  # CSV, Parquet, HTML report
    from bnviz.ui.controls import report_bytes, table_bytes

    run = the_run()
    run.join(30)
    back_pq = pd.read_parquet(io.BytesIO(table_bytes(run, "parquet")))
    back_csv = pd.read_csv(io.BytesIO(table_bytes(run, "csv")))
    assert tuple(back_pq.columns) == TABLE_COLUMNS == tuple(back_csv.columns)
    steps = run.history.steps()
    assert sorted(set(back_pq.step)) == steps == sorted(set(back_csv.step))
    loss = back_csv[(back_csv.variant == "bn") & (back_csv.stat == "test_accuracy")].value.to_numpy()
    assert list(loss) == [s.variants["bn"].test_accuracy for s in run.history.snapshots()]
    assert not back_csv.stat.str.startswith("q").any()  # CSV: the plain record table
    q = back_pq[(back_pq.stat == "q00")]  # Parquet also holds the quantiles, for a replay
    last = run.history.latest().variants["bn"].layers[0].stages["x"]
    got = q[(q.variant == "bn") & (q.step == run.history.latest().step) & (q.layer == 0) & (q.stage == "x")]
    assert dict(zip(got.unit, got.value)) == pytest.approx(dict(zip(last.units, last.quantiles[:, 0].astype(float))))
    html = report_bytes(run, {"panel": "training", "layer": 0, "unit": -1, "step": None}).decode()
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert f"step {run.history.latest().step:,}" in html or f"step {run.history.latest().step}" in html
