"""Command line: ``python -m bnviz presets``, ``python -m bnviz record --preset NAME --out FILE``,
``python -m bnviz sweep --preset NAME --grid SPEC ...`` and ``python -m bnviz view DIR``.

``record`` trains headless through the same Run the app uses and writes the tidy table (columns
variant, step, layer, stage, unit, stat, value) as CSV or Parquet by the file's suffix; ``--data FILE.csv
[--target COLUMN]`` trains the preset's network on your own data instead of the preset's; ``--quantiles``
adds 64 quantiles per series (stats q00..q63) so that the app can replay the distributions too. A
Parquet file also carries the run's share-link query string as metadata (``bnviz.query``). An ``--out`` with
no suffix (or ending in /) names a run folder instead, written in parts as the run goes (bnviz.table.parts),
which the page can follow while it is written. ``--link URL`` records the run a share link describes instead of a
preset's, and ``--store`` also keeps the run in the store of finished runs (bnviz.table.store). Bad arguments
exit with status 2 and one line on stderr, in plain words, ending with the help command as it is typed,
e.g. ``(see python -m bnviz record --help)``.

``sweep (--preset NAME | --link URL) --grid SPEC [SPEC ...] [--engine local|ray]`` trains every combination of
a grid of share-link values into the store of finished runs (bnviz.sweep), skipping the runs already there.

``view DIR [--port N]`` opens the page on a run folder that another process writes (``bnviz.watch(...,
out=DIR)``): it checks that DIR holds a run, then runs ``streamlit run app.py -- --run DIR`` (app.py beside the
package, in a source checkout), and the page follows the folder live.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from bnviz.config import PRESETS, TABLE_CAP
from bnviz.urlstate import BY_NAME

EXIT_USAGE = 2
RECORD_HISTORY_CAP = TABLE_CAP  # snapshots kept by record; longer runs are thinned evenly
# Weight snapshots (about 230 kB each for ioffe) that may wait for the stats worker: enough to cover its
# start-up (imports, ~2 s of training) so that training never waits for it.
RECORD_BACKLOG = 128


PROG = "python -m bnviz"  # the command as it is typed; argparse's prog, so "usage:" and "see ... --help" agree


class _Parser(argparse.ArgumentParser):
    commands: dict[str, argparse.ArgumentParser]  # the top parser's subcommands, by name (set by _parser)

    def error(self, message: str) -> NoReturn:  # one clear line instead of argparse's usage block
        sys.stderr.write(f"bnviz: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _fail(message: str, command: str = "record") -> int:
    sys.stderr.write(f"bnviz: error: {message} (see {PROG} {command} --help)\n")
    return EXIT_USAGE


def _setting(name: str):
    """An argparse type: the share link's field ``name``, read and refused by the link's own rule."""
    f = BY_NAME[name]

    def read(text: str):
        try:
            return f.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text.strip() or 'an empty value'} is not {f.rule.allowed}") from None
    return read


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    parser.commands = {"presets": sub.add_parser("presets", help="list the presets, one line each")}
    rec = sub.add_parser("record", help="train a preset headless and write the tidy table")
    parser.commands["record"] = rec
    which = rec.add_mutually_exclusive_group(required=True)
    which.add_argument("--preset", help=f"one of: {', '.join(PRESETS)}")
    which.add_argument("--link", help="a share link (the page's address, or its query string): the run it describes")
    rec.add_argument("--steps", type=_setting("steps"), help="training steps (default: the preset's)")
    rec.add_argument("--seed", type=_setting("seed"), help="random seed (default: the preset's)")
    rec.add_argument("--snapshot-every", type=_setting("every"),
                     help="steps between snapshots (default: the preset's)")
    rec.add_argument("--data", help="train on your own data: a CSV file of numeric feature columns and a target "
                     "column (kept in the data store under its content hash, which the table's link names)")
    rec.add_argument("--target", help="with --data: the column to predict (default: one named label or target, "
                     "else the last)")
    rec.add_argument("--out", required=True, help="output file, .csv or .parquet; or a run folder (a name with no "
                     "suffix, or ending in /), written in parts as the run goes, so that the page can follow it")
    rec.add_argument("--quantiles", action="store_true", help="also write the 64 quantiles of every series "
                     "(stats q00..q63), so the app's replay can draw histograms and Q-Q plots; about 5x "
                     "the rows (the full ioffe run: ~9 MB as Parquet, ~67 MB as CSV)")
    rec.add_argument("--store", action="store_true", help="also keep the run in the store of finished runs "
                     "($BNVIZ_RUNS, else bnviz/runs in the cache folder), where the page opens it without training; "
                     "needs --out FILE.parquet --quantiles")
    rec.add_argument("--inline", action="store_true", help="compute statistics on the training thread "
                     "instead of a worker process (slower; for debugging)")
    rec.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep = sub.add_parser("sweep", help="train every run of a grid of settings into the store of runs",
                           description="Train every combination of a grid of share-link settings, on local processes "
                           "or a Ray cluster, into the store of finished runs ($BNVIZ_RUNS, else bnviz/runs in the "
                           "cache folder); runs already there are skipped, so the same command resumes.")
    parser.commands["sweep"] = sweep
    start = sweep.add_mutually_exclusive_group(required=True)
    start.add_argument("--preset", help=f"start from a preset, one of: {', '.join(PRESETS)}")
    start.add_argument("--link", help="start from a share link (the page's address, or its query string)")
    sweep.add_argument("--grid", nargs="+", required=True, metavar="SPEC",
                       help="settings to vary, by their share-link names: seed=0-9 (a range of whole numbers), "
                       "lr=0.01,0.1,1 (a list); widths and variants separate alternatives by /, such as "
                       "widths=100,100/50,50,50; every combination is one run")
    sweep.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local processes (default) or Ray (pip install -r requirements-ray.txt)")
    sweep.add_argument("--address", help="with --engine ray: a running Ray cluster's address, such as "
                       "10.0.0.5:6379 (default: start a local Ray)")
    sweep.add_argument("--workers", type=_workers, help="runs trained at once (default: one per core; with Ray "
                       "and no --address, the local Ray's CPUs)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    view = sub.add_parser("view", help="open the page on a run folder that a training writes (bnviz.watch's out=)",
                          description="Serve the page on a run folder (bnviz.watch's out=, or record --out DIR) and "
                          "follow it as it is written: new snapshots appear within about two seconds. Ctrl-C stops "
                          "the page; the training goes on.")
    parser.commands["view"] = view
    view.add_argument("folder", metavar="DIR", help="the run folder, e.g. runs/resnet")
    view.add_argument("--port", type=_port, help="the page's port (default: Streamlit's, 8501 or the next free)")
    _verdicts_parser(sub, parser.commands)
    return parser


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text.strip() or 'an empty value'} is not a number of workers (1 or more)")
    return n


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text.strip() or 'an empty value'} is not a port number (1 to 65535)")
    return port


def _presets() -> int:
    width = max(len(name) for name in PRESETS)
    for name, preset in PRESETS.items():
        print(f"{name:<{width}}  {preset.shows}")
    return 0


def _own_data(path: str, target: str) -> dict:
    """The config fields that train on the CSV file at ``path`` (kept in the data store); raises ValueError in
    words."""
    from bnviz import owndata

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"--data: cannot read {path!r} ({exc.strerror or type(exc).__name__})") from None
    name = Path(path).name
    prepared = owndata.prepare(owndata.read(data, name), target)
    h = owndata.default_store().put(data, name)
    return owndata.config_changes(h, target, prepared.info)


def _names_folder(out: str) -> bool:
    """Whether ``--out`` names a run folder: it ends in a slash, is a folder, or has no suffix at all (a name
    ending in .csv or .parquet is always a file)."""
    if out.lower().endswith((".csv", ".parquet")):
        return False
    return out.endswith(("/", os.sep)) or Path(out).is_dir() or not Path(out).suffix


def _file_problem(out: str) -> str:
    """Why ``--out`` cannot take the table file (found now, not after minutes of training); "" when it can."""
    if not out.lower().endswith((".csv", ".parquet")):
        return f"--out must end in .csv or .parquet, or name a folder, got {out!r}"
    if Path(out).is_dir():
        return f"--out {out!r} is a directory; give a file name ending in .csv or .parquet"
    if not Path(out).resolve().parent.is_dir():
        return f"--out: the folder {str(Path(out).parent)!r} does not exist"
    return ""


def _folder_problem(out: str) -> str:
    """Why ``--out`` cannot take a run folder; "" when it can (the folder is then made, parents and all)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        return f"--out {out!r} is a file, not a folder"
    try:
        if path.is_dir() and not (path / "run.json").exists() and any(path.iterdir()):
            return f"--out {out!r} holds files but no bnviz run; give a new or empty folder"
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".bnviz-write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"--out: cannot write to the folder {out!r} ({exc.strerror or type(exc).__name__})"
    return ""


def _from_link(link: str):
    """(preset, config) of a share link, or the first thing wrong with it, in the link's own words."""
    from urllib.parse import parse_qs, urlsplit

    from bnviz.urlstate import decode

    query = urlsplit(link).query if "?" in link or "://" in link else link
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=100)
    except ValueError:
        return f"--link {link[:80]!r} is not a share link (name=value pairs joined by &)"
    decoded = decode(params)
    if decoded.warnings:
        return f"--link: {decoded.warnings[0]}"
    return decoded.preset, decoded.config


def _record(args: argparse.Namespace) -> int:
    if args.link is not None:
        linked = _from_link(args.link)
        if isinstance(linked, str):
            return _fail(linked)
        if args.data is not None or args.target is not None:
            return _fail("--link names its data itself (data=); --data and --target go with --preset")
        preset, base = linked
    elif args.preset not in PRESETS:
        return _fail(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
    else:
        preset, base = args.preset, PRESETS[args.preset].config
    folder = _names_folder(args.out)
    if not folder and (problem := _file_problem(args.out)):
        return _fail(problem)
    if args.store and (folder or not args.out.lower().endswith(".parquet") or not args.quantiles):
        return _fail("--store keeps the Parquet table with its quantiles: use --out FILE.parquet --quantiles")
    changes = {k: v for k, v in (("steps", args.steps), ("seed", args.seed),
                                 ("snapshot_every", args.snapshot_every)) if v is not None}
    if args.target is not None and args.data is None:
        return _fail("--target names a column of --data FILE.csv; give --data too")
    if args.data is not None:
        try:
            changes.update(_own_data(args.data, args.target or ""))
        except ValueError as exc:  # owndata.CsvError: one line naming the file and the column or row
            return _fail(str(exc))
    try:
        config = base.replace(**changes)
    except ValueError as exc:  # settings valid one by one but not together; config says why in words
        return _fail(str(exc).removeprefix("invalid experiment config: "))
    if folder and (problem := _folder_problem(args.out)):  # last: it makes the folder
        return _fail(problem)

    from urllib.parse import urlencode

    from tqdm import tqdm

    from bnviz.owndata import metadata
    from bnviz.table.parts import PartRecorder
    from bnviz.table.record import TableFile
    from bnviz.training.run import Run
    from bnviz.urlstate import encode

    # The table is encoded where the statistics are made (the worker process) and written there: a file at the
    # end, a run folder in parts as the snapshots come (always with the quantiles, so that every panel draws).
    query = urlencode(encode(preset, config), safe=",")
    table = (PartRecorder(args.out, config, query=query, data=metadata(config)) if folder
             else TableFile(args.out, query=query, quantiles=args.quantiles, cap=RECORD_HISTORY_CAP,
                            data=metadata(config)))
    run = Run(config, stats_in="inline" if args.inline else "process", quick_first=False,
              backlog=RECORD_BACKLOG,  # no page waits for a first chart
              distributions=args.quantiles or folder,  # histograms and quantiles only where the table holds them
              table=table)
    t0 = time.perf_counter()
    if folder and not args.quiet:
        sys.stderr.write(f"bnviz: writing the run folder {args.out}; follow it live with {PROG} view {args.out}\n")
    run.start()
    with tqdm(total=config.steps, unit="step", file=sys.stderr, disable=args.quiet,
              desc=f"record {preset}") as bar:
        while not run.join(timeout=0.2):
            bar.update(run.step - bar.n)
        bar.update(run.step - bar.n)
    for note in run.notes:
        sys.stderr.write(f"bnviz: note: {note}\n")
    for status in run.status.values():
        if status.state != "training":
            sys.stderr.write(f"bnviz: {status.message}\n")
    if run.state != "finished":
        sys.stderr.write(f"bnviz: error: run {run.state}: {run.error or ''}\n")
        return 1
    if not args.quiet:
        sys.stderr.write(f"bnviz: wrote {run.written} snapshots to {args.out} "
                         f"({time.perf_counter() - t0:.1f} s in all)\n")
    if args.store:
        from bnviz.table.store import RunStore, StoreError

        store = RunStore()
        try:
            path = store.put(config, Path(args.out).read_bytes())
        except (StoreError, OSError) as exc:
            sys.stderr.write(f"bnviz: error: {exc}\n")
            return 1
        if not args.quiet:
            sys.stderr.write(f"bnviz: stored the run as {path}\n")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from bnviz import sweep
    from bnviz.table.store import RunStore, StoreError

    if args.link is not None:
        linked = _from_link(args.link)
        if isinstance(linked, str):
            return _fail(linked, "sweep")
        preset, base = linked
    elif args.preset not in PRESETS:
        return _fail(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}", "sweep")
    else:
        preset, base = args.preset, PRESETS[args.preset].config
    if args.address is not None and args.engine != "ray":
        return _fail("--address names a Ray cluster: give --engine ray too", "sweep")
    try:
        todo = sweep.jobs(preset, base, sweep.parse_grid(args.grid))
    except ValueError as exc:
        return _fail(f"--grid {exc}", "sweep")
    store = RunStore()
    if args.engine == "ray" and args.address is None and not args.quiet:
        sys.stderr.write("bnviz: starting a local Ray...\n")
    report = _SweepReport(len(todo), args.engine, args.quiet, store.skipped)
    try:
        outcomes = sweep.run(todo, store, engine=args.engine, address=args.address, workers=args.workers,
                             on_outcome=report.outcome, on_start=report.start)
    except sweep.Unreachable as exc:
        return _fail(str(exc), "sweep")
    except StoreError as exc:
        report.close()
        sys.stderr.write(f"bnviz: error: {exc}; {_runs(report.kept)} of the sweep in the store\n")
        return 1
    except KeyboardInterrupt:
        report.close()
        sys.stderr.write(f"bnviz: interrupted: {_runs(report.kept)} stored, {len(todo) - report.kept} left; "
                         "the same command resumes\n")
        return 130
    report.close()
    failed = [o for o in outcomes if o.state == "failed"]
    counts = {state: sum(o.state == state for o in outcomes) for state in ("stored", "skipped", "failed")}
    diverged = sum(bool(o.diverged) for o in outcomes if o.state == "stored")
    sys.stderr.write(f"bnviz: {_runs(len(outcomes))}: {counts['stored']} trained and stored"
                     f"{f' ({diverged} with diverged variants)' if diverged else ''}, {counts['skipped']} already in "
                     f"the store, {counts['failed']} failed; the store: {store.folder}\n")
    return 1 if failed else 0


def _runs(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


class _SweepReport:
    """What the sweep command says as its runs come: the plan, a progress bar, a line per failed or diverged run."""

    def __init__(self, total: int, engine: str, quiet: bool, skipped: list[str]) -> None:
        self.total, self.engine, self.quiet = total, engine, quiet
        self.skipped = skipped  # the store's sentences on files it could not use, found before training
        self.kept = 0  # runs of the sweep in the store: skipped or stored now
        self.bar = None

    def start(self, skipped: int, to_train: int, workers: int) -> None:
        from tqdm import tqdm

        for note in self.skipped:
            sys.stderr.write(f"bnviz: note: {note} It is trained again.\n")
        if not to_train:
            sys.stderr.write(f"bnviz: {_runs(self.total)}: all already in the store\n")
            return
        sys.stderr.write(f"bnviz: {_runs(self.total)}: {skipped} already in the store, {to_train} to train on "
                         f"{self.engine} ({workers} worker{'s' if workers != 1 else ''})\n")
        self.bar = tqdm(total=to_train, unit="run", file=sys.stderr, disable=self.quiet, desc="sweep")

    def outcome(self, o) -> None:
        if o.state in ("stored", "skipped"):
            self.kept += 1
        if o.state == "skipped":
            return
        name = o.job.label or "the run"
        if o.state == "failed":
            self._say(f"bnviz: failed: {name}: {o.error}")
        elif o.diverged:
            where = ", ".join(f"{token} at step {step}" for token, step in o.diverged.items())
            self._say(f"bnviz: diverged: {name}: {where} (stored)")
        if self.bar is not None:
            self.bar.update(1)

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            sys.stderr.write(line + "\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def app_path() -> Path:
    """The page's script: app.py beside the bnviz package (a source checkout)."""
    return Path(__file__).resolve().parent.parent / "app.py"


def _view(args: argparse.Namespace) -> int:
    from bnviz.table.parts import NoRun, open_run

    try:
        open_run(args.folder)  # found now, not by a page that opens on nothing
    except NoRun as exc:
        return _fail(str(exc), "view")
    app = app_path()
    if not app.is_file():
        return _fail(f"the page's script app.py is not beside the bnviz package (looked for {app}); view runs from "
                     "a source checkout of bnviz", "view")
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
               *(["--server.port", str(args.port)] if args.port else []), "--", "--run", args.folder]
    sys.stdout.flush()
    sys.stderr.flush()
    # This process becomes the server, in the same folder (DIR as typed is what the page names): Ctrl-C and
    # signals reach it directly.
    os.execv(sys.executable, command)


# ------------------------------------------------------------------------------------------ verdicts

def _verdicts_parser(sub, commands: dict) -> None:
    ver = sub.add_parser("verdicts", help="judge the claims on a preset's runs at several seeds",
                         description="Judge every claim on a preset's runs at several seeds, each at its final step, "
                         "and print per claim how many seeds gave each verdict and the median and range of its "
                         "figure. Runs missing from the store of finished runs ($BNVIZ_RUNS) are trained first "
                         "(python -m bnviz sweep's engine).")
    commands["verdicts"] = ver
    ver.add_argument("--preset", action="append", required=True, help=f"one of: {', '.join(PRESETS)} (repeat it "
                     "for several presets)")
    ver.add_argument("--seeds", required=True, type=_seeds, help="the seeds: 0-9, 0,3,7 or 0-3,8")
    ver.add_argument("--steps", type=_setting("steps"), help="training steps (default: the preset's)")
    ver.add_argument("--snapshot-every", type=_setting("every"), help="steps between snapshots (default: the "
                     "preset's)")
    ver.add_argument("--engine", choices=("local", "ray"), default="local", help="where missing runs train: local "
                     "processes (default) or Ray")
    ver.add_argument("--address", help="with --engine ray: the address of an existing Ray cluster")
    ver.add_argument("--markdown", action="store_true", help="print the verdict table of docs/claims.md (claims as "
                     "rows, presets as columns), after the command that made it")


MAX_SEEDS = 100


def _seeds(text: str) -> list[int]:
    """An argparse type: seeds as '0-9', '0,3,7' or '0-3,8', in order, each once."""
    seed = BY_NAME["seed"]
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            first = seed.parse(lo)
            last = seed.parse(hi) if sep else first
            if last < first:
                raise ValueError
            out += range(first, min(last, first + MAX_SEEDS) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text.strip() or 'an empty value'} is not a list of seeds (whole numbers "
                                         "from 0, e.g. 0-9, 0,3,7 or 0-3,8)") from None
    out = list(dict.fromkeys(out))
    if len(out) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"{text.strip()} names {len(out)} seeds; at most {MAX_SEEDS}")
    return out


def _verdicts(args: argparse.Namespace, argv: list[str]) -> int:
    unknown = [p for p in args.preset if p not in PRESETS]
    if unknown:
        return _fail(f"unknown preset {unknown[0]!r}; choose one of: {', '.join(PRESETS)}", "verdicts")
    if args.address is not None and args.engine != "ray":
        return _fail("--address names a Ray cluster: give --engine ray too", "verdicts")
    changes = {k: v for k, v in (("steps", args.steps), ("snapshot_every", args.snapshot_every)) if v is not None}
    bases = {}
    for name in dict.fromkeys(args.preset):
        try:
            bases[name] = PRESETS[name].config.replace(**changes)
        except ValueError as exc:
            return _fail(str(exc).removeprefix("invalid experiment config: "), "verdicts")

    from bnviz.present.claims import across, evidence
    from bnviz.table.store import RunStore

    store = RunStore()
    judged: dict[str, dict[int, list | None]] = {}
    for name, base in bases.items():
        failures = _train_missing(name, base, args.seeds, store, args.engine, args.address)
        if isinstance(failures, int):
            return failures
        judged[name] = {}
        for i, seed in enumerate(args.seeds, 1):
            cfg = base.replace(seed=seed)
            sys.stderr.write(f"bnviz: judging {name} seed {seed} ({i}/{len(args.seeds)})\n")
            skipped = len(store.skipped)
            stored = store.get(cfg)
            if stored is None:
                failures.setdefault(seed, store.skipped[-1] if len(store.skipped) > skipped
                                    else store.failure(cfg) or "no stored run")
                judged[name][seed] = None
            else:
                judged[name][seed] = evidence(stored.snapshots, cfg)
        for seed, why in failures.items():
            sys.stderr.write(f"bnviz: {name} seed {seed} failed: {why}\n")
    if args.markdown:
        print(_verdict_table(judged, args.seeds, argv))
        return 0
    for name, by_seed in judged.items():
        print(f"{name}, seeds {across.seed_list(args.seeds)}:")
        titles = {v.claim: v.title for vs in by_seed.values() for v in vs or ()}
        if not titles:
            print(f"  no verdict: {across.failed_text(by_seed)}")
        for a in across.across(by_seed):
            print(f"  {a.claim} {titles[a.claim]}: {a.sentence()}")
    return 0


def _train_missing(preset: str, base, seeds: list[int], store, engine: str, address: str | None
                   ) -> dict[int, str] | int:
    """Train the seeds of ``base`` that the store lacks through the sweep's engine, with a progress line; the
    seeds that failed, with why (or the exit status when the engine cannot run)."""
    missing = [s for s in seeds if not store.has(base.replace(seed=s))]
    if not missing:
        return {}
    from bnviz.sweep import Unreachable, jobs, run

    failed: dict[int, str] = {}
    done = 0

    def progress(outcome) -> None:
        nonlocal done
        done += 1
        seed = outcome.job.config.seed
        if outcome.state == "failed":
            failed[seed] = outcome.error or "failed"
        sys.stderr.write(f"bnviz: {preset} seed {seed} {outcome.state} ({done}/{len(missing)} runs)\n")

    def started(skipped: int, to_train: int, workers: int) -> None:  # once the engine is up: said only if it is
        sys.stderr.write(f"bnviz: training {to_train} missing run{'s' if to_train != 1 else ''} of {preset} "
                         f"(seeds {', '.join(map(str, missing))}) on the {engine} engine, {workers} at a time\n")

    try:
        run(jobs(preset, base, {"seed": [str(s) for s in missing]}), store, engine=engine, address=address,
            on_outcome=progress, on_start=started)
    except Unreachable as exc:
        return _fail(str(exc), "verdicts")
    return failed


def _verdict_table(judged: dict, seeds: list[int], argv: list[str]) -> str:
    """docs/claims.md's verdict table: claims as rows, presets as columns, after the command that made it."""
    import shlex

    from bnviz.present.claims import across

    cells: dict[str, dict[str, str]] = {}
    titles: dict[str, str] = {}
    for name, by_seed in judged.items():
        titles.update({v.claim: v.title for vs in by_seed.values() for v in vs or ()})
        for a in across.across(by_seed):
            cells.setdefault(a.claim, {})[name] = a.cell()
    command = " ".join(shlex.quote(a) for a in [*PROG.split(), *argv])
    rows = [f"Made by `{command}` (seeds {across.seed_list(seeds)}, each judged at its run's final step):", "",
            "| claim | " + " | ".join(f"`{name}`" for name in judged) + " |",
            "|---|" + "---|" * len(judged)]
    for claim, by_preset in cells.items():
        row = [f"{claim} {titles[claim]}", *(by_preset.get(name) or across.failed_text(judged[name])
                                              for name in judged)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command they were given to, whose --help lists what it takes
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "presets":
        return _presets()
    if args.command == "view":
        return _view(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "verdicts":
        return _verdicts(args, sys.argv[1:] if argv is None else argv)
    return _record(args)


if __name__ == "__main__":
    raise SystemExit(main())
