"""The shape of the code: the pipeline's stages import only earlier stages, shared services import no stage,
and modules stay small enough to read (data tables apart). Read from the source with ``ast``, function-level
imports included, so a lazy import cannot hide a dependency."""

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


def test_the_package_is_read():
    imports = _imports()
    assert set(STAGES) <= set(imports)  # every stage is a part of the package
    assert ("rewards", "train/run.py") in imports["train"]  # a known edge is seen (the parse works)


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
