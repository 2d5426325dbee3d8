"""Export and replay through the page (AppTest): a downloaded table loads back and every panel draws it
with the recorded numbers; malformed uploads get a message and the live page keeps working."""

import numpy as np
import pytest

from bnviz import config as C
from bnviz.present import views
from bnviz.ui import controls

from .pages import open_page, the_run

LINK = {"preset": "gamma-beta", "seed": "5", "steps": "200", "every": "25"}


@pytest.fixture(scope="module")
def exported():
    """A finished run's Parquet and CSV downloads (the page's own export code) and its snapshots."""
    import os

    from bnviz.training.registry import Registry
    from bnviz.urlstate import decode

    os.environ["BNVIZ_STATS_IN"] = "inline"
    reg = Registry(stats_in="inline")
    cfg = decode(LINK).config
    run = reg.lease().view(cfg)
    assert run.join(timeout=120) and run.state == "finished"
    query = "&".join(f"{k}={v}" for k, v in LINK.items())
    files = {kind: controls.table_bytes(run, kind, query) for kind in ("parquet", "csv")}
    reg.stop_all()
    return files, run.history.snapshots(), cfg


def uploader(at):
    (u,) = [w for w in at.get("file_uploader") if w.label == "Replay a recorded run"]
    return u


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_downloaded_table_replays_in_every_panel_with_the_recorded_numbers(exported, kind):
    files, snaps, cfg = exported
    at = open_page({"steps": "100000"}, wait_snapshots=1)
    live = the_run()
    uploader(at).set_value((f"run.{kind}", files[kind], "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error
    shown = at.session_state["replay"]
    assert shown.state == "replay" and shown.step == 200
    if kind == "parquet":  # the link travels inside the file: the exact settings come back
        assert shown.config == cfg
    assert "Replaying" in " ".join(m.value for m in at.markdown)
    # what the page draws comes from the file: the same numbers the live run measured
    for stat in ("p15", "p50", "shapiro_w", "kl_gaussian"):
        a = views.unit_stat(shown.history.snapshots(), "bn", 0, "x", stat)
        b = views.unit_stat(snaps, "bn", 0, "x", stat)
        np.testing.assert_allclose(a, b, rtol=1e-6)
    for panel in C.PANELS:
        at.session_state["panel"] = panel
        at.run()
        assert not at.exception, panel
        assert panel == "evidence" or len(at.get("plotly_chart")) >= 1, panel
    # leaving the replay goes back to a live run: the same settings train again
    at.button(key="leave_replay").click().run()
    assert "replay" not in at.session_state and not at.exception
    assert the_run().config == live.config


@pytest.mark.parametrize("name, data, says", [
    ("empty.csv", b"", "empty"),
    ("noise.parquet", bytes(range(256)) * 8, "Parquet"),
    ("wrong.csv", b"a,b,c\n1,2,3\n", "column"),
    ("nan.csv", b"variant,step,layer,stage,unit,stat,value\nbn,nan,0,x,-1,mean,1.0\n", "step"),
    ("strings.csv", b"variant,step,layer,stage,unit,stat,value\nbn,0,0,x,-1,mean,hello\n", "value"),
])
def test_malformed_uploads_are_refused_with_a_message_and_the_live_run_goes_on(name, data, says):
    at = open_page({"steps": "100000"}, wait_snapshots=1)
    run = the_run()
    uploader(at).set_value((name, data, "text/csv"))
    at.run()
    assert not at.exception
    (err,) = [e.value for e in at.error]
    assert name.split(".")[0] in err and says.lower() in err.lower(), err
    assert "replay" not in at.session_state
    assert the_run() is run and run.alive
