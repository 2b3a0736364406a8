"""smoke-test on a project with nothing running, on the real engine: no verdict from no data."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ops.config import EnvironmentSettings, Settings
from ops.deploy.smoke import log_findings
from ops.deploy.stack import open_stack
from ops.report import Status

pytestmark = pytest.mark.e2e


def test_log_check_of_a_project_with_no_container_is_a_skip_not_a_pass(
        tmp_path: Path, docker_client: Any) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  app:\n    image: example/app:1\n", encoding="utf-8")
    project = f"tminus-empty-{uuid.uuid4().hex[:8]}"  # a project no container belongs to
    settings = Settings(environments={"production": EnvironmentSettings(project_name=project)})
    stack = open_stack(tmp_path, settings, "production", client=docker_client)

    [finding] = list(log_findings(stack))

    assert finding.status is Status.SKIP
    assert project in finding.message
