"""Security: visitor text is shown as text, uploads are data only, query values never reach the file system."""

import ast
from pathlib import Path

import pytest

from bnviz import urlstate
from bnviz.ui.state import as_text

from .pages import open_page

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app.py", *sorted((ROOT / "bnviz").rglob("*.py"))]
HOSTILE = {
    "seed": "<script>alert(1)</script>",
    "lr": "[click](javascript:alert(1))",
    "activation": ":red[owned] <img src=x onerror=alert(1)>",
    "dataset": "../../../../etc/passwd",
    "<b>name</b>": "1",
}


def calls(tree):
    """(call, called name, its owner): ``eval`` and "" for ``eval(x)``, ``load`` and ``pickle`` for
    ``pickle.load(f)``, and "<expression>" as the owner of a method of anything else (``self.model.eval()``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            yield node, (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")), (
                getattr(f.value, "id", "<expression>") if isinstance(f, ast.Attribute) else "")


# Modules that open files by design, and why no visitor's input reaches the path.
OPENS_FILES = {"parts.py": "a run folder: the one bnviz.watch, record --out or view was given, never a link's",
               "train.py": "a sweep worker's table, in a temporary folder it made itself",
               "store.py": "the process's own /proc/self/status, for its umask (stored runs are named by a hash)"}


def test_as_text_escapes_every_markup_character_and_nothing_else():
    hostile = "".join(HOSTILE.values())
    escaped = as_text(hostile)
    # Removing exactly one backslash before each punctuation mark gives the original back ...
    assert escaped.replace("\\", "") == hostile.replace("\\", "")
    # ... and no markup character is left unescaped.
    for i, c in enumerate(escaped):
        if c in "<>[]():`*_":
            assert escaped[i - 1] == "\\", (c, escaped[max(0, i - 5):i + 5])
    assert as_text("plain words 42") == "plain words 42"


def test_a_hostile_link_shows_its_values_as_text_and_uses_defaults():
    at = open_page({**HOSTILE, "steps": "40", "every": "20"}, wait_snapshots=1)
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == len(HOSTILE)  # one warning per bad field, each naming it
    for w in warnings:
        for ch in "<>[]()":
            assert ch not in w.replace("\\" + ch, ""), w  # every markup character is escaped
    cfg = at.session_state["last_config"]  # what the page runs, and what its link now says
    assert cfg.seed == 0 and cfg.lr == 0.5 and cfg.activation == "sigmoid" and cfg.dataset == "digits"
    assert (at.query_params["seed"], at.query_params["lr"], at.query_params["dataset"]) == ("0", "0.5", "digits")


def test_query_values_never_name_files():
    """Every field is decoded against fixed registries or number ranges: a path is just a bad value."""
    d = urlstate.decode({"dataset": "../../etc/passwd", "preset": "/etc/passwd", "lesson": "../1"})
    assert d.config.dataset == "digits" and d.preset == "ioffe"
    assert any("dataset" in w for w in d.warnings) and any("preset" in w for w in d.warnings)


def test_html_is_only_ever_our_own_constants():
    """Every unsafe_allow_html=True call (and st.html) renders a string literal or a module constant."""
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        constants = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                     if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
        for node, name, _ in calls(tree):
            unsafe = any(k.arg == "unsafe_allow_html" and getattr(k.value, "value", False) for k in node.keywords)
            if unsafe or name == "html":
                arg = node.args[0]
                ok = isinstance(arg, ast.Constant) or (
                    isinstance(arg, ast.Attribute) and arg.attr.isupper()) or (
                    isinstance(arg, ast.Name) and arg.id in constants)
                assert ok, f"{path.name}:{node.lineno} renders non-constant HTML"


@pytest.mark.parametrize("forbidden", ["pickle.load", "pickle.loads", "torch.load", "eval", "exec",
                                       "np.load", "pd.read_pickle", "open"])
def test_nothing_deserializes_code_or_opens_files_from_visitor_input(forbidden):
    """No pickle/torch.load (uploads are parsed as data: see tests/table/test_upload.py), no eval/exec, and no
    file opened anywhere in the package or the page (the record command writes only to --out)."""
    module, _, func = forbidden.rpartition(".")
    for path in SOURCES:
        if forbidden == "open" and path.name in OPENS_FILES:
            continue
        for node, name, owner in calls(ast.parse(path.read_text(), str(path))):
            assert not (name == func and owner == module), f"{path.name}:{node.lineno} calls {forbidden}"
