"""Tasks for people around a release: its notes and its T-1 checklist.

Each task reads its arguments, calls one function of ``ops`` and lets ``boundary`` map errors to
exit codes; the logic lives in ``ops.release.notes`` and ``ops.checklist``.
"""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from ops.atomic import atomic_write_text
from ops.checklist import make_checklist
from ops.errors import ChecksFailed
from ops.release import notes
from ops.taskkit import boundary, optional_path, project_root, say, settings_from
from ops.versioning import parse_version


@task(
    auto_shortflags=False,
    name="release-notes",
    help={
        "from": "older release tag or revision (default: the release before --to, or the "
                "newest release --to contains)",
        "to": "newer release tag or revision (default: the newest release tag, else HEAD)",
        "output": "write the Markdown to this file instead of printing it",
    },
)
@boundary
def release_notes(c: Context, from_: str = "", to: str = "", output: str = "") -> None:
    """Write Markdown release notes between two tags: changes, breaking changes, migrations."""
    settings = settings_from(c)
    text = notes.release_notes(project_root(c, settings), settings, from_ or None, to or None)
    target = optional_path(output)
    if target is None:
        say(text.rstrip("\n"))
    else:
        atomic_write_text(target, text)
        say(f"Release notes written to {target}")


@task(
    auto_shortflags=False,
    help={
        "version": "release the checklist is for, e.g. v0.2.0 (required)",
        "output": "Markdown file to write (default: .tminus/checklists/CHECKLIST_<version>.md, "
                  "which git ignores)",
        "sign-engineer": "record NAME as the engineer signing off (refused while checks fail)",
        "sign-reviewer": "record NAME as the reviewer signing off (not the engineer)",
        "env": "environment whose .env and database are checked (default: production)",
    },
)
@boundary
def checklist(c: Context, version: str = "", output: str = "", sign_engineer: str = "",
              sign_reviewer: str = "", env: str = "production") -> None:
    """Write the ten-section T-1 checklist, ticking what predeploy proves; record sign-offs."""
    release = parse_version(version)
    settings = settings_from(c)
    result = make_checklist(project_root(c, settings), settings, release, env=env,
                            output=optional_path(output), engineer=sign_engineer or None,
                            reviewer=sign_reviewer or None)
    say(f"Checklist for {release} written to {result.path}")
    say(f"  {result.tally.line()}")
    for signoff in result.signoffs.signoffs:
        say(f"  signed off: {signoff.role} {signoff.name} at {signoff.signed_at}")
    if not result.report.ok:
        unsigned = " (no sign-off recorded)" if sign_engineer or sign_reviewer else ""
        failing = sum(1 for f in result.report.findings() if f.status.value == "fail")
        raise ChecksFailed(f"predeploy failed for {release}: {failing} failed finding(s)"
                           f"{unsigned}", hint=f"see the ✗ items in {result.path}")
