"""The package's boundaries: which modules may import torch, and no module imports another in a circle."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import bnviz

ROOT = Path(bnviz.__file__).resolve().parent
# Where training happens: the training package, the record command, and the page that starts runs.
TORCH_ALLOWED = ("bnviz.training", "bnviz.__main__", "bnviz.ui")


def modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="bnviz.")]
    return ["bnviz", *names]


def test_every_module_outside_training_imports_with_torch_blocked():
    torch_free = [m for m in modules() if not m.startswith(TORCH_ALLOWED)]
    assert "bnviz.measure.clt" in torch_free and "bnviz.table.replay" in torch_free  # the list is not empty
    code = ("import sys, importlib\n"
            "sys.modules['torch'] = None  # any import of torch now raises ImportError\n"
            f"for name in {torch_free!r}:\n"
            "    importlib.import_module(name)\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


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


def test_no_module_imports_another_in_a_circle():
    graph = {}
    for name in modules():
        rel = name.split(".")[1:]
        path = ROOT.joinpath(*rel).with_suffix(".py") if rel else ROOT / "__init__.py"
        if not path.exists():
            path = ROOT.joinpath(*rel, "__init__.py")
        graph[name] = imports_of(path, name)
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
