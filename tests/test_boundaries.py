"""The package's boundaries: the packages each package may import (the pipeline's order), which modules may import
torch and streamlit, and no module importing another in a circle. Every module is walked, subpackages included."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import bnviz

ROOT = Path(bnviz.__file__).resolve().parent
# Where training happens: the training package, the record command, the page that starts runs, and the watcher
# that rides along in someone else's training loop.
TORCH_ALLOWED = ("bnviz.training", "bnviz.__main__", "bnviz.ui", "bnviz.watching", "bnviz.lightning")
# The page alone speaks Streamlit.
STREAMLIT_ALLOWED = ("bnviz.ui",)
# Each package (or top-level module) of bnviz and the ones it may import: the pipeline training -> measure ->
# table -> present -> ui, with config, stats and urlstate serving them (owndata, your own CSV data, serves
# urlstate). A snapshot's producer (training) hands
# its work to measure and keeps a table.History; measure never reaches back to table or training (a worker's
# Recorder is handed to it). Every package must be declared here, so a new one states its edges.
EDGES: dict[str, set[str]] = {
    "config": set(),
    "stats": set(),
    "owndata": {"config"},
    "urlstate": {"config", "owndata"},
    "measure": {"config", "stats"},
    "table": {"config", "stats", "measure", "urlstate", "owndata"},
    "training": {"config", "stats", "measure", "table", "owndata"},
    "present": {"config", "stats", "measure", "table", "urlstate", "owndata"},
    "watching": {"config", "stats", "measure", "table"},
    "lightning": {"config", "watching"},
    "ui": {"config", "stats", "measure", "table", "training", "present", "urlstate", "owndata"},
    "sweep": {"config", "measure", "table", "training", "urlstate", "owndata"},
    "__main__": {"config", "stats", "measure", "table", "training", "present", "urlstate", "owndata", "sweep"},
}


def modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="bnviz.")]
    return ["bnviz", *names]


def import_blocked(blocked: str, names: list[str]) -> subprocess.CompletedProcess:
    """Import every module of ``names`` in a fresh interpreter in which importing ``blocked`` fails."""
    code = ("import sys, importlib\n"
            f"sys.modules[{blocked!r}] = None  # any import of it now raises ImportError\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print('ok')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_every_module_outside_training_imports_with_torch_blocked():
    torch_free = [m for m in modules() if not m.startswith(TORCH_ALLOWED)]
    assert {"bnviz.measure.clt", "bnviz.table.replay", "bnviz.present.claims.board"} <= set(torch_free)
    result = import_blocked("torch", torch_free)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.slow
def test_every_module_outside_ui_imports_with_streamlit_blocked():
    names = [m for m in modules() if not m.startswith(STREAMLIT_ALLOWED)]
    assert {"bnviz.present.report", "bnviz.table.replay", "bnviz.training.run"} <= set(names)
    result = import_blocked("streamlit", names)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.slow
def test_blocking_a_library_makes_a_module_that_imports_it_fail():
    """The two checks above can fail: blocking streamlit breaks the page's modules."""
    result = import_blocked("streamlit", ["bnviz.ui.live"])
    assert result.returncode != 0 and "streamlit" in result.stderr


def imports_of(path: Path, name: str) -> set[str]:
    """The bnviz modules that module ``name`` imports, at the top or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    known = set(modules())
    return {m for m in found if m in known and m != name and not (m == "bnviz" or name.startswith(m + "."))}


def module_graph() -> dict[str, set[str]]:
    """Each bnviz module and the bnviz modules it imports."""
    graph = {}
    for name in modules():
        rel = name.split(".")[1:]
        path = ROOT.joinpath(*rel).with_suffix(".py") if rel else ROOT / "__init__.py"
        if not path.exists():
            path = ROOT.joinpath(*rel, "__init__.py")
        graph[name] = imports_of(path, name)
    return graph


def package(module: str) -> str:
    """The package (or top-level module) of bnviz that ``module`` belongs to; "bnviz" for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "bnviz"


def package_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """Each import from one package into another, with the module imports that make it."""
    edges: dict[tuple[str, str], list[str]] = {}
    for name, targets in graph.items():
        for target in targets:
            if package(name) != package(target):
                edges.setdefault((package(name), package(target)), []).append(f"{name} -> {target}")
    return edges


def test_every_package_is_declared_with_its_edges():
    declared = {package(m) for m in modules()} - {"bnviz"}
    assert declared == set(EDGES), sorted(declared ^ set(EDGES))


def test_each_package_imports_only_the_packages_it_is_allowed_to():
    edges = package_edges(module_graph())
    assert ("ui", "present") in edges and ("training", "measure") in edges  # the graph is read, not empty
    wrong = {edge: where for edge, where in edges.items() if edge[0] != "bnviz" and edge[1] not in EDGES[edge[0]]}
    assert not wrong, wrong


def test_the_declared_edges_form_no_circle():
    order: list[str] = []  # packages in an order where each comes after all it imports
    left = dict(EDGES)
    while left:
        ready = [p for p, deps in left.items() if deps <= set(order)]
        assert ready, f"circle among {sorted(left)}"
        order += sorted(ready)
        for p in ready:
            del left[p]
    assert order.index("measure") < order.index("table") < order.index("present") < order.index("ui")


def test_a_backward_import_is_found():
    """The edge check sees a measure module that imports table (a step back in the pipeline)."""
    graph = module_graph()
    graph["bnviz.measure.worker"] = graph["bnviz.measure.worker"] | {"bnviz.table.record"}
    assert package_edges(graph)[("measure", "table")] == ["bnviz.measure.worker -> bnviz.table.record"]
    assert "table" not in EDGES["measure"]


def test_no_module_imports_another_in_a_circle():
    graph = module_graph()
    assert graph["bnviz.ui.live"] >= {"bnviz.ui.panels", "bnviz.ui.state"}  # the graph is read, not empty
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if not nxt.startswith(node + "."):  # a package importing its own modules is not a circle
                visit(nxt)
        stack.pop()

    for name in sorted(graph):
        visit(name)
    assert not cycles, cycles
