"""The scripts outside the package (bench/, experiments/, examples/) still match it: every pivotrl name they
import exists, function-level imports included, so a name moved in the package breaks CI rather than a user
following the docs. Each script is also imported as a module (its top level runs; ``main`` does not)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("bench", "experiments", "examples") for p in (ROOT / folder).rglob("*.py"))


def _pivotrl_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) for every ``import pivotrl...`` / ``from pivotrl... import name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "pivotrl":
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "pivotrl"]
    return found


def test_the_scripts_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in SCRIPTS}
    assert {"bench/reward_server_fairness.py", "experiments/reproduce.py", "examples/custom_reward.py"} <= names
    # the check reads function-level imports too (the fairness bench imports pivotrl inside main)
    assert any(module == "pivotrl.rewards.client"
               for _, module, _ in _pivotrl_imports(ROOT / "bench" / "reward_server_fairness.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_pivotrl_name_a_script_imports_exists(path):
    missing = []
    for line, module, name in _pivotrl_imports(path):
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"line {line}: {module} ({exc})")
            continue
        if name is not None and name != "*" and not hasattr(imported, name):
            try:  # a submodule imported by name (from pivotrl.rewards import audit)
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"line {line}: {module}.{name}")
    assert not missing, f"{path.relative_to(ROOT)} imports names pivotrl does not have: {missing}"


@pytest.fixture
def registry_restored():
    """A plugin script registers its component on import (examples/custom_reward.py); other tests see the
    built-ins only."""
    from pivotrl.rewards import registry

    before = dict(registry.REGISTRY)
    yield
    registry.REGISTRY.clear()
    registry.REGISTRY.update(before)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_script_imports(path, monkeypatch, registry_restored):
    monkeypatch.syspath_prepend(str(path.parent))  # scripts import their neighbours (bench/lm_eval_mgsm)
    name = f"_script_{path.relative_to(ROOT).with_suffix('').as_posix().replace('/', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)  # top-level code only: every script keeps its work under __main__
