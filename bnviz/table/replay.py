"""Replay a recorded run: a tidy table (CSV or Parquet), read and checked by :mod:`bnviz.table.upload`,
turned back into the Snapshots every panel draws.

- :func:`config_for` gives the closest :class:`ExperimentConfig`: exact when a Parquet file carries a watched
  model's config (key-value metadata ``bnviz.config``: layer names and all) or the run's share link
  (``bnviz.query``), inferred from the table otherwise (and it says so).
- :func:`snapshots_from_table` rebuilds real Snapshot / VariantSnapshot / LayerStats / StageStats objects,
  so figures, views and the evidence board run on them unchanged.
- :func:`load` reads, checks and rebuilds, and returns a :class:`Replay` with the notes to show;
  :class:`ReplayedRun` stands in for a live Run on the page, :class:`StoredRun` for a finished one from the store.

What a table cannot hold comes back as NaN (or empty): γ and β of the untracked units when the table has no
rows at stage ``affine`` (γ and β of every unit; a table without them holds those of the tracked units only, at
stage y), and, unless the file was recorded with quantiles, the distributions (``hists == ()`` and NaN
quantiles). With quantiles (stats q00..q63, see schema.QUANTILE_STATS), each histogram is rebuilt from the
quantile function; see :func:`histograms_from_quantiles` for the approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qs

import numpy as np

from bnviz import config as C
from bnviz import owndata, stats, urlstate
from bnviz.config import HISTORY_CAP, ExperimentConfig, split_variant
from bnviz.measure.snapshot import (
    POOL_N,
    POOLED,
    QQ_POINTS,
    LayerStats,
    Smoothness,
    Snapshot,
    StageStats,
    VariantSnapshot,
    VariantStatus,
)
from bnviz.table.schema import (
    AFFINE_STAGE,
    CHANGE_STATS,
    ICS_STATS,
    QQ_PROBS,
    QUANTILE_STATS,
    RUN_STATS,
    SERIES_STATS,
    SMOOTH_STATS,
    UNIT_STAGES,
)
from bnviz.table.upload import (
    MAX_BYTES,
    MAX_QUERY,
    MAX_ROWS,
    MAX_UNIT,
    ReplayError,
    distinct,
    distinct_inverse,
    read_table,
    validate,
)

MAX_SNAPSHOTS = HISTORY_CAP + 1  # rebuilt snapshots (evenly thinned beyond), as the page's History keeps them


def config_for(df) -> ExperimentConfig:
    """The closest ExperimentConfig for a table: a watched model's config or the run's share link when the
    table carries one that fits it, else inferred."""
    return _config(validate(df))[0]


def _variant_order(df) -> list[str]:
    cats = df["variant"].cat.categories
    codes = df["variant"].cat.codes.to_numpy()
    first = {c: int(np.argmax(codes == c)) for c in range(len(cats)) if (codes == c).any()}  # a few variants
    return [str(cats[c]) for c in sorted(first, key=first.__getitem__)]


def _steps(df) -> np.ndarray:
    """The table's distinct steps, ascending."""
    return distinct(df["step"].to_numpy(), 0, C.LIMITS["steps"][1])


def _layout(df) -> tuple[int, list[list[int]], list[int]]:
    """(number of hidden layers, tracked units per layer, width known per layer: its largest unit + 1) present in
    the table; the affine stage's rows (every unit of a layer) count for the width, not as tracked units."""
    layer, unit = df["layer"].to_numpy(), df["unit"].to_numpy()
    n_layers = int(layer.max()) + 1 if (layer >= 0).any() else 0
    m = (layer >= 0) & (unit >= 0)
    seen = np.zeros((n_layers, int(unit.max()) + 1 if m.any() else 0), dtype=bool)
    seen[layer[m], unit[m]] = True
    known = [int(np.flatnonzero(row)[-1]) + 1 if row.any() else 0 for row in seen]
    m &= _stage_mask(df, AFFINE_STAGE) == 0
    seen[:] = False
    seen[layer[m], unit[m]] = True
    return n_layers, [np.flatnonzero(row).tolist() for row in seen], known


def _stage_mask(df, stage: str) -> np.ndarray:
    """1 where a row is at ``stage``, else 0 (an int8 array, one per row)."""
    is_stage = np.array([str(c) == stage for c in df["stage"].cat.categories] + [False], dtype=np.int8)
    return is_stage[df["stage"].cat.codes.to_numpy()]


def _config(df) -> tuple[ExperimentConfig, list[str]]:
    variants = tuple(_variant_order(df))
    n_layers, tracked, known = _layout(df)
    steps = _steps(df)
    last = max(1, int(steps[-1]))
    units = tuple(sorted({u for t in tracked for u in t}))
    notes: list[str] = []
    query = df.attrs.get("bnviz.query")
    catalog = None
    if df.attrs.get("bnviz.data"):
        try:
            catalog = owndata.Known(df.attrs["bnviz.data"])
            notes.append(_data_note(catalog))
        except owndata.CsvError as exc:
            notes.append(f"The file's description of its data is not used: {exc}.")
    watched = df.attrs.get("bnviz.config")
    if watched:
        cfg, why = _from_config_json(watched, variants, n_layers, known, last)
        if cfg is not None:
            return cfg, notes
        notes.append(f"The file's description of its model does not match its table ({why}); settings inferred "
                     "from the table.")
    if query:
        cfg, why = _from_query(query, variants, n_layers, known, units, last, catalog)
        if cfg is not None:
            return cfg, notes
        notes.append(f"The file's share link does not match its table ({why}); settings inferred from the table.")
    widths = tuple(max(1, k) for k in known) or (1,)
    gaps = np.diff(steps)
    every = int(gaps[:-1].min()) if gaps.size > 1 else int(gaps[0]) if gaps.size else 1
    base = C.PRESETS[C.DEFAULT_PRESET].config
    activation, how = _activation(df)
    placement = _placement(df, variants)
    try:
        cfg = base.replace(variants=variants, widths=widths, units=units, steps=last,
                           snapshot_every=max(1, min(every, C.LIMITS["snapshot_every"][1])),
                           activation=activation, placement=placement)
    except ValueError as exc:
        raise ReplayError(f"the table does not describe a valid run: {str(exc)[:200]}") from None
    kind = df.attrs.get("bnviz.kind")
    src = "A CSV file carries no settings" if kind == "csv" else "This file carries no settings (no share link)"
    size = (f"{', '.join(map(str, widths))} units (from the rows of γ and β of every unit)"
            if _stage_mask(df, AFFINE_STAGE).any() else f"at least {', '.join(map(str, widths))} units (only "
            "tracked units are known, so γ and β of the others read as missing)")
    notes.append(f"{src}: inferred from the table: variants {', '.join(variants)}; {n_layers} hidden layer(s) of "
                 f"{size}; activation {activation} ({how}). Network type, dataset, learning rate, "
                 f"batch and probe size are shown as the {C.DEFAULT_PRESET} preset's (a fully connected network "
                 f"on the digits) and may differ from the recorded run: record to Parquet to keep them.")
    return cfg, notes


def _data_note(known) -> str:
    """What a replayed run trained on, when it was your own data, and whether this server could train it again."""
    try:
        owndata.default_store().info(known.h, known.target)
        here = "this server has that file, so the run's link trains it again"
    except (owndata.MissingData, owndata.CsvError):
        here = f"this server does not have that file: upload {known.name} to train the run again"
    target = f"column {known.target}" if known.target else "its default target column"
    return (f"Trained on your own data: {known.name} (data={known.h}), predicting {target} "
            f"({known.task}); {here}.")


def _from_config_json(text: str, variants, n_layers: int, known, last: int):
    """(config, "") from a watched model's config JSON (CONFIG_KEY) when it matches the table, else (None, why)."""
    try:
        cfg = C.config_from_json(text)
    except ValueError as exc:
        return None, str(exc)[:120]
    if set(cfg.variants) != set(variants):
        return None, f"it names variants {', '.join(cfg.variants)[:80]}"
    if len(cfg.widths) != n_layers or any(k > w for k, w in zip(known, cfg.widths)):
        return None, "its layers differ"
    try:
        return (cfg.replace(steps=last) if cfg.steps != last else cfg), ""
    except ValueError as exc:
        return None, str(exc)[:120]


def _from_query(query: str, variants, n_layers: int, known, units, last: int, catalog=None):
    """(config, "") from a share-link query string when it matches the table, else (None, why)."""
    try:
        params = parse_qs(query[:MAX_QUERY], keep_blank_values=True, max_num_fields=100)
    except ValueError:
        return None, "it cannot be parsed"
    decoded = urlstate.decode(params, catalog)
    cfg = decoded.config
    if decoded.warnings:
        return None, decoded.warnings[0][:120]
    if set(cfg.variants) != set(variants):
        return None, f"it names variants {', '.join(cfg.variants)[:80]}"
    if len(cfg.widths) != n_layers or any(k > w for k, w in zip(known, cfg.widths)):
        return None, "its layer widths differ"
    try:
        changes = {}
        if cfg.steps != last:
            changes["steps"] = last
        if units and tuple(u for u in cfg.units if u in units) != units:
            changes["units"] = units
        return (cfg.replace(**changes) if changes else cfg), ""
    except ValueError as exc:
        return None, str(exc)[:120]


def _pooled_stat(df, stage: str, stat: str):
    """Rows of one pooled statistic of one stage: a frame indexed by (variant, step, layer) with column value."""
    m = (df["stage"] == stage).to_numpy() & (df["stat"] == stat).to_numpy() & (df["unit"].to_numpy() == POOLED)
    sub = df.loc[m, ["variant", "step", "layer", "value"]]
    return sub.set_index(["variant", "step", "layer"])["value"]


def _activation(df) -> tuple[str, str]:
    """The activation that best explains the range of stage a (pooled p2 and p98 over the whole table)."""
    p2, p98 = _pooled_stat(df, "a", "p2").to_numpy(), _pooled_stat(df, "a", "p98").to_numpy()
    p2, p98 = p2[np.isfinite(p2)], p98[np.isfinite(p98)]
    if not p2.size or not p98.size:
        return C.PRESETS[C.DEFAULT_PRESET].config.activation, "no stage a in the table: the preset's"
    # Identity: a equals the activation's input, so their statistics agree.
    sat = (df["stat"] == "saturation").to_numpy() & (df["unit"].to_numpy() == POOLED)
    act_in = df.loc[sat, ["variant", "step", "layer", "stage"]]
    same = []
    for stage in ("x", "y"):
        keys = act_in[act_in["stage"] == stage].set_index(["variant", "step", "layer"]).index
        for stat in ("std", "p15", "p85"):
            a, i = _pooled_stat(df, "a", stat), _pooled_stat(df, stage, stat)
            both = a.index.intersection(i.index).intersection(keys)
            if len(both):
                same.append(np.allclose(a.loc[both].to_numpy(), i.loc[both].to_numpy(), rtol=1e-6, atol=1e-9))
    lo, hi = float(p2.min()), float(p98.max())
    if same and all(same):
        return "identity", "stage a equals its input"
    if lo > 0 and hi < 1:
        return "sigmoid", f"a stays within (0, 1): p2 >= {lo:.3g}, p98 <= {hi:.3g}"
    if lo >= 0:
        return "relu", f"a is never negative and p2 = {lo:.3g}"
    if lo >= -0.1701:
        return "gelu", f"a dips no lower than GELU's minimum -0.17 (p2 >= {lo:.3g})"
    if lo > -1 and hi < 1:
        return "tanh", f"a stays within (-1, 1): p2 >= {lo:.3g}, p98 <= {hi:.3g}"
    return C.PRESETS[C.DEFAULT_PRESET].config.activation, (f"a spans {lo:.3g} to {hi:.3g}, which no activation "
                                                           "explains: the preset's")


def _placement(df, variants) -> str:
    """'after' when normalized variants without an @placement feed x (not y) to the activation."""
    sat = df.loc[(df["stat"] == "saturation").to_numpy(), ["variant", "stage"]]
    plain = [t for t in variants if split_variant(t)[0] != "none" and split_variant(t)[1] is None]
    stages = set(sat[sat["variant"].isin(plain)]["stage"].astype(str))
    return "after" if stages == {"x"} else "before"


def histograms_from_quantiles(q, series, total, target_bins: int = 40, max_bins: int = 400,
                              bins: dict[int, tuple[float, int]] | None = None) -> list[stats.Histogram | None]:
    """Histograms implied by quantiles: one per row of ``q``, on stable bins per series.

    Parameters
    ----------
    q : array_like, shape (P, QQ_POINTS)
        Quantiles at probabilities (i + 0.5) / QQ_POINTS (StageStats.quantiles rows), one point per row;
        the rows of one series in time order.
    series : array_like of int, shape (P,)
        Which series (variant, layer, stage, unit) each row belongs to.
    total : array_like of int, shape (P,)
        The count each histogram sums to (the number of values the live histogram counted).
    bins : dict, optional
        Series -> (its first bin width, the doublings of it so far), for a series whose earlier rows were
        rebuilt by an earlier call (a run read in parts): read for the series it holds, and updated for every
        series of this call, so that the bins are those one call on all the rows would choose.

    Returns
    -------
    list of stats.Histogram, or None where a row is not finite (or beyond the float64 range).

    Notes
    -----
    The approximation: the quantile function is taken to be piecewise linear through the stored quantiles,
    i.e. each 1/QQ_POINTS of the mass is spread uniformly between consecutive quantiles; it is extended
    linearly to probabilities 0 and 1, so the outer 1/(2 QQ_POINTS) on each side lies within half a gap
    beyond the outer quantiles (the true minimum and maximum are not stored). Equal quantiles (a point mass,
    e.g. ReLU's zeros) keep their mass on that value. The bins are those stats.StableBins would choose for
    a series: nice_width of the first row's quantiles, then the same grid, its width doubled (for good)
    whenever a row's range needs more than ``max_bins`` bins. Expected counts are rounded to integers
    summing to ``total`` (the cumulative counts are rounded). Vectorized over rows: the 22,000 histograms of
    a full ioffe run take about 0.2 s.
    """
    q = np.sort(np.asarray(q, dtype=np.float64), axis=1)
    series = np.asarray(series, dtype=np.int64)
    total = np.asarray(total, dtype=np.int64)
    P = len(q)
    out: list[stats.Histogram | None] = [None] * P
    if P == 0:
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        lo = q[:, 0] - (q[:, 1] - q[:, 0]) / 2
        hi = q[:, -1] + (q[:, -1] - q[:, -2]) / 2
    ok = np.isfinite(q).all(axis=1) & np.isfinite(lo) & np.isfinite(hi)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return out
    rows = rows[np.lexsort((rows, series[rows]))]  # by series, then in the given (time) order
    sid = series[rows]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rows)]))
    w0, m0 = np.zeros(len(starts)), np.zeros(len(starts), dtype=np.int64)
    for k, s in enumerate(starts):
        carried = bins.get(int(sid[s])) if bins is not None else None
        if carried is None:
            w0[k] = stats.nice_width(q[rows[s]], target_bins)
        else:
            w0[k], m0[k] = carried
    w0 = w0[seg]
    lo_r, hi_r = lo[rows], hi[rows]
    # Fewest doublings of the series' first width that fit each row, then never fewer than before
    # (StableBins keeps a doubled width): a running maximum within each series.
    m = np.zeros(len(rows), dtype=np.int64)
    span = np.maximum(np.abs(lo_r), np.abs(hi_r))
    todo = np.arange(len(rows))
    for _ in range(2200):  # 2**2200 spans any float64 ratio
        w = np.ldexp(w0[todo], m[todo])
        fits = (w >= 4 * np.spacing(span[todo])) & (
            stats.bin_index(hi_r[todo], w) - stats.bin_index(lo_r[todo], w) < max_bins)
        fits |= ~np.isfinite(w)  # gave up: caught below
        todo = todo[~fits]
        if todo.size == 0:
            break
        m[todo] += 1
    m = np.maximum.accumulate(np.maximum(m, m0[seg]) + seg * 4096) - seg * 4096
    if bins is not None:
        ends = np.r_[starts[1:], len(rows)] - 1
        bins.update({int(sid[s]): (float(w0[e]), int(m[e])) for s, e in zip(starts, ends)})
    w = np.ldexp(w0, m)
    k_lo, k_hi = stats.bin_index(lo_r, w), stats.bin_index(hi_r, w)
    with np.errstate(over="ignore", invalid="ignore"):
        good = np.isfinite(w) & np.isfinite(k_lo * w) & np.isfinite((k_hi + 1.0) * w) & (k_hi - k_lo < max_bins)
    rows, w, k_lo, k_hi = rows[good], w[good], k_lo[good], k_hi[good]
    nb = (k_hi - k_lo + 1).astype(np.int64)
    knots_p = np.r_[0.0, QQ_PROBS, 1.0]
    chunk = max(1, 4_000_000 // ((int(nb.max(initial=1)) + 1) * len(knots_p)))
    for a in range(0, len(rows), chunk):
        r = rows[a:a + chunk]
        n = nb[a:a + chunk]
        j = np.arange(int(n.max()) + 1)
        edges = (k_lo[a:a + chunk, None] + j) * w[a:a + chunk, None]  # as Histogram.edges computes them
        edges[j > n[:, None]] = np.inf
        kq = np.column_stack([lo[r], q[r], hi[r]])
        # i = searchsorted "left" of each edge among the knots (kq[i-1] < e <= kq[i]): the number of knots below
        # it. A knot in bin k (bin_index agrees with the edges) has the edges 0..k-k_lo at or below it, so it is
        # below edges k-k_lo+1 on: counted per row by where each knot starts, and summed along the edges.
        p = np.clip(stats.bin_index(kq, w[a:a + chunk, None]) - k_lo[a:a + chunk, None] + 1, 0, n[:, None] + 1)
        width = len(j) + 1
        flat = (np.arange(len(r))[:, None] * width + p.astype(np.int64)).ravel()
        i = np.cumsum(np.bincount(flat, minlength=len(r) * width).reshape(len(r), width), axis=1)[:, :len(j)]
        jj = np.clip(i - 1, 0, len(knots_p) - 2)
        q0, q1 = np.take_along_axis(kq, jj, 1), np.take_along_axis(kq, jj + 1, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cdf = knots_p[jj] + (knots_p[jj + 1] - knots_p[jj]) * (edges - q0) / (q1 - q0)
        cdf = np.where(i == 0, 0.0, np.where(i >= len(knots_p), 1.0, cdf))  # P(X < edge)
        # Rounding the cumulative counts keeps every bin within one count of its expected mass and the
        # mass where it belongs (rounding bin by bin would pile the thin tails' remainders up anywhere).
        counts = np.diff(np.round(cdf * total[r, None]), axis=1)
        for k, row in enumerate(r):
            out[row] = stats.Histogram(float(w[a + k]), int(k_lo[a + k]), counts[k, :n[k]].astype(np.int64))
    return out

_N_UNIT = len(stats.UNIT_STATS)

_COL = {name: i for i, name in enumerate(SERIES_STATS)}


def _thin(steps: np.ndarray, cap: int | None) -> np.ndarray:
    if cap is None or len(steps) <= cap:
        return steps
    return steps[np.unique(np.linspace(0, len(steps) - 1, max(2, cap)).round().astype(int))]


def _lookup(cats, names) -> np.ndarray:
    """For each category, its index in ``names`` (-1 when absent)."""
    pos = {n: i for i, n in enumerate(names)}
    return np.array([pos.get(str(c), -1) for c in cats], dtype=np.int64)


def snapshots_from_table(df, config: ExperimentConfig | None = None, max_snapshots: int | None = MAX_SNAPSHOTS,
                         bins: dict[tuple, tuple[float, int]] | None = None) -> tuple[Snapshot, ...]:
    """Rebuild the run's snapshots from a table (read_table's or record.to_table's), oldest first.

    Every value the table holds lands where the live run kept it, so views.*, figures.* and
    claims.evidence read the same numbers; what it does not hold is NaN: per-unit drift at the first
    snapshot, γ/β of untracked units in a table without the affine stage's rows (vectors as long as the
    config's width, or the largest unit + 1), and, without the quantile block, the distributions
    (``hists == ()``, NaN quantiles). With the block, histograms are rebuilt by :func:`histograms_from_quantiles`
    with ``config.series_values(layer)`` counts per unit (pooled: min(that x width, POOL_N), as the live pooled
    histograms). ``config`` defaults to
    :func:`config_for`. More than ``max_snapshots`` steps are thinned evenly (first and last kept). ``bins``
    carries each series' histogram bins from one table to the next of the same run (its parts, read in order):
    (variant, layer, stage, unit) -> histograms_from_quantiles' state.
    """
    df = validate(df)
    cfg = config if config is not None else config_for(df)
    variants = _variant_order(df)
    all_steps = df["step"].to_numpy()
    every_step, s_i = distinct_inverse(all_steps, 0, C.LIMITS["steps"][1])
    steps = _thin(every_step, max_snapshots)
    m = np.isin(all_steps, steps) if len(steps) < len(every_step) else slice(None)
    if len(steps) < len(every_step):
        s_i = np.searchsorted(steps, all_steps[m])
    v_i = _lookup(df["variant"].cat.categories, variants)[df["variant"].cat.codes.to_numpy()[m]]
    stage_cats, stat_cats = df["stage"].cat.categories, df["stat"].cat.categories
    g_code, k_code = df["stage"].cat.codes.to_numpy()[m], df["stat"].cat.codes.to_numpy()[m]
    layer, unit, value = df["layer"].to_numpy()[m], df["unit"].to_numpy()[m], df["value"].to_numpy()[m]
    V, S, L, G = len(variants), len(steps), max(1, int(layer.max()) + 1), len(UNIT_STAGES)

    present = np.zeros((V, S), dtype=bool)
    present[v_i, s_i] = True
    run = np.full((V, S, len(RUN_STATS) + len(SMOOTH_STATS)), np.nan)
    col = _lookup(stat_cats, (*RUN_STATS, *SMOOTH_STATS))[k_code]
    sel = col >= 0
    run[v_i[sel], s_i[sel], col[sel]] = value[sel]
    per_layer = (*CHANGE_STATS, *ICS_STATS)
    lay = np.full((V, S, L, len(per_layer)), np.nan)
    col = _lookup(stat_cats, per_layer)[k_code]
    sel = col >= 0
    lay[v_i[sel], s_i[sel], layer[sel], col[sel]] = value[sel]

    affine = _affine(cfg, v_i, s_i, layer, unit, value, _lookup(stage_cats, (AFFINE_STAGE,))[g_code] == 0,
                     _lookup(stat_cats, ("gamma", "beta"))[k_code], S, L)

    # One point per (variant, step, layer, stage, unit), in that order: its statistics and quantiles.
    g = _lookup(stage_cats, UNIT_STAGES)[g_code]
    sel = g >= 0
    all_units = distinct(np.r_[POOLED, unit[sel]], POOLED, MAX_UNIT)
    NU = len(all_units)
    key = (((v_i[sel] * S + s_i[sel]) * L + layer[sel]) * G + g[sel]) * NU + np.searchsorted(all_units, unit[sel])
    points, inv = distinct_inverse(key, 0, V * S * L * G * NU - 1)
    k_sel, val_sel = k_code[sel], value[sel]
    table = np.full((len(points), len(SERIES_STATS)), np.nan)
    col = _lookup(stat_cats, SERIES_STATS)[k_sel]
    table[inv[col >= 0], col[col >= 0]] = val_sel[col >= 0]
    qcol = _lookup(stat_cats, QUANTILE_STATS)[k_sel]
    has_q = bool((qcol >= 0).any())
    quant = np.full((len(points), QQ_POINTS), np.nan, dtype=np.float32)
    with np.errstate(over="ignore"):  # beyond float32 (the live quantiles' type): infinite, so no histogram
        quant[inv[qcol >= 0], qcol[qcol >= 0]] = val_sel[qcol >= 0]
    p_u = all_units[points % NU]
    p_g = (points // NU) % G
    p_vsl = points // (NU * G)  # (variant, step, layer) of every point
    p_l = p_vsl % L
    hists: list = [None] * len(points)
    if has_q:
        widths = np.array([cfg.widths[li] if li < len(cfg.widths) else 0 for li in range(L)])
        widths = np.maximum(widths, int(all_units.max()) + 1)
        # values one unit's live histogram counted (a conv channel: every position; a watched layer: its own)
        n = np.array([cfg.series_values(li) if li < len(cfg.widths) else cfg.series_length for li in range(L)])
        total = np.where(p_u == POOLED, np.minimum(n[p_l] * widths[p_l], POOL_N), n[p_l])
        series = ((p_vsl // (L * S)) * L + p_l) * G * NU + p_g * NU + points % NU  # (variant, layer, stage, unit)
        local = None
        if bins is not None:
            keys = {int(i): (variants[int(i) // (L * G * NU)], int(i) // (G * NU) % L, UNIT_STAGES[int(i) // NU % G],
                             int(all_units[int(i) % NU])) for i in np.unique(series)}
            local = {i: bins[k] for i, k in keys.items() if k in bins}
        hists = histograms_from_quantiles(quant, series, total, bins=local)
        if bins is not None and local is not None:
            bins.update({keys[i]: state for i, state in local.items()})
    bounds = np.flatnonzero(np.r_[True, p_vsl[1:] != p_vsl[:-1], True]) if len(points) else np.zeros(1, np.int64)
    layers: dict[tuple[int, int], dict[int, LayerStats]] = {}
    for a, b in zip(bounds[:-1], bounds[1:]):
        vs, li = divmod(int(p_vsl[a]), L)
        v, s = divmod(vs, S)
        layers.setdefault((v, s), {})[li] = _layer(cfg, variants[v], li, p_u[a:b], p_g[a:b], table[a:b],
                                                    quant[a:b], hists[a:b], lay[v, s, li],
                                                    affine.get((v, s, li)))
    out = []
    for s, step in enumerate(steps):
        snap_variants = {}
        for v, token in enumerate(variants):
            if not present[v, s]:
                continue
            by_layer = layers.get((v, s), {})
            if sorted(by_layer) != list(range(len(by_layer))):
                gap = next(i for i in range(len(by_layer) + 1) if i not in by_layer)
                raise ReplayError(f"variant {token!r} at step {int(step)} has layers {sorted(by_layer)[:8]} but no "
                                  f"layer {gap}: layers must be numbered 0, 1, 2, ...")
            loss, acc, test_acc, div = run[v, s, :len(RUN_STATS)]
            landscape = run[v, s, len(RUN_STATS):]
            snap_variants[token] = VariantSnapshot(float(loss), float(acc), float(test_acc),
                                                   int(div) if math.isfinite(div) else None,
                                                   tuple(by_layer[i] for i in range(len(by_layer))),
                                                   Smoothness(*map(float, landscape))
                                                   if np.isfinite(landscape).any() else None)
        out.append(Snapshot(int(step), snap_variants, _nbytes(snap_variants)))
    return tuple(out)


def _affine(cfg: ExperimentConfig, v_i, s_i, layer, unit, value, at_affine, which, S: int, L: int):
    """(variant, step, layer) -> (γ, β) of every unit, float32 as the live run's, from the affine stage's rows
    (``which``: 0 for gamma, 1 for beta, -1 for another stat); NaN where a value was left out (undefined)."""
    sel = at_affine & (which >= 0)
    out: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    if not sel.any():
        return out
    grp = (v_i[sel] * S + s_i[sel]) * L + layer[sel]
    order = np.argsort(grp, kind="stable")
    grp, u, w, val = grp[order], unit[sel][order], which[sel][order], value[sel][order]
    bounds = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        vs, li = divmod(int(grp[a]), L)
        width = max(cfg.widths[li] if li < len(cfg.widths) else 0, int(u[a:b].max()) + 1)
        gb = np.full((2, width), np.nan, dtype=np.float32)
        gb[w[a:b], u[a:b]] = val[a:b]
        out[(*divmod(vs, S), li)] = (gb[0], gb[1])
    return out


def _layer(cfg: ExperimentConfig, token: str, li: int, p_u, p_g, table, quant, hists, per_layer,
           affine: tuple[np.ndarray, np.ndarray] | None = None) -> LayerStats:
    """One LayerStats from the points of one (variant, step, layer), sorted by stage then unit; γ and β from
    ``affine`` (every unit) when the table has them, else from stage y's tracked units (NaN for the others)."""
    units = tuple(int(u) for u in np.union1d([POOLED], p_u))  # POOLED (-1) first, then tracked ascending
    pos = np.searchsorted(np.asarray(units), p_u)
    n = len(units)
    width = max(cfg.widths[li] if li < len(cfg.widths) else 0, units[-1] + 1)
    stages, act, saturation = {}, None, np.full(n, np.nan)
    gamma = beta = None
    for g in np.unique(p_g):
        rows = np.flatnonzero(p_g == g)
        name = UNIT_STAGES[g]
        tab = np.full((n, len(SERIES_STATS)), np.nan)
        tab[pos[rows]] = table[rows]
        q = np.full((n, QQ_POINTS), np.nan, dtype=np.float32)
        q[pos[rows]] = quant[rows]
        found: list[stats.Histogram | None] = [None] * n
        for r in rows:
            found[pos[r]] = hists[r]
        kept = tuple(x for x in found if x is not None)
        h = kept if len(kept) == n else ()
        stages[name] = StageStats(units, tab[:, :_N_UNIT], tab[:, _COL["w1_prev"]], tab[:, _COL["w1_first"]], h, q)
        if np.isfinite(tab[:, _COL["saturation"]]).any():
            act, saturation = name, tab[:, _COL["saturation"]]
        if name == "y" and np.isfinite(tab[:, [_COL["gamma"], _COL["beta"]]]).any():
            gamma, beta = (np.full(width, np.nan, dtype=np.float32) for _ in range(2))
            tracked = np.asarray(units[1:], dtype=np.int64)
            gamma[tracked], beta[tracked] = tab[1:, _COL["gamma"]], tab[1:, _COL["beta"]]
    if affine is not None:
        gamma, beta = affine
    if act is None:  # as probe.activation_input: y when normalized before the activation, else x
        act = "y" if "y" in stages and cfg.placement_of(token) == "before" else "x"
    ordered = {name: stages[name] for name in UNIT_STAGES if name in stages}
    change = {name[:-len("_change")]: float(x) for name, x in zip(CHANGE_STATS, per_layer) if math.isfinite(x)}
    l2, cos = per_layer[len(CHANGE_STATS):]
    ics = (float(l2), float(cos)) if math.isfinite(l2) and math.isfinite(cos) else None
    return LayerStats(ordered, act, saturation, gamma, beta, change, ics)


def _nbytes(variants: dict) -> int:
    total = 0
    for vs in variants.values():
        for layer in vs.layers:
            for s in layer.stages.values():
                total += s.table.nbytes + s.drift_prev.nbytes + s.drift_first.nbytes + s.quantiles.nbytes
                total += sum(h.counts.nbytes for h in s.hists) + 64 * len(s.hists)
            total += sum(v.nbytes for v in (layer.gamma, layer.beta) if v is not None) + 256
    return total


@dataclass(frozen=True)
class Replay:
    """A replayed run: its snapshots, the closest config, and what the page should say about them."""

    name: str
    kind: str  # "csv" or "parquet"
    snapshots: tuple[Snapshot, ...]
    config: ExperimentConfig
    has_distributions: bool  # the file holds the quantile block: histograms, heatmap, Q-Q, what-if work
    notes: tuple[str, ...]  # one sentence each: what was inferred or approximated


def has_quantiles(df) -> bool:
    """Whether a table holds the quantile block (stats q00..q63)."""
    return any(str(c) in QUANTILE_STATS for c in df["stat"].cat.categories)


def load(data: bytes, name: str, max_bytes: int = MAX_BYTES, max_snapshots: int | None = MAX_SNAPSHOTS,
         max_rows: int = MAX_ROWS) -> Replay:
    """read_table + config_for + snapshots_from_table, with the notes to show; raises ReplayError."""
    df = read_table(data, name, max_bytes, max_rows)
    cfg, notes = _config(df)
    snaps = snapshots_from_table(df, cfg, max_snapshots)
    n_steps = len(_steps(df))
    if len(snaps) < n_steps:
        notes.append(f"{n_steps:,} snapshots in the file; {len(snaps)} evenly spaced ones are shown.")
    dists = has_quantiles(df)
    if dists:
        notes.append(f"Histograms are rebuilt from {QQ_POINTS} stored quantiles per series (an approximation: "
                     "shapes are right, the extreme tails are not stored).")
    else:
        notes.append("This file holds no distributions (recorded without --quantiles): the histograms, the "
                     "heatmap, the Q-Q plot and the what-if lab have nothing to draw; every statistic is there.")
    return Replay(str(name)[:200], df.attrs["bnviz.kind"], snaps, cfg, dists, tuple(notes))


class ReplayedRun:
    """A replay dressed as a finished Run: the attributes the page reads from a live run (config, history,
    step, state, status, notes, error), so that every panel, the evidence board and the exports work on it
    unchanged. It never trains: its state is ``"replay"``."""

    state = "replay"
    error: str | None = None
    alive = False

    def __init__(self, replay: Replay) -> None:
        from bnviz.table.history import History

        self.replay = replay
        self.config = replay.config
        snaps = replay.snapshots
        self.history: History[Snapshot] = History(replay.config.snapshot_every, cap=max(2, len(snaps)))
        for snap in snaps:
            self.history.append(snap)
        self.step = snaps[-1].step if snaps else 0
        self.status = {}
        for token in replay.config.variants:
            d = snaps[-1].variants[token].diverged_at if snaps and token in snaps[-1].variants else None
            self.status[token] = (VariantStatus("diverged", d, f"{token} diverged at step {d}") if d is not None
                                  else VariantStatus())
        self.notes: list[str] = []  # the replay's own notes are shown by the page's replay bar


class StoredRun(ReplayedRun):
    """A run from the store of finished runs (:mod:`bnviz.table.store`), dressed as the finished Run of ``config``:
    the registry hands it to the page instead of training the link again. Its state is ``"finished"``, its config
    is the one looked up (a stored run that ended early because every variant diverged says so in its replay's
    steps, not in its identity), and its transport calls do nothing: it never trains."""

    state = "finished"

    def __init__(self, replay: Replay, config: ExperimentConfig) -> None:
        super().__init__(replay)
        self.config = config
        self.steps_per_second: float | None = None  # the speed control sets it; nothing reads it here
        self.notes = list(replay.notes)  # what is approximated (histograms from quantiles), shown under the status

    def start(self, paused: bool = False) -> StoredRun:
        return self

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def step_once(self, n: int = 1) -> None:
        pass

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        pass

    def join(self, timeout: float | None = None) -> bool:
        return True
