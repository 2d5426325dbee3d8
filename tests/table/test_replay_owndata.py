"""A recorded run on your own data names its file (Parquet metadata bnviz.data): its replay restores the config
and says what it trained on, on this server and on one that does not have the file."""

from urllib.parse import urlencode

import pytest

from bnviz import owndata, urlstate
from bnviz.table import replay
from bnviz.table.record import table_to_bytes, to_arrow

from ..helpers import finished_run
from ..owndata.files import linear

pytestmark = pytest.mark.slow  # each trains a run


@pytest.fixture(scope="module")
def recorded():
    h = owndata.default_store().put(linear(), "price.csv")
    cfg = urlstate.decode({"preset": "ioffe", "dataset": "csv", "data": h, "target": "w", "widths": "8,8",
                           "steps": "40", "every": "20"}).config
    run = finished_run(cfg)
    query = urlencode(urlstate.encode("ioffe", run.config), safe=",")
    data = table_to_bytes(to_arrow(run.history.snapshots()), "parquet", query, owndata.metadata(run.config))
    return h, run.config, data


def test_a_replay_restores_the_config_and_names_the_data(recorded):
    h, cfg, data = recorded
    rep = replay.load(data, "run.parquet")
    assert rep.config == cfg and rep.config.task == "regression" and rep.config.target == "w"
    (note,) = [n for n in rep.notes if "own data" in n]
    assert note == (f"Trained on your own data: price.csv (data={h}), predicting column w (regression); this "
                    "server has that file, so the run's link trains it again.")


def test_a_server_without_the_file_still_replays_it_and_says_which_file_to_upload(recorded, tmp_path, monkeypatch):
    h, cfg, data = recorded
    monkeypatch.setenv("BNVIZ_DATA", str(tmp_path / "empty"))
    rep = replay.load(data, "run.parquet")
    assert rep.config == cfg
    (note,) = [n for n in rep.notes if "own data" in n]
    assert note.endswith("this server does not have that file: upload price.csv to train the run again.")


def test_a_damaged_data_description_is_said_and_the_settings_are_inferred(recorded):
    import io

    import pyarrow.parquet as pq

    from bnviz.table.schema import DATA_KEY

    _, _, data = recorded
    table = pq.read_table(io.BytesIO(data))
    table = table.replace_schema_metadata({**table.schema.metadata, DATA_KEY: b"{not json"})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    rep = replay.load(buf.getvalue(), "run.parquet")
    assert any("description of its data is not used" in n for n in rep.notes), rep.notes
