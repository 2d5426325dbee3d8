"""A single table of a watched model (the page's export): it carries the model's config (bnviz.config) and
replays with it, layer names, value counts and all."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bnviz.config import WatchedModel, config_to_json
from bnviz.measure.snapshot import POOL_N, POOLED, RawSnapshot, RawVariant, Summarizer
from bnviz.table import record, replay
from bnviz.table.schema import CONFIG_KEY
from bnviz.table.upload import ReplayError, read_table

from .tables import IOFFE, query_of
from .watched import CONFIG, WATCHED, watched_snapshots


def watched_bytes(snaps, config=CONFIG, **kw):
    return record.table_to_bytes(record.to_arrow(snaps, quantiles=True), "parquet", config=config, **kw)


def test_a_watched_table_replays_with_its_config_and_layer_names():
    snaps = watched_snapshots(6)
    rep = replay.load(watched_bytes(snaps), "watched.parquet")
    assert rep.config == CONFIG.replace(steps=snaps[-1].step)
    assert [rep.config.layer_name(i) for i in range(2)] == list(WATCHED.names)
    assert rep.notes[-1].startswith("Histograms are rebuilt") and len(rep.notes) == 1  # nothing was inferred
    df = read_table(watched_bytes(snaps), "watched.parquet")
    assert replay.config_for(df) == rep.config


def test_a_watched_tables_histograms_count_each_layers_own_values():
    """Each layer's histograms sum to the rows the model handed over for it (1,024 and 48), as the live ones do."""
    snaps = watched_snapshots(4)
    rep = replay.load(watched_bytes(snaps), "watched.parquet")
    for live, back in zip(snaps, rep.snapshots):
        for li, rows in enumerate(WATCHED.values):
            for stage in ("x", "y"):
                a, b = live.variants["bn"].layers[li].stages[stage], back.variants["bn"].layers[li].stages[stage]
                for i, u in enumerate(b.units):
                    want = min(rows * CONFIG.widths[li], POOL_N) if u == POOLED else rows
                    assert a.hists[i].counts.sum() == b.hists[i].counts.sum() == want


def test_the_config_is_written_only_for_a_watched_model_and_only_to_parquet(tmp_path):
    snaps = watched_snapshots(2)
    record.write_table(record.to_arrow(snaps), tmp_path / "w.parquet", config=CONFIG)
    assert pq.read_schema(tmp_path / "w.parquet").metadata[CONFIG_KEY] == config_to_json(CONFIG).encode()
    plain = record.table_to_bytes(record.to_arrow(snaps), "parquet", query=query_of("ioffe", IOFFE))
    assert CONFIG_KEY not in pq.read_schema(pa.BufferReader(plain)).metadata
    with_own = record.table_to_bytes(record.to_arrow(snaps), "parquet", query=query_of("ioffe", IOFFE), config=IOFFE)
    assert with_own == plain  # bnviz's own config travels in the share link only
    csv = record.table_to_bytes(record.to_table(snaps), "csv", config=CONFIG)
    assert csv == record.table_to_bytes(record.to_table(snaps), "csv")


def test_a_config_that_does_not_fit_the_table_is_said_and_the_settings_inferred():
    snaps = watched_snapshots(3)
    three = WatchedModel(model="M", names=("a", "b", "c"), kinds=("BatchNorm1d",) * 3, fan_ins=(1, 1, 1),
                         values=(48, 48, 48), activations=("", "", ""))
    wrong = CONFIG.replace(watched=three, widths=(8, 6, 6))
    rep = replay.load(watched_bytes(snaps, config=wrong), "w.parquet")
    assert rep.config.watched is None
    assert any("does not match its table (its layers differ)" in n for n in rep.notes)


def test_a_watched_table_may_have_more_layers_than_bnvizs_own_networks():
    n = 30  # over the 25 layers of bnviz's own networks (upload.MAX_LAYERS)
    model = WatchedModel(model="Deep", names=tuple(f"blocks.{i}.bn" for i in range(n)), kinds=("BatchNorm1d",) * n,
                         fan_ins=(4,) * n, values=(32,) * n, activations=("ReLU",) * n)
    cfg = CONFIG.replace(watched=model, widths=(3,) * n)
    rng = np.random.default_rng(1)
    summarizer = Summarizer("relu", cfg.units)
    snaps = []
    for i in range(2):
        layers = [{"x": (x := rng.standard_normal((32, 3)).astype(np.float32)), "x_hat": x, "y": x,
                   "a": np.maximum(x, 0)} for _ in range(n)]
        raw = RawVariant(1.0, float("nan"), float("nan"), None, layers, ["y"] * n, [None] * n, [None] * n,
                         [{}] * n, None)
        snaps.append(summarizer.summarize(RawSnapshot(i * 10, {"bn": raw})))
    rep = replay.load(watched_bytes(snaps, config=cfg), "deep.parquet")
    assert rep.config.layer_name(29) == "blocks.29.bn" and len(rep.snapshots[-1].variants["bn"].layers) == n
    with pytest.raises(ReplayError, match="layer.*outside -1..24"):
        replay.load(record.table_to_bytes(record.to_arrow(snaps), "parquet"), "deep.parquet")
