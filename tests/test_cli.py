"""The record command's contract (docs/design.md, contract 3) and the streamlit-free core."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bnviz.config import PRESETS
from bnviz.stats import UNIT_STATS
from bnviz.table.schema import TABLE_COLUMNS

from .table.tables import assert_same_snapshot

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, timeout=300, cwd=None, env=None):
    """``python -m bnviz ARGS`` in ``cwd``, importing this checkout's bnviz whatever the folder."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "bnviz", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def test_presets_lists_every_preset_one_line_each():
    out = cli("presets")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    assert "ioffe" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_record_round_trip(tmp_path, suffix):
    out = tmp_path / f"run.{suffix}"
    res = cli("record", "--preset", "ioffe", "--steps", "40", "--snapshot-every", "15", "--seed", "3",
              "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "step" in res.stderr  # the progress bar went to stderr
    df = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
    assert tuple(df.columns) == TABLE_COLUMNS
    assert set(df.variant) == {"none", "bn"}
    assert sorted(set(df.step)) == [0, 15, 30, 40]  # the final step is always recorded
    hidden = df[df.layer >= 0]
    assert set(hidden.layer) == {0, 1, 2}
    per_unit = hidden[hidden.stage.isin(["x", "x_hat", "y", "a"])]
    assert set(UNIT_STATS) <= set(per_unit.stat)
    assert set(per_unit.unit) == {-1, 0, 1, 2, 3, 4}
    bn_y = df[(df.variant == "bn") & (df.stage == "y")]
    assert {"gamma", "beta"} <= set(bn_y.stat)
    assert set(df[(df.variant == "none")].stage) >= {"x", "a", "train"}
    assert "x_hat" not in set(df[df.variant == "none"].stage)
    train = df[(df.layer == -1) & (df.stage == "train") & (df.unit == -1)]
    assert {"loss", "accuracy", "test_accuracy"} <= set(train.stat)
    # gamma starts at exactly 1 and beta at 0 (PyTorch's BatchNorm init) at step 0
    g0 = bn_y[(bn_y.step == 0) & (bn_y.stat == "gamma")].value
    assert len(g0) == 15 and (g0 == 1.0).all()


@pytest.mark.slow
def test_record_quantiles_and_share_link_replay(tmp_path):
    """--quantiles adds q00..q63 per series; the Parquet file carries the run's share link, so a replay
    restores the exact configuration and every distribution."""
    from bnviz.table import replay
    from bnviz.table.schema import QUANTILE_STATS

    out = tmp_path / "run.parquet"
    res = cli("record", "--preset", "ioffe", "--steps", "40", "--snapshot-every", "15", "--seed", "3", "--quantiles",
              "--quiet", "--out", str(out))
    assert res.returncode == 0, res.stderr
    df = pd.read_parquet(out)
    assert tuple(df.columns) == TABLE_COLUMNS
    q = df[df.stat.isin(QUANTILE_STATS)]
    assert set(q.stat) == set(QUANTILE_STATS)
    assert len(q) == len(QUANTILE_STATS) * len(df[df.stat == "mean"])
    rep = replay.load(out.read_bytes(), out.name)
    assert rep.config == PRESETS["ioffe"].config.replace(steps=40, seed=3, snapshot_every=15)
    assert rep.has_distributions and [s.step for s in rep.snapshots] == [0, 15, 30, 40]
    helptext = cli("record", "--help", timeout=60).stdout
    assert "--quantiles" in helptext and "q00..q63" in helptext


RECORD_HELP = "(see python -m bnviz record --help)"
SWEEP_HELP = "(see python -m bnviz sweep --help)"
BAD_ARGUMENTS = [
    (["record", "--preset", "nope", "--out", "x.csv"], "unknown preset", RECORD_HELP),
    (["record", "--preset", "ioffe", "--steps", "0", "--out", "x.csv"],
     "argument --steps: 0 is not a whole number from 1 to 1,000,000", RECORD_HELP),
    (["record", "--preset", "ioffe", "--steps", "ten", "--out", "x.csv"],
     "argument --steps: ten is not a whole number from 1 to 1,000,000", RECORD_HELP),
    (["record", "--preset", "ioffe", "--seed", "-1", "--out", "x.csv"],
     "argument --seed: -1 is not a whole number from 0 to 2,147,483,647", RECORD_HELP),
    (["record", "--preset", "ioffe", "--snapshot-every", "1.5", "--out", "x.csv"],
     "argument --snapshot-every: 1.5 is not a whole number from 1 to 100,000", RECORD_HELP),
    (["record", "--preset", "ioffe", "--out", "x.txt"], ".csv or .parquet", RECORD_HELP),
    (["record", "--preset", "ioffe", "--out", "nowhere/x.csv"], "'nowhere' does not exist", RECORD_HELP),
    (["record", "--out", "x.csv"], "--preset", RECORD_HELP),
    (["record", "--preset", "ioffe", "--out", "x.csv", "--bogus"], "unrecognized arguments: --bogus", RECORD_HELP),
    (["sweep", "--preset", "nope", "--grid", "seed=1"], "unknown preset 'nope'", SWEEP_HELP),
    (["presets", "extra"], "unrecognized arguments: extra", "(see python -m bnviz presets --help)"),
    (["frobnicate"], "invalid choice", "(see python -m bnviz --help)"),
    ([], "required", "(see python -m bnviz --help)"),
]


SWEEP_BAD_ARGUMENTS = [
    (["sweep", "--preset", "ioffe"], "the following arguments are required: --grid"),
    (["sweep", "--preset", "ioffe", "--grid", "seed=5-1"],
     "--grid seed=5-1: the range 5-1 goes down; write the smaller number first (1-5)"),
    (["sweep", "--preset", "ioffe", "--grid", "sed=1"], "--grid sed=1: a link has no setting called sed"),
    (["sweep", "--preset", "ioffe", "--grid", "seed=1", "--workers", "0"],
     "argument --workers: 0 is not a number of workers (1 or more)"),
    (["sweep", "--preset", "ioffe", "--grid", "seed=1", "--engine", "spark"], "invalid choice: 'spark'"),
    (["sweep", "--preset", "ioffe", "--grid", "seed=1", "--address", "10.0.0.5:6379"],
     "--address names a Ray cluster: give --engine ray too"),
    (["sweep", "--link", "preset=ioffe&lr=fast", "--grid", "seed=1"], "--link: lr=fast ignored"),
]


@pytest.mark.parametrize("args, needle", SWEEP_BAD_ARGUMENTS)
def test_sweep_bad_arguments_exit_2_with_one_line_before_any_training(args, needle, capsys, monkeypatch, tmp_path):
    """In this process (the subprocess case above shows the line as a user sees it): nothing is trained or stored."""
    import bnviz.sweep
    from bnviz.__main__ import main

    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(bnviz.sweep, "run", lambda *a, **kw: pytest.fail("the sweep started"))
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own refusals
        status = exc.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and needle in lines[0], lines
    assert lines[0].startswith("bnviz: error: ") and lines[0].endswith(SWEEP_HELP), lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, needle, pointer", BAD_ARGUMENTS)
def test_bad_arguments_exit_2_with_one_line_naming_the_help_as_typed(args, needle, pointer, tmp_path):
    res = cli(*args, cwd=tmp_path, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert lines[0].startswith("bnviz: error: ") and lines[0].endswith(pointer), lines[0]
    for words in ("bnviz bnviz", "invalid int", "Traceback", "invalid experiment config"):
        assert words not in lines[0]
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("pointer", sorted({p for _, _, p in BAD_ARGUMENTS}))
def test_the_help_an_error_points_to_runs_as_typed(pointer):
    typed = pointer.removeprefix("(see ").removesuffix(")").split()
    assert typed[:3] == ["python", "-m", "bnviz"] and typed[-1] == "--help"
    res = cli(*typed[3:], timeout=60)
    assert res.returncode == 0 and res.stdout.startswith(f"usage: {' '.join(typed[:-1])}"), res.stdout[:200]


def test_an_output_that_is_a_folder_is_refused_before_training(tmp_path):
    (tmp_path / "d.parquet").mkdir()
    res = cli("record", "--preset", "ioffe", "--out", "d.parquet", cwd=tmp_path, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "is a directory" in res.stderr, res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("inline", [False, True])
def test_record_to_parquet_never_imports_pandas(tmp_path, inline):
    """pyarrow's converters import pandas on first use (0.2-0.3 s); the table is built from buffers instead,
    and the file written is still the table pandas reads. The table is encoded and written where the
    statistics are made: with a worker process, the command's own process imports neither pandas nor pyarrow;
    inline (--inline), it writes the file itself, still without pandas."""
    out = tmp_path / "run.parquet"
    code = ("import sys, bnviz.__main__ as m\n"
            f"status = m.main(['record', '--preset', 'ioffe', '--steps', '30', '--snapshot-every', '15', '--quiet', "
            f"'--out', {str(out)!r}] + {['--inline'] if inline else []!r})\n"
            "print(status, 'pandas' in sys.modules, 'pyarrow' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.split() == ["0", "False", str(inline)], (res.stdout, res.stderr)
    df = pd.read_parquet(out)
    assert tuple(df.columns) == TABLE_COLUMNS and sorted(set(df.step)) == [0, 15, 30]
    assert set(df.variant) == {"none", "bn"} and {"gamma", "beta", "w1_prev", "loss"} <= set(df.stat)


@pytest.mark.slow
def test_record_data_round_trip(tmp_path):
    """record --data trains the preset's network on the file; the table's link and bnviz.data name it, and a
    replay restores the same config."""
    import hashlib

    import pyarrow.parquet as pq

    from bnviz import owndata
    from bnviz.table import replay

    from .owndata.files import blobs

    raw = blobs(n=150)
    (tmp_path / "mine.csv").write_bytes(raw)
    out = tmp_path / "run.parquet"
    res = cli("record", "--preset", "ioffe", "--data", "mine.csv", "--target", "label", "--steps", "30",
              "--snapshot-every", "15", "--quiet", "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    h = hashlib.sha256(raw).hexdigest()[:16]
    meta = pq.read_schema(out).metadata
    assert b"dataset=csv" in meta[b"bnviz.query"] and f"data={h}".encode() in meta[b"bnviz.query"]
    assert b"target=" not in meta[b"bnviz.query"]  # label is the default target
    assert owndata.Known(meta[b"bnviz.data"]).name == "mine.csv"
    assert owndata.default_store().get(h) == raw  # kept in the store ($BNVIZ_DATA of this test session)
    rep = replay.load(out.read_bytes(), out.name)
    assert rep.config.dataset == "csv" and rep.config.data == h and rep.config.n_inputs == 4
    assert rep.config.task == "classification" and [s.step for s in rep.snapshots] == [0, 15, 30]
    df = pd.read_parquet(out)
    assert {"test_accuracy", "loss"} <= set(df.stat)


@pytest.mark.parametrize("args, needle", [
    (["--data", "nope.csv"], "--data: cannot read 'nope.csv'"),
    (["--target", "label"], "--target names a column of --data FILE.csv; give --data too"),
    (["--data", "bad.csv"], "'bad.csv': column 'b' holds text ('high' in row 1)"),
    (["--data", "good.csv", "--target", "zz"], "'good.csv' has no column 'zz' to predict"),
])
def test_bad_data_arguments_exit_2_with_one_line(tmp_path, args, needle):
    from .owndata.files import blobs

    (tmp_path / "good.csv").write_bytes(blobs(n=30))
    (tmp_path / "bad.csv").write_bytes(b"a,b,label\n" + b"1,high,0\n" * 12)
    res = cli("record", "--preset", "ioffe", *args, "--out", "x.csv", cwd=tmp_path, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].endswith(RECORD_HELP), res.stderr
    assert not (tmp_path / "x.csv").exists()


def test_view_refuses_a_missing_folder_with_one_line(tmp_path):
    res = cli("view", str(tmp_path / "nowhere"), timeout=60)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1
    assert f"the folder {tmp_path / 'nowhere'} does not exist" in res.stderr
    assert res.stderr.rstrip().endswith("(see python -m bnviz view --help)")


def test_view_refuses_a_folder_that_holds_no_run(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    res = cli("view", str(tmp_path), timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "holds no bnviz run" in res.stderr and str(tmp_path) in res.stderr


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_view_refuses_a_bad_port(tmp_path, port):
    res = cli("view", str(tmp_path), "--port", port, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "is not a port number" in res.stderr


@pytest.mark.slow
def test_view_serves_the_page_on_a_run_folder(tmp_path):
    """`view DIR --port N` starts Streamlit on app.py with --run DIR: the page answers on that port."""
    import socket
    import time
    import urllib.request

    from bnviz.table.parts import PartRecorder
    from tests.present.watched import CONFIG, snapshots

    rec = PartRecorder(tmp_path / "run", CONFIG, seconds=None)
    rec.prepare()
    for snap in snapshots(n=2)[0]:
        rec.append(snap)
    rec.write()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "bnviz", "view", str(tmp_path / "run"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline, healthy = time.time() + 60, False
        while time.time() < deadline and not healthy and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    healthy = r.read().decode().strip() == "ok"
            except OSError:
                time.sleep(0.3)
        assert healthy, proc.stdout.read() if proc.poll() is not None else "no answer"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _assert_usage_error(res, needle):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].endswith(RECORD_HELP), res.stderr


@pytest.mark.slow
def test_record_to_a_run_folder_holds_the_same_run_as_the_single_file(tmp_path):
    """--out DIR writes the run in parts; read back, it is the run the single Parquet file of the same
    settings holds, every statistic and histogram alike."""
    from bnviz.table import replay
    from bnviz.table.parts import open_run

    settings = ("record", "--preset", "ioffe", "--steps", "100", "--snapshot-every", "15", "--seed", "3", "--quiet")
    folder = tmp_path / "runs" / "ioffe"  # no suffix; its parent is made too
    res = cli(*settings, "--out", str(folder))
    assert res.returncode == 0, res.stderr
    done = json.loads((folder / "done.json").read_text())
    assert (done["snapshots"], done["last_step"]) == (8, 100)
    # The first snapshot is a part of its own; how the rest is cut into parts depends on the machine's speed.
    assert done["parts"] == len(list(folder.glob("part-*.parquet"))) >= 2
    assert json.loads((folder / "run.json").read_text())["config"] is None
    follower = open_run(folder)
    got = follower.poll()
    assert follower.finished and follower.skipped == [] and follower.notes == []
    want_cfg = PRESETS["ioffe"].config.replace(steps=100, seed=3, snapshot_every=15)
    assert follower.config == want_cfg
    single = tmp_path / "run.parquet"
    assert cli(*settings, "--quantiles", "--out", str(single)).returncode == 0
    rep = replay.load(single.read_bytes(), single.name)
    assert [s.step for s in got] == [s.step for s in rep.snapshots] == [0, 15, 30, 45, 60, 75, 90, 100]
    for g, w in zip(got, rep.snapshots):
        assert_same_snapshot(g, w)


@pytest.mark.slow
def test_a_record_in_progress_can_be_followed(tmp_path):
    from bnviz.table.parts import open_run

    folder = tmp_path / "live/"
    proc = subprocess.Popen([sys.executable, "-m", "bnviz", "record", "--preset", "ioffe", "--steps", "3000",
                             "--snapshot-every", "20", "--quiet", "--out", f"{folder}/"], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    steps, early = [], False
    try:
        deadline = time.monotonic() + 240
        while not (folder / "run.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "record wrote no run.json"
            time.sleep(0.01)
        follower = open_run(folder)
        while not follower.finished:
            assert time.monotonic() < deadline, "the record never finished"
            new = follower.poll()
            early |= bool(new) and proc.poll() is None
            steps += [s.step for s in new]
            time.sleep(0.05)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert early  # snapshots were read while the record was still training
    assert steps == list(range(0, 3001, 20)) and follower.skipped == []


def test_record_folder_names(tmp_path):
    from bnviz.__main__ import _names_folder

    (tmp_path / "existing.d").mkdir()
    assert _names_folder("runs/ioffe") and _names_folder("out.d/") and _names_folder(str(tmp_path / "existing.d"))
    assert not _names_folder("x.csv") and not _names_folder("x.PARQUET") and not _names_folder("x.txt")


def test_a_run_folder_that_cannot_be_written_is_refused_before_training(tmp_path):
    (tmp_path / "afile").write_text("x")
    _assert_usage_error(cli("record", "--preset", "ioffe", "--out", "afile/run", cwd=tmp_path, timeout=60),
                        "cannot write to the folder 'afile/run' (Not a directory)")
    _assert_usage_error(cli("record", "--preset", "ioffe", "--out", "afile", cwd=tmp_path, timeout=60),
                        "'afile' is a file, not a folder")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.md").write_text("mine")
    _assert_usage_error(cli("record", "--preset", "ioffe", "--out", "busy", cwd=tmp_path, timeout=60),
                        "holds files but no bnviz run")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["afile", "busy", "notes.md"]


def test_an_argument_error_makes_no_run_folder(tmp_path):
    _assert_usage_error(cli("record", "--preset", "ioffe", "--target", "y", "--out", "runs/x", cwd=tmp_path,
                            timeout=60), "--target")
    assert list(tmp_path.iterdir()) == []


def test_view_says_where_it_looked_for_the_page(tmp_path, monkeypatch, capsys):
    """Installed without a source checkout, there is no app.py beside the package: one line says so."""
    import bnviz.__main__ as cli_main
    from bnviz.table.parts import PartRecorder
    from tests.present.watched import CONFIG, snapshots

    rec = PartRecorder(tmp_path / "run", CONFIG, seconds=None)
    rec.prepare()
    rec.append(snapshots(n=1)[0][0])
    monkeypatch.setattr(cli_main, "app_path", lambda: tmp_path / "site-packages" / "app.py")
    assert cli_main.main(["view", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"looked for {tmp_path / 'site-packages' / 'app.py'}" in err


@pytest.mark.slow
def test_record_link_records_the_run_a_share_link_describes(tmp_path):
    link = "http://localhost:8501/?preset=gamma-beta&steps=60&seed=2&every=20&panel=normality"
    by_link, by_preset = tmp_path / "link.parquet", tmp_path / "preset.parquet"
    res = cli("record", "--link", link, "--out", str(by_link), "--quiet")
    assert res.returncode == 0, res.stderr
    res = cli("record", "--preset", "gamma-beta", "--steps", "60", "--seed", "2", "--snapshot-every", "20",
              "--out", str(by_preset), "--quiet")
    assert res.returncode == 0, res.stderr
    assert by_link.read_bytes() == by_preset.read_bytes()  # the same run, and the same link in its metadata


@pytest.mark.slow
@pytest.mark.parametrize("args, said", [
    (("--link", "preset=ioffe&lr=abc"), "--link: lr=abc ignored: the learning rate must be a number"),
    (("--link", "preset=ioffe", "--preset", "ioffe"), "argument --preset: not allowed with argument --link"),
    (("--link", "preset=ioffe", "--data", "x.csv"), "--link names its data itself"),
    (("--preset", "ioffe", "--store"), "--store keeps the Parquet table with its quantiles"),
])
def test_record_refuses_a_bad_link_or_store_in_one_line_before_training(tmp_path, args, said):
    res = cli("record", *args, "--out", str(tmp_path / "t.parquet"))
    assert res.returncode == 2 and said in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t.parquet").exists()


@pytest.mark.slow
def test_record_store_keeps_the_run_where_the_page_finds_it(tmp_path):
    from bnviz.table.store import RunStore

    out = tmp_path / "run.parquet"
    res = cli("record", "--preset", "ioffe", "--steps", "40", "--snapshot-every", "20", "--quantiles", "--store",
              "--out", str(out), "--quiet", env={"BNVIZ_RUNS": str(tmp_path / "runs")})
    assert res.returncode == 0, res.stderr
    stored = RunStore(tmp_path / "runs").get(PRESETS["ioffe"].config.replace(steps=40, snapshot_every=20))
    assert stored is not None and [s.step for s in stored.snapshots] == [0, 20, 40]
    assert (tmp_path / "runs" / stored.name).read_bytes() == out.read_bytes()


# --- sweep ------------------------------------------------------------------------------------------------------

def _closed_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sweep_on_an_unreachable_ray_cluster_exits_2_with_one_line(tmp_path):
    port = _closed_port()
    res = cli("sweep", "--preset", "ioffe", "--grid", "seed=0-3", "--engine", "ray", "--address", f"127.0.0.1:{port}",
              env={"BNVIZ_RUNS": str(tmp_path / "runs")}, timeout=60)
    assert res.returncode == 2
    assert res.stderr == (f"bnviz: error: cannot reach the Ray cluster at 127.0.0.1:{port}: connection refused "
                          f"{SWEEP_HELP}\n")
    assert not (tmp_path / "runs").exists()


SWEEP = ["sweep", "--preset", "ioffe", "--grid", "steps=300", "every=50", "seed=0-3", "--workers", "1", "--quiet"]


def _sweep_in_background(store, *engine):
    env = {**os.environ, "BNVIZ_RUNS": str(store), "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                                                 os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "bnviz", *SWEEP, *engine], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _descendants(pid):
    """The processes below ``pid`` (its children, theirs, ...), read from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until_gone(pids, seconds=10):
    end = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.1)


def _wait_for_a_stored_run(proc, store, deadline=240):
    end = time.monotonic() + deadline
    while not list(store.glob("*.parquet")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < end, "no run was stored"
        time.sleep(0.1)


def _sweep_jobs():
    from bnviz.sweep import jobs, parse_grid

    return jobs("ioffe", PRESETS["ioffe"].config, parse_grid(["steps=300", "every=50", "seed=0-3"]))


@pytest.mark.slow
def test_a_killed_sweep_leaves_whole_runs_and_the_same_command_resumes(tmp_path):
    from bnviz.table.store import RunStore

    store = tmp_path / "runs"
    proc = _sweep_in_background(store)
    try:
        _wait_for_a_stored_run(proc, store)
        below = _descendants(proc.pid)
        assert below, "the sweep has no worker process"
        proc.kill()  # the driver alone, with -9: it cannot stop its workers
        proc.communicate(timeout=60)
        _wait_until_gone(below)
    finally:
        if proc.poll() is None or _descendants(proc.pid):
            os.killpg(proc.pid, 9)
    assert not [p for p in below if _alive(p)], "a worker process outlived its killed driver"
    kept = len(list(store.glob("*.parquet")))
    assert 1 <= kept < 4
    res = cli(*SWEEP, env={"BNVIZ_RUNS": str(store)})
    assert res.returncode == 0, res.stderr
    assert f"4 runs: {kept} already in the store, {4 - kept} to train on local (1 worker)" in res.stderr
    assert res.stderr.strip().endswith(f"{4 - kept} trained and stored, {kept} already in the store, 0 failed; "
                                       f"the store: {store}")
    runs = RunStore(store)
    assert sorted(p.name for p in store.glob("*.parquet")) == sorted(runs.path(j.config).name for j in _sweep_jobs())
    for job in _sweep_jobs():
        got = runs.get(job.config)
        assert got is not None and [s.step for s in got.snapshots] == list(range(0, 301, 50))
    assert runs.skipped == []


@pytest.mark.slow
@pytest.mark.parametrize("engine", [[], ["--engine", "ray", "--workers", "2"]], ids=["local", "ray"])
def test_ctrl_c_stops_the_workers_keeps_the_finished_runs_and_exits_130(tmp_path, engine):
    import signal

    if engine:
        pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-ray.txt)")
    store = tmp_path / "runs"
    proc = _sweep_in_background(store, *engine)
    try:
        _wait_for_a_stored_run(proc, store)
        below = _descendants(proc.pid)
        assert below, "the sweep has no worker process"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    assert proc.returncode == 130, err
    kept = len(list(store.glob("*.parquet")))
    assert err.strip().splitlines()[-1] == (f"bnviz: interrupted: {kept} run{'s' * (kept > 1)} stored, "
                                            f"{4 - kept} left; the same command resumes")
    assert "Traceback" not in err
    _wait_until_gone(below)
    assert not [p for p in below if _alive(p)], "a worker process was left behind"


def _tiny_sweep_in_process(monkeypatch, tmp_path, *grid):
    """main(sweep ...) in this process with the local engine training here (so that monkeypatches reach it)."""
    from bnviz.__main__ import main
    from bnviz.sweep import engines
    from bnviz.sweep.train import train

    def inline(queries, workers, deliver, fn=None):
        for i, query in queries:
            deliver(i, train(query))

    monkeypatch.setattr(engines, "_local", inline)
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path / "runs"))
    return main(["sweep", "--preset", "ioffe", "--grid", "steps=20", "every=10", *grid, "--quiet"])


@pytest.mark.slow
def test_a_sweep_with_a_failed_run_stores_the_others_and_exits_1(tmp_path, monkeypatch, capsys):
    from bnviz.training.run import Run

    setup = Run._setup

    def fails_for_seed_1(self):
        if self.config.seed == 1:
            raise RuntimeError("no memory left for the weights")
        setup(self)

    monkeypatch.setattr(Run, "_setup", fails_for_seed_1)
    assert _tiny_sweep_in_process(monkeypatch, tmp_path, "seed=0-2") == 1
    err = capsys.readouterr().err
    assert "bnviz: failed: steps=20 every=10 seed=1: RuntimeError: no memory left for the weights\n" in err
    assert err.endswith(f"bnviz: 3 runs: 2 trained and stored, 0 already in the store, 1 failed; the store: "
                        f"{tmp_path / 'runs'}\n")
    assert len(list((tmp_path / "runs").glob("*.parquet"))) == 2


@pytest.mark.slow
def test_a_sweep_says_which_runs_diverged_and_stores_them(tmp_path, monkeypatch, capsys):
    assert _tiny_sweep_in_process(monkeypatch, tmp_path, "activation=relu", "lr=1000") == 0
    err = capsys.readouterr().err
    assert "bnviz: diverged: steps=20 every=10 activation=relu lr=1000: none at step " in err
    assert "bnviz: 1 run: 1 trained and stored (1 with diverged variants), 0 already in the store, 0 failed" in err


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_store_and_exit_1(tmp_path, monkeypatch, capsys):
    import errno

    from bnviz.table.store import RunStore

    def full(self, path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RunStore, "_write", full)
    assert _tiny_sweep_in_process(monkeypatch, tmp_path, "seed=0-1") == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"bnviz: error: could not store the run in {tmp_path / 'runs'}: No space left on "
                                    "device; 0 runs of the sweep in the store")
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_sweep_names_a_corrupt_file_in_the_store_and_trains_that_run_again(tmp_path, monkeypatch, capsys):
    from bnviz.sweep import jobs, parse_grid
    from bnviz.table.store import RunStore

    (job,) = jobs("ioffe", PRESETS["ioffe"].config, parse_grid(["steps=20", "every=10", "seed=4"]))
    runs = RunStore(tmp_path / "runs")
    runs.folder.mkdir()
    runs.path(job.config).write_bytes(b"PAR1 half a table")
    assert _tiny_sweep_in_process(monkeypatch, tmp_path, "seed=4") == 0
    err = capsys.readouterr().err
    assert f"bnviz: note: Skipped {runs.path(job.config).name} in the store of runs: it cannot be read" in err
    assert "It is trained again." in err and "1 trained and stored, 0 already in the store, 0 failed" in err
    assert runs.get(job.config) is not None


# ------------------------------------------------------------------------------------------ verdicts

VERDICTS_HELP = "(see python -m bnviz verdicts --help)"
TINY = PRESETS["ioffe"].config.replace(steps=20, snapshot_every=10)  # verdicts --steps 20 --snapshot-every 10
TINY_ARGS = ("--preset", "ioffe", "--steps", "20", "--snapshot-every", "10")


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory):
    """A store holding the tiny ioffe run at seeds 0-2, and each seed's verdicts judged on the live run's own
    snapshots (not the store's)."""
    from bnviz.present.claims import evidence
    from bnviz.table.store import RunStore, run_bytes

    from .helpers import finished_run

    folder = tmp_path_factory.mktemp("runs")
    store, verdicts = RunStore(folder), {}
    for seed in (0, 1, 2):
        cfg = TINY.replace(seed=seed)
        snaps = finished_run(cfg).history.snapshots()
        store.put(cfg, run_bytes(cfg, snaps))
        verdicts[seed] = evidence(snaps, cfg)
    return folder, verdicts


@pytest.mark.slow
def test_verdicts_counts_equal_the_board_judged_on_each_seed(seeded_store):
    folder, verdicts = seeded_store
    res = cli("verdicts", *TINY_ARGS, "--seeds", "0-2", env={"BNVIZ_RUNS": str(folder)}, timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0] == "ioffe, seeds 0–2:"
    claims = [v.claim for v in verdicts[0]]
    assert len(out) == 1 + len(claims)
    for line, claim in zip(out[1:], claims):
        assert line.startswith(f"  {claim} ")
        said = line.split(": across 3 seeds (0–2): ", 1)[1].split(";")[0]
        counted = {word: sum(verdicts[s][claims.index(claim)].verdict == word for s in verdicts)
                   for word in ("supported", "refuted", "mixed", "not measured")}
        assert said == ", ".join(f"{w} {n}" for w, n in counted.items() if n), line


@pytest.mark.slow
def test_verdicts_names_a_seed_whose_stored_run_cannot_be_read(seeded_store, tmp_path):
    import shutil

    from bnviz.table.store import RunStore

    folder, _ = seeded_store
    copy = tmp_path / "runs"
    shutil.copytree(folder, copy)
    RunStore(copy).path(TINY.replace(seed=1)).write_bytes(b"not a parquet file")
    res = cli("verdicts", *TINY_ARGS, "--seeds", "0-2", env={"BNVIZ_RUNS": str(copy)}, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "seed 1 failed" in res.stdout
    assert "ioffe seed 1 failed: Skipped" in res.stderr


@pytest.mark.slow
def test_verdicts_markdown_is_the_table_after_the_command_that_made_it(seeded_store):
    folder, verdicts = seeded_store
    args = ("verdicts", *TINY_ARGS, "--seeds", "0,1,2", "--markdown")
    res = cli(*args, env={"BNVIZ_RUNS": str(folder)}, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"Made by `python -m bnviz {' '.join(args)}`")
    assert lines[2] == "| claim | `ioffe` |" and lines[3] == "|---|---|"
    rows = lines[4:]
    assert [r.split()[1] for r in rows] == [v.claim for v in verdicts[0]]
    c3 = next(r for r in rows if r.startswith("| C3 "))
    assert c3.count(" | ") == 1 and "\\|ΔW\\|" in c3  # the figure's bars are escaped: two cells only


VERDICTS_BAD = [
    (["verdicts", "--preset", "nope", "--seeds", "0-2"], "unknown preset 'nope'"),
    (["verdicts", "--preset", "ioffe", "--seeds", "9-0"], "9-0 is not a list of seeds"),
    (["verdicts", "--preset", "ioffe", "--seeds", "a,b"], "a,b is not a list of seeds"),
    (["verdicts", "--preset", "ioffe", "--seeds", "0-200"], "names 101 seeds; at most 100"),
    (["verdicts", "--preset", "ioffe"], "--seeds"),
    (["verdicts", "--preset", "ioffe", "--seeds", "0", "--engine", "spark"], "invalid choice: 'spark'"),
    (["verdicts", "--preset", "ioffe", "--seeds", "0", "--address", "10.0.0.1:6379"], "give --engine ray too"),
    (["verdicts", "--preset", "ioffe", "--seeds", "0", "--steps", "0"], "0 is not a whole number from 1"),
]


@pytest.mark.parametrize("args, needle", VERDICTS_BAD)
def test_verdicts_bad_arguments_exit_2_with_one_line(args, needle, tmp_path):
    res = cli(*args, cwd=tmp_path, timeout=60, env={"BNVIZ_RUNS": str(tmp_path / "runs")})
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert lines[0].startswith("bnviz: error: ") and lines[0].endswith(VERDICTS_HELP), lines[0]
    assert not (tmp_path / "runs").exists()  # refused before anything trained


@pytest.mark.slow
def test_verdicts_trains_the_missing_seeds_first_and_judges_them(seeded_store, tmp_path):
    import shutil

    from bnviz.present.claims import evidence
    from bnviz.table.store import RunStore

    folder, verdicts = seeded_store
    copy = tmp_path / "runs"
    shutil.copytree(folder, copy)
    RunStore(copy).path(TINY.replace(seed=2)).unlink()
    res = cli("verdicts", *TINY_ARGS, "--seeds", "0-2", env={"BNVIZ_RUNS": str(copy)}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "training 1 missing run of ioffe (seeds 2) on the local engine" in res.stderr
    assert "ioffe seed 2 stored (1/1 runs)" in res.stderr
    stored = RunStore(copy).get(TINY.replace(seed=2))
    assert stored is not None  # trained by the sweep's engine into the store
    again = evidence(stored.snapshots, TINY.replace(seed=2))
    assert [v.verdict for v in again] == [v.verdict for v in verdicts[2]]  # a run is a pure function of its link
    assert "across 3 seeds (0–2)" in res.stdout


def test_verdicts_with_an_unreachable_cluster_exits_2_with_one_line(tmp_path):
    res = cli("verdicts", *TINY_ARGS, "--seeds", "0", "--engine", "ray", "--address", "127.0.0.1:1",
              env={"BNVIZ_RUNS": str(tmp_path / "runs")}, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0], res.stderr
    assert lines[0].startswith("bnviz: error: ") and lines[0].endswith(VERDICTS_HELP), lines[0]
    assert not list((tmp_path / "runs").glob("*.parquet"))
