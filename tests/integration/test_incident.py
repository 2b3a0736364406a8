"""``invoke incident`` in a fresh service repository: the log line, the audit line, the answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.config import Settings, load_settings
from ops.deploy.audit import AuditEvent, record
from ops.deploy.incident import record_incident

pytestmark = pytest.mark.integration


def invoke(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "TMINUS_USER": "oncall"})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text("from ops.tasks import ns\n", encoding="utf-8")
    return tmp_path


def test_incident_appends_to_todays_log_and_prints_target_and_mitigations(repo: Path) -> None:
    done = invoke(repo, "incident", "API answers 500 since v0.3.0", "--severity", "P1")
    assert done.returncode == 0, done.stderr
    today = datetime.now(UTC).strftime("%Y%m%d")
    lines = (repo / "incidents" / f"{today}.log").read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith('P1 incident env=production by=oncall '
                             '"API answers 500 since v0.3.0"')
    assert "response target: within 15 minutes" in done.stdout
    assert "invoke rollback previous --env production" in done.stdout
    assert "invoke scale app=1 --env production" in done.stdout


def test_incident_is_recorded_in_the_audit_log(repo: Path) -> None:
    invoke(repo, "incident", "queue backing up", "--severity", "P2")
    event = json.loads((repo / "releases" / "deployments.jsonl").read_text().splitlines()[-1])
    assert (event["action"], event["who"]) == ("incident", "oncall")
    assert event["details"]["severity"] == "P2"
    assert event["details"]["description"] == "queue backing up"


@pytest.mark.parametrize(("severity", "target"), [
    ("P0", "immediately"), ("p1", "within 15 minutes"), ("P2", "within 4 hours"),
    ("P3", "within 2 days")])
def test_each_severity_prints_the_documents_response_target(repo: Path, severity: str,
                                                            target: str) -> None:
    found = record_incident(repo, Settings(), "something", severity, "production")
    assert found.response == target
    assert f"response target: {target}" in found.render()


def test_two_incidents_the_same_day_append_two_lines_and_a_newline_cannot_forge_a_third(
        repo: Path) -> None:
    now = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    record_incident(repo, Settings(), "first", "P3", "production", now=now)
    record_incident(repo, Settings(), 'second\n2026-03-01T09:31:00Z P0 incident "fake"', "P3",
                    "production", now=now)
    lines = (repo / "incidents" / "20260301.log").read_text().splitlines()
    assert len(lines) == 2
    assert lines[1].endswith('"second 2026-03-01T09:31:00Z P0 incident \\"fake\\""')


def test_incidents_folder_keeps_itself_out_of_git(repo: Path) -> None:
    record_incident(repo, Settings(), "x", "P3", "production")
    assert (repo / "incidents" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_rollback_mitigation_names_the_release_before_the_running_one(repo: Path) -> None:
    log = repo / "releases" / "deployments.jsonl"
    for version in ("v0.1.0", "v0.2.0"):
        record(log, AuditEvent(action="deploy", env="production", result="success",
                               to_version=version))
    found = record_incident(repo, Settings(), "errors", "P0", "production")
    assert (found.running, found.previous) == ("v0.2.0", "v0.1.0")
    assert "invoke rollback v0.1.0 --env production --with-db" in found.render()


def test_unknown_severity_exits_2_and_writes_nothing(repo: Path) -> None:
    done = invoke(repo, "incident", "x", "--severity", "P5")
    assert done.returncode == 2
    assert done.stderr == "error: unknown severity 'P5' (hint: use P0, P1, P2 or P3)\n"
    assert not (repo / "incidents").exists()


def test_unknown_environment_is_refused_before_anything_is_written(repo: Path) -> None:
    settings = load_settings({})
    with pytest.raises(Exception, match="unknown environment"):
        record_incident(repo, settings, "x", "P1", "prodution")
    assert not (repo / "incidents").exists()


def test_mitigations_name_the_services_the_compose_file_builds(repo: Path) -> None:
    """A stack whose services are not called app and worker (backend, frontend, a db image):
    the restart and scale-down commands name services it has."""
    (repo / "docker-compose.yml").write_text(
        "services:\n"
        "  db:\n    image: postgres:16\n"
        "  backend:\n    build: ./backend\n    image: acme/backend:${TAG-latest}\n"
        "  frontend:\n    build: ./frontend\n", encoding="utf-8")
    found = record_incident(repo, Settings(), "API answers 500", "P2", "production")
    commands = [command for _, command in found.mitigations]
    assert commands[0].endswith(" restart backend")
    assert [c for c in commands if c.startswith("invoke scale")] == [
        "invoke scale backend=1 --env production", "invoke scale frontend=1 --env production"]
