"""Settings: zero-config defaults, and errors that name the path and suggest the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.config import Settings, defaults, load_settings
from ops.errors import ConfigError


def test_empty_configuration_gives_the_zero_config_layout() -> None:
    settings = load_settings({})
    assert settings.runbook.path == Path("RUNBOOK.md")
    assert settings.migrations.alembic_ini == Path("alembic.ini")
    assert settings.artifacts.checkpoints_dir == Path("checkpoints")
    assert settings.backup.dir == Path("backups")
    assert settings.audit_log == Path("releases/deployments.jsonl")
    assert "*.safetensors" in settings.artifacts.patterns


def test_defaults_round_trip_through_plain_data() -> None:
    assert load_settings(defaults()) == Settings()


def test_bad_url_names_its_dotted_path() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"environments": {"production": {"health_url": "nope"}}})
    assert caught.value.message == "ops.environments.production.health_url: not a URL"


def test_unknown_top_level_key_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"ops\.runbok: unknown key \(did you mean 'runbook'\?\)"):
        load_settings({"runbok": {}})


def test_unknown_nested_key_inside_an_environment_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'health_url'"):
        load_settings({"environments": {"staging": {"helth_url": "http://x"}}})


def test_wrong_type_names_the_path() -> None:
    with pytest.raises(ConfigError, match=r"^ops\.runbook\.max_age_days: "):
        load_settings({"runbook": {"max_age_days": "soon"}})


def test_unknown_environment_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings().environment("prodution")
    assert caught.value.hint == "did you mean 'production'?"


def test_user_environments_merge_with_their_own_defaults() -> None:
    settings = load_settings({"environments": {"qa": {"health_url": "http://127.0.0.1:9000/h"}}})
    assert str(settings.environment("qa").health_url) == "http://127.0.0.1:9000/h"
    assert settings.environment("qa").env_file == Path(".env")


def test_a_value_from_a_variable_is_reported_under_the_variable_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"backup": {"keep": 0}},
                      sources={"ops.backup.keep": "INVOKE_OPS_BACKUP_KEEP"})
    assert caught.value.message.startswith("INVOKE_OPS_BACKUP_KEEP (ops.backup.keep): ")


def test_a_value_from_a_file_keeps_the_bare_path_when_other_values_came_from_variables() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"backup": {"keep": 0}},
                      sources={"ops.runbook.max_age_days": "INVOKE_OPS_RUNBOOK_MAX_AGE_DAYS"})
    assert caught.value.message.startswith("ops.backup.keep: ")
