"""The one home of who, when, how big and which path: every record and message agrees."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.bounded import human_bytes
from ops.deploy.audit import AuditEvent
from ops.release.signoff import SignoffRecord, sign
from ops.runtime.files import shown_path
from ops.stamps import operator, utc_stamp

NOON = datetime(2026, 11, 26, 12, 0, 5, tzinfo=UTC)


def test_a_utc_stamp_is_iso_8601_to_the_second_with_a_z() -> None:
    assert utc_stamp(NOON) == "2026-11-26T12:00:05Z"


def test_tminus_user_names_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMINUS_USER", "jiwoo")
    assert operator() == "jiwoo"


def test_the_audit_line_and_the_sign_off_name_the_same_operator(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The checklist's sign-off used to ignore TMINUS_USER while the audit log honoured it."""
    monkeypatch.setenv("TMINUS_USER", "ci-for-sam")
    record = sign(SignoffRecord("v0.2.0"), {"engineer": "Jiwoo Park"}, result="passed", now=NOON)
    [signoff] = record.signoffs
    assert signoff.recorded_by == f"ci-for-sam@{socket.gethostname()}"
    assert signoff.signed_at == "2026-11-26T12:00:05Z"
    assert AuditEvent(action="deploy", env="production", result="success").who == "ci-for-sam"


@pytest.mark.parametrize(("size", "shown"), [
    (0, "0 B"), (1023, "1023 B"), (2048, "2.0 KiB"), (50_000_000, "47.7 MiB"),
    (3 * 2**30, "3.0 GiB"), (5 * 2**40, "5.0 TiB"),
])
def test_sizes_are_shown_in_binary_units(size: int, shown: str) -> None:
    assert human_bytes(size) == shown


def test_a_path_inside_the_project_is_shown_relative(tmp_path: Path) -> None:
    assert shown_path(tmp_path, tmp_path / "migrations" / "env.py") == "migrations/env.py"


def test_a_path_reached_through_a_symlinked_root_is_shown_relative(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert shown_path(tmp_path / "link", tmp_path / "real" / ".env") == ".env"


def test_a_path_outside_the_project_is_shown_as_given(tmp_path: Path) -> None:
    assert shown_path(tmp_path / "project", Path("/etc/hosts")) == "/etc/hosts"
