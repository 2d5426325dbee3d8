"""The page following a run folder (AppTest with BNVIZ_RUN): it shows that run only, named by its layers, with no
training, preset or lesson of its own; new parts show up; the board, the export and the report work on it."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bnviz import config as C
from bnviz.present import views
from bnviz.table import replay
from bnviz.table.parts import PartRecorder
from bnviz.ui import controls, runtime

from ..present.watched import CONFIG, snapshots
from .pages import APP

SNAPS, _ = snapshots()


def write(folder, snaps, done: bool):
    """A run folder as bnviz.watch writes it: parts of 2 snapshots (the first alone), done.json at the end."""
    rec = PartRecorder(folder, CONFIG.replace(steps=max(1, snaps[-1].step)), per_part=2, seconds=None)
    rec.prepare()
    for snap in snaps:
        rec.append(snap)
    if done:
        rec.write()
    return rec


def page(folder, monkeypatch, query=None) -> AppTest:
    monkeypatch.setenv(runtime.RUN_ENV, str(folder))
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    return at


def texts(at) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.text])


def test_the_run_folder_comes_from_the_arguments_or_the_environment(monkeypatch):
    monkeypatch.delenv(runtime.RUN_ENV, raising=False)
    assert runtime.followed_folder(["--run", "runs/a"]) == "runs/a"
    assert runtime.followed_folder(["--run=runs/b"]) == "runs/b"
    assert runtime.followed_folder([]) is None
    monkeypatch.setenv(runtime.RUN_ENV, "runs/c")
    assert runtime.followed_folder([]) == "runs/c"
    assert runtime.followed_folder(["--run", "runs/a"]) == "runs/a"


def test_a_followed_run_shows_alone_with_its_layer_names(tmp_path, monkeypatch):
    folder = tmp_path / "resnet"
    write(folder, SNAPS, done=True)
    at = page(folder, monkeypatch)
    assert not at.exception and not at.error, at.exception
    said = texts(at)
    assert f"**Following** {folder} — TinyResNet, 2 normalization layers (BatchNorm2d)" in said.replace("\\", "")
    layer = at.selectbox(key="layer")
    assert [layer.format_func(i) for i in range(2)] == ["stem.bn1", "layer1.0.bn2"]
    assert layer.value == 1  # the last layer, as for bnviz's own networks
    assert at.selectbox(key="unit").format_func(3) == "channel 3"
    assert "step **350** · finished" in " ".join(m.value for m in at.markdown)
    # nothing of the page's own runs: no training controls, presets, settings, lessons or replay upload
    keys = {w.key for kind in ("button", "selectbox", "radio", "file_uploader", "select_slider")
            for w in at.get(kind)}
    assert not keys & {"play", "pause", "step", "reset", "speed", "preset", "dataset", "lesson_pick"}
    assert not [u for u in at.get("file_uploader") if u.label == "Replay a recorded run"]
    assert at.toggle(key="present") is not None  # presenter mode stays


@pytest.mark.slow  # every panel; test_a_followed_run_shows_alone_with_its_layer_names is the quick one
@pytest.mark.parametrize("panel", list(C.PANELS))
def test_every_panel_draws_a_followed_run(tmp_path, monkeypatch, panel):
    folder = tmp_path / "run"
    write(folder, SNAPS, done=True)
    at = page(folder, monkeypatch, {"panel": panel})
    assert not at.exception and not at.error, at.exception
    assert at.session_state["panel"] == panel
    if panel == "stability":  # the smoothness steps along the training's gradient, which watching does not take
        assert "bnviz.watch does not take" in " ".join(i.value for i in at.info)
    if panel == "evidence":
        buttons = {b.key for b in at.button}
        assert not {f"preset_{c}" for c in ("C1", "C7", "C8", "C9", "C10", "C11")} & buttons  # nothing to leave for
        shown = " ".join(t.value for t in at.text)
        assert "compares twins" in shown and "same start" in shown


def test_a_lesson_link_does_not_open_a_lesson_on_a_followed_run(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    write(folder, SNAPS, done=True)
    at = page(folder, monkeypatch, {"lesson": "2"})
    assert not at.exception and not at.error
    assert not at.session_state["lesson"]
    assert "Following" in texts(at)


def test_new_parts_appear_and_the_run_finishes(tmp_path, monkeypatch):
    folder = tmp_path / "live"
    rec = write(folder, SNAPS[:3], done=False)  # parts 1 (step 0) and 2 (steps 50, 100)
    at = page(folder, monkeypatch)
    assert not at.exception
    assert "step **100** · live" in " ".join(m.value for m in at.markdown)
    for snap in SNAPS[3:]:
        rec.append(snap)
    rec.write()
    run = runtime_run(folder)
    run._polled = -float("inf")  # the next refresh reads the folder now (it waits a second between reads)
    at.run()
    assert not at.exception
    assert "step **350** · finished" in " ".join(m.value for m in at.markdown)
    assert [s.step for s in run.history.snapshots()] == [s.step for s in SNAPS]


def runtime_run(folder):
    from bnviz.table.follow import follow

    return follow(folder)


def test_an_empty_folder_says_so_and_the_page_keeps_working(tmp_path, monkeypatch):
    folder = tmp_path / "empty"
    folder.mkdir()
    at = page(folder, monkeypatch)
    assert not at.exception
    assert [e.value for e in at.error] and "holds no bnviz run" in at.error[0].value
    write(folder, SNAPS[:1], done=False)
    at.run()
    assert not at.exception and not at.error
    assert "Following" in texts(at)


def test_export_and_report_of_a_followed_run(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    write(folder, SNAPS, done=True)
    at = page(folder, monkeypatch, {"panel": "gamma-beta"})
    assert not at.exception
    run = runtime_run(folder)
    data = controls.table_bytes(run, "parquet")
    back = replay.load(data, "export.parquet")
    assert back.config.watched == CONFIG.watched and back.config.widths == CONFIG.widths
    assert [s.step for s in back.snapshots] == [s.step for s in SNAPS]
    a = views.unit_stat(back.snapshots, "bn", 0, "x", "shapiro_w", 2)
    b = views.unit_stat(SNAPS, "bn", 0, "x", "shapiro_w", 2)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    html = controls.report_bytes(run, at.session_state["_report_view"]).decode()
    assert "bnviz report: TinyResNet, step 350" in html and "layer1.0.bn2" in html
    assert "<dt>Model</dt>" in html and "<dt>Training</dt>" not in html and "<dt>Data</dt>" not in html


def test_a_corrupt_part_is_named_and_the_parts_before_it_shown(tmp_path, monkeypatch):
    folder = tmp_path / "my_run"
    write(folder, SNAPS[:3], done=False)  # parts 1 and 2
    (folder / "part-000003.parquet").write_bytes(b"PAR1 not really a parquet file")
    at = page(folder, monkeypatch)
    assert not at.exception and not at.error
    said = " ".join(c.value for c in at.caption).replace("\\", "")
    assert "Skipped part-000003.parquet" in said  # named in the words of the folder reader
    assert "step **100** · live" in " ".join(m.value for m in at.markdown)  # the snapshots before it


def test_a_followed_record_of_bnvizs_own_network_offers_no_preset_to_leave_for(tmp_path, monkeypatch, small_run):
    """`record --out DIR` writes a run folder of a preset's network: followed, its board judges the twins it has
    and offers no other preset, since the page shows that folder only."""
    from urllib.parse import urlencode

    from bnviz.urlstate import encode

    cfg = small_run.config
    rec = PartRecorder(tmp_path / "own", cfg, per_part=3, query=urlencode(encode("ioffe", cfg), safe=","), seconds=None)
    rec.prepare()
    for snap in small_run.history.snapshots():
        rec.append(snap)
    rec.write()
    at = page(tmp_path / "own", monkeypatch, {"panel": "evidence"})
    assert not at.exception and not at.error
    assert at.selectbox(key="layer").format_func(1) == "layer 2/2"
    board = " ".join(t.value for t in at.text)
    assert "compares twins" not in board  # not a watched model: its own twins are judged
    assert not [b.key for b in at.button if b.key.startswith("preset_")]
