"""A watched model's run on the page's builders: layer names and its unit noun in every title, its model described
instead of a dataset and a training, and the evidence board judging what one network can show."""

import numpy as np
import pytest
import scipy.stats

from bnviz.config import PRESETS
from bnviz.present import claims, figures, report, views
from bnviz.present.claims import sums

from .watched import CHANNELS, CONFIG, LN_CONFIG, MIXED, MIXED_CONFIG, N_SNAPS, WIDTH, gamma_beta, snapshots

TWINS = ("C1", "C7", "C8", "C9", "C10", "C11")


@pytest.fixture(scope="module")
def watched():
    return snapshots()


@pytest.fixture(scope="module")
def board(watched):
    return {v.claim: v for v in claims.evidence(watched[0], CONFIG)}


def _title(fig) -> str:
    return fig.layout.title.text or ""


def test_titles_name_the_watched_layer_and_its_channels(watched):
    snaps, _ = watched
    name, noun = CONFIG.layer_name(1), views.unit_noun(CONFIG)
    assert (name, noun) == ("layer1.0.bn2", "channel")
    built = [
        figures.percentile_bands(snaps, CONFIG.variants, 1, 2, noun=noun, layer_name=name),
        figures.histogram_heatmap(snaps, "bn", 1, "x", 2, noun=noun, layer_name=name),
        figures.gamma_beta(snaps, "bn", 1, noun=noun, layer_name=name),
        figures.normality_over_time(snaps, "bn", 1, 2, noun=noun, layer_name=name),
        figures.stability(snaps, CONFIG.variants, 1, layer_name=name),
        figures.layer_histograms(snaps[-1], CONFIG.variants, 1, 2, noun=noun, layer_name=name),
        figures.qq_plot(snaps[-1], "bn", 1, "x", 2, noun=noun, layer_name=name),
    ]
    for fig in built:
        text = _title(fig)
        assert "layer1.0.bn2" in text, text
        assert "layer 2" not in text, text
    assert "channel 2" in _title(built[0])
    notes = [a.text for a in built[5].layout.annotations]
    assert "no activation follows" in notes  # layer1.0.bn2's output goes to a sum, not an activation
    assert "not measured at these steps" in [a.text for a in built[4].layout.annotations]  # no gradient shift


def test_own_networks_keep_their_numbered_layers(small):
    cfg = PRESETS["ioffe"].config
    fig = figures.percentile_bands(small, cfg.variants, 1, noun=views.unit_noun(cfg), layer_name=cfg.layer_name(1))
    assert "layer 2, all units pooled" in _title(fig)
    assert views.unit_noun(cfg) == "unit"
    assert views.unit_noun(PRESETS["ioffe-conv"].config) == "channel"


def test_a_layernorm_model_counts_units():
    assert views.unit_noun(LN_CONFIG) == "unit"
    assert views.unit_noun(MIXED_CONFIG) == "unit"  # not every layer normalizes channels of images


def test_fan_in_is_the_watched_modules(watched):
    assert [sums.fan_in(CONFIG, li) for li in range(2)] == list(CHANNELS.fan_ins)


def test_the_twin_claims_are_not_measured_and_say_why(board):
    for cid in TWINS:
        v = board[cid]
        assert v.verdict == "not measured", (cid, v.detail)
        assert "twins" in v.detail and "same start" in v.detail, v.detail
        assert claims.BY_ID[cid].preset in v.detail  # where bnviz trains such twins
        assert "open the" not in v.detail  # no preset to open on a page that follows one run


def test_c2_gamma_and_beta_move_the_last_layer(board):
    """β goes from 0 to 1 and γ from 1 to 1.5: per channel, y's mean moves by 1 standard deviation of x̂ (a lower
    bound on W1 / std), while x̂ is standardized at every snapshot and moves by sampling noise only."""
    v = board["C2"]
    assert v.verdict == "supported", v.detail
    n = v.numbers
    assert n.y > 0.9
    assert n.x_hat < 0.2
    assert n.gamma_mean == pytest.approx(gamma_beta(N_SNAPS - 1)[0], rel=1e-6)
    assert n.beta_mean == pytest.approx(gamma_beta(N_SNAPS - 1)[1], rel=1e-6)
    assert "layer1.0.bn2" in v.figure


def test_c3_bn_does_not_reshape_and_names_the_least_gaussian_layer(watched, board):
    snaps, raws = watched
    v = board["C3"]
    assert v.verdict == "refuted", v.detail
    assert v.numbers.n_series == 2 * 5  # the five tracked channels of both layers
    x = raws[-1].variants["bn"].layers
    # Shapiro-Wilk by scipy on the very values the watcher handed over: the stem's exponential input is the worst.
    w = {(li, u): scipy.stats.shapiro(x[li]["x"][:, u].astype(np.float64)).statistic for li in range(2)
         for u in range(5)}
    worst = min(w, key=w.get)
    assert worst[0] == 0
    assert v.numbers.min_w_in == pytest.approx(w[worst], abs=1e-4)
    assert f"stem.bn1 channel {worst[1]} of bn" in v.figure
    assert "stem.bn1" in v.detail  # C5's layer verdicts, by name


def test_c4_skew_passes_bn_unchanged(watched, board):
    _, raws = watched
    v = board["C4"]
    assert v.verdict == "supported", v.detail
    assert v.numbers.max_dskew < claims.TOL_MOMENT
    stem = raws[-1].variants["bn"].layers[0]["x"].astype(np.float64)
    skews = scipy.stats.skew(stem[:, :5])
    assert skews.min() > 1.5  # an exponential's skew is 2
    assert v.numbers.max_abs_mean < 1e-3 and v.numbers.max_abs_std_dev < 1e-3


def test_c5_judges_the_watched_layers_by_name(board):
    v = board["C5"]
    layers = v.numbers.layers
    assert [(row.name, row.fan_in) for row in layers] == [("stem.bn1", 27), ("layer1.0.bn2", 576)]
    assert [row.gaussian for row in layers] == [False, True]  # exponential inputs, Gaussian inputs
    assert "stem.bn1 (fan-in 27): not near-Gaussian" in v.figure
    assert "layer1.0.bn2 (fan-in 576): near-Gaussian" in v.figure
    assert "stem.bn1 of this run" in v.numbers.not_gaussian
    assert "layer1.0.bn2 of this run" in v.numbers.gaussian
    assert v.verdict == "mixed"


def test_c6_a_linear_map_keeps_the_shape(board):
    v = board["C6"]
    assert v.verdict == "supported", v.detail
    assert v.numbers.n_units == 2 * 5
    assert "e.g. stem.bn1 channel 0 with (2.5, -1)" in v.figure


def test_a_layernorm_model_needs_batch_norm_for_c2_to_c4():
    snaps, _ = snapshots(LN_CONFIG.watched)
    board = {v.claim: v for v in claims.evidence(snaps, LN_CONFIG)}
    for cid in ("C2", "C3", "C4"):
        assert board[cid].verdict == "not measured"
        assert "LayerNorm" in board[cid].detail and "batch" in board[cid].detail
    assert board["C6"].verdict == "supported"
    assert board["C5"].numbers.layers[0].name == "blocks.0.ln1"
    for cid in TWINS:
        assert "twins" in board[cid].detail


def test_c3_and_c4_leave_a_layernorm_out():
    """A LayerNorm standardizes each row over its features: per feature, x̂ is not an affine map of x, so the
    per-unit claims read the batch norm only."""
    snaps, raws = snapshots(MIXED)
    ln = raws[-1].variants["bn"].layers[1]
    reshaped = scipy.stats.skew(ln["x_hat"][:, 0].astype(np.float64)) - scipy.stats.skew(ln["x"][:, 0])
    assert abs(reshaped) > 1e-3 or not np.allclose(ln["x_hat"][:, 0].std(), 1, atol=1e-2)  # LN is not per unit
    board = {v.claim: v for v in claims.evidence(snaps, MIXED_CONFIG)}
    assert board["C4"].verdict == "supported"
    assert board["C4"].numbers.n_series == 5  # conv.bn's tracked channels only
    assert board["C3"].verdict == "refuted"


def test_the_report_describes_the_model_not_a_training(watched):
    snaps, _ = watched
    rows = dict(report.describe_config(CONFIG))
    assert "TinyResNet" in rows["Model"]
    assert "2 normalization layers (2 BatchNorm2d), stem.bn1 to layer1.0.bn2" in rows["Layers"]
    assert f"{WIDTH} channels" in rows["Layers"]
    assert "every 50 steps" in rows["Measured"] and "64 examples" in rows["Measured"]
    text = " ".join(rows.values()).lower()
    for word in ("digits", "learning rate", "batch 60", "optimizer", "preset"):
        assert word not in text
    html = report.html_report(snaps, CONFIG, panel="normality", layer=0, unit=1, step=snaps[-1].step)
    assert "bnviz report: TinyResNet, step 350" in html
    assert "stem.bn1, normalization layer 1 of 2" in html
    assert "stem.bn1, channel 1" in html


def test_a_watched_board_renders_in_the_report(watched):
    snaps, _ = watched
    html = report.html_report(snaps, CONFIG, panel="evidence", layer=1, unit=-1, step=snaps[-1].step)
    assert html.count("not measured") >= len(TWINS)


def test_runs_of_watched_layers_are_named_by_their_first_and_last_module():
    rows = [sums.C5Layer(1, 0.97, 0.11, 9, "bn1"),
            *(sums.C5Layer(i, 0.99, 0.01, f, f"layer1.{i}.bn") for i, f in ((2, 576), (3, 576), (4, 576))),
            *(sums.C5Layer(i, 0.9, 0.2, f, f"layer4.{i}.bn") for i, f in ((5, 128), (6, 2304), (7, 4608), (8, 0)))]
    text = sums.layers_text(rows)
    assert text.startswith("bn1 (fan-in 9): not near-Gaussian, median W 0.970, KL 0.110; "
                           "layer1.2.bn to layer1.4.bn (3 layers, fan-in 576): near-Gaussian"), text
    assert "layer4.5.bn to layer4.8.bn (4 layers, fan-in 128–4,608, some not known): not near-Gaussian" in text
    five = [sums.C5Layer(i, 0.9, 0.2, 64 * i, f"m{i}") for i in range(1, 6)]
    assert "(5 layers, fan-in 64–320)" in sums.layers_text(five)


def test_the_clt_chart_of_many_watched_layers_counts_them_and_names_each_on_hover():
    rows = [sums.C5Layer(i + 1, 0.99 if i % 2 else 0.9, 0.01 if i % 2 else 0.2, 64 * (i + 1), f"block{i}.bn")
            for i in range(12)]
    fig = figures.clt_curves([], run_layers=rows)
    assert "6 of 12 near-Gaussian by C5's rule, median W 0.900 to 0.990" in fig.layout.title.text
    (w, _) = [t for t in fig.data if t.name == "this run's layers (x = Wu + b)"]
    assert w.mode == "markers" and list(w.hovertext) == [f"block{i}.bn" for i in range(12)]
    few = figures.clt_curves([], run_layers=rows[:3])
    assert "block0.bn (fan-in 64): not near-Gaussian" in few.layout.title.text


def test_the_gamma_chart_draws_no_bundle_of_unknown_units(watched):
    """Read back from a table, γ is known for the tracked units only: no faint bundle claims to show the others."""
    snaps, _ = watched
    full = figures.gamma_beta(snaps, "bn", 0, noun="channel")
    assert "all 8 channels" in [t.name for t in full.data]
    from bnviz.table import replay
    from bnviz.table.record import table_to_bytes, to_arrow

    back = replay.load(table_to_bytes(to_arrow(snaps, quantiles=True), "parquet", config=CONFIG), "t.parquet")
    names = {t.name for t in figures.gamma_beta(back.snapshots, "bn", 0, noun="channel").data}
    assert "tracked channels" in names and not any(n and "of the" in n or n == "all 8 channels" for n in names)
