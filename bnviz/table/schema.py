"""The tidy table's schema: its columns, and the stages and stats its rows may hold.

One row per (variant, step, layer, stage, unit, stat) and its value; docs/design.md (contract 3) and the
README describe the rows. The writer (:mod:`bnviz.table.record`), the upload checks
(:mod:`bnviz.table.upload`) and the replay (:mod:`bnviz.table.replay`) all read these names from here.
"""

from __future__ import annotations

import numpy as np

from bnviz import config as C
from bnviz import stats
from bnviz.measure.snapshot import QQ_POINTS

TABLE_COLUMNS = ("variant", "step", "layer", "stage", "unit", "stat", "value")

TRAIN_STATS = ("loss", "accuracy", "test_accuracy")

# The optional quantile block (to_table(quantiles=True), record --quantiles): StageStats.quantiles, the
# QQ_POINTS quantiles at probabilities (i + 0.5) / QQ_POINTS, as stats q00, q01, ..., q63 (float32 values).
QUANTILE_STATS = tuple(f"q{i:0{len(str(QQ_POINTS - 1))}d}" for i in range(QQ_POINTS))

QUERY_KEY = b"bnviz.query"  # Parquet key-value metadata: the share-link query string of the run
DATA_KEY = b"bnviz.data"  # ... and, for your own data, what it was trained on (owndata.metadata)
CONFIG_KEY = b"bnviz.config"  # ... and, for a watched model (no share link), its config as JSON (config_to_json)
UNIT_STAGES = tuple(C.STAGES)  # x, x_hat, y, a: one row per unit

LAYER_STAGES = ("params", "grad")  # one row per layer (unit -1)

# γ and β of every unit of a layer with a learned affine (units 0..width-1, stats gamma and beta); stage y holds
# them again for the tracked units only, beside those units' other statistics.
AFFINE_STAGE = "affine"
AFFINE_MAX_WIDTH = int(C.LIMITS["width"][1])  # units 0..width-1 stay within a table's unit limit (upload.MAX_UNIT);
# a wider layer (a watched model's) keeps γ and β of its tracked units only

STAGE_NAMES = ("train", *UNIT_STAGES, *LAYER_STAGES, AFFINE_STAGE)

SERIES_STATS = (*stats.UNIT_STATS, "w1_prev", "w1_first", "saturation", "gamma", "beta")

CHANGE_STATS = ("weight_change", "gamma_change", "beta_change")

ICS_STATS = ("ics_l2", "ics_cos")

RUN_STATS = (*TRAIN_STATS, "diverged_at")

# Santurkar et al.'s smoothness along the gradient (measure.snapshot.Smoothness's fields, in order): layer -1,
# stage train, at the steps where it was measured.
SMOOTH_STATS = ("smooth_loss_range", "smooth_grad_change", "smooth_beta")

KNOWN_STATS = (*SERIES_STATS, *QUANTILE_STATS, *CHANGE_STATS, *ICS_STATS, *RUN_STATS, *SMOOTH_STATS)

STAGE_OF_STAT = {**{s: UNIT_STAGES for s in (*SERIES_STATS, *QUANTILE_STATS)}, "gamma": ("y", AFFINE_STAGE),
                  "beta": ("y", AFFINE_STAGE),
                  **{s: ("params",) for s in CHANGE_STATS}, **{s: ("grad",) for s in ICS_STATS},
                  **{s: ("train",) for s in (*RUN_STATS, *SMOOTH_STATS)}}

QQ_PROBS = (np.arange(QQ_POINTS) + 0.5) / QQ_POINTS
