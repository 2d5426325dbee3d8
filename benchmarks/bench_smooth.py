"""What Santurkar's smoothness along the gradient (bnviz/measure/smooth.py) adds to the statistics worker.

For each preset, the prober's work on one snapshot that is due for the gradient measures (the gradient shift
and the smoothness, on the next mini-batch), timed with the smoothness and without it (the same prober with
measure.smooth.smoothness stubbed out), alternating; then the worker's mean cost per snapshot at the preset's
cadence (one snapshot in ics_every / snapshot_every is due) and the summarizer's cost for scale.

    python -m benchmarks.bench_smooth [--repeats 7] [--presets ioffe santurkar ioffe-conv santurkar-dln]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bnviz import config as C
from bnviz.measure import probe, smooth
from bnviz.measure.snapshot import Summarizer
from bnviz.training import data
from bnviz.training.model import StateCopier, build_twins


def _snapshot(cfg, nets, due: bool) -> probe.WeightSnapshot:
    batch = np.arange(cfg.batch) if due else None  # the batch's size is what costs, not which examples it holds
    return probe.WeightSnapshot(cfg.ics_every, {t: probe.WeightVariant(0.5, None, StateCopier(n).copy()[0], batch)
                                                for t, n in nets.items()})


def _time(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def bench(preset: str, repeats: int) -> None:
    cfg = C.PRESETS[preset].config
    ds = data.load(cfg)
    nets = build_twins(cfg, ds.n_inputs, ds.n_outputs)
    ws, plain = _snapshot(cfg, nets, True), _snapshot(cfg, nets, False)
    prober = probe.Prober(cfg, probe.Arrays.of(ds))
    summarizer = Summarizer(cfg.activation, cfg.units)
    real = smooth.smoothness
    with_, without, other, summ = [], [], [], []
    prober.raw(ws)  # warm caches
    for _ in range(repeats):
        smooth.smoothness = real
        with_.append(_time(prober.raw, ws))
        smooth.smoothness = lambda *a, **k: None
        without.append(_time(prober.raw, ws))
        other.append(_time(prober.raw, plain))
        summ.append(_time(summarizer.summarize, prober.raw(ws)))
    smooth.smoothness = real
    w, wo, o, s = (statistics.median(x) * 1000 for x in (with_, without, other, summ))
    due = cfg.snapshot_every / cfg.ics_every if cfg.ics_every else 0.0  # share of snapshots that measure
    mean_wo = s + o + due * (wo - o)
    print(f"{preset:14s} probe of a due snapshot {wo:6.1f} ms without, {w:6.1f} ms with; of another {o:5.1f} ms; "
          f"summary {s:5.1f} ms. Worker per snapshot at its cadence (1 in {1 / due:.0f} due): {mean_wo:5.1f} ms "
          f"without, {mean_wo + due * (w - wo):5.1f} ms with (+{100 * due * (w - wo) / mean_wo:.0f} %)")


def main() -> None:
    threadpool_limits(1, "blas")  # as the statistics worker runs (measure/worker.py)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--presets", nargs="+", default=["ioffe", "santurkar", "ioffe-conv", "santurkar-dln"])
    args = ap.parse_args()
    for name in args.presets:
        bench(name, args.repeats)


if __name__ == "__main__":
    main()
