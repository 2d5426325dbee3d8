"""A sweep's grid: each spec read by its share-link field's own rule, and every combination the run its link opens."""

from urllib.parse import parse_qs, urlencode

import pytest

from bnviz import urlstate
from bnviz.config import PRESETS
from bnviz.sweep import MAX_RUNS, jobs, parse_grid
from bnviz.table.store import run_key

IOFFE = PRESETS["ioffe"].config


def test_ranges_and_lists_in_the_grids_order():
    grid = parse_grid(["seed=0-3", "lr=0.01,0.1,1", "steps=5"])
    assert list(grid) == ["seed", "lr", "steps"]
    assert grid == {"seed": ["0", "1", "2", "3"], "lr": ["0.01", "0.1", "1"], "steps": ["5"]}


def test_ranges_and_single_values_mix_and_spaces_are_dropped():
    assert parse_grid(["seed= 1-2 , 7"]) == {"seed": ["1", "2", "7"]}


def test_list_settings_take_alternatives_separated_by_slashes():
    grid = parse_grid(["widths=100,100/50,50,50", "variants=none,bn/bn"])
    assert grid == {"widths": ["100,100", "50,50,50"], "variants": ["none,bn", "bn"]}


def test_a_dash_in_a_number_field_is_not_a_range():
    assert parse_grid(["lr=1e-3"]) == {"lr": ["1e-3"]}


def test_no_grid_is_one_job_the_base_itself():
    (job,) = jobs("ioffe", IOFFE, {})
    assert job.label == "" and job.config == IOFFE and job.preset == "ioffe"


@pytest.mark.parametrize("spec, words", [
    ("seed", "seed: write a setting and its values, such as seed=0-9"),
    ("=3", "=3: write a setting and its values"),
    ("sed=1", "sed=1: a link has no setting called sed; a sweep varies seed, steps, lr"),
    ("panel=loss", "panel=loss: panel is a view setting, not part of a run"),
    ("seed=", "seed=: no value given for seed"),
    ("seed=1,,2", "seed=1,,2: an empty value"),
    ("seed=5-1", "seed=5-1: the range 5-1 goes down; write the smaller number first (1-5)"),
    ("seed=0-20000", "seed=0-20000: the range 0-20000 has 20,001 values; at most 10,000 runs"),
    ("lr=0.1,fast", "lr=0.1,fast: fast is not a number from"),
    ("steps=0", "steps=0: 0 is not a whole number from 1 to"),
    ("seed=1.5", "seed=1.5: 1.5 is not a whole number"),
    ("activation=sigmoid,swish", "activation=sigmoid,swish: swish is not one of sigmoid, tanh"),
    ("widths=100,0", "widths=100,0: 100,0 is not 1 to"),
])
def test_each_bad_spec_is_one_line_naming_it(spec, words):
    with pytest.raises(ValueError) as err:
        parse_grid([spec])
    message = str(err.value)
    assert words in message and "\n" not in message, message


def test_a_repeated_name_is_refused():
    with pytest.raises(ValueError, match=r"^seed=3: seed is given twice; put all its values in one spec$"):
        parse_grid(["seed=1", "seed=3"])


def test_a_range_whose_ends_the_field_refuses_names_the_end():
    with pytest.raises(ValueError, match=r"steps=0-3: 0 is not a whole number from 1"):
        parse_grid(["steps=0-3"])


def test_values_are_what_the_link_parses():
    (job,) = jobs("ioffe", IOFFE, parse_grid(["lr=0.1"]))
    assert job.config.lr == urlstate.decode({"preset": "ioffe", "lr": "0.1"}).config.lr == 0.1


def test_jobs_equal_the_configs_hand_built_links_decode_to():
    got = jobs("ioffe", IOFFE.replace(steps=40), parse_grid(["seed=2-3", "activation=relu,tanh"]))
    assert [j.label for j in got] == ["seed=2 activation=relu", "seed=2 activation=tanh", "seed=3 activation=relu",
                                      "seed=3 activation=tanh"]
    for job, (seed, act) in zip(got, [(2, "relu"), (2, "tanh"), (3, "relu"), (3, "tanh")]):
        link = f"preset=ioffe&steps=40&seed={seed}&activation={act}"  # written by hand, not by the code under test
        want = urlstate.decode(parse_qs(link)).config
        assert job.config == want and job.preset == "ioffe"
        assert urlstate.decode(parse_qs(job.query)).config == want
        assert job.config.seed == seed and job.config.activation == act and job.config.steps == 40


def test_combinations_that_make_the_same_run_are_kept_once():
    got = jobs("ioffe", IOFFE, parse_grid(["seed=1,01,1", "steps=5"]))
    assert [j.label for j in got] == ["seed=1 steps=5"]
    assert len({run_key(j.config) for j in got}) == 1


def test_a_combination_the_link_refuses_names_the_combination():
    with pytest.raises(ValueError, match=r"^seed=1 dataset=csv: dataset=csv ignored: the link does not say which"):
        jobs("ioffe", IOFFE, parse_grid(["seed=1", "dataset=digits,csv"]))


def test_a_grid_of_too_many_runs_is_refused():
    with pytest.raises(ValueError, match=f"at most {MAX_RUNS:,} in one sweep"):
        jobs("ioffe", IOFFE, parse_grid(["seed=0-9999", "steps=1,2"]))


def test_a_link_with_its_own_preset_starts_from_its_config():
    base = urlstate.decode(parse_qs(urlencode({"preset": "santurkar", "lr": "0.2"}))).config
    (job,) = jobs("santurkar", base, parse_grid(["seed=4"]))
    assert job.config == base.replace(seed=4) and job.query.startswith("preset=santurkar&")
