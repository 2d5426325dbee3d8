"""How the browser tests find a browser: $BNVIZ_BROWSER, then Chromium/Chrome on PATH, then Playwright's own;
with none, a skip that says how to get one, or a failure under CI=true."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from tests.e2e import harness


def fake_executable(folder, name: str) -> str:
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def bare(monkeypatch, tmp_path):
    """A machine with no browser anywhere: empty PATH, no setting, no Playwright browser."""
    monkeypatch.delenv(harness.BROWSER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(harness, "_playwright_chromium", lambda: None)
    return tmp_path


def test_no_browser_anywhere_finds_none(bare):
    assert harness.find_browser() is None


def test_the_explicit_setting_comes_first(bare, monkeypatch):
    on_path = bare / "bin"
    on_path.mkdir()
    fake_executable(on_path, "chromium")
    mine = fake_executable(bare, "my-chrome")
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setenv(harness.BROWSER_ENV, mine)
    assert harness.find_browser() == harness.Browser(mine, "$BNVIZ_BROWSER")


def test_an_explicit_setting_that_names_nothing_is_an_error_not_a_fallback(bare, monkeypatch):
    monkeypatch.setenv(harness.BROWSER_ENV, str(bare / "no-such-browser"))
    with pytest.raises(ValueError, match="BNVIZ_BROWSER"):
        harness.find_browser()


@pytest.mark.parametrize("names, expected", [
    (["google-chrome"], "google-chrome"),
    (["chromium-browser", "google-chrome"], "chromium-browser"),
    (["google-chrome", "chromium"], "chromium"),
])
def test_path_names_in_order(bare, monkeypatch, names, expected):
    on_path = bare / "bin"
    on_path.mkdir()
    for name in names:
        fake_executable(on_path, name)
    monkeypatch.setenv("PATH", str(on_path))
    found = harness.find_browser()
    assert found == harness.Browser(str(on_path / expected), f"{expected} on PATH")


def test_a_non_executable_file_on_path_is_not_a_browser(bare, monkeypatch):
    on_path = bare / "bin"
    on_path.mkdir()
    (on_path / "chromium").write_text("not a program")
    monkeypatch.setenv("PATH", str(on_path))
    assert harness.find_browser() is None


def test_playwrights_own_browser_is_the_last_resort(bare, monkeypatch):
    installed = fake_executable(bare, "chrome")
    monkeypatch.setattr(harness, "_playwright_chromium", lambda: installed)
    assert harness.find_browser() == harness.Browser(installed, "Playwright's installed chromium")


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("TRUE", True), ("", False),
                                             ("false", False), ("0", False)])
def test_ci_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert harness.in_ci() is expected


SUITE = textwrap.dedent("""
    def test_needs_a_browser(page):
        pass
""")


def run_browser_test_without_browser(tmp_path, ci: str) -> subprocess.CompletedProcess:
    """Run one browser test with the e2e conftest in a child pytest on a machine with no browser."""
    e2e = tmp_path / "tests" / "e2e"
    e2e.mkdir(parents=True)
    (tmp_path / "tests" / "__init__.py").write_text("")
    (e2e / "__init__.py").write_text("")
    for name in ("conftest.py", "harness.py"):
        (e2e / name).write_text((harness.ROOT / "tests" / "e2e" / name).read_text())
    (e2e / "test_one.py").write_text(SUITE)
    # Playwright's browser cache is pointed at an empty folder, so none of its browsers is found either.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable), "CI": ci,
           "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "no-browsers")}
    env.pop(harness.BROWSER_ENV, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "tests/e2e"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_without_a_browser_the_browser_tests_skip_and_say_how_to_get_one(tmp_path):
    result = run_browser_test_without_browser(tmp_path, ci="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "apt-get install chromium" in result.stdout and "playwright install chromium" in result.stdout


@pytest.mark.slow
def test_without_a_browser_under_ci_the_browser_tests_fail(tmp_path):
    result = run_browser_test_without_browser(tmp_path, ci="true")
    assert result.returncode != 0
    assert "CI=true" in result.stdout and "1 error" in result.stdout
