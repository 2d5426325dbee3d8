"""The evidence board on real short runs: numbers recomputed here from views, verdicts that follow the rules."""

import dataclasses
import math
import re

import numpy as np
import pytest
import scipy.stats

from bnviz import stats
from bnviz.config import PANELS, PRESETS
from bnviz.measure.snapshot import POOLED, VariantSnapshot
from bnviz.present import claims, views
from bnviz.training.run import Run

SHORT = dict(widths=(32, 32, 32), steps=600, snapshot_every=20, ics_every=100)
IDS = [f"C{i}" for i in range(1, 12)]


def train(preset):
    cfg = PRESETS[preset].config.replace(**SHORT)
    run = Run(cfg, stats_in="inline").start()
    assert run.join(timeout=120) and run.state == "finished", run.error
    snaps = run.history.snapshots()
    return snaps, cfg, {v.claim: v for v in claims.evidence(snaps, cfg)}


@pytest.fixture(scope="module")
def ioffe():
    return train("ioffe")


@pytest.fixture(scope="module")
def santurkar():
    return train("santurkar")


@pytest.fixture(scope="module")
def placement():
    return train("placement")


# ------------------------------------------------------------------------------ independent recomputation

def second_half(snaps):
    s = views.steps(snaps)
    return s >= s[-1] / 2


def per_snapshot(snaps, variant, layer, stage):
    """Mean over the second half of W1-to-previous / pooled std, straight from views."""
    d = views.drift(snaps, variant, layer, stage, POOLED, "prev")
    sd = views.unit_stat(snaps, variant, layer, stage, "std", POOLED)
    vals = (d / sd)[second_half(snaps)]
    return float(np.mean(vals[np.isfinite(vals)]))


def from_first(snaps, variant, layer, stage):
    """W1 from the first snapshot to the last / pooled std at the first snapshot."""
    d = views.drift(snaps, variant, layer, stage, POOLED, "first")
    sd = views.unit_stat(snaps, variant, layer, stage, "std", POOLED)
    return float(d[-1] / sd[0])


def shown(x, text):
    """The board prints ``x`` (3 significant digits) in ``text``."""
    assert claims.fmt(x) in text, (claims.fmt(x), text)


def tracked_rows(snaps, cfg, variant, src, stages):
    snap = snaps[-1]
    out = []
    for layer in range(len(cfg.widths)):
        for u in cfg.tracked_units(layer):
            out.append({s: {k: views.unit_stat((snap,), variant, layer, s, k, u)[0]
                             for k in ("shapiro_w", "kl_gaussian", "skew", "kurtosis")} for s in (src, *stages)})
    return out


# ------------------------------------------------------------------------------------------------ tests

@pytest.mark.slow
@pytest.mark.parametrize("name", ["ioffe", "santurkar", "placement"])
def test_every_claim_gets_a_well_formed_verdict(name, request):
    snaps, cfg, board = request.getfixturevalue(name)
    assert list(board) == IDS
    for cid, v in board.items():
        assert v.verdict in claims.VERDICTS and v.panel in PANELS and v.title
        assert v.figure and v.threshold and v.detail
        assert re.search(r"\d", v.threshold)
        if v.verdict == "not measured":
            assert v.value is None
        else:
            assert isinstance(v.value, float) and not math.isnan(v.value)
            assert re.search(r"\d", v.figure) and re.search(r"\d", v.detail), cid


@pytest.mark.slow
def test_c1_drift_matches_views_and_the_rule(ioffe):
    snaps, cfg, board = ioffe
    v = board["C1"]
    L = len(cfg.widths) - 1
    assert views.act_stage(snaps, "bn", L) == "y" and views.act_stage(snaps, "none", L) == "x"
    bn, none = per_snapshot(snaps, "bn", L, "y"), per_snapshot(snaps, "none", L, "x")
    assert v.numbers.bn == pytest.approx(bn, rel=1e-12) and v.numbers.none == pytest.approx(none, rel=1e-12)
    assert v.value == pytest.approx(bn / none, rel=1e-12)
    for x in (bn, none, bn / none, from_first(snaps, "bn", L, "y"), from_first(snaps, "none", L, "x")):
        shown(x, v.figure)
    expected = "supported" if bn / none < 0.5 else "refuted" if bn / none >= 1 else "mixed"
    assert v.verdict == expected == "supported"  # Figure 1 of the paper, on the digits stand-in


@pytest.mark.slow
def test_c2_gamma_beta_drift_matches_views_and_the_rule(ioffe, santurkar):
    for snaps, cfg, board in (ioffe, santurkar):
        v = board["C2"]
        L = len(cfg.widths) - 1
        y, xh = from_first(snaps, "bn", L, "y"), from_first(snaps, "bn", L, "x_hat")
        assert v.value == pytest.approx(y / xh, rel=1e-12)
        shown(y, v.figure), shown(xh, v.figure), shown(from_first(snaps, "none", L, "x"), v.figure)
        rate = np.nanmedian(views.param_change(snaps, "bn", L, "gamma"))
        shown(rate, v.figure)
        expected = "supported" if y / xh > 1.5 else "refuted" if y / xh < 1.1 else "mixed"
        assert v.verdict == expected


@pytest.mark.slow
def test_c3_bn_does_not_reshape_unit_by_unit(ioffe, placement):
    for (snaps, cfg, board), variants in ((ioffe, {"bn": "x"}), (placement, {"bn@before": "x", "bn@after": "a"})):
        v = board["C3"]
        assert v.verdict == "refuted", v.detail
        dw = dkl = 0.0
        for variant, src in variants.items():
            for row in tracked_rows(snaps, cfg, variant, src, ("x_hat", "y")):
                for s in ("x_hat", "y"):
                    dw = max(dw, abs(row[s]["shapiro_w"] - row[src]["shapiro_w"]))
                    a, b = row[s]["kl_gaussian"], row[src]["kl_gaussian"]
                    dkl = max(dkl, 0.0 if (math.isinf(a) and a == b) else abs(a - b))
        assert v.value == pytest.approx(dw, rel=1e-12, abs=1e-300) and v.numbers.max_dkl == pytest.approx(dkl)
        assert dw < 1e-3 and dkl < 0.01
        assert f"{dw:.1e}" in v.figure


@pytest.mark.slow
def test_c4_higher_moments_pass_through(ioffe, santurkar):
    for (snaps, cfg, board), variants in ((ioffe, ("bn",)), (santurkar, ("bn", "bn_noisy"))):
        v = board["C4"]
        assert v.verdict == "supported" and v.detail.startswith("BN fixes mean and variance and nothing else")
        rows = [r for t in variants for r in tracked_rows(snaps, cfg, t, "x", ("x_hat",))]
        assert v.numbers.n_series == len(rows)
        assert v.value == pytest.approx(max(abs(r["x_hat"][k] - r["x"][k]) / max(1, abs(r["x"][k]))
                                            for r in rows for k in ("skew", "kurtosis")), rel=1e-9)
        skews = [r["x"]["skew"] for r in rows]
        shown(min(skews), v.figure), shown(max(skews), v.figure)


@pytest.mark.slow
def test_c5_reports_where_the_clt_holds_and_fails(ioffe):
    snaps, cfg, board = ioffe
    v = board["C5"]
    assert v.verdict == "mixed"  # correlated inputs and 2-input weights never converge
    assert "correlated" in v.numbers.not_gaussian and "uniform" in v.numbers.gaussian
    assert v.numbers.variant == "bn"  # the variant whose BN input C3 judges
    st = views.stage_of(snaps[-1], "bn", 0, "x")
    w = float(np.median([st.stat("shapiro_w", u) for u in cfg.tracked_units(0)]))
    assert v.numbers.layers[0].w == pytest.approx(w) and "fan-in 64" in v.figure
    shown(w, v.figure)


@pytest.mark.slow
def test_c6_linear_maps_keep_the_shape(ioffe):
    snaps, cfg, board = ioffe
    v = board["C6"]
    assert v.verdict == "supported" and v.value < 1e-6
    st = views.stage_of(snaps[-1], "bn", 0, "x_hat")
    q = st.quantiles[1].astype(np.float64)  # unit 0, the figure's example
    for g, b in claims.C6_PAIRS:  # the reference: scipy's own Shapiro-Wilk on the moved sample
        assert scipy.stats.shapiro(g * q + b)[0] == pytest.approx(scipy.stats.shapiro(q)[0], abs=1e-9)
    shown(stats.normality(q).shapiro_w, v.figure)


@pytest.mark.slow
def test_c7_placement_compares_what_the_next_layer_receives(placement):
    snaps, cfg, board = placement
    v = board["C7"]
    assert v.verdict in ("supported", "refuted", "mixed")
    layers = range(len(cfg.widths))
    before = np.mean([per_snapshot(snaps, "bn@before", i, "a") for i in layers])
    after = np.mean([per_snapshot(snaps, "bn@after", i, "y") for i in layers])
    assert v.value == pytest.approx(after / before, rel=1e-9)
    shown(before, v.figure), shown(after, v.figure)
    w_b = np.median([r["a"]["shapiro_w"] for r in tracked_rows(snaps, cfg, "bn@before", "x", ("a",))])
    w_a = np.median([r["y"]["shapiro_w"] for r in tracked_rows(snaps, cfg, "bn@after", "a", ("y",))])
    drift_worse, shape_worse = after / before > claims.C7_DRIFT, w_a < w_b - claims.C7_W
    expected = {(True, True): "supported", (False, False): "refuted"}.get((drift_worse, shape_worse), "mixed")
    assert v.verdict == expected
    assert "inf" in v.figure  # ReLU outputs have a point mass at 0: their KL is +inf, shown, not NaN


@pytest.mark.slow
def test_c8_noisy_bn_and_gradient_shift(santurkar):
    snaps, cfg, board = santurkar
    v = board["C8"]
    assert v.verdict in ("supported", "refuted", "mixed")
    acc = {t: views.train_stat(snaps, t, "test_accuracy")[-1] for t in ("bn", "bn_noisy", "none")}
    assert v.numbers.acc_gap == pytest.approx(acc["bn"] - acc["bn_noisy"])
    assert f"{acc['bn']:.1%}" in v.figure and f"{acc['bn_noisy']:.1%}" in v.figure
    # "as well" is judged on the area under the test-accuracy curve (scipy's trapezoid rule / steps spanned)
    steps = views.steps(snaps).astype(float)
    area = {t: scipy.integrate.trapezoid(views.train_stat(snaps, t, "test_accuracy"), steps)
            / (steps[-1] - steps[0]) for t in ("bn", "bn_noisy")}
    assert v.numbers.area_gap == pytest.approx(area["bn"] - area["bn_noisy"], rel=1e-9)
    assert f"{area['bn']:.1%}" in v.figure and "area under the curve" in v.figure
    L = len(cfg.widths) - 1
    ratio = per_snapshot(snaps, "bn_noisy", L, "y") / per_snapshot(snaps, "bn", L, "y")
    assert v.numbers.drift_ratio == pytest.approx(ratio, rel=1e-9) and ratio > 1.5  # the noise destabilizes
    ics = {t: np.mean([views.ics(snaps, t, i)[1] for i in range(len(cfg.widths))]) for t in ("bn", "none")}
    assert len(views.ics(snaps, "bn", 0)[0]) == 6  # steps 0, 100, ..., 500
    assert v.numbers.ics_ratio == pytest.approx(ics["bn"] / ics["none"], rel=1e-9)
    shown(ics["bn"], v.figure), shown(ics["none"], v.figure)
    votes = [area["bn"] - area["bn_noisy"] <= claims.C8_ACC, ics["bn"] / ics["none"] >= claims.C8_ICS]
    assert v.verdict == ("supported" if all(votes) else "refuted" if not any(votes) else "mixed")


@pytest.mark.slow
def test_missing_variants_are_not_measured_and_name_the_preset(ioffe, santurkar):
    board = ioffe[2]
    assert board["C7"].verdict == "not measured" and "placement preset" in board["C7"].detail
    assert board["C8"].verdict == "not measured" and "santurkar preset" in board["C8"].detail
    assert santurkar[2]["C7"].verdict == "not measured"
    # Only the BN twin: no baseline for C1.
    snaps, cfg, _ = ioffe
    alone = tuple(dataclasses.replace(s, variants={"bn": s.variants["bn"]}) for s in snaps)
    board = {v.claim: v for v in claims.evidence(alone, cfg.replace(variants=("bn",)))}
    assert board["C1"].verdict == "not measured" and "ioffe preset" in board["C1"].detail
    assert board["C3"].verdict == "refuted" and board["C6"].verdict == "supported"


@pytest.mark.slow
def test_a_diverged_twin_is_not_measured_with_its_step(ioffe):
    snaps, cfg, _ = ioffe
    def cut(s):
        if s.step < 200:
            return s
        return dataclasses.replace(s, variants={**s.variants, "none": VariantSnapshot(
            math.nan, math.nan, math.nan, 200, ())})
    board = {v.claim: v for v in claims.evidence(tuple(map(cut, snaps)), cfg)}
    assert board["C1"].verdict == "not measured" and "diverged at step 200" in board["C1"].detail


@pytest.mark.slow
def test_verdicts_follow_the_numbers_not_a_script(ioffe, monkeypatch):
    """Scale BN's drift so the ratio lands where the rule must say otherwise."""
    snaps, cfg, board = ioffe
    r0 = board["C1"].value
    real = views.drift
    for target, expected in ((2.0, "refuted"), (0.7, "mixed"), (0.25, "supported")):
        def fake(s, variant, *a, k=target / r0, **kw):
            out = real(s, variant, *a, **kw)
            return out * k if variant == "bn" else out
        monkeypatch.setattr(views, "drift", fake)
        v = claims.evidence(snaps, cfg)[0]
        assert v.value == pytest.approx(target) and v.verdict == expected, (target, v.verdict)
        assert claims.fmt(target) in v.figure
    monkeypatch.setattr(views, "drift", real)


@pytest.mark.slow
def test_c3_would_say_supported_if_bn_reshaped(ioffe):
    """Edit the latest snapshot so x_hat reads more Gaussian than x: the same code must flip its verdict."""
    snaps, cfg, _ = ioffe
    col = stats.UNIT_STATS.index("shapiro_w")

    def edit(snap, delta):
        v = snap.variants["bn"]
        layers = []
        for lay in v.layers:
            st = lay.stages["x_hat"]
            table = st.table.copy()
            table[:, col] = np.minimum(table[:, col] + delta, 1.0) if delta > 0 else table[:, col] + delta
            stages = {**lay.stages, "x_hat": dataclasses.replace(st, table=table)}
            layers.append(dataclasses.replace(lay, stages=stages))
        bn = dataclasses.replace(v, layers=tuple(layers))
        return dataclasses.replace(snap, variants={**snap.variants, "bn": bn})

    for delta, expected in ((0.01, "supported"), (-0.01, "mixed")):
        edited = snaps[:-1] + (edit(snaps[-1], delta),)
        v = claims.evidence(edited, cfg)[2]
        assert v.claim == "C3" and v.verdict == expected, v.detail


def test_empty_and_garbage_never_raise():
    out = claims.evidence(())
    assert [v.claim for v in out] == IDS and all(v.verdict == "not measured" and v.value is None for v in out)
    assert all(v.figure and v.threshold and v.detail for v in out)
    out = claims.evidence((), PRESETS["ioffe"].config)
    assert {v.claim: v for v in out}["C8"].detail.endswith("open the santurkar preset")
    out = claims.evidence(("not a snapshot", 3), PRESETS["ioffe"].config)
    assert len(out) == len(IDS) and all(v.verdict == "not measured" for v in out)


def test_helpers_handle_nan_and_inf():
    assert claims.fmt(math.nan) == "n/a" and claims.fmt(math.inf) == "inf" and claims.fmt(1.0) == "1.00"
    assert claims.fmt(100.0) == "100" and claims.fmt(0.0401) == "0.0401"
    from bnviz.present import summary
    from bnviz.present.claims.record import gap

    assert gap(math.inf, math.inf) == 0.0 and gap(math.inf, 1.0) == math.inf
    assert summary.ratio(0.0, 0.0) == 1.0 and summary.ratio(1.0, 0.0) == math.inf
    assert math.isnan(summary.ratio(math.nan, 1.0))


@pytest.mark.slow
def test_a_run_that_just_started(ioffe):
    snaps, cfg, _ = ioffe
    for k in (1, 2):
        board = {v.claim: v for v in claims.evidence(snaps[:k], cfg)}
        assert board["C1"].verdict == board["C2"].verdict == "not measured"
        assert "at least 4 snapshots" in board["C1"].detail
        assert board["C3"].verdict == "refuted" and board["C6"].verdict == "supported"


def test_the_board_prints_numbers_one_way():
    from bnviz.present import claims

    assert claims.sci(1.25e-15) == "1.2e-15" and claims.sci(3e-8) == "3.0e-08"
    assert claims.sci(math.inf) == claims.fmt(math.inf) == "inf" and claims.sci(-math.inf) == "-inf"
    assert claims.sci(None) == claims.sci(math.nan) == claims.fmt(None) == "n/a"
    assert claims.fmt(1.0) == "1.00" and claims.fmt(0.01234) == "0.0123"


def test_a_units_fan_in_counts_what_it_sums():
    from bnviz.config import PRESETS
    from bnviz.present import claims

    mlp, why, conv = PRESETS["ioffe"].config, PRESETS["why-gaussian"].config, PRESETS["santurkar-conv"].config
    assert [claims.fan_in(mlp, i) for i in range(3)] == [64, 100, 100]
    assert [claims.fan_in(why, i) for i in range(3)] == [4, 8, 64]
    assert [claims.fan_in(conv, i) for i in range(3)] == [9, 9 * 16, 9 * 32]  # a 3x3 window over every channel
    dln = PRESETS["santurkar-dln"].config
    assert [claims.fan_in(dln, i) for i in (0, 1, 24)] == [16, 16, 16]  # 16 synthetic inputs, then 16 units


@pytest.mark.slow
def test_the_board_of_a_conv_run_speaks_of_channels_and_judges_the_regressions_r2():
    cfg = PRESETS["santurkar-conv"].config.replace(dataset="regression", n_features=16, widths=(4, 6), steps=60,
                                                   snapshot_every=10, ics_every=20)
    run = Run(cfg, stats_in="inline").start()
    assert run.join(timeout=120) and run.state == "finished", run.error
    board = {v.claim: v for v in claims.evidence(run.history.snapshots(), cfg)}
    for cid in ("C3", "C4", "C6"):
        assert "channel" in board[cid].figure and " unit" not in board[cid].figure, board[cid].figure
    c8 = board["C8"]
    assert c8.numbers.score == "test R²" and "test R² over training" in c8.figure
    r2 = views.train_stat(run.history.snapshots(), "bn", "test_accuracy")
    assert c8.numbers.acc_bn == pytest.approx(r2[-1])


def test_learning_area_and_first_reach_against_closed_forms():
    steps = np.array([0, 100, 200, 400])
    # a ramp 0 -> 1 over the first 200 steps, then flat at 1: area 100 + 200 over 400 steps = 0.75
    assert claims.learning_area(steps, np.array([0.0, 0.5, 1.0, 1.0])) == pytest.approx(0.75)
    # a score below 0 (an R² worse than the mean) counts as 0: the same area as a flat 0 then the ramp
    assert claims.learning_area(steps, np.array([-5.0, 0.5, 1.0, 1.0])) == pytest.approx(0.75)
    assert math.isnan(claims.learning_area(steps[:1], np.array([1.0])))
    assert claims.first_reach(steps, np.array([0.2, 0.91, 0.96, 0.99]), 0.95) == 200
    assert claims.first_reach(steps, np.array([0.2, 0.91, 0.93, 0.94]), 0.95) is None


@pytest.mark.slow
def test_c8_at_the_ceiling_is_decided_by_how_fast_not_where_both_end(santurkar):
    """Both end at 100 %: noisy BN, which took the whole run to get there, did not train 'about as well'."""
    snaps, cfg, _ = santurkar
    steps = views.steps(snaps)  # 0, 20, ..., 600
    fast = {int(s): 0.1 if s == 0 else 1.0 for s in steps}  # BN: at the ceiling from the first snapshot on
    slow = {int(s): min(1.0, s / 500) for s in steps}  # noisy BN: a straight line from 0 to 1 at step 500
    curves = {"bn": fast, "bn_noisy": slow}
    edited = tuple(dataclasses.replace(snap, variants={
        t: dataclasses.replace(v, test_accuracy=curves[t][snap.step]) if t in curves else v
        for t, v in snap.variants.items()}) for snap in snaps)
    v = claims.evidence(edited, cfg)[7]
    first_gap = (0.1 + 1.0) / 2 * 20 / 600 + 580 / 600
    assert v.numbers.acc_gap == 0 and v.numbers.area_gap == pytest.approx(first_gap - 350 / 600, rel=1e-9)
    assert v.numbers.reach_bn == (20, 20) and v.numbers.reach_noisy == (460, 480)
    assert "clearly worse" in v.detail and "90% first at bn step 20, bn_noisy step 460" in v.figure


@pytest.mark.slow
def test_no_claim_takes_a_shape_variant_for_bn(shapes_run):
    """The shape variants' x̂ is no affine map of x: every verdict but C9's (which compares the shapes) is the one
    the run gives without them."""
    cfg, snaps = shapes_run.config, shapes_run.history.snapshots()
    plain = ("none", "bn")
    without = tuple(dataclasses.replace(s, variants={t: v for t, v in s.variants.items() if t in plain})
                    for s in snaps)
    full = [v for v in claims.evidence(snaps, cfg) if v.claim != "C9"]
    alone = [v for v in claims.evidence(without, cfg.replace(variants=plain)) if v.claim != "C9"]
    assert [(v.claim, v.verdict, v.figure, v.detail) for v in full] == [
        (v.claim, v.verdict, v.figure, v.detail) for v in alone]
    only_shapes = ("none", "bn_gauss", "bn_uniform", "bn_laplace@after")
    board = [v for v in claims.evidence(tuple(dataclasses.replace(s, variants={t: s.variants[t] for t in only_shapes})
                                              for s in snaps), cfg.replace(variants=only_shapes)) if v.claim != "C9"]
    bare = [v for v in claims.evidence(tuple(dataclasses.replace(s, variants={"none": s.variants["none"]})
                                             for s in snaps), cfg.replace(variants=("none",))) if v.claim != "C9"]
    assert [(v.claim, v.verdict, v.detail) for v in board] == [(v.claim, v.verdict, v.detail) for v in bare]


# ------------------------------------------------------------------------------ C9 and C10

@pytest.fixture(scope="module")
def shapes():
    return train("shapes")


def mean_over_training(snaps, token):
    """The test score's mean over training, by numpy's trapezoid rule, scores below 0 counted as 0."""
    s = views.steps(snaps).astype(float)
    y = np.clip(views.train_stat(snaps, token, "test_accuracy"), 0, None)
    return float(np.trapezoid(y, s) / (s[-1] - s[0]))


@pytest.mark.slow
def test_c9_compares_every_shape_by_its_mean_score_over_training(shapes):
    snaps, cfg, board = shapes
    v = board["C9"]
    n = v.numbers
    assert v.verdict in {"supported", "refuted", "mixed"} and set(n.areas) == set(cfg.variants)
    areas = {t: mean_over_training(snaps, t) for t in cfg.variants}
    for t in cfg.variants:
        assert n.areas[t] == pytest.approx(areas[t], rel=1e-9)
    best = max(("bn_uniform", "bn_laplace"), key=areas.get)
    gaps = {ref: areas[best] - areas[ref] for ref in ("bn_gauss", "bn")}
    beats = sum(g > claims.C9_GAP for g in gaps.values())
    assert v.verdict == {2: "supported", 0: "refuted", 1: "mixed"}[beats]
    assert n.best == best and v.value == pytest.approx(max(gaps.values()), rel=1e-9)


@pytest.mark.slow
def test_c9_is_not_measured_without_a_non_gaussian_shape(ioffe):
    snaps, cfg, board = ioffe
    assert board["C9"].verdict == "not measured" and "shapes preset" in board["C9"].detail


@pytest.mark.slow
def test_c10_compares_bn_and_none_by_the_medians_of_their_smoothness(santurkar):
    import statistics

    snaps, cfg, board = santurkar
    v = board["C10"]
    assert v.verdict in {"supported", "refuted", "mixed"}, v.detail
    medians = {}
    for token in ("bn", "none"):
        measured = [s.variants[token].smooth for s in snaps if s.variants[token].smooth is not None]
        assert len(measured) >= 2
        medians[token] = {q: statistics.median(getattr(m, q) for m in measured)
                          for q in ("loss_range", "grad_change", "beta")}
    ratios = {q: medians["bn"][q] / medians["none"][q] for q in medians["bn"]}
    for q, r in ratios.items():
        assert v.numbers.ratios[q] == pytest.approx(r, rel=1e-9)
        shown(medians["bn"][q], v.figure)
    smoother = sum(r < 1 / claims.C10_FACTOR for r in ratios.values())
    assert v.verdict == {3: "supported", 0: "refuted"}.get(smoother, "mixed")


@pytest.mark.slow
def test_c10_waits_for_two_measurements(santurkar):
    snaps, cfg, _ = santurkar
    early = tuple(s for s in snaps if s.step < cfg.ics_every)  # step 0's measurement only
    assert sum(s.variants["bn"].smooth is not None for s in early) == 1
    (v,) = [x for x in claims.evidence(early, cfg) if x.claim == "C10"]
    assert v.verdict == "not measured" and "2 or more" in v.detail
