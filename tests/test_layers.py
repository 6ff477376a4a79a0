"""The architecture as the code has it: the import-linter contracts of pyproject.toml (layers from
core up to cli and gui, inference free of drawing, files and the UI), no import cycle between any
two modules, and few function-local imports (only for heavy optional dependencies)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys

import grimp
import pytest
from support import REPO

PACKAGE = REPO / "pose_app"
# Function-local imports of pose_app modules allowed in all: each must be there for a heavy
# dependency that a command may not need (Qt for the desktop app).
MAX_LOCAL_IMPORTS = 10


# `lint-imports` run by the interpreter running the tests, not looked up on PATH: a venv's
# python run without activating the venv has its own scripts off PATH.
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_the_import_contracts_hold():
    if importlib.util.find_spec("importlinter") is None:
        pytest.fail(f"import-linter is missing from {sys.executable}: pip install -e '.[test]' installs it")
    result = subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """The import cycles of a graph: its strongly connected components of more than one module
    (Tarjan's algorithm)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph.modules)))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_back():
    # grimp reads every import statement, in functions and under TYPE_CHECKING too.
    graph = grimp.build_graph("pose_app", cache_dir=None)
    assert "pose_app.gui.app" in graph.find_modules_directly_imported_by("pose_app.cli.app")  # a local import
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c", "d"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert strongly_connected(graph) == [{"a", "b", "c"}]


def local_imports_of_the_package() -> list[str]:
    """`file:line module` of every import of a pose_app module inside a function or class."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if isinstance(node, ast.Import):
                module = next((alias.name for alias in node.names if alias.name.startswith("pose_app")), None)
            if module and module.startswith("pose_app") and id(node) not in top_level:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {module}")
    return found


def test_few_function_local_imports_and_a_flat_top_level():
    local = local_imports_of_the_package()
    assert len(local) <= MAX_LOCAL_IMPORTS, "\n".join(local)
    top_level = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert top_level == ["__init__.py", "__main__.py", "errors.py"]
