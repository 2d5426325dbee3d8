"""Share links: round trip for every field, arbitrary strings never break decoding, and a bad value's warning
says in plain words what the field allows (the references are config's limits and registries)."""

import math

import pytest
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
                           lr=0.0123, batch=17, steps=777, seed=42, view="eval", snapshot_every=7,
                           init="orthogonal")
    view = {"panel": "stability", "layer": 1, "unit": 3, "lesson": 4, "present": True}
    params = urlstate.encode("ioffe", cfg, view)
    # every field but your own data's, which a link holds only with dataset=csv (tests/owndata/test_links.py)
    assert set(params) == {"preset"} | {f.name for f in urlstate.FIELDS if f.name not in urlstate.OWN_DATA_FIELDS}
    back = urlstate.decode(params)
    assert back.warnings == [] and back.config == cfg and back.view == view


def test_link_is_readable():
    params = urlstate.encode("ioffe", C.PRESETS["ioffe"].config)
    assert params["widths"] == "100,100,100" and params["variants"] == "none,bn" and params["lr"] == "0.5"
    assert params["seed"] == "0" and params["init"] == "pytorch"


@pytest.mark.parametrize("rule", list(C.INITS))
def test_every_initialization_round_trips_by_its_name(rule):
    params = urlstate.encode("ioffe", C.PRESETS["ioffe"].config.replace(init=rule))
    assert params["init"] == rule
    back = urlstate.decode({"preset": "ioffe", "init": rule})
    assert back.warnings == [] and back.config == C.PRESETS["ioffe"].config.replace(init=rule)


def test_a_link_without_init_keeps_its_presets_initialization():
    for name, preset in C.PRESETS.items():
        params = urlstate.encode(name, preset.config)
        del params["init"]
        back = urlstate.decode(params)
        assert back.warnings == [] and back.config == preset.config
    assert urlstate.decode({"preset": "ioffe"}).config.init == "pytorch"


def test_the_shape_variants_decode_from_a_hand_written_link_and_round_trip():
    back = urlstate.decode({"preset": "ioffe", "variants": "none,bn_uniform"})
    assert back.warnings == [] and back.config.variants == ("none", "bn_uniform")
    cfg = C.PRESETS["ioffe"].config.replace(variants=("bn", "bn_gauss", "bn_uniform@after", "bn_laplace"))
    params = urlstate.encode("ioffe", cfg)
    assert params["variants"] == "bn,bn_gauss,bn_uniform@after,bn_laplace"
    assert urlstate.decode(params).config == cfg
    bad = urlstate.decode({"preset": "ioffe", "variants": "none,bn_cauchy"})
    assert bad.config.variants == C.PRESETS["ioffe"].config.variants
    assert any("bn_cauchy" in w for w in bad.warnings)


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
    assert back.preset == C.DEFAULT_PRESET
    assert back.warnings[0].startswith("preset=<script>alert(1)</script> ignored: the preset must be one of ")
    assert all(name in back.warnings[0] for name in C.PRESETS)
    assert_plain(back.warnings[0])


# Words of Python's exceptions and of the code, none of which a teacher should read in a warning.
PYTHON_WORDS = ("could not convert", "invalid literal", "base 10", "error", "traceback", "exception", "int(",
                "float(", "str(", "nonetype", "object", "invalid experiment config", "repr", "\\x")
# At least one bad value for every field of the link (a new field must add its own).
BAD = {
    "seed": ["abc", "-1", "1.5", str(2**31)],
    "steps": ["x", "0", "1e3", "1000001", "5,000"],
    "lr": ["abc", "nan", "inf", "0", "1e4", "0,1"],
    "batch": ["-3", "many", "4097"],
    "optimizer": ["rmsprop", "SGD"],
    "init": ["kaiming", "Xavier_normal", "glorot", ""],
    "activation": ["swish"],
    "widths": ["100,x", "0", "100,2000", ",".join(["4"] * 26), "", "1.5"],
    "variants": ["bn,frob", "bn,bn", "bn@sideways", ""],
    "placement": ["middle"],
    "arch": ["resnet"],
    "dataset": ["../../etc/passwd"],
    "dist": ["cauchy"],
    "features": ["0", "257", "a"],
    "view": ["test"],
    "every": ["0", "x", "100001"],
    "panel": ["nope"],
    "layer": ["25", "-1", "one", ""],
    "unit": ["-2", "1024", "x"],
    "lesson": ["0", "x", "100"],
    "present": ["maybe", "2"],
    "data": ["xyz", "0123456789abcdeg", "../../etc/passwd", ""],
    "target": ["", "=CMD|' /C calc'!A0", "x" * 41, "+1"],
    "dataname": ["", "@SUM(1+1)", "y" * 121],
}


def number(n) -> str:
    return f"{n:,}"


def choices(registry) -> list[str]:
    return list(registry)


def ints(key) -> list[str]:
    return [number(v) for v in C.LIMITS[key]]


# What each field's warning must name: its limits or every one of its choices, from config itself.
ALLOWED = {
    "seed": ints("seed"), "steps": ints("steps"), "lr": ["0.000001", "1,000"], "batch": ints("batch"),
    "optimizer": choices(C.OPTIMIZERS), "init": choices(C.INITS), "activation": choices(C.ACTIVATIONS),
    "widths": ints("width") + [str(C.LIMITS["depth"][1]), "comma"],
    "variants": choices(C.VARIANTS) + ["@" + p for p in C.PLACEMENTS] + ["comma"],
    "placement": choices(C.PLACEMENTS), "arch": choices(C.ARCHITECTURES), "dataset": choices(C.DATASETS),
    "dist": choices(C.INPUT_DISTS), "features": ints("n_features"), "view": choices(C.VIEWS),
    "every": ints("snapshot_every"), "panel": choices(C.PANELS),
    "layer": ["0", number(C.LIMITS["depth"][1] - 1), "first hidden layer"],
    "unit": ["-1", number(C.LIMITS["width"][1] - 1), "all units pooled"],
    "lesson": ["1", "99"], "present": ["1", "0", "on", "off"],
    "data": [str(C.DATA_HASH_LEN), "hex digits", "CSV file"], "target": ["column name", "1 to 40"],
    "dataname": ["file name", "1 to 120"],
}


def assert_plain(warning: str) -> None:
    low = warning.lower()
    for words in PYTHON_WORDS:
        assert words not in low, (words, warning)


def test_every_field_has_bad_values_to_try():
    assert set(BAD) == set(ALLOWED) == {f.name for f in urlstate.FIELDS}


@pytest.mark.parametrize("name, value", [(n, v) for n, values in BAD.items() for v in values])
def test_a_bad_value_is_ignored_with_a_warning_in_plain_words(name, value):
    back = urlstate.decode({"preset": "ioffe", name: value})
    assert back.config == C.PRESETS["ioffe"].config and back.view == {}
    assert len(back.warnings) == 1
    warning = back.warnings[0]
    shown = value if len(value) <= 40 else value[:40] + "…"  # a long value is quoted by its start
    typed = f"{name}={shown}" if value else f"{name} (with no value)"
    assert warning.startswith(f"{typed} ignored: "), warning  # the field, as typed, first
    assert " must be " in warning
    for words in ALLOWED[name]:
        assert words in warning, (words, warning)
    assert_plain(warning)


def test_a_long_value_or_an_unknown_name_is_named_in_plain_words():
    back = urlstate.decode({"steps": "9" * 500, "colour": "red", "x\x00y": "1"})
    steps, colour, control = back.warnings
    assert steps.startswith("steps ignored: its value is longer than 200 characters") and "1,000,000" in steps
    assert colour.startswith("colour=red ignored: a link has no setting called colour")
    assert all(f.name in colour for f in urlstate.FIELDS) and "preset" in colour
    assert control.startswith("x?y=1 ignored")  # a control character is never printed
    for w in back.warnings:
        assert_plain(w)


def test_valid_fields_that_clash_together_fall_back_to_preset():
    back = urlstate.decode({"preset": "ioffe", "variants": "bn", "widths": "3"})
    assert back.config.variants == ("bn",) and back.config.widths == (3,)


@pytest.mark.slow  # a second or more
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in urlstate.FIELDS] + ["preset", "x", ""]),
                       st.one_of(st.text(max_size=300), st.lists(st.text(max_size=20), max_size=3)), max_size=8))
def test_decode_never_raises_and_always_gives_a_valid_config(params):
    back = urlstate.decode(params)
    assert isinstance(back.config, ExperimentConfig) and back.config.problems() == []
    assert back.preset in C.PRESETS
    assert math.isfinite(back.config.lr)
    for w in back.warnings:
        assert_plain(w.replace(repr(params), ""))


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(*C.LIMITS["seed"]), steps=st.integers(*C.LIMITS["steps"]),
       lr=st.floats(*C.LIMITS["lr"], allow_nan=False), batch=st.integers(*C.LIMITS["batch"]),
       widths=st.lists(st.integers(*C.LIMITS["width"]), min_size=1, max_size=C.LIMITS["depth"][1]).filter(
           lambda w: sum(w) <= C.LIMITS["hidden_units"][1]),
       variants=st.lists(st.sampled_from(["none", "bn", "bn_noaffine", "bn_noisy", "ln", "bn@after", "bn_gauss",
                                          "bn_uniform", "bn_laplace@after"]),
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
    assert back.warnings[0].startswith("the link's settings do not fit together, so the ioffe preset is used")
    assert_plain(back.warnings[0])
