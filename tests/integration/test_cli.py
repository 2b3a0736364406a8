"""The real ``invoke`` program in a fresh service repository: exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def invoke(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def service_repo(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text("from ops.tasks import ns\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("version", ["v0.2", "1.2.3", "v1.2.3;rm -rf /", ""])
def test_malformed_version_exits_2_with_one_line_on_stderr(service_repo: Path,
                                                           version: str) -> None:
    done = invoke(service_repo, "predeploy", "--version", version)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: malformed release version")
    assert "Traceback" not in done.stderr


def test_invalid_invoke_yaml_exits_2_naming_the_setting(service_repo: Path) -> None:
    (service_repo / "invoke.yaml").write_text(
        "ops:\n  environments:\n    production:\n      health_url: nope\n", encoding="utf-8")
    done = invoke(service_repo, "predeploy", "--version", "v0.2.0")
    assert done.returncode == 2
    assert "ops.environments.production.health_url: not a URL" in done.stderr


def test_environment_variable_overrides_invoke_yaml(service_repo: Path) -> None:
    (service_repo / "invoke.yaml").write_text("ops:\n  runbook:\n    max_age_days: 30\n",
                                              encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "config"], cwd=service_repo, capture_output=True,
        text=True, timeout=120, check=False,
        env={**os.environ, "INVOKE_OPS_RUNBOOK_MAX_AGE_DAYS": "7"})
    assert done.returncode == 0, done.stderr
    assert "max_age_days: 7\n" in done.stdout


def test_invoke_yaml_beside_tasks_py_sets_a_value(service_repo: Path) -> None:
    (service_repo / "invoke.yaml").write_text("ops:\n  runbook:\n    max_age_days: 30\n",
                                              encoding="utf-8")
    done = invoke(service_repo, "config")
    assert "max_age_days: 30\n" in done.stdout


def test_list_shows_every_task_with_a_summary(service_repo: Path) -> None:
    done = invoke(service_repo, "--list")
    assert done.returncode == 0
    assert "predeploy (predeploy-check)" in done.stdout
