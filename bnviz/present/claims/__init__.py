"""The claims of docs/claims.md, each one declared record (:mod:`.record`), judged on the current run.

Judges sit by what they measure: :mod:`.drift` (C1, C2, C7), :mod:`.shape` (C3, C4, C6), :mod:`.sums` (C5),
:mod:`.benefit` (C8, C10), :mod:`.alternatives` (C9),
:mod:`.lrrange` (C11, from a learning-rate sweep); :mod:`.board` judges them all. Every number is read through
:mod:`bnviz.present.summary` and written through :mod:`bnviz.present.numbers`, as the charts, lessons and
report do.
"""

from bnviz.present.claims.alternatives import C9_GAP, C9Numbers
from bnviz.present.claims.benefit import (
    C8_ACC,
    C8_DRIFT,
    C8_ICS,
    C8_LEVELS,
    C10_FACTOR,
    SMOOTHNESS,
    C8Numbers,
    C10Numbers,
    first_reach,
    learning_area,
)
from bnviz.present.claims.board import BY_ID, CLAIMS, evidence
from bnviz.present.claims.drift import (
                                        C1_REFUTE,
                                        C1_SUPPORT,
                                        C2_REFUTE,
                                        C2_SUPPORT,
                                        C7_DRIFT,
                                        C7_W,
                                        C1Numbers,
                                        C2Numbers,
                                        C7Numbers,
                                        C7Side,
                                        compare_drift,
)
from bnviz.present.claims.lrrange import C11_MARGIN, C11_SAME, C11_WIDER, C11Numbers
from bnviz.present.claims.record import BN_KINDS, VERDICTS, Claim, Judged, Verdict
from bnviz.present.claims.shape import C6_PAIRS, C6_TOL, TOL_KL, TOL_MOMENT, TOL_W, C3Numbers, C4Numbers, C6Numbers
from bnviz.present.claims.sums import CLT_FAN_INS, CLT_KL, CLT_W, RUN_KL, RUN_W, C5Layer, C5Numbers, fan_in
from bnviz.present.numbers import fmt, sci
from bnviz.present.summary import MIN_SNAPS

Numbers = (C1Numbers | C2Numbers | C3Numbers | C4Numbers | C5Numbers | C6Numbers | C7Numbers | C8Numbers | C9Numbers
           | C10Numbers | C11Numbers)

__all__ = [
    "BN_KINDS", "BY_ID", "C1_REFUTE", "C1_SUPPORT", "C2_REFUTE", "C2_SUPPORT", "C6_PAIRS", "C6_TOL", "C7_DRIFT",
    "C7_W", "C8_ACC", "C8_DRIFT", "C8_ICS", "C8_LEVELS", "C9_GAP", "C10_FACTOR", "C11_MARGIN", "C11_SAME",
    "C11_WIDER", "CLAIMS", "CLT_FAN_INS", "CLT_KL",
    "CLT_W", "MIN_SNAPS", "RUN_KL", "RUN_W", "TOL_KL", "TOL_MOMENT", "TOL_W", "VERDICTS", "C1Numbers", "C2Numbers",
    "C3Numbers", "C4Numbers", "C5Layer", "C5Numbers", "C6Numbers", "C7Numbers", "C7Side", "C8Numbers", "C9Numbers",
    "C10Numbers", "C11Numbers", "SMOOTHNESS", "Claim", "Judged", "Numbers", "Verdict", "compare_drift", "evidence",
    "fan_in", "first_reach", "fmt", "learning_area", "sci",
]
