"""Training faults through the page (AppTest): each gives a clear message or a documented clamp, the
diverged or refused variant is marked with its step, the others and the page keep working, and nothing
reaches the console as a traceback."""

import logging

import pytest

from .pages import open_page, the_run

SHORT = {"steps": "300", "every": "50"}


def page_text(at) -> str:
    return "\n".join(str(e.value) for e in (*at.markdown, *at.caption, *at.warning, *at.error, *at.info))


def assert_no_traceback(caplog):
    """No log record with a traceback or at error level (the real server's console is checked in tests/e2e:
    inside pytest, stderr also carries the harness's own noise)."""
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


@pytest.fixture(autouse=True)
def _logs(caplog):
    caplog.set_level(logging.INFO)


@pytest.mark.slow
def test_learning_rate_10_diverges_one_variant_and_the_other_goes_on(caplog):
    # ReLU at lr 10: the unnormalized net blows up within a few steps; the BN twin keeps training (C-claim
    # "BN allows higher learning rates", measured). Both facts must be visible on the page.
    at = open_page({"preset": "ioffe", "activation": "relu", "lr": "10", **SHORT}, wait_snapshots=7)
    run = the_run()
    assert run.state == "finished"
    none, bn = run.status["none"], run.status["bn"]
    assert none.state == "diverged" and none.step is not None and bn.state == "training"
    assert not at.exception
    assert f"none diverged at step {none.step}" in page_text(at)
    last = run.history.latest()
    assert last.step == 300 and last.variants["none"].diverged_at == none.step
    assert len(last.variants["bn"].layers) == 3  # the others keep every statistic
    for panel in ("training", "layer", "over-time", "normality", "stability", "evidence"):
        at.session_state["panel"] = panel
        at.run()
        assert not at.exception, panel
    assert_no_traceback(caplog)


def test_learning_rate_1000_diverges_both_and_the_page_says_so(caplog):
    at = open_page({"preset": "ioffe", "activation": "relu", "lr": "1000", **SHORT}, wait_snapshots=2)
    run = the_run()
    assert {s.state for s in run.status.values()} == {"diverged"}
    text = page_text(at)
    for token, s in run.status.items():
        assert f"{token} diverged at step {s.step}" in text
    assert not at.exception
    assert_no_traceback(caplog)


@pytest.mark.slow
def test_batch_1_refuses_batch_norm_with_a_reason_and_trains_the_rest(caplog):
    at = open_page({"preset": "ioffe", "batch": "1", **SHORT}, wait_snapshots=7)
    run = the_run()
    assert run.status["bn"].state == "refused" and run.status["none"].state == "training"
    assert "batch norm needs at least 2 examples per batch" in page_text(at)
    assert run.history.latest().step == 300 and run.history.latest().variants["none"].layers
    assert not at.exception
    assert_no_traceback(caplog)


@pytest.mark.slow
def test_a_batch_larger_than_the_data_is_clamped_and_said(caplog):
    at = open_page({"preset": "ioffe", "batch": "4096", "steps": "20", "every": "10"}, wait_snapshots=3)
    run = the_run()
    n_train = len(run.data.x_train)
    assert run.batch == n_train < 4096
    assert f"batch 4096 is larger than the {n_train} training examples: clamped to {n_train}" in page_text(at)
    assert not at.exception
    assert_no_traceback(caplog)


@pytest.mark.slow
def test_width_1_layers_train_and_draw(caplog):
    at = open_page({"preset": "ioffe", "widths": "1,1", **SHORT}, wait_snapshots=7)
    run = the_run()
    assert run.state == "finished" and {s.state for s in run.status.values()} == {"training"}
    snap = run.history.latest()
    x = snap.variants["bn"].layers[1].stages["x_hat"]
    assert x.units == (-1, 0)  # the only unit, and the pool of that one unit
    for panel in ("layer", "over-time", "gamma-beta", "normality", "stability", "evidence"):
        at.session_state["panel"] = panel
        at.run()
        assert not at.exception, panel
    assert_no_traceback(caplog)


def test_steps_in_the_millions_are_refused_by_the_link_with_a_warning():
    at = open_page({"preset": "ioffe", "steps": "5000000"}, wait_snapshots=1)
    assert any("steps" in str(w.value) and "5000000" in str(w.value) for w in at.warning)
    assert the_run().config.steps == 5000  # the preset's value stays
    assert not at.exception


def test_zero_variance_inputs_give_defined_statistics_not_errors(monkeypatch):
    """Every input feature constant (a broken dataset): x = Wu + b is then the same for every example, so
    BN sees zero variance in every unit. The run finishes, BN's x̂ is exactly 0 (PyTorch's eps), and the
    statistics take their documented values for constant data instead of raising."""
    import numpy as np
    import torch

    from bnviz.config import PRESETS
    from bnviz.training import data as data_mod
    from bnviz.training.run import Run

    real_load = data_mod.load

    def constant_load(cfg):
        d = real_load(cfg)
        return data_mod.Dataset(d.name, torch.full_like(d.x_train, 0.5), d.y_train, torch.full_like(d.x_test, 0.5),
                                d.y_test, d.n_outputs)

    monkeypatch.setattr(data_mod, "load", constant_load)
    run = Run(PRESETS["ioffe"].config.replace(steps=60, snapshot_every=20), stats_in="inline")
    run.start()
    assert run.join(timeout=120) and run.state == "finished", run.error
    snap = run.history.latest()
    for token in ("none", "bn"):
        assert run.status[token].state == "training"
        x = snap.variants[token].layers[0].stages["x"]
        units = x.table[1:]  # each tracked unit is constant (the pool of all units is not: units differ)
        assert np.all(units[:, 1] == 0.0) and x.table[0, 1] > 0
        assert np.all(units[:, 9] == 1.0) and np.all(units[:, 11] == 0.0)  # W = 1, KL = 0 (documented)
    x_hat = snap.variants["bn"].layers[0].stages["x_hat"]
    np.testing.assert_array_equal(x_hat.table[:, 0], 0.0)  # (x - mean) / sqrt(0 + eps) = 0 exactly
