"""The five T-1 sections and the function that runs them in order.

Each section is a module with ``run(ctx) -> Iterable[Finding]``; modules are imported only when
their section runs, so ``invoke --list`` never pays for alembic or detect-secrets.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ops.config import Settings, resolve_path
from ops.errors import OpsError
from ops.report import Finding, Report, Section, Status
from ops.runtime.envfile import read_env
from ops.runtime.files import shown_path
from ops.runtime.git import ensure_git_reads, open_repo

if TYPE_CHECKING:
    import git

    from ops.versioning import ReleaseVersion

#: (section id, title) in the order the checklist runs them.
SECTIONS: list[tuple[str, str]] = [
    ("release_tag", "Release Tag Validation"),
    ("migrations", "Database Migrations"),
    ("secrets", "Secret Validation"),
    ("artifacts", "Artifact Integrity"),
    ("runbook", "Runbook Review"),
]


@dataclass
class CheckContext:
    """What every check may read: the repository, the settings, the release under test."""

    root: Path
    settings: Settings
    version: ReleaseVersion
    env: str = "production"
    online: bool = False
    progress: bool = False
    use_cache: bool = True
    notes: dict[str, object] = field(default_factory=dict)

    def path(self, relative: Path | str) -> Path:
        return resolve_path(self.root, Path(relative))

    def shown(self, path: Path) -> str:
        """``path`` as a finding names it: relative to the project when inside it."""
        return shown_path(self.root, path)

    @cached_property
    def repo(self) -> git.Repo | None:
        """The git repository at the root, or None when there is none (checks then skip)."""

        try:
            repo = open_repo(self.root)
        except OpsError:
            return None
        ensure_git_reads(repo)  # a checkout git refuses is one line, not a broken pipe later
        return repo

    @cached_property
    def env_values(self) -> dict[str, str]:
        """The environment's ``.env`` as parsed by python-dotenv (empty when absent)."""

        return read_env(self.path(self.settings.environment(self.env).env_file))


SectionRunner = Callable[[CheckContext], Iterable[Finding]]


def load_section(section_id: str) -> SectionRunner:
    module = importlib.import_module(f"ops.checks.{section_id}")
    runner: SectionRunner = module.run
    return runner


def run_section(section_id: str, title: str, ctx: CheckContext) -> Section:
    """Run one section; an expected error inside it becomes a failed finding, not a crash."""
    started = time.perf_counter()
    try:
        findings = list(load_section(section_id)(ctx))
    except OpsError as exc:
        findings = [Finding(f"{section_id}.error", Status.FAIL, exc.message, hint=exc.hint)]
    return Section(section_id, title, findings, time.perf_counter() - started)


def run_predeploy(ctx: CheckContext, *, strict: bool = False,
                  only: Iterable[str] | None = None) -> Report:
    """Run the sections in order and return the report; printing is the caller's business."""
    wanted = set(only) if only else None
    report = Report(release=ctx.version.tag, project=str(ctx.root), strict=strict)
    started = time.perf_counter()
    for section_id, title in SECTIONS:
        if wanted is None or section_id in wanted:
            report.sections.append(run_section(section_id, title, ctx))
    report.duration_s = time.perf_counter() - started
    return report
