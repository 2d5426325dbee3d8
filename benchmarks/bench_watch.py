"""What watching costs a training loop: examples/watch_resnet.py's ResNet-18 on the digits, plain against watched
by ``bnviz.watch`` at ``every=50``.

Each run is a fresh process; the figure is the loop's own wall time, from building the watcher (its worker process
included) to closing it (the last part written), against the same loop unwatched. Runs alternate in ABBA order, so
a drift of this shared machine's speed favours neither side; the ratio is given as the ratio of the medians and as the
median of the back-to-back pairs' ratios. benchmarks/README.md quotes the figures.

    python -m benchmarks.bench_watch [--pairs 3] [--steps 300]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "watch_resnet.py"


def loop_seconds(steps: int, out: str | None) -> float:
    cmd = [sys.executable, str(EXAMPLE), "--steps", str(steps), "--every", "50", "--json"]
    cmd += ["--out", out] if out else ["--plain"]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    plain, watched = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            out = str(Path(tmp) / f"run{i}")
            if i % 2 == 0:
                plain.append(loop_seconds(args.steps, None))
                watched.append(loop_seconds(args.steps, out))
            else:
                watched.append(loop_seconds(args.steps, out))
                plain.append(loop_seconds(args.steps, None))
        parts = sorted(p.name for p in Path(tmp, "run0").glob("part-*.parquet"))
    p, w = statistics.median(plain), statistics.median(watched)
    pairs = [wt / pt for pt, wt in zip(plain, watched)]
    print(f"ResNet-18 on the digits, {args.steps} steps, batch 64 (examples/watch_resnet.py)")
    print(f"plain loop:              {p:7.2f} s   runs: {', '.join(f'{t:.2f}' for t in plain)}")
    print(f"watched, every=50:       {w:7.2f} s   runs: {', '.join(f'{t:.2f}' for t in watched)}  "
          f"({len(parts)} parts in a run folder)")
    print(f"ratio watched / plain: {w / p:.3f}x (medians); {statistics.median(pairs):.3f}x (median of the "
          f"back-to-back pairs: {', '.join(f'{r:.3f}' for r in pairs)})  (goal <= 1.10x)")


if __name__ == "__main__":
    main()
