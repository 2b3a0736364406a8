"""Sign-offs: recorded in the release's record, atomically, one signature per role."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.config import Settings
from ops.errors import UsageError
from ops.release.signoff import (
    SignoffRecord,
    clean_name,
    read_signoffs,
    sign,
    signoff_path,
    write_signoffs,
)

WHEN = datetime(2026, 11, 26, 13, 0, 0, tzinfo=UTC)


def test_record_lives_in_the_releases_dir_named_after_the_version(tmp_path: Path) -> None:
    assert signoff_path(tmp_path, Settings(), "v0.2.0") == \
        tmp_path / "releases" / "signoff_v0.2.0.json"


def test_signing_records_name_role_time_and_the_predeploy_result() -> None:
    record = sign(SignoffRecord("v0.2.0"), {"engineer": "Jiwoo Park"}, result="passed", now=WHEN)
    [signoff] = record.signoffs
    assert (signoff.role, signoff.name, signoff.signed_at, signoff.predeploy_result) == (
        "engineer", "Jiwoo Park", "2026-11-26T13:00:00Z", "passed")
    assert signoff.recorded_by


def test_a_later_reviewer_signature_keeps_the_engineers(tmp_path: Path) -> None:
    path = tmp_path / "signoff_v0.2.0.json"
    write_signoffs(path, sign(SignoffRecord("v0.2.0"), {"engineer": "Jiwoo Park"},
                              result="passed", now=WHEN))
    record = sign(read_signoffs(path, "v0.2.0"), {"reviewer": "Sam Rivera"}, result="passed")
    assert [(s.role, s.name) for s in record.signoffs] == [
        ("engineer", "Jiwoo Park"), ("reviewer", "Sam Rivera")]


def test_signing_again_replaces_that_roles_signature() -> None:
    first = sign(SignoffRecord("v0.2.0"), {"engineer": "Jiwoo Park"}, result="passed", now=WHEN)
    second = sign(first, {"engineer": "Mina Cho"}, result="passed")
    assert [s.name for s in second.signoffs] == ["Mina Cho"]


def test_reviewer_cannot_be_the_engineer_whatever_the_case() -> None:
    record = sign(SignoffRecord("v0.2.0"), {"engineer": "Jiwoo Park"}, result="passed")
    with pytest.raises(UsageError, match="cannot review their own release"):
        sign(record, {"reviewer": "jiwoo  park"}, result="passed")


def test_record_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "releases" / "signoff_v0.2.0.json"
    record = sign(SignoffRecord("v0.2.0"), {"engineer": "박지우", "reviewer": "Sam Rivera"},
                  result="passed", now=WHEN)
    write_signoffs(path, record)
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == "v0.2.0"
    assert read_signoffs(path, "v0.2.0") == record


def test_missing_record_reads_as_no_signatures(tmp_path: Path) -> None:
    assert read_signoffs(tmp_path / "absent.json", "v0.2.0") == SignoffRecord("v0.2.0")


def test_corrupt_record_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "signoff_v0.2.0.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match=r"signoff_v0\.2\.0\.json is not a readable sign-off"):
        read_signoffs(path, "v0.2.0")


def test_name_whitespace_is_collapsed() -> None:
    assert clean_name("  Jiwoo \t Park ", "engineer") == "Jiwoo Park"


@pytest.mark.parametrize("bad", ["", "   ", "a|b", "<script>", "line\x1bbreak", "x" * 81])
def test_names_that_would_break_the_markdown_table_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="--sign-reviewer"):
        clean_name(bad, "reviewer")
