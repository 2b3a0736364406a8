"""Choosing the backend an environment configures, without an engine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ops.config import EnvironmentSettings, Settings
from ops.deploy.backend import ComposeBackend, backend_for
from ops.deploy.stack import Stack, Steps
from ops.errors import ConfigError
from ops.runtime.compose import Compose
from ops.runtime.process import Runner


def stack_with(tmp_path: Path, **env: object) -> Stack:
    environment = EnvironmentSettings.model_validate(env)
    settings = Settings(environments={"production": environment})
    out = io.StringIO()
    return Stack(tmp_path, settings, "production", environment,
                 Compose("shop-production", tmp_path / "docker-compose.yml"), None,
                 Runner(dry_run=True, out=out), Steps(out=out, dry_run=True))


def test_an_environment_runs_on_compose_unless_it_says_otherwise(tmp_path: Path) -> None:
    backend = backend_for(stack_with(tmp_path))
    assert isinstance(backend, ComposeBackend) and backend.name == "compose"


def test_an_unknown_backend_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        stack_with(tmp_path, backend="nomad")


def test_without_an_engine_the_compose_health_facts_are_skipped_not_passed(
        tmp_path: Path) -> None:
    findings = backend_for(stack_with(tmp_path)).health()
    assert [(f.id, f.status.value) for f in findings] == [("smoke.containers", "skip")]


def test_swarm_names_itself_or_says_it_is_not_available_yet(tmp_path: Path) -> None:
    try:
        backend = backend_for(stack_with(tmp_path, backend="swarm"))
    except ConfigError as exc:
        assert exc.message == "the swarm backend is not available yet"
    else:
        assert backend.name == "swarm"
