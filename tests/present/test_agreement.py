"""One truth per number: for every preset, at its final step and at a step mid-run, no chart title or subtitle
contradicts the board's verdict on the same quantity, and the numbers a verdict or a lesson answer quotes
appear identically on the chart it points to. docs/claims.md's rule column quotes the code's thresholds.

Each preset is trained for a short stretch (its own network, data, variants and learning rate): enough
snapshots for every drift, gradient shift and verdict, in seconds.
"""

import math
import re
from pathlib import Path

import pytest

from bnviz.config import PRESETS
from bnviz.present import claims, figures, lessons, summary
from bnviz.present.numbers import fmt, score

from ..helpers import finished

DOCS = Path(__file__).resolve().parents[2] / "docs" / "claims.md"
SHORT = dict(steps=240, snapshot_every=20, ics_every=60)


@pytest.fixture(scope="module", params=sorted(PRESETS))
def preset_run(request):
    cfg = PRESETS[request.param].config.replace(**SHORT)
    return request.param, finished(cfg), cfg


def text_of(fig) -> str:
    """Everything a chart writes: title (with its subtitle lines) and annotations (cell titles, notes)."""
    parts = [fig.layout.title.text or ""] + [a.text or "" for a in fig.layout.annotations]
    return " ".join(parts)


def moments(snaps):
    """The final step and a step mid-run (the snapshots up to it), as the page shows them."""
    return {"final": snaps, "mid-run": snaps[: len(snaps) // 2 + 1]}


@pytest.mark.slow
def test_titles_agree_with_the_board(preset_run):
    name, snaps, cfg = preset_run
    last = len(cfg.widths) - 1
    for when, shown in moments(snaps).items():
        board = {v.claim: v for v in claims.evidence(shown, cfg)}
        c1 = board["C1"]
        for fig in (figures.stability(shown, cfg.variants, last), figures.percentile_bands(shown, cfg.variants, last)):
            title, text = fig.layout.title.text.split("<span")[0], text_of(fig)
            said = ("mixed" if "short of the factor" in title else "supported" if "holds still" in title else
                    "refuted" if "or more" in title else None)
            if c1.verdict == "not measured":
                assert said is None, (name, when, title)
            else:
                assert said == c1.verdict, (name, when, c1.verdict, title)
                for x in (c1.numbers.bn, c1.numbers.none, c1.value):  # the board's numbers, on the chart
                    assert fmt(x) in text, (name, when, fmt(x), text)
        c8 = board["C8"]
        if c8.verdict != "not measured":
            text = text_of(figures.stability(shown, cfg.variants, last))
            quoted = [c8.numbers.drift_bn, c8.numbers.drift_noisy]
            if c8.numbers.ics_bn is not None:
                quoted += [c8.numbers.ics_bn, c8.numbers.ics_none, c8.numbers.cos_bn, c8.numbers.cos_none]
            for x in quoted:
                assert fmt(x) in text, (name, when, fmt(x), text)
        c2 = board["C2"]
        if c2.verdict != "not measured":
            n = c2.numbers
            text = text_of(figures.gamma_beta(shown, n.variant, last))
            for x in (n.rate_weight, n.rate_gamma, n.rate_beta, n.gamma_mean, n.beta_mean, n.y, n.x_hat, c2.value):
                assert fmt(x) in text, (name, when, fmt(x), text)
        c3 = board["C3"]
        if c3.verdict == "refuted":  # x, x̂ and y of BN are equal in shape: no chart may say they differ
            bn = next(t for t in cfg.variants if t.split("@")[0] in claims.BN_KINDS)
            for layer in range(len(cfg.widths)):
                unit = cfg.tracked_units(layer)[0]
                for fig in (figures.normality_over_time(shown, bn, layer, unit),
                            figures.layer_histograms(shown[-1], cfg.variants, layer, unit)):
                    assert "differ" not in fig.layout.title.text, (name, when, layer, fig.layout.title.text)


@pytest.mark.slow
def test_c3_and_c5_name_the_same_layers(preset_run):
    name, snaps, cfg = preset_run
    board = {v.claim: v for v in claims.evidence(snaps, cfg)}
    c3, c5 = board["C3"], board["C5"]
    if c3.verdict != "refuted" or not c5.numbers.layers:
        return
    good = [row.layer for row in c5.numbers.layers if row.w >= claims.RUN_W and row.kl < claims.RUN_KL]
    bad = [row.layer for row in c5.numbers.layers if row.layer not in good]
    if not bad:
        assert "near-Gaussian already in every layer" in c3.detail, (name, c3.detail)
    elif not good:
        assert "not near-Gaussian in any layer" in c3.detail, (name, c3.detail)
    else:
        for layer in good:  # each of C5's near-Gaussian layers is named on C3's near-Gaussian side
            said = c3.detail.split("near-Gaussian already in ")[1].split(" (")[0]
            assert str(layer) in re.findall(r"\d+", said) or _in_range(layer, said), (name, layer, said)


def _in_range(layer: int, said: str) -> bool:
    m = re.search(r"(\d+)–(\d+)", said)
    return bool(m) and int(m.group(1)) <= layer <= int(m.group(2))


@pytest.mark.slow
def test_lesson_answers_quote_the_chart_they_point_to(preset_run):
    """Lessons 1, 2 and 8 ask about one chart each: every value of it that the answer quotes is on that chart."""
    name, snaps, cfg = preset_run
    last = len(cfg.widths) - 1
    quoted = {  # lesson step -> (the chart it asks about, the claim's fields it quotes from that chart)
        1: (lambda: figures.percentile_bands(snaps, cfg.variants, last), ("bn", "none")),
        2: (lambda n: figures.gamma_beta(snaps, n.variant, last), ("y", "x_hat", "gamma_mean", "beta_mean",
                                                                    "rate_weight", "rate_gamma", "rate_beta")),
        8: (lambda: figures.stability(snaps, cfg.variants, last), ("drift_bn", "drift_noisy", "ics_bn", "ics_none",
                                                                  "cos_bn", "cos_none")),
    }
    for number, (chart, fields) in quoted.items():
        step = lessons.step(number)
        v = next(x for x in claims.evidence(snaps, cfg) if x.claim == step.claim)
        if v.verdict == "not measured":
            continue
        text = lessons.answer(step, snaps, cfg)
        fig = chart(v.numbers) if number == 2 else chart()
        if number == 8:  # its scores, as the Training panel the step points to writes them
            training = text_of(figures.training(snaps, cfg.variants, task=cfg.task))
            for f in ("area_bn", "area_noisy", "acc_bn", "acc_noisy"):
                said = score(getattr(v.numbers, f), cfg.task == "regression")
                assert said in text and said in training, (name, f, said, text, training)
        for f in fields:
            x = getattr(v.numbers, f)
            if x is None or not math.isfinite(x):
                continue
            assert fmt(x) in text, (name, number, f, fmt(x), text)
            assert fmt(x) in text_of(fig), (name, number, f, fmt(x), text_of(fig))


@pytest.mark.slow
def test_a_fresh_run_states_nothing_about_drift():
    cfg = PRESETS["ioffe"].config.replace(**SHORT)
    snaps = finished(cfg)
    for k in range(1, summary.MIN_SNAPS):
        shown = snaps[:k]
        for fig in (figures.percentile_bands(shown, cfg.variants, 2), figures.stability(shown, cfg.variants, 2)):
            text = text_of(fig)
            assert not re.search(r"holds still|less per snapshot|or more|drift per snapshot / std[^,<]*, mean",
                                 text), (k, text)
        if k == 1:  # step 0 alone: its axis shows step 0, not -1 to 1
            fig = figures.percentile_bands(shown, cfg.variants, 2)
            assert list(fig.layout.xaxis.range) == [-0.5, 0.5] and list(fig.layout.xaxis.tickvals) == [0]


def _rows() -> dict[str, str]:
    """docs/claims.md's table rows by claim id."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        m = re.match(r"\| (C\d+) \|", line)
        if m:
            rows.setdefault(m.group(1), line)
    return rows


def test_docs_rule_column_quotes_the_codes_thresholds():
    rows = _rows()
    for claim in claims.CLAIMS:
        rule = [cell for cell in re.split(r"(?<!\\)\|", rows[claim.id]) if cell.strip()][-1]
        for key, value in claim.thresholds.items():
            forms = {f"{value:g}", f"{value:.0e}".replace("e-0", "e-"), f"{value * 100:g} points"}
            assert any(f in rule for f in forms), (claim.id, key, value, rule)


@pytest.mark.slow
def test_unit_answers_quote_the_units_chart(preset_run):
    """Lessons 3, 4, 6 and 7 ask about one unit on their preset: the answer quotes it as its chart shows it."""
    from bnviz import stats
    from bnviz.present import views

    name, snaps, cfg = preset_run
    for number in (3, 4, 6, 7):
        step = lessons.step(number)
        if step.preset != name:
            continue
        text = lessons.answer(step, snaps, cfg)
        layer = step.layer if step.layer is not None else len(cfg.widths) - 1
        bn = next(t for t in cfg.variants if t.split("@")[0] in claims.BN_KINDS)
        snap = snaps[-1]
        if number == 3:
            chart = text_of(figures.layer_histograms(snap, cfg.variants, layer, step.unit))
            keys = {"x": ("shapiro_w", "kl_gaussian"), "x_hat": ("shapiro_w", "kl_gaussian")}
        elif number == 4:
            chart = " ".join(text_of(figures.qq_plot(snap, bn, layer, s, step.unit)) for s in ("x", "x_hat"))
            keys = {"x": ("mean", "std", "skew", "kurtosis"), "x_hat": ("mean", "std", "skew", "kurtosis")}
        elif number == 7:  # the Normality chart of each placement shows W of what the next layer receives
            for token, stage in (("bn@after", "y"), ("bn@before", "a")):
                chart = text_of(figures.normality_over_time(snaps, token, layer, step.unit))
                x = views.stage_of(snap, token, layer, stage).stat("shapiro_w", step.unit)
                assert fmt(x) in text and fmt(x) in chart, (number, token, fmt(x), text, chart)
            continue
        else:
            st = views.stage_of(snap, bn, layer, "x_hat")
            q = st.quantiles[st.units.index(step.unit)].astype(float)
            before = stats.normality(q)
            chart = text_of(figures.whatif(q, 1.0, 0.0, before, stats.normality(q)))  # the lab's sliders at rest
            for x in (before.shapiro_w, before.kl_gaussian):
                assert fmt(x) in text and fmt(x) in chart, (number, fmt(x), text, chart)
            continue
        for stage, stat_names in keys.items():
            st = views.stage_of(snap, bn, layer, stage)
            for s in stat_names:
                x = st.stat(s, step.unit)
                assert fmt(x) in text, (number, stage, s, fmt(x), text)
                assert fmt(x) in chart, (number, stage, s, fmt(x), chart)


NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?")


def numbers_in(text: str) -> set[str]:
    return set(NUMBER.findall(text))


@pytest.mark.slow
def test_verdicts_quote_only_numbers_their_chart_shows(preset_run):
    """C1's and C2's sentences on the board quote what the chart behind their button shows (or their rule)."""
    name, snaps, cfg = preset_run
    last = len(cfg.widths) - 1
    board = {v.claim: v for v in claims.evidence(snaps, cfg)}
    charts = {"C1": lambda v: figures.stability(snaps, cfg.variants, last),
              "C2": lambda v: figures.gamma_beta(snaps, v.numbers.variant, last)}
    for cid, chart in charts.items():
        v = board[cid]
        if v.verdict == "not measured":
            continue
        shown = numbers_in(text_of(chart(v))) | numbers_in(v.threshold) | {"1", "2", "0"}
        missing = numbers_in(v.detail) - shown
        assert not missing, (name, cid, missing, v.detail)
