"""Your own data through the page (AppTest): an uploaded CSV trains, its link reproduces the run in a new session,
its export replays; each bad file gets one message and the page keeps its run and settings; a link to data the
server lacks says which file to upload and opens the preset's own data."""

import re

import pytest

from bnviz import config as C
from bnviz import owndata
from bnviz.table import replay as replay_mod
from bnviz.ui import controls
from tests.owndata.files import blobs, linear

from .pages import SHORT, open_page, the_run


def data_uploader(at):
    (u,) = [w for w in at.get("file_uploader") if w.label == "Your own data (CSV)"]
    return u


@pytest.mark.slow
def test_an_uploaded_csv_trains_shares_by_link_and_replays():
    at = open_page({**SHORT, "widths": "16,16"}, wait_snapshots=1)
    raw = blobs(n=200, seed=5)
    data_uploader(at).set_value(("my blobs.csv", raw, "text/csv"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    h = owndata.store.key(raw)
    cfg = at.session_state["last_config"]
    assert (cfg.dataset, cfg.data, cfg.task, cfg.n_inputs, cfg.data_name) == ("csv", h, "classification", 4,
                                                                              "my blobs.csv")
    assert at.selectbox(key="target").value == "label" and at.selectbox(key="dataset").value == "csv"
    captions = " ".join(c.value for c in at.caption)
    assert "my blobs.csv: 200 rows, 4 inputs, a classification of 3 classes" in captions.replace("\\", "")
    link = {k: at.query_params[k] for k in at.query_params}
    assert link["dataset"] == "csv" and link["data"] == h and link["dataname"] == "my blobs.csv"
    # the link, opened in a new session, trains the same config
    other = open_page(link, wait_snapshots=2)
    assert not other.exception and not other.warning, [w.value for w in other.warning]
    assert other.session_state["last_config"] == cfg
    from bnviz.ui.runtime import registry

    runs = [e.run for e in registry()._entries.values() if e.run.config == cfg]
    assert runs, "no run of the uploaded file's config"
    run = runs[0]
    assert run.join(timeout=120) and run.state == "finished", run.error
    every_panel_draws(other)
    # its Parquet export replays with the same config, naming the data
    query = "&".join(f"{k}={v}" for k, v in link.items())
    exported = controls.table_bytes(run, "parquet", query)
    rep = replay_mod.load(exported, "mine.parquet")
    assert rep.config == cfg and any(f"data={h}" in n for n in rep.notes)
    (replay_uploader,) = [w for w in other.get("file_uploader") if w.label == "Replay a recorded run"]
    replay_uploader.set_value(("mine.parquet", exported, "application/octet-stream"))
    other.run()
    assert not other.exception and not other.error
    assert other.session_state["replay"].config == cfg
    notes = " ".join(c.value for c in other.caption).replace("\\", "")
    assert f"Trained on your own data: my blobs.csv (data={h})" in notes, notes
    # another target column from the picker: the others are the inputs; the text labels cannot be one
    at.selectbox(key="target").set_value("f1").run()
    assert not at.exception
    (err,) = [e.value for e in at.error]
    assert "column 'label' holds text" in err.replace("\\", "") and at.session_state["last_config"] == cfg


GOOD_LINK = {**SHORT, "widths": "8"}
BAD_FILES = [
    ("text.csv", b"a,b,label\n" + b"1,high,0\n2,3,1\n" * 6, "column 'b' holds text"),
    ("gaps.csv", b"a,b,label\n" + b"1,2,0\n" * 5 + b"1,,1\n" + b"1,2,1\n" * 5, "missing value in row 6"),
    ("one class.csv", b"a,b,label\n" + b"1,2,7\n" * 12, "one class only"),
    ("header.csv", b"a,b,label\n", "no rows"),
    ("page.csv", b"<html><body>not data</body></html>", "HTML"),
    ("table.csv", b"PAR1\x00\x00PAR1", "Parquet file"),
    ("dups.csv", b"a,a,label\n" + b"1,2,0\n" * 12, "appears twice"),
    ("formula.csv", b"a,b,label\n" + b"1,=CMD|' /C calc'!A0,0\n" * 12, "spreadsheet formula"),
    ("script.csv", b"a,b,label\n" + b"1,<img src=x onerror=alert(1)>,0\n" * 12, "holds text"),
    ("run.csv", b"variant,step,layer,stage,unit,stat,value\n" + b"bn,0,0,x,-1,mean,1\n" * 12,
     "a table recorded by bnviz, not data to train on: load it under Replay a recorded run"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, raw, says", BAD_FILES)
def test_a_bad_file_gets_one_message_and_nothing_else_changes(name, raw, says):
    at = open_page(GOOD_LINK, wait_snapshots=1)
    run, before = the_run(), {k: at.query_params[k] for k in at.query_params}
    data_uploader(at).set_value((name, raw, "text/csv"))
    at.run()
    assert not at.exception
    (err,) = [e.value for e in at.error]
    plain = err.replace("\\", "")
    assert plain.startswith("Data file not loaded: ") and says in plain, err
    assert "CMD" not in plain and not re.search(r"(?<!\\)[<>]", err)  # a formula never echoed; markup escaped
    assert at.session_state["dataset"] == "digits" and {k: at.query_params[k] for k in at.query_params} == before
    assert the_run() is run


@pytest.mark.slow
def test_a_link_to_data_the_server_lacks_names_the_file_and_trains_the_preset():
    at = open_page({**GOOD_LINK, "dataset": "csv", "data": "0123456789abcdef", "dataname": "survey.csv"},
                   wait_snapshots=1)
    assert not at.exception and not at.error
    (w,) = [w.value for w in at.warning]
    assert "does not have that data file" in w and "survey" in w and "Your own data" in w
    assert at.session_state["last_config"].dataset == "digits" and the_run().config.dataset == "digits"
    # uploading a regression file then trains on it
    data_uploader(at).set_value(("prices.csv", linear(), "text/csv"))
    at.run()
    assert not at.error and at.session_state["last_config"].task == "regression"
    assert the_run_of(at.session_state["last_config"]).join(timeout=120)
    every_panel_draws(at)


def the_run_of(cfg):
    from bnviz.ui.runtime import registry

    (run,) = [e.run for e in registry()._entries.values() if e.run.config == cfg]
    return run


def every_panel_draws(at):
    for panel in C.PANELS:
        at.session_state["panel"] = panel
        at.run()
        assert not at.exception, (panel, at.exception)
        assert panel in ("evidence", "why-gaussian") or len(at.get("plotly_chart")) >= 1, panel
