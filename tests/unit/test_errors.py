"""The error hierarchy decides exit codes in one place."""

from __future__ import annotations

import pytest

from ops.errors import (
    ChecksFailed,
    ConfigError,
    DatabaseUnavailable,
    DeployFailed,
    DockerUnavailable,
    ExitCode,
    LockHeld,
    OpsError,
    UsageError,
    exit_code_for,
)


@pytest.mark.parametrize(("error", "code"), [
    (UsageError("x"), 2), (ConfigError("x"), 2), (DockerUnavailable("x"), 3),
    (DatabaseUnavailable("x"), 3), (ChecksFailed("x"), 1), (DeployFailed("x"), 1),
    (LockHeld("x"), 1), (OpsError("x"), 1), (KeyboardInterrupt(), 130), (RuntimeError("x"), 1),
])
def test_each_error_maps_to_the_contract_exit_code(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_one_line_joins_message_and_hint_and_flattens_newlines() -> None:
    error = UsageError("tag v0.2.0\nalready exists", hint="pick v0.2.1")
    assert error.one_line() == "tag v0.2.0 already exists (hint: pick v0.2.1)"


def test_exit_codes_are_named_constants() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130]
