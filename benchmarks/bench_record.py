"""How much recording costs over plain training: `record --preset ioffe` (or `ioffe-conv`) vs a plain PyTorch
loop training the same twins.

Both run as fresh processes in the same invocation, alternating in ABBA order, so the machine's state
is the same for both; each figure is the median of --repeats runs, wall time from launch to exit (interpreter and
imports included for both). The speed of this shared 2-core virtual machine drifts by 10-20% from
minute to minute, so the ratio is also given as the median of the ratios of each back-to-back pair. The
record run writes Parquet at the preset's cadence (every 25 steps: 201 snapshots for ioffe, 121 for
ioffe-conv). Prints the figures and the ratio; benchmarks/README.md quotes them.

    python -m benchmarks.bench_record [--repeats 3] [--preset ioffe-conv]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", choices=("ioffe", "ioffe-conv"), default="ioffe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ioffe.parquet"
        record = [sys.executable, "-m", "bnviz", "record", "--preset", args.preset, "--out", str(out), "--quiet"]
        baseline = [sys.executable, str(ROOT / "benchmarks" / "baseline_twins.py")]
        if args.preset == "ioffe-conv":
            baseline += ["3000", "--conv"]  # the preset's 3,000 steps
        base_t, rec_t = [], []
        for i in range(args.repeats):  # ABBA order: a drift of the machine's speed favours neither side
            if i % 2 == 0:
                base_t.append(wall(baseline))
                rec_t.append(wall(record))
            else:
                rec_t.append(wall(record))
                base_t.append(wall(baseline))
        table = pd.read_parquet(out)
    b, r = statistics.median(base_t), statistics.median(rec_t)
    print(f"plain PyTorch twins (no probes):   {b:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in base_t)}")
    print(f"record --preset {args.preset} (Parquet): {r:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in rec_t)}")
    print(f"snapshots recorded: {table.step.nunique()}, rows: {len(table):,}, file: {out.name}")
    pairs = [rt / bt for bt, rt in zip(base_t, rec_t)]
    q1, _, q3 = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else (pairs[0],) * 3
    print(f"ratio record / plain: {r / b:.3f}x (medians); {statistics.median(pairs):.3f}x (median of the "
          f"back-to-back pairs, quartiles {q1:.3f}-{q3:.3f}: {', '.join(f'{p:.3f}' for p in pairs)})  "
          f"(target <= {1.10 if args.preset == 'ioffe' else 1.20:.2f}x)")


if __name__ == "__main__":
    main()
