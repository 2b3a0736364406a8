"""The report model and its renderers, specified by golden files for console, JSON and JUnit.

Regenerate the golden files after an intended change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from ops.errors import UsageError
from ops.report import (
    Finding,
    Report,
    Section,
    Status,
    choose_format,
    render_console,
    render_json,
    render_junit,
)
from tests.golden import match_golden

GOLDEN = Path(__file__).parent / "golden"


def sample_report(*, strict: bool = False) -> Report:
    sections = [
        Section("release_tag", "Release Tag Validation", [
            Finding("release_tag.format", Status.PASS, "v0.2.0 is a valid release version"),
            Finding("release_tag.annotated", Status.WARN, "tag v0.2.0 is lightweight",
                    hint="recreate it with `git tag -a v0.2.0`"),
        ], 0.012),
        Section("secrets", "Secret Validation", [
            Finding("secrets.placeholder", Status.FAIL,
                    ".env:4 STRIPE_KEY still holds the example value",
                    hint="set a real key from the Stripe dashboard"),
            Finding("secrets.hardcoded", Status.PASS, "no hardcoded secrets in 12 tracked files"),
        ], 0.25),
        Section("migrations", "Database Migrations", [
            Finding("migrations.db_current", Status.SKIP, "DATABASE_URL does not answer"),
        ], 0.5),
    ]
    return Report(release="v0.2.0", project="/srv/demo", strict=strict, sections=sections,
                  started_at=datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC), duration_s=0.762,
                  tool_version="0.1.0")


def check_golden(name: str, text: str) -> None:
    match_golden(GOLDEN / name, text)


def test_console_layout_matches_golden() -> None:
    check_golden("report_console.txt", render_console(sample_report()))


def test_json_matches_golden() -> None:
    check_golden("report.json", render_json(sample_report()))


def test_junit_matches_golden() -> None:
    check_golden("report_junit.xml", render_junit(sample_report()))


def test_json_keeps_the_design_contract_keys() -> None:
    data = json.loads(render_json(sample_report()))
    assert {"tool", "tool_version", "release", "strict", "started_at", "duration_s", "project",
            "sections", "summary", "result"} <= set(data)
    assert data["summary"] == {"pass": 2, "warn": 1, "fail": 1, "skip": 1}
    assert data["result"] == "failed"
    assert data["sections"][0]["duration_s"] == 0.012


def test_section_status_is_its_worst_finding() -> None:
    assert sample_report().sections[0].status is Status.WARN
    assert sample_report().sections[1].status is Status.FAIL


def test_a_skip_never_hides_a_pass_and_an_all_skip_section_is_skip() -> None:
    mixed = Section("s", "S", [Finding("a", Status.SKIP, "x"), Finding("b", Status.PASS, "y")])
    only_skips = Section("s", "S", [Finding("a", Status.SKIP, "x")])
    assert mixed.status is Status.PASS
    assert only_skips.status is Status.SKIP


def test_warnings_pass_normally_and_fail_under_strict() -> None:
    section = Section("s", "S", [Finding("a", Status.WARN, "x")])
    assert section.ok(strict=False)
    assert not section.ok(strict=True)


def test_strict_junit_turns_warnings_into_failures() -> None:
    root = ET.fromstring(render_junit(sample_report(strict=True)))
    failed_ids = {case.get("name") for case in root.iter("testcase")
                  if case.find("failure") is not None}
    assert failed_ids == {"release_tag.annotated", "secrets.placeholder"}


def test_console_has_no_colour_codes_when_colour_is_off() -> None:
    assert "\033[" not in render_console(sample_report(), colour=False)


def test_no_color_environment_disables_colour_even_on_a_tty(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ops.report import use_colour

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(Tty()) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(("fmt", "output", "expected"), [
    (None, None, "text"), (None, "r.json", "json"), (None, "r.xml", "junit"),
    ("json", "r.xml", "json"), (None, "report.txt", "text"),
])
def test_format_follows_flag_then_extension(fmt: str | None, output: str | None,
                                            expected: str) -> None:
    assert choose_format(fmt, Path(output) if output else None) == expected


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown format 'yaml'"):
        choose_format("yaml", None)


def test_console_escapes_terminal_escapes_in_messages_and_hints() -> None:
    report = Report(release="v0.2.0", project="/srv/demo\x1b]0;owned\x07", sections=[
        Section("migrations", "Database Migrations", [
            Finding("migrations.redis_schema", Status.FAIL, "key sess\x1b[2J:1 is a string",
                    hint="delete \x1b[31msess"),
        ])])
    text = render_console(report)
    assert "\x1b" not in text
    assert "key sess\\x1b[2J:1 is a string" in text
    assert "delete \\x1b[31msess" in text
    assert "/srv/demo\\x1b]0;owned\\x07" in text


def test_json_keeps_the_raw_name_json_escaped() -> None:
    report = Report(release="v0.2.0", project="/srv/demo", sections=[
        Section("migrations", "Database Migrations", [
            Finding("migrations.redis_schema", Status.FAIL, "key sess\x1b[2J:1"),
        ])])
    text = render_json(report)
    assert "\x1b" not in text
    assert json.loads(text)["sections"][0]["findings"][0]["message"] == "key sess\x1b[2J:1"
