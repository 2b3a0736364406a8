"""Which repository a task judges: the one whose tasks.py Invoke loaded, wherever it is run from.

The real ``invoke`` program runs in a real git repository whose tasks.py is the one a service
repository has (``from ops.tasks import ns``); the JSON report's ``project`` is the root the
task resolved.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from invoke.config import Config
from invoke.context import Context

from ops.config import Settings
from ops.taskkit import project_root
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration


def service_repo(repo: GitRepo) -> GitRepo:
    """A service repository released as v0.1.0, with folders to run tasks from."""
    repo.write("tasks.py", "from ops.tasks import ns\n")
    repo.write("service/worker/app.py", "print('working')\n")
    repo.write("docs/index.md", "# docs\n")
    repo.commit("feat: the service")
    repo.tag("v0.1.0")
    return repo


def predeploy_json(cwd: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "invoke", "predeploy", "--version", "v0.1.0",
                           "--only", "release_tag", "--format", "json"], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def finding_status(report: dict[str, object], finding_id: str) -> str:
    sections = report["sections"]
    assert isinstance(sections, list)
    [status] = [f["status"] for s in sections for f in s["findings"] if f["id"] == finding_id]
    return str(status)


def test_predeploy_from_a_subdirectory_judges_the_repository_of_tasks_py(
        git_repo: GitRepo) -> None:
    repo = service_repo(git_repo)
    report = predeploy_json(repo.path / "service" / "worker")
    assert report["project"] == str(repo.path.resolve())
    assert finding_status(report, "release_tag.exists") == "pass"


def test_project_root_setting_is_relative_to_the_folder_of_tasks_py(git_repo: GitRepo) -> None:
    repo = service_repo(git_repo)
    repo.write("invoke.yaml", "ops:\n  project_root: service\n")
    repo.commit("chore: the service lives in service/")
    report = predeploy_json(repo.path / "docs")
    assert report["project"] == str((repo.path / "service").resolve())


def test_without_a_loaded_tasks_py_the_git_top_level_is_the_root(
        git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = service_repo(git_repo)
    monkeypatch.chdir(repo.path / "service" / "worker")
    assert project_root(Context(Config()), Settings()) == repo.path.resolve()


def test_outside_any_repository_the_current_directory_is_the_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert project_root(Context(Config()), Settings()) == tmp_path.resolve()
