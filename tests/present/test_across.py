"""Verdicts across seeds (bnviz.present.claims.across): counts against hand-counted verdict lists, median and range
against numpy on the values, failed and not-measured seeds, and the sentence the board and the report print."""

from __future__ import annotations

import numpy as np
import pytest

from bnviz.present.claims.across import across, failed_text, lines, seed_list
from bnviz.present.claims.record import Verdict


def v(claim: str, verdict: str, value: float | None) -> Verdict:
    return Verdict(claim, f"title of {claim}", verdict, "figure", "rule", "detail", "stability", value)


C1 = {0: ("supported", 0.44), 1: ("mixed", 0.53), 2: ("supported", 0.31), 3: ("supported", 0.60),
      4: ("refuted", 1.09), 5: ("supported", 0.37)}


def board(seed: int) -> list[Verdict]:
    verdict, value = C1[seed]
    c2 = v("C2", "not measured", None) if seed == 3 else v("C2", "supported", 10.0 + seed)
    return [v("C1", verdict, value), c2, v("C11", "mixed", 0.25 * seed)]


def test_counts_median_and_range_match_a_hand_count_and_numpy():
    (c1, c2, c11) = across({s: board(s) for s in C1})
    assert c1.claim == "C1"
    assert dict(c1.counts) == {"supported": 4, "refuted": 1, "mixed": 1}  # counted by hand from C1 above
    values = np.array([x for _, x in C1.values()])
    assert c1.median == pytest.approx(np.median(values))
    assert (c1.low, c1.high) == (pytest.approx(values.min()), pytest.approx(values.max()))
    assert c1.seeds == (0, 1, 2, 3, 4, 5) and c1.failed == ()


def test_not_measured_seeds_are_counted_and_give_no_figure():
    c2 = across({s: board(s) for s in C1})[1]
    assert dict(c2.counts) == {"supported": 5, "not measured": 1}
    assert c2.median == pytest.approx(np.median([10.0, 11.0, 12.0, 14.0, 15.0]))
    assert (c2.low, c2.high) == (10.0, 15.0)


def test_failed_seeds_are_counted_and_named():
    by_seed = {s: board(s) for s in (0, 1, 2)} | {4: None, 7: None}
    c1 = across(by_seed)[0]
    assert c1.failed == (4, 7)
    assert dict(c1.counts) == {"supported": 2, "mixed": 1}
    assert "seeds 4, 7 failed" in c1.sentence()
    assert c1.sentence().startswith("across 5 seeds (0–2, 4, 7): ")


def test_any_number_of_claims_in_the_boards_order():
    assert [a.claim for a in across({s: board(s) for s in C1})] == ["C1", "C2", "C11"]


def test_the_sentence_names_the_figure_as_the_rule_does():
    text = lines({s: board(s) for s in (0, 1, 2)})["C1"]
    # 0.44, 0.53, 0.31: median 0.44, range 0.31-0.53
    assert text == "across 3 seeds (0–2): supported 2, mixed 1; BN's drift 0.44× none's [0.31–0.53]"


def test_a_claim_without_a_named_figure_reads_by_its_number():
    text = lines({s: board(s) for s in (0, 1, 2)})["C11"]
    assert text == "across 3 seeds (0–2): mixed 3; figure 0.250 [0.00–0.500]"


def test_every_seed_failed():
    a = across({0: None, 1: None})
    assert a == []  # no verdict names a claim: nothing to say per claim


def test_one_seed_reads_in_the_singular_without_a_range():
    assert lines({3: board(3)})["C2"] == "across 1 seed (3): not measured 1"
    assert lines({0: board(0)})["C1"] == "across 1 seed (0): supported 1; BN's drift 0.44× none's"


def test_failed_text():
    assert failed_text({0: board(0), 4: None}) == "seed 4 failed"
    assert failed_text({0: None, 1: None, 3: None}) == "seeds 0–1, 3 failed"
    assert failed_text({0: board(0)}) == ""


@pytest.mark.parametrize("seeds, text", [((0, 1, 2, 3), "0–3"), ((5, 0, 1, 7, 8, 9), "0–1, 5, 7–9"), ((4,), "4"),
                                         ((), "")])
def test_seed_list(seeds, text):
    assert seed_list(seeds) == text


def test_a_ratio_and_its_range_read_at_one_precision():
    by_seed = {0: [v("C2", "supported", 2.96)], 1: [v("C2", "supported", 2.7)], 2: [v("C2", "supported", 21.4)]}
    assert lines(by_seed)["C2"].endswith("y drifted 3.0× as far as x̂ [2.7–21]")
