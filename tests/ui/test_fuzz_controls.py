"""Every control's value range, fuzzed through the page (AppTest + hypothesis): whatever a visitor enters,
the page shows either the run of those settings or a clear "not applied" message, never an exception."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from bnviz import config as C
from bnviz.ui import state as page_state

from .pages import APP

_L = C.LIMITS


@pytest.fixture(scope="module")
def page():
    mp = pytest.MonkeyPatch()
    mp.setenv("BNVIZ_STATS_IN", "inline")  # before the page's registry is made: cheap runs, no processes
    from bnviz.ui import live
    from bnviz.ui.runtime import registry

    mp.setattr(live, "FIRST_FRAME_SECONDS", 0.0)  # no browser here to ask for the rest of the page

    # No registry.clear(): AppTest gives every page the same session id, so the session-scoped lease of an
    # earlier test's page would be reused here and go on holding the registry that clear() dropped (later
    # tests then found their run in neither). The registry made after the setenv above, or by test_app's
    # autouse fixture, already computes statistics inline.
    registry().stop_all()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"steps": "40", "every": "20", "widths": "8"})
    at.run()
    yield at
    registry().stop_all()
    mp.undo()


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(widths=st.one_of(st.text(max_size=30), st.lists(st.integers(-5, 2000), max_size=10).map(
           lambda w: ",".join(map(str, w)))),
       variants=st.lists(st.sampled_from(page_state.VARIANT_OPTIONS), unique=True, max_size=4),
       batch=st.integers(*_L["batch"]), lr=st.floats(*_L["lr"]), steps=st.integers(1, 60),
       seed=st.integers(*_L["seed"]), activation=st.sampled_from(list(C.ACTIVATIONS)),
       dataset=st.sampled_from(list(C.DATASETS)), optimizer=st.sampled_from(list(C.OPTIMIZERS)),
       init=st.sampled_from(list(C.INITS)))
def test_any_control_values_give_a_run_or_a_message(page, widths, variants, batch, lr, steps, seed, activation,
                                                    dataset, optimizer, init):
    at = page
    at.text_input(key="widths").set_value(widths)
    at.multiselect(key="variants").set_value(variants)
    at.number_input(key="batch").set_value(batch)
    at.number_input(key="lr").set_value(lr)
    at.number_input(key="steps").set_value(steps)
    at.number_input(key="seed").set_value(seed)
    at.selectbox(key="activation").set_value(activation)
    at.selectbox(key="dataset").set_value(dataset)
    at.selectbox(key="optimizer").set_value(optimizer)
    at.selectbox(key="init").set_value(init)
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error if e.value.startswith("Setting not applied")]
    cfg = at.session_state["last_config"]  # the config the page runs (the registry may already have let the
    # AppTest session go: it releases its session-scoped lease when a run ends)
    if not errors:  # applied: the run is exactly what the controls say
        assert (cfg.batch, cfg.steps, cfg.seed, cfg.activation, cfg.dataset, cfg.optimizer, cfg.init) == (
            batch, steps, seed, activation, dataset, optimizer, init)
        assert cfg.lr == lr and cfg.variants == tuple(variants)
        assert ",".join(map(str, cfg.widths)) == widths.replace(" ", "")
        assert at.query_params["seed"] == str(seed) and at.query_params["init"] == init  # and the link says so
    else:  # not applied: the page says why, and keeps the last valid run
        assert all(len(e) < 400 for e in errors)
