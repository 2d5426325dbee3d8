"""Links to your own data: data=HASH (and target= when not the default) round-trip to the same config on a server
that has the file; a server without it says so, names the file to upload and opens the preset's own data; links
without data= are exactly what they were."""

from bnviz import config as C
from bnviz import owndata, urlstate
from bnviz.owndata import Store

from .files import blobs, linear


def test_presets_links_hold_no_data_fields():
    for name, preset in C.PRESETS.items():
        params = urlstate.encode(name, preset.config)
        assert not set(params) & set(urlstate.OWN_DATA_FIELDS), name


def test_a_link_to_a_file_the_server_has_round_trips(tmp_path):
    store = Store(tmp_path)
    h = store.put(linear(), "price list.csv")
    link = {"preset": "santurkar", "dataset": "csv", "data": h, "seed": "3"}
    first = urlstate.decode(link, store)
    cfg = first.config
    assert first.warnings == []
    assert (cfg.dataset, cfg.data, cfg.target, cfg.data_task, cfg.data_inputs, cfg.data_name) == (
        "csv", h, "", "regression", 3, "price list.csv")
    assert cfg.task == "regression" and cfg.n_inputs == 3 and cfg.seed == 3
    params = urlstate.encode("santurkar", cfg)
    assert params["data"] == h and params["dataname"] == "price list.csv" and "target" not in params
    again = urlstate.decode(params, store)
    assert again.warnings == [] and again.config == cfg
    other = urlstate.decode({**params, "target": "u"}, store)  # another column: in the link, and a new run
    assert other.warnings == [] and other.config.target == "u" and other.config != cfg
    assert urlstate.encode("santurkar", other.config)["target"] == "u"
    named_default = urlstate.decode({**params, "target": "price"}, store)  # the default, named: one config
    assert named_default.config == cfg


def test_any_uploaded_name_makes_a_link_that_decodes_without_a_warning(tmp_path):
    store = Store(tmp_path)
    for name in ("=cmd|calc.csv", "a\x07b.csv", "x" * 300 + ".csv", "<b>bold</b>.csv", "   "):
        h = store.put(blobs(seed=len(name)), name)
        cfg = urlstate.decode({"preset": "ioffe", "dataset": "csv", "data": h}, store).config
        params = urlstate.encode("ioffe", cfg)
        back = urlstate.decode(params, Store(tmp_path / "elsewhere"))  # the name travels in the link alone
        assert len(back.warnings) == 1 and f"upload {params['dataname']} under" in back.warnings[0], back.warnings
        assert not params["dataname"].startswith(("=", "+", "-", "@")) and len(params["dataname"]) <= 120


def test_a_link_to_data_this_server_lacks_names_the_file_and_opens_the_preset(tmp_path):
    h = Store(tmp_path / "elsewhere").put(blobs(), "iris.csv")
    here = Store(tmp_path / "here")
    back = urlstate.decode({"preset": "ioffe", "dataset": "csv", "data": h, "dataname": "iris.csv", "seed": "4"},
                           here)
    assert back.config == C.PRESETS["ioffe"].config.replace(seed=4)  # everything else of the link holds
    (warning,) = back.warnings
    assert warning == (f"data={h} ignored: this server does not have that data file; upload iris.csv under Your "
                       "own data in the sidebar to train on it; the ioffe preset's own data (digits) is used "
                       "meanwhile")
    nameless = urlstate.decode({"preset": "ioffe", "dataset": "csv", "data": h}, here)
    assert "upload the CSV file the link was made with" in nameless.warnings[0]
    assert nameless.config == C.PRESETS["ioffe"].config


def test_a_link_whose_target_the_file_cannot_use_says_why(tmp_path):
    store = Store(tmp_path)
    h = store.put(blobs(), "b.csv")
    back = urlstate.decode({"preset": "ioffe", "dataset": "csv", "data": h, "target": "f0"}, store)
    (warning,) = back.warnings
    assert warning.startswith(f"data={h} ignored: 'b.csv': column 'label' holds text") and "meanwhile" in warning
    assert back.config == C.PRESETS["ioffe"].config


def test_data_fields_without_dataset_csv_are_ignored_with_a_warning(tmp_path):
    store = Store(tmp_path)
    h = store.put(blobs(), "b.csv")
    back = urlstate.decode({"preset": "ioffe", "data": h, "target": "label"}, store)
    assert back.config == C.PRESETS["ioffe"].config
    assert back.warnings == ["data or target ignored: they name your own data, used only with dataset=csv"]
    bare = urlstate.decode({"preset": "ioffe", "dataset": "csv"}, store)
    assert bare.config == C.PRESETS["ioffe"].config and "does not say which file (data=…)" in bare.warnings[0]


def test_a_config_on_your_own_data_is_valid_only_resolved():
    import pytest

    with pytest.raises(ValueError, match="needs its file read first"):
        C.ExperimentConfig(dataset="csv", data="0123456789abcdef")
    with pytest.raises(ValueError, match="set only for dataset csv"):
        C.ExperimentConfig(data="0123456789abcdef")
    info = owndata.prepare(owndata.read(blobs(), "b.csv")).info
    cfg = C.ExperimentConfig(**owndata.config_changes("0123456789abcdef", "label", info))
    assert cfg.target == "" and cfg.task == "classification" and cfg.n_inputs == 4
    three = owndata.prepare(owndata.read(linear(), "p.csv")).info  # 3 inputs: no square image
    with pytest.raises(ValueError, match="conv needs square images"):
        C.ExperimentConfig(**owndata.config_changes("0123456789abcdef", "", three), architecture="conv")
    square = C.ExperimentConfig(**owndata.config_changes("0123456789abcdef", "", info)).replace(
        architecture="conv", widths=(4,))  # 4 inputs: a 2x2 image
    assert square.n_inputs == 4
