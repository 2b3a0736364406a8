"""The ``tminus`` command: tminus's tasks from any folder, without importing a ``tasks.py``.

Run as ``python -m ops`` (what the ``tminus`` console script calls), in a real git repository
whose ``src/app/tasks.py`` is the service's own job module: it would leave a canary file if
anything imported it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

MAIN = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(git_repo: GitRepo, tmp_path: Path) -> tuple[GitRepo, Path]:
    canary = tmp_path / "service-tasks-ran"
    git_repo.write("src/app/tasks.py", f"open({str(canary)!r}, 'w').write('ran')\n")
    git_repo.write("invoke.yaml", "ops:\n  backup:\n    keep: 3\n")
    git_repo.commit("service with a job module named tasks.py")
    git_repo.tag("v0.1.0")
    return git_repo, canary


def tminus(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(MAIN)}
    return subprocess.run([sys.executable, "-m", "ops", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_tminus_from_a_subdirectory_never_imports_the_services_tasks_py(
        service: tuple[GitRepo, Path]) -> None:
    repo, canary = service
    done = tminus(repo.path / "src/app", "config")
    assert done.returncode == 0, done.stderr
    assert not canary.exists()


def test_tminus_reads_the_invoke_yaml_of_the_enclosing_repository(
        service: tuple[GitRepo, Path]) -> None:
    repo, _ = service
    done = tminus(repo.path / "src/app", "config")
    assert "keep: 3" in done.stdout


def test_tminus_predeploy_from_a_subdirectory_judges_the_repository(
        service: tuple[GitRepo, Path], tmp_path: Path) -> None:
    repo, _ = service
    report = tmp_path / "report.json"
    tminus(repo.path / "src/app", "predeploy", "--version", "v0.1.0", "--only", "release_tag",
           "--format", "json", "--output", str(report))
    assert json.loads(report.read_text())["project"] == str(repo.path.resolve())


def test_tminus_lists_the_tasks_it_carries(service: tuple[GitRepo, Path]) -> None:
    repo, _ = service
    done = tminus(repo.path, "--list")
    assert "predeploy" in done.stdout
    assert "create-release" in done.stdout


def test_unknown_core_option_of_tminus_exits_2(service: tuple[GitRepo, Path]) -> None:
    repo, _ = service
    done = tminus(repo.path, "--no-such-flag")
    assert (done.returncode, done.stderr) == (2, "error: No idea what '--no-such-flag' is!\n")


def test_tminus_completion_still_lists_the_tasks(service: tuple[GitRepo, Path]) -> None:
    repo, _ = service
    done = tminus(repo.path, "--complete", "--", "smoke")
    assert done.returncode == 0, done.stderr
    assert "smoke-test" in done.stdout.split()
