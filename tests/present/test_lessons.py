"""The classroom lesson: its steps are valid links into the page, and its answers come from the run's numbers."""

import dataclasses
import re

import pytest

from bnviz.config import PANELS, PRESETS
from bnviz.measure.snapshot import POOLED
from bnviz.present import claims, lessons, lrrange, views
from bnviz.training.run import Run

from ..helpers import finished

IDS = [f"C{i}" for i in range(1, 12)]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?%?")


@pytest.fixture(scope="module")
def runs():
    """Short real runs, trained once per (preset, seed) for the whole module."""
    cache = {}

    def get(preset, seed=0):
        if (preset, seed) not in cache:
            # the gradient shift and the smoothness every 100 steps: measured 5 times
            cfg = PRESETS[preset].config.replace(steps=400, snapshot_every=20, ics_every=100, seed=seed)
            run = Run(cfg, stats_in="inline").start()
            assert run.join(timeout=120) and run.state == "finished", run.error
            cache[preset, seed] = (run.history.snapshots(), cfg)
        return cache[preset, seed]

    return get


@pytest.fixture(scope="module")
def sweeps():
    """The points of a short learning-rate sweep of the lr-range preset (C11's evidence), once per seed."""
    cache = {}

    def get(seed=0):
        if seed not in cache:
            base = PRESETS["lr-range"].config.replace(steps=40, snapshot_every=20, seed=seed)
            cache[seed] = tuple(p for c in lrrange.lr_configs(base) for p in lrrange.run_points(finished(c), c))
        return cache[seed]

    return get


def points_for(step, sweeps, seed=0):
    """What the page hands a step's answer from its sweep: the points for C11's step, none for the others."""
    return sweeps(seed) if step.claim == "C11" else ()


def verdict(snaps, cfg, claim, lr_points=()):
    return next(v for v in claims.evidence(snaps, cfg, lr_points) if v.claim == claim)


def numbers_in(text):
    """The decimal numbers of a text (integers such as step counts and unit indices left out)."""
    return {t for t in NUMBER.findall(text) if "." in t or "e" in t}


# ------------------------------------------------------------------------------------------ the steps

def test_steps_are_numbered_links_that_cover_every_claim_in_order():
    assert len(lessons.STEPS) >= 8
    assert [s.number for s in lessons.STEPS] == list(range(1, len(lessons.STEPS) + 1))
    named = [s.claim for s in lessons.STEPS if s.claim]
    assert set(named) == set(IDS) and all(c in IDS for c in named)
    assert named == sorted(named, key=IDS.index), "steps follow C1..C11 in order"


@pytest.mark.parametrize("step", lessons.STEPS, ids=lambda s: f"step{s.number}")
def test_every_step_opens_a_valid_preset_panel_layer_and_unit(step):
    assert step.preset in PRESETS, step.preset
    assert step.panel in PANELS, step.panel
    cfg = PRESETS[step.preset].config
    assert step.layer is None or 0 <= step.layer < len(cfg.widths)
    layer = len(cfg.widths) - 1 if step.layer is None else step.layer
    assert step.unit == POOLED or step.unit in cfg.tracked_units(layer)
    for text in (step.title, step.look_at, step.question):
        assert text.strip() and "<" not in text and ">" not in text and "**" not in text
    assert len(step.title) <= 50
    assert step.question.rstrip().endswith("?")
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.number = 99


def test_step_looks_up_by_number_and_refuses_unknown_numbers_clearly():
    for s in lessons.STEPS:
        assert lessons.step(s.number) is s
    n = len(lessons.STEPS)
    for bad in (0, -1, n + 1, "2", 1.5, None, True):
        with pytest.raises(ValueError, match=rf"does not exist.*1 to {n}"):
            lessons.step(bad)


# ----------------------------------------------------------------------------------------- the answers

# Per claim: the fields of Verdict.numbers an answer must quote (paths into the claim's typed record), and how
# the board prints each.
def _sci(x):
    return f"{x:.1e}"


def _pct(x):
    return f"{x:.1%}"


QUOTED = {
    "C1": {"bn": claims.fmt, "none": claims.fmt},
    "C2": {"y": claims.fmt, "x_hat": claims.fmt, "gamma_mean": claims.fmt, "beta_mean": claims.fmt,
           "rate_gamma": claims.fmt, "rate_beta": claims.fmt, "rate_weight": claims.fmt},
    "C3": {"n_series": str},
    "C4": {"n_series": str},
    "C5": {},
    "C6": {"n_units": str},
    "C7": {},
    "C8": {"drift_noisy": claims.fmt, "drift_bn": claims.fmt, "area_noisy": _pct, "area_bn": _pct,
           "acc_noisy": _pct, "acc_bn": _pct},
    "C9": {"areas.bn": _pct, "areas.bn_gauss": _pct, "areas.bn_uniform": _pct, "areas.bn_laplace": _pct},
    "C10": {"bn.loss_range": claims.fmt, "none.loss_range": claims.fmt, "bn.beta": claims.fmt,
            "none.beta": claims.fmt},
    "C11": {"widths.bn": claims.fmt, "widths.none": claims.fmt, "best": _pct},
}


def field_at(record, path: str):
    """``record.a.b`` for path "a.b"; a number in the path indexes a tuple ("layers.0.w")."""
    for part in path.split("."):
        if isinstance(record, dict):
            record = record[part]
        else:
            record = record[int(part)] if part.isdigit() else getattr(record, part)
    return record


@pytest.mark.slow
@pytest.mark.parametrize("step", lessons.STEPS, ids=lambda s: f"step{s.number}-{s.claim}")
def test_answer_quotes_the_runs_verdict_and_its_numbers(runs, sweeps, step):
    snaps, cfg = runs(step.preset)
    points = points_for(step, sweeps)
    v = verdict(snaps, cfg, step.claim, points)
    assert v.verdict != "not measured", f"step {step.number}'s preset {step.preset} must measure {step.claim}"
    text = lessons.answer(step, snaps, cfg, points)
    lead = (f"{v.verdict.capitalize()} at step {snaps[-1].step:,}, the end of the run:" if snaps[-1].step >= cfg.steps
            else f"{v.verdict.capitalize()} so far, at step {snaps[-1].step:,} of {cfg.steps:,}:")
    if v.claim == "C11":  # the sweep's verdict does not depend on the step the page shows
        lead = f"{v.verdict.capitalize()} by the sweep's {len(lrrange.LR_GRID)} finished runs:"
    assert text.startswith(lead), text
    for path, show in QUOTED[step.claim].items():
        value = field_at(v.numbers, path)
        assert show(value) in text, (path, show(value), text)
    if v.claim in ("C3", "C4"):  # these answers quote the step's own unit, as its panel shows it
        st = views.stage_of(snaps[-1], "bn", step.layer or 0, "x")
        stat = "shapiro_w" if v.claim == "C3" else "skew"
        assert claims.fmt(st.stat(stat, step.unit)) in text, (stat, text)
    elif v.claim == "C7":  # what the next layer receives, on the step's unit: y with BN after, a with BN before
        layer = len(cfg.widths) - 1 if step.layer is None else step.layer
        for token, stage in (("bn@after", "y"), ("bn@before", "a")):
            st = views.stage_of(snaps[-1], token, layer, stage)
            assert claims.fmt(st.stat("shapiro_w", step.unit)) in text, (token, text)
    else:
        shared = numbers_in(text) & numbers_in(v.figure)
        assert len(shared) >= 2, (shared, text, v.figure)
    if v.claim in ("C1", "C2"):
        assert claims.fmt(v.value) in text
    sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if s]
    assert 2 <= len(sentences) <= 4, sentences
    assert "<" not in text and "**" not in text and "$" not in text


@pytest.mark.slow
@pytest.mark.parametrize("step", lessons.STEPS, ids=lambda s: f"step{s.number}-{s.claim}")
def test_answer_is_built_from_the_run_so_another_seed_gives_another_answer(runs, sweeps, step):
    a = lessons.answer(step, *runs(step.preset, 0), points_for(step, sweeps, 0))
    b = lessons.answer(step, *runs(step.preset, 1), points_for(step, sweeps, 1))
    assert a != b
    assert numbers_in(a) != numbers_in(b)


@pytest.mark.parametrize("step", lessons.STEPS, ids=lambda s: f"step{s.number}-{s.claim}")
def test_answer_before_any_snapshot_says_not_measured_yet(step):
    cfg = PRESETS[step.preset].config
    for snaps in ((), None):
        text = lessons.answer(step, snaps, cfg)
        assert text.startswith("Not measured yet"), text
        assert step.preset in text
        assert not numbers_in(text)


@pytest.mark.slow
def test_answer_with_too_few_snapshots_asks_to_train_longer(runs):
    snaps, cfg = runs("ioffe")
    text = lessons.answer(lessons.step(1), snaps[:2], cfg)
    assert text.startswith("Not measured yet") and "longer" in text and "2" in text


@pytest.mark.slow
def test_answer_on_a_run_that_cannot_measure_the_claim_names_the_preset_that_can(runs):
    snaps, cfg = runs("ioffe")
    for number in (7, 8):  # C7 needs BN before and after the activation; C8 needs noisy BN
        s = lessons.step(number)
        text = lessons.answer(s, snaps, cfg)
        assert text.startswith("Not measured in this run") and s.preset in text, text


@pytest.mark.slow
def test_answer_never_raises(runs, monkeypatch):
    snaps, cfg = runs("ioffe")
    s = lessons.step(1)
    assert "Not measured" in lessons.answer(s, (object(),), cfg)
    assert isinstance(lessons.answer(s, snaps, None), str)
    assert "Not measured" in lessons.answer(dataclasses.replace(s, claim="C9"), snaps, cfg)
    # A verdict without its numbers: the answer falls back to the board's own sentences, still measured.
    broken = dataclasses.replace(verdict(snaps, cfg, "C1"), numbers={})
    monkeypatch.setattr(claims, "evidence", lambda *a, **k: [broken])
    text = lessons.answer(s, snaps, cfg)
    assert text.startswith(broken.verdict.capitalize()) and claims.fmt(broken.value) in text
    monkeypatch.setattr(claims, "evidence", lambda *a, **k: 1 / 0)
    assert lessons.answer(s, snaps, cfg).startswith("Not measured")
