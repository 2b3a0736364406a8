"""The real ``invoke`` program in a fresh service repository: exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def invoke(cwd: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """The real program; ``env`` adds variables to a copy of this process's environment."""
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, **(env or {})})


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


# --- INVOKE_OPS_* variables ----------------------------------------------------------------------


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("INVOKE_OPS_BACKUP_KEEP", "abc", "not an integer"),
    ("INVOKE_OPS_SMOKE_P95_MS", "fast", "not a number"),
    ("INVOKE_OPS_RELEASE_BRANCHES", "main", "a list cannot be set from an environment variable"),
])
def test_a_variable_invoke_cannot_cast_exits_2_with_one_line_naming_it(
        service_repo: Path, variable: str, value: str, problem: str) -> None:
    done = invoke(service_repo, "config", env={variable: value})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {variable} (")
    assert problem in line


def test_a_variable_overriding_a_number_from_invoke_yaml_is_checked_too(
        service_repo: Path) -> None:
    (service_repo / "invoke.yaml").write_text(
        "ops:\n  environments:\n    production:\n      services:\n        app:\n"
        "          replicas: 3\n", encoding="utf-8")
    variable = "INVOKE_OPS_ENVIRONMENTS_PRODUCTION_SERVICES_APP_REPLICAS"
    done = invoke(service_repo, "config", env={variable: "three"})
    assert done.returncode == 2
    assert done.stderr == (f"error: {variable} (ops.environments.production.services.app."
                           "replicas): not an integer\n")


def test_a_value_that_does_not_validate_names_the_variable(service_repo: Path) -> None:
    done = invoke(service_repo, "config", env={"INVOKE_OPS_BACKUP_KEEP": "0"})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: INVOKE_OPS_BACKUP_KEEP (ops.backup.keep): ")


def test_false_for_a_boolean_setting_exits_2_instead_of_meaning_true(service_repo: Path) -> None:
    done = invoke(service_repo, "config", env={"INVOKE_OPS_ARTIFACTS_CACHE": "false"})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: INVOKE_OPS_ARTIFACTS_CACHE (ops.artifacts.cache): "
                           "not a boolean")


def test_a_bad_variable_is_named_without_its_value(service_repo: Path) -> None:
    done = invoke(service_repo, "config", env={"INVOKE_OPS_BACKUP_KEEP": "hunter2-secret"})
    assert done.returncode == 2
    assert "hunter2-secret" not in done.stderr


def test_an_unknown_ops_variable_warns_with_the_closest_setting(service_repo: Path) -> None:
    done = invoke(service_repo, "config", env={"INVOKE_OPS_BACKUP__KEEP": "3"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("warning: INVOKE_OPS_BACKUP__KEEP is not a tminus setting and is "
                           "ignored (did you mean INVOKE_OPS_BACKUP_KEEP?)\n")


def test_a_known_ops_variable_gets_no_warning(service_repo: Path) -> None:
    done = invoke(service_repo, "config", env={"INVOKE_OPS_BACKUP_KEEP": "3"})
    assert done.returncode == 0
    assert done.stderr == ""


# --- invoke config -------------------------------------------------------------------------------


def test_config_prints_non_ascii_text_as_text(service_repo: Path) -> None:
    (service_repo / "invoke.yaml").write_text(
        "ops:\n  runbook:\n    sections:\n      health: [상태 확인, santé]\n", encoding="utf-8")
    done = invoke(service_repo, "config")
    assert done.returncode == 0, done.stderr
    assert "- 상태 확인\n" in done.stdout
    assert "- santé\n" in done.stdout


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--watch", "abc", "error: --watch takes a number, not 'abc'\n"),
    ("--lock-wait", "1e", "error: --lock-wait takes a number, not '1e'\n"),
    ("--batch", "x", "error: --batch takes a whole number, not 'x'\n")])
def test_option_value_of_the_wrong_kind_exits_2_naming_the_option(
        service_repo: Path, option: str, value: str, message: str) -> None:
    """Invoke's cast of ``--watch abc`` used to escape as a ValueError traceback (exit 1)."""
    done = invoke(service_repo, "deploy", "production", "v0.2.0", option, value)
    assert (done.returncode, done.stderr) == (2, message)


def test_unknown_option_is_a_usage_error_exit_2(service_repo: Path) -> None:
    done = invoke(service_repo, "deploy", "production", "v0.2.0", "--no-such-option")
    assert (done.returncode, done.stderr) == (2, "error: No idea what '--no-such-option' is!\n")


def test_help_shows_that_number_options_take_a_value(service_repo: Path) -> None:
    done = invoke(service_repo, "--help", "deploy")
    assert done.returncode == 0, done.stderr
    assert "--watch=NUMBER" in done.stdout
    assert "--lock-wait=NUMBER" in done.stdout
    assert "--batch=INT" in done.stdout


def test_output_naming_a_directory_exits_2_before_any_check(service_repo: Path,
                                                           tmp_path: Path) -> None:
    """It was an IsADirectoryError from the atomic rename at the very end (internal error)."""
    folder = tmp_path / "reports"
    folder.mkdir()
    done = invoke(service_repo, "predeploy", "--version", "v0.2.0", "--output", str(folder))
    assert done.returncode == 2
    assert done.stderr == (f"error: {folder} is a directory, not a file (hint: name a file in "
                           f"it, e.g. {folder / 'report.json'})\n")
    assert done.stdout == ""
