"""The one result type every check and smoke test agrees on, and its renderers.

A check yields ``Finding`` objects; a ``Section`` groups one checklist section's findings with its
duration; a ``Report`` is a run. Renderers turn a report into the console text, the JSON of
DESIGN.md's contract, or JUnit XML. Nothing here touches the outside world, which is what lets the
renderers be tested against golden files.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO
from xml.etree import ElementTree as ET

from ops import __version__
from ops.atomic import atomic_write_text
from ops.errors import UsageError
from ops.redact import printable
from ops.stamps import utc_stamp


class Status(StrEnum):
    """A finding's verdict. ``skip`` means the check could not apply, with the reason."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"

    @property
    def severity(self) -> int:
        """Rank for "worst finding wins": a skip never hides a pass, a fail beats everything."""
        return _SEVERITY[self]


_SEVERITY = {Status.SKIP: 0, Status.PASS: 1, Status.WARN: 2, Status.FAIL: 3}


@dataclass(frozen=True)
class Finding:
    """One proven (or disproven) fact about the release. ``id`` is stable API."""

    id: str
    status: Status
    message: str
    hint: str | None = None
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status.value,
            "message": self.message,
            "hint": self.hint,
        }
        if self.detail is not None:
            data["detail"] = self.detail
        return data


def passed(id: str, message: str, **kw: Any) -> Finding:
    """Shorthand constructors keep check modules reading like the checklist they implement."""
    return Finding(id, Status.PASS, message, **kw)


def warned(id: str, message: str, **kw: Any) -> Finding:
    return Finding(id, Status.WARN, message, **kw)


def failed(id: str, message: str, **kw: Any) -> Finding:
    return Finding(id, Status.FAIL, message, **kw)


def skipped(id: str, message: str, **kw: Any) -> Finding:
    return Finding(id, Status.SKIP, message, **kw)


@dataclass
class Section:
    """One checklist section: its findings and how long they took."""

    id: str
    title: str
    findings: list[Finding] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def status(self) -> Status:
        if not self.findings:
            return Status.SKIP
        return max((f.status for f in self.findings), key=lambda s: s.severity)

    def ok(self, *, strict: bool) -> bool:
        """A section passes unless it failed, or warned under ``--strict``."""
        bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
        return self.status not in bad

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "duration_s": round(self.duration_s, 3),
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class Report:
    """A whole run of predeploy (or smoke-test): what ``--output`` writes."""

    release: str
    project: str
    strict: bool = False
    kind: str = "predeploy"
    sections: list[Section] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    tool_version: str = __version__

    def findings(self) -> Iterator[Finding]:
        for section in self.sections:
            yield from section.findings

    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for finding in self.findings():
            counts[finding.status.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        return all(section.ok(strict=self.strict) for section in self.sections)

    @property
    def result(self) -> str:
        return "passed" if self.ok else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": "tminus",
            "tool_version": self.tool_version,
            "kind": self.kind,
            "release": self.release,
            "strict": self.strict,
            "started_at": utc_stamp(self.started_at),
            "duration_s": round(self.duration_s, 3),
            "project": self.project,
            "sections": [s.to_dict() for s in self.sections],
            "summary": self.summary(),
            "result": self.result,
        }


# --- console -------------------------------------------------------------------------------------

_LABELS = {
    Status.PASS: ("[✓ PASS]", "green"),
    Status.WARN: ("[! WARN]", "yellow"),
    Status.FAIL: ("[✗ FAIL]", "red"),
    Status.SKIP: ("[- SKIP]", "cyan"),
}
_ANSI = {"green": "32", "yellow": "33", "red": "31", "cyan": "36", "bold": "1"}
_RULE = "=" * 72

TITLES = {
    "predeploy": "T-1 PRE-DEPLOYMENT CHECK",
    "smoke": "SMOKE TEST",
}


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def _paint(text: str, colour: str, enabled: bool) -> str:
    return f"\033[{_ANSI[colour]}m{text}\033[0m" if enabled else text


def label(status: Status, *, colour: bool = False) -> str:
    text, hue = _LABELS[status]
    return _paint(text, hue, colour)


def render_console(report: Report, *, colour: bool = False) -> str:
    """The seed's layout: banner, one block per section, FINAL SUMMARY, verdict."""
    lines: list[str] = [
        _RULE,
        f"  {TITLES.get(report.kind, report.kind.upper())} — {report.release}",
        f"  {report.started_at:%Y-%m-%d %H:%M:%S} UTC · {printable(report.project)}"
        + ("  · strict" if report.strict else ""),
        _RULE,
    ]
    total = len(report.sections)
    for number, section in enumerate(report.sections, start=1):
        lines += ["", f"[{number}/{total}] {section.title}  ({section.duration_s:.2f}s)"]
        for finding in section.findings:
            mark = label(finding.status, colour=colour)
            # names in messages (keys, labels, files) may hold terminal escapes: shown escaped
            lines.append(f"  {mark} {printable(finding.message)}  ({finding.id})")
            if finding.hint and finding.status is not Status.PASS:
                lines.append(f"           → {printable(finding.hint)}")
    passed_sections = sum(1 for s in report.sections if s.ok(strict=report.strict)
                          and s.status is not Status.SKIP)
    skipped_sections = sum(1 for s in report.sections if s.status is Status.SKIP)
    summary = report.summary()
    lines += ["", _RULE, "  FINAL SUMMARY", _RULE]
    for section in report.sections:
        lines.append(f"  {label(section.status, colour=colour)} {section.title}")
    lines += [
        "",
        "  Findings: " + " · ".join(f"{summary[k]} {k}" for k in ("pass", "warn", "fail", "skip")),
        f"  Result: {passed_sections}/{total} checks passed"
        + (f" ({skipped_sections} skipped)" if skipped_sections else "")
        + f" in {report.duration_s:.2f}s",
        "",
    ]
    if report.ok:
        tail = f" — ready to deploy {report.release}" if report.kind == "predeploy" else ""
        lines.append("  " + _paint("✓ PASSED", "green", colour) + tail)
    else:
        why = " (warnings count under --strict)" if report.strict and not any(
            s.status is Status.FAIL for s in report.sections) else ""
        lines.append("  " + _paint("✗ FAILED", "red", colour) + f" — do not deploy{why}")
    return "\n".join(lines) + "\n"


# --- JSON and JUnit ------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_junit(report: Report) -> str:
    """A testsuite per section and a testcase per finding, as CI systems expect."""
    suites = ET.Element("testsuites", name=f"tminus {report.kind} {report.release}",
                        time=f"{report.duration_s:.3f}")
    for section in report.sections:
        failures = sum(1 for f in section.findings if _junit_fails(f, report.strict))
        skips = sum(1 for f in section.findings if f.status is Status.SKIP)
        suite = ET.SubElement(suites, "testsuite", name=section.id,
                              tests=str(len(section.findings)), failures=str(failures),
                              skipped=str(skips), errors="0",
                              time=f"{section.duration_s:.3f}")
        for finding in section.findings:
            case = ET.SubElement(suite, "testcase", classname=f"tminus.{section.id}",
                                 name=finding.id, time="0")
            text = finding.message + (f"\nhint: {finding.hint}" if finding.hint else "")
            if _junit_fails(finding, report.strict):
                ET.SubElement(case, "failure", message=finding.message,
                              type=finding.status.value).text = text
            elif finding.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=finding.message)
            else:
                ET.SubElement(case, "system-out").text = f"[{finding.status.value}] {text}"
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _junit_fails(finding: Finding, strict: bool) -> bool:
    return finding.status is Status.FAIL or (strict and finding.status is Status.WARN)


# --- choosing a format ---------------------------------------------------------------------------

FORMATS = ("text", "json", "junit")
_BY_EXTENSION = {".json": "json", ".xml": "junit", ".txt": "text", ".log": "text"}


def choose_format(fmt: str | None, output: Path | None) -> str:
    """``--format`` wins; otherwise the output file's extension; otherwise text."""
    if fmt:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    if output is not None:
        return _BY_EXTENSION.get(output.suffix.lower(), "text")
    return "text"


def render(report: Report, fmt: str, *, colour: bool = False) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "junit":
        return render_junit(report)
    return render_console(report, colour=colour)


def emit(report: Report, *, fmt: str | None, output: Path | None,
         stream: TextIO | None = None) -> None:
    """Print the report, and write it to ``output`` in the chosen format when asked.

    The console always gets the human layout unless ``--format`` asked for a machine format and
    no file was given, in which case that format goes to stdout (for piping into jq).
    """

    out = stream or sys.stdout
    chosen = choose_format(fmt, output)
    if output is not None:
        atomic_write_text(output, render(report, chosen))
        out.write(render_console(report, colour=use_colour(out)))
        out.write(f"  Report written to {printable(str(output))} ({chosen})\n")
    elif chosen == "text":
        out.write(render_console(report, colour=use_colour(out)))
    else:
        out.write(render(report, chosen))
