"""scripts/check_layers.py on a made-up package: deferred imports, cycles, upward imports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def checker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_checker()
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "ALLOWED", set())
    write(tmp_path, "ops/__init__.py", "")
    write(tmp_path, "ops/errors.py", "")
    write(tmp_path, "ops/runtime/__init__.py", "")
    write(tmp_path, "ops/checks/__init__.py", "from ops.runtime import files\n")
    write(tmp_path, "ops/runtime/files.py", "from ops.errors import *\n")
    return module


def test_the_real_package_passes() -> None:
    checker = load_checker()
    problems, _, cycles, upward = checker.judge(checker.collect())
    assert (problems, cycles, upward) == ([], 0, 0)


def test_a_clean_graph_passes(checker: ModuleType) -> None:
    problems, _, cycles, upward = checker.judge(checker.collect())
    assert (problems, cycles, upward) == ([], 0, 0)


def test_an_import_inside_a_function_is_an_upward_import_and_a_cycle(
        checker: ModuleType, tmp_path: Path) -> None:
    write(tmp_path, "ops/runtime/files.py", "def f():\n    from ops.checks import x\n")
    imports = checker.collect()
    problems, _, cycles, upward = checker.judge(imports)
    assert [i.in_function for i in imports if i.module == "ops.runtime.files"] == [True]
    assert (cycles, upward) == (1, 1)
    assert any(p.startswith("upward: ops/runtime/files.py:2 ops.runtime.files (runtime) imports "
                            "ops.checks (checks)") for p in problems)
    assert any(p.startswith("cycle: ops.checks <-> ops.runtime") for p in problems)


def test_type_checking_imports_do_not_count(checker: ModuleType, tmp_path: Path) -> None:
    write(tmp_path, "ops/runtime/files.py",
          "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ops.checks import x\n")
    problems, _, cycles, upward = checker.judge(checker.collect())
    assert (problems, cycles, upward) == ([], 0, 0)


def test_a_module_in_no_layer_and_a_stale_allowlist_entry_fail(
        checker: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "ops/newthing.py", "")
    monkeypatch.setattr(checker, "ALLOWED", {("ops.runtime.files", "ops.checks")})
    problems, _, _, _ = checker.judge(checker.collect())
    assert any(p.startswith("unplaced: ops.newthing") for p in problems)
    assert any(p.startswith("stale allowlist entry") for p in problems)
