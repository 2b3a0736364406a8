"""Release notes from git history: what changed between two release tags, for people.

Commits are grouped by their Conventional Commits type (``feat:``, ``fix(api):``, ``perf!:``);
anything else lands in "Other", so a team that never adopted the convention still gets useful
notes. Breaking changes (``type!:`` or a ``BREAKING CHANGE:`` footer) come first because they
are what an operator must read before deploying. The notes also say which Alembic migrations
arrived and which checkpoint files changed, since those decide how risky the deploy is.

Everything is read from git objects (never the working tree), so notes for old releases can be
written at any time from any checkout. Release bookkeeping commits (the commit that only adds
``VERSION_vX.Y.Z.txt`` and the manifest) are left out: they are not changes anyone made.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ops.config import Settings
from ops.release.version_file import parse as parse_version_text
from ops.runtime.alembic_scripts import RevisionFile, revisions_in_texts
from ops.runtime.git import (
    blob_bytes_under,
    blob_text,
    commit_log,
    ensure_git_reads,
    git_errors,
    open_repo,
    previous_release,
    python_sources_mentioning,
    release_tags,
    resolve_commit,
)
from ops.versioning import ReleaseVersion, is_release_tag, parse_version

if TYPE_CHECKING:
    import git

#: Conventional-commit type → heading, in the order the headings appear.
GROUPS: dict[str, str] = {
    "feat": "Features",
    "fix": "Fixes",
    "perf": "Performance",
    "refactor": "Refactoring",
    "docs": "Documentation",
    "test": "Tests",
    "build": "Build",
    "ci": "CI",
    "chore": "Chores",
}
_ALIASES = {"feature": "feat", "bugfix": "fix", "doc": "docs", "tests": "test"}
OTHER = "Other"

_HEADER = re.compile(
    r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?:[ \t]+(?P<subject>\S.*)$")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:[ \t]*(?P<text>.*)$", re.MULTILINE)
_RELEASE_FILES = ("VERSION_v*.txt", "manifest_v*.json", "manifest_v*.sha256", "signoff_v*.json")
HASH_PREFIX = 12


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One commit as the notes show it."""

    sha: str
    author: str
    date: str
    group: str
    subject: str
    scope: str | None = None
    breaking: str | None = None  # the breaking-change text, when the commit declares one

    @property
    def short(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class Migration:
    revision: str
    message: str
    down_revision: str | None
    path: str


@dataclass(frozen=True)
class CheckpointChange:
    """A checkpoint file whose hash differs between the two releases (None: absent there)."""

    name: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


@dataclass
class ReleaseNotes:
    from_ref: str | None
    to_ref: str
    to_commit: str
    date: str
    changes: list[Change] = field(default_factory=list)
    migrations_added: list[Migration] = field(default_factory=list)
    migrations_removed: list[Migration] = field(default_factory=list)
    checkpoints: list[CheckpointChange] | None = None  # None: no record on one of the sides

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking is not None]

    def grouped(self) -> dict[str, list[Change]]:
        """Non-breaking changes by heading, headings in GROUPS order then Other."""
        groups: dict[str, list[Change]] = {}
        for heading in [*GROUPS.values(), OTHER]:
            members = [c for c in self.changes if c.group == heading and c.breaking is None]
            if members:
                groups[heading] = members
        return groups


# --- commit messages -----------------------------------------------------------------------------


def parse_message(message: str) -> tuple[str, str | None, str, str | None]:
    """(group, scope, subject, breaking text) of a commit message, conventional or not."""
    lines = message.strip().splitlines() or [""]
    header = lines[0].strip()
    footer = _BREAKING_FOOTER.search(message)
    breaking = _footer_text(message, footer) if footer else None
    match = _HEADER.match(header)
    if match is None:
        return OTHER, None, header, breaking
    kind = match["type"].lower()
    kind = _ALIASES.get(kind, kind)
    group = GROUPS.get(kind, OTHER)
    subject = match["subject"].strip()
    if group == OTHER:
        subject = header  # an unknown type is not a convention we understand: keep it whole
    if match["bang"] and breaking is None:
        breaking = subject
    return group, (match["scope"] or None), subject, breaking


def _footer_text(message: str, footer: re.Match[str]) -> str:
    """The footer's paragraph: its first line plus continuation lines up to a blank line."""
    parts = [footer["text"].strip()]
    for line in message[footer.end():].splitlines()[1:]:
        if not line.strip() or re.match(r"^[A-Za-z-]+: ", line):
            break
        parts.append(line.strip())
    return " ".join(p for p in parts if p)


# --- reading history -----------------------------------------------------------------------------


def collect_notes(repo: git.Repo, settings: Settings, from_ref: str | None,
                  to_ref: str = "HEAD") -> ReleaseNotes:
    """Everything the notes say about ``from_ref..to_ref`` (all history when from_ref is None)."""
    to_commit = resolve_commit(repo, to_ref)
    from_commit = resolve_commit(repo, from_ref) if from_ref else None
    notes = ReleaseNotes(from_ref=from_ref, to_ref=to_ref, to_commit=to_commit.hexsha,
                         date=to_commit.committed_datetime.date().isoformat())
    notes.changes = list(_changes(repo, from_commit.hexsha if from_commit else None,
                                  to_commit.hexsha))
    notes.migrations_added, notes.migrations_removed = _migrations(
        repo, from_commit, to_commit, settings.migrations.version_locations or ())
    notes.checkpoints = _checkpoints(settings, from_ref, from_commit, to_ref, to_commit)
    return notes


def _changes(repo: git.Repo, from_sha: str | None, to_sha: str) -> Iterable[Change]:
    """One ``git log`` call for the whole range: subjects, bodies and touched paths."""
    rev = f"{from_sha}..{to_sha}" if from_sha else to_sha
    for entry in commit_log(repo, rev):
        if entry.paths and all(_is_release_file(p) for p in entry.paths):
            continue
        group, scope, subject, breaking = parse_message(entry.message)
        yield Change(sha=entry.sha, author=entry.author, date=entry.date[:10], group=group,
                     subject=subject, scope=scope, breaking=breaking)


def _is_release_file(path: str) -> bool:
    name = PurePosixPath(path).name
    return any(fnmatch.fnmatch(name, pattern) for pattern in _RELEASE_FILES)


# --- migrations ----------------------------------------------------------------------------------


def _migrations(repo: git.Repo, from_commit: git.Commit | None, to_commit: git.Commit,
                folders: Sequence[Path] = ()) -> tuple[list[Migration], list[Migration]]:
    """Revisions present at ``to`` but not at ``from`` (and the reverse), by revision id.

    Each tree is read with the migrations check's own ast reader, looking at every file that
    declares a revision — not at whatever folder each tree's alembic.ini happened to name, which
    turned 26 new revisions into 288 when an old tag had no ini. Only ``folders`` count when
    the operator named them (ops.migrations.version_locations: one dialect's copy of a tree).
    """
    new = _revisions(repo, to_commit, folders)
    old = _revisions(repo, from_commit, folders) if from_commit is not None else {}
    added = [m for rev, m in new.items() if rev not in old]
    removed = [m for rev, m in old.items() if rev not in new]
    return _chain_order(added), _chain_order(removed)


def _revisions(repo: git.Repo, commit: git.Commit,
               folders: Sequence[Path] = ()) -> dict[str, Migration]:
    sources = python_sources_mentioning(repo, commit.hexsha, "down_revision") or {}
    if folders:
        prefixes = tuple(PurePosixPath(f.as_posix()).as_posix().rstrip("/") + "/"
                         for f in folders)
        sources = {p: t for p, t in sources.items() if p.startswith(prefixes)}
    return {rev: _migration(found) for rev, found in revisions_in_texts(sources).items()}


def _migration(found: RevisionFile) -> Migration:
    path = found.path.as_posix()
    return Migration(revision=found.revision, message=found.message or PurePosixPath(path).stem,
                     down_revision=found.down_revisions[0] if len(found.down_revisions) == 1
                     else None, path=path)


def parse_migration(text: str, path: str) -> Migration | None:
    """Revision, down_revision and message of an Alembic script, without importing it."""
    found = revisions_in_texts({path: text})
    return _migration(next(iter(found.values()))) if found else None


def _chain_order(migrations: list[Migration]) -> list[Migration]:
    """Oldest first: follow down_revision links; what cannot be placed keeps path order."""
    by_down: dict[str | None, list[Migration]] = {}
    for m in sorted(migrations, key=lambda m: m.path):
        by_down.setdefault(m.down_revision, []).append(m)
    revisions = {m.revision for m in migrations}
    ordered: list[Migration] = []
    queue = [m for m in sorted(migrations, key=lambda m: m.path)
             if m.down_revision not in revisions]
    while queue:
        current = queue.pop(0)
        if current in ordered:
            continue
        ordered.append(current)
        queue.extend(by_down.get(current.revision, []))
    ordered.extend(m for m in sorted(migrations, key=lambda m: m.path) if m not in ordered)
    return ordered


# --- checkpoints ---------------------------------------------------------------------------------


def _checkpoints(settings: Settings, from_ref: str | None, from_commit: git.Commit | None,
                 to_ref: str, to_commit: git.Commit) -> list[CheckpointChange] | None:
    new = _checkpoint_hashes(settings, to_ref, to_commit)
    if from_commit is None:
        old: dict[str, str] | None = {}
    else:
        # the older VERSION file may also be read from the newer tree, where it still lives
        old = _checkpoint_hashes(settings, from_ref, from_commit, also=to_commit)
    if new is None or old is None:
        return None
    return [CheckpointChange(name, old.get(name), new.get(name))
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]


def _checkpoint_hashes(settings: Settings, ref: str | None, commit: git.Commit,
                       also: git.Commit | None = None) -> dict[str, str] | None:
    """name → sha256 at a release: its VERSION file, else the committed blobs, else unknown."""
    directory = settings.artifacts.checkpoints_dir.as_posix()
    if ref and is_release_tag(ref):
        version_file = f"{directory}/VERSION_{ref}.txt"
        for source in (commit, also):
            text = blob_text(source, version_file) if source is not None else None
            if text is not None:
                return parse_version_file(text)
    blobs = {
        PurePosixPath(path).relative_to(directory).as_posix(): hashlib.sha256(data).hexdigest()
        for path, data in blob_bytes_under(commit, directory, settings.artifacts.patterns)
    }
    return blobs or None


def parse_version_file(text: str) -> dict[str, str]:
    """The checkpoint hashes of a VERSION_vX.Y.Z.txt, in either layout.

    ``ops.release.version_file`` is the one reader; it runs leniently here, because notes for a
    new release must not fail on an old tag's hand-edited file.
    """
    return parse_version_text(text, strict=False).files


# --- Markdown ------------------------------------------------------------------------------------


def render_notes(notes: ReleaseNotes, *, title: str | None = None) -> str:
    """The notes as Markdown: breaking changes, then each group, migrations, checkpoints."""
    heading = title or (f"{notes.from_ref} → {notes.to_ref}" if notes.from_ref
                        else notes.to_ref)
    count = len(notes.changes)
    lines = [
        f"# Release notes: {heading}",
        "",
        f"{notes.date} · {count} commit{'s' if count != 1 else ''} · "
        f"{len(notes.migrations_added)} migration{'s' if len(notes.migrations_added) != 1 else ''}"
        f" added · commit `{notes.to_commit[:12]}`",
    ]
    if notes.breaking:
        lines += ["", "## ⚠ Breaking changes", ""]
        lines += [f"- {_scope(c)}{c.breaking} ({c.short})"
                  + (f" — {c.subject}" if c.breaking != c.subject else "")
                  for c in notes.breaking]
    for group, changes in notes.grouped().items():
        lines += ["", f"## {group}", ""]
        lines += [f"- {_scope(c)}{c.subject} ({c.short})" for c in changes]
    if not notes.changes:
        lines += ["", "No commits between these revisions."]
    lines += ["", "## Database migrations", ""]
    if notes.migrations_added or notes.migrations_removed:
        lines += [f"- added `{m.revision}` {m.message}"
                  + (f" (revises `{m.down_revision}`)" if m.down_revision else "")
                  for m in notes.migrations_added]
        lines += [f"- **removed** `{m.revision}` {m.message}" for m in notes.migrations_removed]
    else:
        lines.append("No migrations added.")
    lines += ["", "## Checkpoints", ""]
    if notes.checkpoints is None:
        lines.append("No checkpoint record (VERSION file or committed checkpoint files) for one "
                     "of the revisions: compare the manifests by hand.")
    elif not notes.checkpoints:
        lines.append("No checkpoint files changed.")
    else:
        lines += [f"- `{c.name}`: {_short(c.old)} → {_short(c.new)} ({c.kind})"
                  for c in notes.checkpoints]
    return "\n".join(lines) + "\n"


def _scope(change: Change) -> str:
    return f"**{change.scope}:** " if change.scope else ""


def _short(digest: str | None) -> str:
    return f"`{digest[:HASH_PREFIX]}`" if digest else "—"


# --- entry points --------------------------------------------------------------------------------


@git_errors()  # a failing `git log` is one line (GitFailed, exit 2), not GitPython's kilobytes
def release_notes(root: Path, settings: Settings, from_ref: str | None = None,
                  to_ref: str | None = None) -> str:
    """Markdown notes for ``from_ref..to_ref``.

    ``to_ref`` defaults to the newest release tag (HEAD when there is none); ``from_ref``
    defaults to the release tag just below ``to_ref``, or for a revision that is not a release
    tag (``--to HEAD``: what is unreleased) to the newest release tag it contains; all history
    when there is none.
    """

    repo = open_repo(root)
    ensure_git_reads(repo)
    tags = release_tags(repo, settings.release.ignore_tags)
    if not to_ref:
        to_ref = tags[max(tags)].name if tags else "HEAD"
    if from_ref is None and is_release_tag(to_ref) and to_ref in {t.name for t in tags.values()}:
        earlier = previous_release(repo, parse_version(to_ref), settings.release.ignore_tags)
        from_ref = earlier.name if earlier is not None else None
    elif from_ref is None:
        target = resolve_commit(repo, to_ref)
        contained = [v for v, t in tags.items()
                     if repo.is_ancestor(t.commit, target) and t.commit != target]
        from_ref = tags[max(contained)].name if contained else None
    notes = collect_notes(repo, settings, from_ref, to_ref)
    return render_notes(notes)


@git_errors()
def notes_for_release(root: Path, settings: Settings, release: ReleaseVersion) -> str:
    """Notes for a release about to be cut from HEAD: what create-release puts in the tag."""

    repo = open_repo(root)
    ensure_git_reads(repo)
    earlier = previous_release(repo, release, settings.release.ignore_tags)
    notes = collect_notes(repo, settings, earlier.name if earlier else None, "HEAD")
    title = f"{earlier.name} → {release.tag}" if earlier else release.tag
    return render_notes(notes, title=title)
