"""Progress lines, result tables and JSON files of the load benchmarks.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tests.e2e.harness import OUT

ROOT = Path(__file__).resolve().parents[1]

_T0 = time.time()


def log(*parts) -> None:
    """Progress on stderr (the results go to stdout and JSON at the end)."""
    print(f"[{time.time() - _T0:7.1f}s]", *parts, file=sys.stderr, flush=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks still stop the server and write the JSON."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def write_json(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(data, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__")
                               else str(o)))
    return path


def table(rows: list[dict], cols: list[str]) -> str:
    """A compact fixed-width table."""
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.rjust(w) for x, w in zip(xs, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(x) for x in cells)])
