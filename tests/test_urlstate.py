"""Share links: round trip for every field, and arbitrary strings never break decoding."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from bnviz import config as C
from bnviz import urlstate
from bnviz.config import ExperimentConfig


def test_round_trip_every_preset():
    for name, preset in C.PRESETS.items():
        params = urlstate.encode(name, preset.config)
        back = urlstate.decode(params)
        assert back.warnings == []
        assert back.preset == name and back.config == preset.config


def test_round_trip_every_config_field_changed():
    cfg = ExperimentConfig(dataset="features", input_dist="student-t", n_features=7, widths=(5, 9),
                           activation="tanh", variants=("ln", "bn@after"), placement="after", optimizer="adam",
                           lr=0.0123, batch=17, steps=777, seed=42, view="eval", snapshot_every=7)
    view = {"panel": "stability", "layer": 1, "unit": 3, "lesson": 4, "present": True}
    params = urlstate.encode("ioffe", cfg, view)
    assert set(params) == {"preset"} | {f.name for f in urlstate.FIELDS}
    back = urlstate.decode(params)
    assert back.warnings == [] and back.config == cfg and back.view == view


def test_link_is_readable():
    params = urlstate.encode("ioffe", C.PRESETS["ioffe"].config)
    assert params["widths"] == "100,100,100" and params["variants"] == "none,bn" and params["lr"] == "0.5"
    assert params["seed"] == "0"


def test_bad_values_are_ignored_with_a_warning_naming_them():
    back = urlstate.decode({"preset": "ioffe", "seed": "abc", "lr": "nan", "batch": "-3", "widths": "100,x",
                            "variants": "bn,frob", "steps": "99999999999", "colour": "red", "activation": "swish"})
    assert back.config == C.PRESETS["ioffe"].config  # every bad field fell back to the preset
    text = " ".join(back.warnings)
    for name in ("seed", "lr", "batch", "widths", "variants", "steps", "colour", "activation"):
        assert name in text
    assert len(back.warnings) == 8


def test_a_layer_or_unit_that_the_links_network_lacks_is_dropped_with_a_warning_saying_what_it_has():
    narrow = urlstate.decode({"preset": "ioffe", "widths": "3", "layer": "1", "unit": "4"})  # one layer, 3 units
    assert narrow.config.widths == (3,) and narrow.view == {}
    assert narrow.warnings == ["layer=1 ignored: this network has 1 hidden layer (layer=0)",
                               "unit=4 ignored: the page follows units 0, 1, 2 of layer=0 one by one, or all of "
                               "them pooled (unit=-1)"]
    kept = urlstate.decode({"preset": "ioffe", "widths": "8,3", "layer": "0", "unit": "4"})
    assert kept.warnings == [] and kept.view == {"layer": 0, "unit": 4}  # unit 4 exists in the 8-unit layer


def test_unknown_preset_falls_back_with_warning():
    back = urlstate.decode({"preset": "<script>alert(1)</script>"})
    assert back.preset == C.DEFAULT_PRESET and "is not one of" in back.warnings[0]


def test_valid_fields_that_clash_together_fall_back_to_preset():
    back = urlstate.decode({"preset": "ioffe", "variants": "bn", "widths": "3"})
    assert back.config.variants == ("bn",) and back.config.widths == (3,)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in urlstate.FIELDS] + ["preset", "x", ""]),
                       st.one_of(st.text(max_size=300), st.lists(st.text(max_size=20), max_size=3)), max_size=8))
def test_decode_never_raises_and_always_gives_a_valid_config(params):
    back = urlstate.decode(params)
    assert isinstance(back.config, ExperimentConfig) and back.config.problems() == []
    assert back.preset in C.PRESETS
    assert math.isfinite(back.config.lr)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(*C.LIMITS["seed"]), steps=st.integers(*C.LIMITS["steps"]),
       lr=st.floats(*C.LIMITS["lr"], allow_nan=False), batch=st.integers(*C.LIMITS["batch"]),
       widths=st.lists(st.integers(*C.LIMITS["width"]), min_size=1, max_size=C.LIMITS["depth"][1]).filter(
           lambda w: sum(w) <= C.LIMITS["hidden_units"][1]),
       variants=st.lists(st.sampled_from(["none", "bn", "bn_noaffine", "bn_noisy", "ln", "bn@after"]),
                         min_size=1, max_size=4, unique=True))
def test_round_trip_property(seed, steps, lr, batch, widths, variants):
    cfg = ExperimentConfig(seed=seed, steps=steps, lr=lr, batch=batch, widths=tuple(widths),
                           variants=tuple(variants))
    back = urlstate.decode(urlstate.encode("ioffe", cfg))
    assert back.warnings == [] and back.config == cfg


def test_a_deep_link_within_the_unit_budget_round_trips_and_a_wider_one_is_refused_with_a_reason():
    deep = ExperimentConfig(widths=(16,) * C.LIMITS["depth"][1], activation="identity")  # the 25-layer DLN
    assert urlstate.decode(urlstate.encode("ioffe", deep)).config == deep
    back = urlstate.decode({"preset": "ioffe", "widths": ",".join(["1024"] * 9)})  # 9,216 hidden units
    assert back.config.widths == C.PRESETS["ioffe"].config.widths
    assert any("8192" in w for w in back.warnings), back.warnings
