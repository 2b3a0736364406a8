"""The T-1 checklist as Markdown: what a machine proved, and what a person still has to do.

The ten sections follow the team's pre-deployment checklist. An item that a predeploy finding
can prove carries that finding's id and is ticked only when the finding passed; a failed, warned
or skipped finding leaves the item unticked with the reason, so the file never claims more than
the report does. Items no machine can prove (the team was told, a person restored the backup,
someone is on call) stay unticked for a person.

Sign-offs are part of the release's record, not of the Markdown: they are kept in
``releases/signoff_vX.Y.Z.json`` (``ops.release.signoff``) and shown in the file every time it is
rendered, so regenerating the checklist never loses a signature.

The checklist sits above the checks (it runs predeploy), at the pipelines' layer: see
docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ops.atomic import atomic_write_text, make_ignored_dir
from ops.bounded import SENTENCE_CHARS, listed
from ops.checks import SECTIONS, CheckContext, run_predeploy
from ops.config import Settings
from ops.release.signoff import (
    ROLES,
    SignoffRecord,
    read_signoffs,
    sign,
    signoff_path,
    write_signoffs,
)
from ops.report import Finding, Report, Status
from ops.versioning import ReleaseVersion

#: The pseudo finding id of the whole run's verdict, for the final-verification item.
PREDEPLOY_RESULT = "predeploy.result"
#: Where the checklist goes without --output, relative to the project root. It is a generated
#: working file, so it lives in a folder git ignores by itself (a ``*`` .gitignore marker written
#: when the folder is made): a service repository whose .gitignore knows nothing of tminus stays
#: clean, and the next predeploy's release_tag.worktree_clean or create-release does not trip over
#: it. Only the sign-off record (releases/) is meant to be committed.
CHECKLIST_DIR = Path(".tminus/checklists")
_MAX_MESSAGES = 3


@dataclass(frozen=True)
class Item:
    """A checklist line; ``finding`` names the predeploy finding that proves it (None: manual)."""

    text: str
    finding: str | None = None


@dataclass(frozen=True)
class ChecklistSection:
    title: str
    report_section: str | None  # findings of this report section not named below are appended
    items: tuple[Item, ...]


def _auto(*pairs: tuple[str, str]) -> tuple[Item, ...]:
    return tuple(Item(text, finding) for finding, text in pairs)


CHECKLIST: tuple[ChecklistSection, ...] = (
    ChecklistSection("Release tag", "release_tag", (
        *_auto(("release_tag.format", "Version follows vMAJOR.MINOR.PATCH"),
               ("release_tag.exists", "Release tag exists"),
               ("release_tag.annotated", "Tag is annotated (who, when, notes)"),
               ("release_tag.points_at_head", "Tag points at the commit being deployed"),
               ("release_tag.commit", "Release commit recorded"),
               ("release_tag.worktree_clean", "Working tree is clean"),
               ("release_tag.monotonic", "Version is greater than every earlier release"),
               ("release_tag.checkpoint_version", "Checkpoint VERSION file written for it")),
        Item("Release notes reviewed (`invoke release-notes`)"),
    )),
    ChecklistSection("Database migrations", "migrations", (
        *_auto(("migrations.present", "Migrations found"),
               ("migrations.committed", "Every migration file is committed"),
               ("migrations.single_head", "Exactly one head revision"),
               ("migrations.chain", "Revision chain is unbroken"),
               ("migrations.downgrade", "New migrations can be downgraded"),
               ("migrations.destructive", "No unacknowledged destructive operation"),
               ("migrations.documented", "New revisions are in the schema changelog"),
               ("migrations.db_current", "Database revision known, pending migrations counted"),
               ("migrations.redis_schema", "Redis key schema compatible with the last release")),
        Item("Migrations rehearsed up and down on a copy of production data"),
    )),
    ChecklistSection("Secrets", "secrets", (
        *_auto(("secrets.env_file", "Environment file present, not world-readable"),
               ("secrets.syntax", "Every line of it parses"),
               ("secrets.duplicate", "No key set twice"),
               ("secrets.required", "Every required key is set"),
               ("secrets.empty", "No required key is empty"),
               ("secrets.placeholder", "No example or placeholder value left"),
               ("secrets.typo", "No misspelt key"),
               ("secrets.secret_key_strength", "Signing keys are long and random enough"),
               ("secrets.url_format", "Every *_URL parses"),
               ("secrets.hardcoded", "No secret committed in tracked files")),
        Item("Production secrets differ from staging and were rotated where due"),
    )),
    ChecklistSection("Artifacts", "artifacts", (
        *_auto(("artifacts.models_hashed", "Model checkpoints hashed"),
               ("artifacts.models_match_release", "Checkpoints match the release's VERSION file"),
               ("artifacts.images", "Service images exist for this version"),
               ("artifacts.manifest", "Release manifest present"),
               ("artifacts.manifest_integrity", "Manifest checksum verifies")),
    )),
    ChecklistSection("Runbook", "runbook", (
        *_auto(("runbook.exists", "Runbook present"),
               ("runbook.section.health", "Health checks documented"),
               ("runbook.section.rollback", "Rollback documented"),
               ("runbook.section.scaling", "Scaling documented"),
               ("runbook.section.monitoring", "Monitoring and alerts documented"),
               ("runbook.fresh", "Runbook updated recently"),
               ("runbook.links", "Runbook links resolve"),
               ("runbook.contacts", "Emergency contacts filled in")),
        Item("Rollback steps read through by the engineer deploying"),
    )),
    ChecklistSection("Testing", None, (
        Item("Unit and integration tests green in CI on the release commit"),
        Item("Release deployed to staging and smoke-tested (`invoke smoke-test --env staging`)"),
        Item("Changed paths load-tested against the last release's baseline"),
    )),
    ChecklistSection("Communication", None, (
        Item("Team notified of the release and its time"),
        Item("Maintenance window agreed and announced (downtime or risky migrations)"),
        Item("Support and stakeholders told what changes for users"),
        Item("Release notes published"),
    )),
    ChecklistSection("Backup", None, (
        Item("Fresh backup of Postgres and Redis taken (`invoke backup`)"),
        Item("Backup verified by a person: restored into a scratch database and read"),
        Item("Rollback target known: previous release and its images present"),
    )),
    ChecklistSection("Monitoring", None, (
        Item("Dashboards open: error rate and p95 latency"),
        Item("Alerts active for error rate and latency"),
        Item("On-call engineer assigned and reachable for the deploy window"),
    )),
    ChecklistSection("Final verification", None, (
        Item("All five predeploy sections passed", PREDEPLOY_RESULT),
        Item("Go/no-go decided by engineer and reviewer together"),
        Item("Post-deploy smoke test and watch window planned (`invoke smoke-test`)"),
    )),
)


# --- rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    proven: int = 0
    failed: int = 0
    warned: int = 0
    skipped: int = 0
    manual: int = 0

    def line(self) -> str:
        return (f"{self.proven} proven · {self.failed} failed · {self.warned} to review · "
                f"{self.skipped} skipped · {self.manual} for a person")


def render_checklist(report: Report, signoffs: SignoffRecord, *, env: str = "production",
                     generated_at: datetime | None = None) -> str:
    """The checklist for ``report``'s release; pure, so golden files can pin it."""
    return _render(report, signoffs, env=env, generated_at=generated_at)[0]


def tally(report: Report) -> Tally:
    return _render(report, SignoffRecord(report.release), env="production", generated_at=None)[1]


def _render(report: Report, signoffs: SignoffRecord, *, env: str,
            generated_at: datetime | None) -> tuple[str, Tally]:
    by_id = _findings_by_id(report)
    counts = {"proven": 0, "failed": 0, "warned": 0, "skipped": 0, "manual": 0}
    summary = report.summary()
    generated = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    verdict = "PASSED" if report.ok else "FAILED"
    lines = [
        f"# T-1 release checklist — {report.release}",
        "",
        f"- Project: `{report.project}` · environment `{env}`",
        f"- Predeploy run: {report.started_at:%Y-%m-%d %H:%M:%S} UTC"
        + (" (strict)" if report.strict else "") + f" · generated {generated}",
        f"- Predeploy result: **{verdict}** — "
        + " · ".join(f"{summary[k]} {k}" for k in ("pass", "warn", "fail", "skip")),
        "",
        "`[x]` proven by the predeploy finding named beside it · `✗` failed · `!` warning, "
        "review it · `○` skipped, verify by hand · `[ ]` for a person to do and tick",
    ]
    for number, section in enumerate(CHECKLIST, start=1):
        lines += ["", f"## {number}. {section.title}", ""]
        named = {item.finding for item in section.items if item.finding}
        extra = [Item(finding_id, finding_id) for finding_id in
                 _ids_of_section(report, section.report_section) if finding_id not in named]
        for item in (*section.items, *extra):
            line, kind = _item_line(item, by_id, report)
            counts[kind] += 1
            lines.append(line)
        if number == len(CHECKLIST):
            lines += ["", *_signoff_table(signoffs)]
    lines.append("")
    return "\n".join(lines), Tally(**counts)


def _findings_by_id(report: Report) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in report.findings():
        found.setdefault(finding.id, []).append(finding)
    return found


def _ids_of_section(report: Report, section_id: str | None) -> list[str]:
    """Finding ids of a report section in report order, each once (for findings no item names)."""
    if section_id is None:
        return []
    seen: list[str] = []
    for section in report.sections:
        if section.id == section_id:
            seen += [f.id for f in section.findings if f.id not in seen]
    return seen


_MARKS = {Status.FAIL: ("✗", "", "failed"), Status.WARN: ("!", "warning: ", "warned"),
          Status.SKIP: ("○", "skipped: ", "skipped")}


def _item_line(item: Item, by_id: dict[str, list[Finding]], report: Report) -> tuple[str, str]:
    if item.finding is None:
        return f"- [ ] {item.text}", "manual"
    if item.finding == PREDEPLOY_RESULT:
        failing = [s.title for s in report.sections if not s.ok(strict=report.strict)]
        ran = {s.id for s in report.sections}
        if ran >= {sid for sid, _ in SECTIONS} and not failing:
            return f"- [x] {item.text} ({PREDEPLOY_RESULT})", "proven"
        why = ("failed: " + ", ".join(failing)) if failing else "not every section ran"
        return f"- [ ] ✗ {item.text} ({PREDEPLOY_RESULT}) — {why}", "failed"
    findings = by_id.get(item.finding, [])
    if not findings:
        return (f"- [ ] {item.text} ({item.finding}) — not checked: the report has no such "
                "finding; verify by hand"), "manual"
    worst = max((f.status for f in findings), key=lambda s: s.severity)
    messages = _messages([f for f in findings if f.status is worst])
    if worst is Status.PASS:
        label = messages if item.text == item.finding else item.text
        return f"- [x] {label} ({item.finding})", "proven"
    mark, prefix, kind = _MARKS[worst]
    if item.text == item.finding:  # a finding no item names: its own message is the item
        line = f"- [ ] {mark} {messages} ({item.finding})"
    else:
        line = f"- [ ] {mark} {item.text} ({item.finding}) — {prefix}{messages}"
    return line + ("; verify by hand" if worst is Status.SKIP else ""), kind


def _messages(findings: Sequence[Finding]) -> str:
    texts: list[str] = []
    for finding in findings:
        text = " ".join(finding.message.split())
        if text not in texts:
            texts.append(text)
    return listed(texts, _MAX_MESSAGES, sep="; ", chars=SENTENCE_CHARS)


def _signoff_table(record: SignoffRecord) -> Iterable[str]:
    roles = record.by_role()
    yield "### Sign-off"
    yield ""
    yield "| role | name | signed at (UTC) | predeploy result |"
    yield "|---|---|---|---|"
    for role in ROLES:
        signoff = roles.get(role)
        if signoff is None:
            yield f"| {role} | _not signed_ | | |"
        else:
            yield (f"| {role} | {signoff.name} | {signoff.signed_at} | "
                   f"{signoff.predeploy_result or '—'} |")


# --- the whole job -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistResult:
    path: Path
    report: Report
    tally: Tally
    signoffs: SignoffRecord
    signed: bool


def make_checklist(root: Path, settings: Settings, release: ReleaseVersion, *,
                   env: str = "production", output: Path | None = None, engineer: str | None = None,
                   reviewer: str | None = None) -> ChecklistResult:
    """Run predeploy, record any sign-off, write the checklist; the task decides the exit code.

    A sign-off is refused while predeploy fails: a signature means "checked and fit to ship".
    The checklist is still written so the person sees what stands in the way.
    """
    names = {role: name for role, name in (("engineer", engineer), ("reviewer", reviewer))
             if name is not None}
    settings.environment(env)
    target = output or default_checklist_path(root, release.tag)
    record_path = signoff_path(root, settings, release.tag)
    record = read_signoffs(record_path, release.tag)
    sign(record, names, result="")  # bad names or a self-review fail before any check runs
    report = run_predeploy(CheckContext(root=root, settings=settings, version=release, env=env))
    signed = bool(names) and report.ok
    if signed:
        record = sign(record, names, result=report.result, env=env)
        write_signoffs(record_path, record)
    text, counts = _render(report, record, env=env, generated_at=None)
    if output is None:
        make_ignored_dir(target.parent)
    atomic_write_text(target, text)
    return ChecklistResult(target, report, counts, record, signed)


def default_checklist_path(root: Path, version: str) -> Path:
    """``.tminus/checklists/CHECKLIST_vX.Y.Z.md`` under ``root`` (see CHECKLIST_DIR)."""
    return root / CHECKLIST_DIR / f"CHECKLIST_{version}.md"
