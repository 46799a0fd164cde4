"""The shape of the code: the pipeline's stages import only earlier stages, shared services import no stage,
no two modules import each other (directly or round a loop), a private ``_name`` is imported only by a sibling
module of the same sub-package, and modules stay small enough to read (data tables apart). Read from the
source with ``ast``, function-level imports included, so a lazy import cannot hide a dependency or a cycle.
Imports under ``if TYPE_CHECKING:`` never run and are left out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pivotrl"
STAGES = ["data", "pivot", "rewards", "train", "evaluation", "report"]  # the pipeline, in order
ORCHESTRATORS = {"cli", "pipeline", "__init__", "__main__"}  # above every stage: they may import any
DATA_TABLES = {"data/synthetic/templates.py"}  # word lists and sentence templates per language
MAX_LINES = 600


def _part(module: str) -> str:
    """The top-level part of pivotrl a dotted module name belongs to (a stage, a service, an orchestrator)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[tuple[str, str]]]:
    """part -> {(imported part, importing file)} for every pivotrl import in the package."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name == "pivotrl" or name.startswith("pivotrl."):
                    found.setdefault(own, set()).add((_part(name), str(rel)))
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth (inside functions too), not under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _owner(module: str) -> str:
    """The module a dotted name refers to: itself, else its nearest enclosing module (``pkg.mod.Name``)."""
    while module not in MODULES and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


def _module_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """(module -> the pivotrl modules it imports, [(importer, defining module, private name)] for every
    ``from pivotrl.x import _name``)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    private: list[tuple[str, str, str]] = []
    for module, path in MODULES.items():
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [_owner(a.name) for a in node.names if a.name.split(".")[0] == "pivotrl"]
            elif node.level == 0 and (node.module or "").split(".")[0] == "pivotrl":
                targets = []
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.append(submodule if submodule in MODULES else _owner(node.module))
                    if alias.name.startswith("_") and not alias.name.startswith("__") and submodule not in MODULES:
                        private.append((module, _owner(node.module), alias.name))
            else:
                targets = []
            edges[module].update(t for t in targets if t != module)
    return edges, private


def _package(module: str) -> str:
    """The sub-package a module lives in (``pivotrl.rewards.audit`` for ``pivotrl.rewards.audit.report``)."""
    return module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other round a loop (strongly connected, more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return cycles


def test_no_import_cycles():
    cycles = import_cycles(_module_graph()[0])
    assert not cycles, f"modules importing each other (function-level imports included): {cycles}"


def test_private_names_stay_inside_their_sub_package():
    bad = [(importer, f"{where}.{name}") for importer, where, name in _module_graph()[1]
           if _package(importer) != _package(where) or _package(where) == "pivotrl"]
    assert not bad, f"private names imported from another sub-package (make them public where they live): {bad}"


def test_the_checks_see_cycles_and_private_imports():
    # the detector itself: a loop through a function-level import is a cycle, a chain is not
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\n"
                     "def f():\n    from pivotrl.answers import _y\n")
    assert [type(n).__name__ for n in _runtime_imports(tree)] == ["ImportFrom", "ImportFrom"]
    edges, private = _module_graph()
    assert "pivotrl.rewards.compose" in edges["pivotrl.train.config"]  # a function-level import is an edge
    assert all(name.startswith("_") for _, _, name in private)


def test_the_package_is_read():
    imports = _imports()
    assert set(STAGES) <= set(imports)  # every stage is a part of the package
    assert ("rewards", "train/config.py") in imports["train"]  # a known edge is seen (the parse works)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_later_stage(stage):
    later = set(STAGES[STAGES.index(stage) + 1:])
    bad = sorted((target, where) for target, where in _imports().get(stage, set()) if target in later)
    assert not bad, f"{stage} imports later stages: {bad}"


def test_shared_services_import_no_stage():
    bad = sorted((part, target, where) for part, edges in _imports().items()
                 if part not in STAGES and part not in ORCHESTRATORS
                 for target, where in edges if target in STAGES)
    assert not bad, f"shared services importing stages: {bad}"


def test_modules_stay_under_the_size_limit():
    sizes = {str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines()) for p in SRC.rglob("*.py")}
    big = {name: n for name, n in sizes.items() if n > MAX_LINES and name not in DATA_TABLES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"
