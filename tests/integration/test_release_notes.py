"""Release notes read from real git repositories: conventional and free-form histories."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from ops.config import Settings
from ops.errors import UsageError
from ops.release.notes import release_notes
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

INVOKE = str(Path(sys.executable).with_name("invoke"))
ALEMBIC_INI = "[alembic]\nscript_location = migrations\n"


def migration(revision: str, down: str | None, message: str) -> str:
    parent = f'"{down}"' if down else "None"
    return (f'"""{message}\n\nRevision ID: {revision}\n"""\n'
            f'revision = "{revision}"\ndown_revision = {parent}\n\n\n'
            "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n")


def version_file(version: str, files: dict[str, bytes]) -> str:
    lines = [f"version: {version}", f"commit: {'0' * 40}", "date: 2026-11-26", ""]
    lines += [f"{name}: {hashlib.sha256(data).hexdigest()}" for name, data in sorted(files.items())]
    return "\n".join(lines) + "\n"


def release(repo: GitRepo, version: str, files: dict[str, bytes]) -> None:
    """What create-release does: a bookkeeping commit with the VERSION file, then the tag."""
    repo.write(f"checkpoints/VERSION_{version}.txt", version_file(version, files))
    repo.commit(f"chore(release): {version}")
    repo.tag(version)


@pytest.fixture
def two_releases(git_repo: GitRepo) -> GitRepo:
    """v0.1.0 with migration 0001 and one checkpoint; v0.2.0 adds 0002 and changes it."""
    repo = git_repo
    repo.write("alembic.ini", ALEMBIC_INI)
    repo.write("migrations/versions/0001_users.py", migration("0001", None, "create users"))
    repo.write("checkpoints/ranker.safetensors", b"ranker-1")
    repo.write("checkpoints/embedder.onnx", b"embedder-1")
    repo.commit("feat: first service version")
    release(repo, "v0.1.0", {"ranker.safetensors": b"ranker-1", "embedder.onnx": b"embedder-1"})
    repo.write("service.txt", "jobs")
    repo.commit("feat(worker): process jobs from the queue")
    repo.write("service.txt", "jobs, fixed")
    repo.commit("fix(api): /health reports redis errors")
    repo.write("README", "words")
    repo.commit("Tidy up the readme")
    repo.write("migrations/versions/0002_jobs.py", migration("0002", "0001", "add jobs"))
    repo.commit("feat(db): jobs table\n\nBREAKING CHANGE: workers older than v0.2.0 must stop")
    repo.write("checkpoints/ranker.safetensors", b"ranker-2")
    repo.commit("perf: smaller ranker")
    release(repo, "v0.2.0", {"ranker.safetensors": b"ranker-2", "embedder.onnx": b"embedder-1"})
    return repo


def notes(repo: GitRepo, from_ref: str | None = "v0.1.0", to_ref: str | None = "v0.2.0") -> str:
    return release_notes(repo.path, Settings(), from_ref, to_ref)


def section(text: str, heading: str) -> str:
    """The body of one ``## heading`` section."""
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else len(text)]


def test_commits_between_tags_are_grouped_by_type(two_releases: GitRepo) -> None:
    text = notes(two_releases)
    assert "**worker:** process jobs from the queue" in section(text, "Features")
    assert "**api:** /health reports redis errors" in section(text, "Fixes")
    assert "smaller ranker" in section(text, "Performance")
    assert "Tidy up the readme" in section(text, "Other")


def test_commits_before_the_older_tag_are_not_listed(two_releases: GitRepo) -> None:
    assert "first service version" not in notes(two_releases)


def test_release_bookkeeping_commits_are_not_listed(two_releases: GitRepo) -> None:
    assert "chore(release)" not in notes(two_releases)
    assert "## Chores" not in notes(two_releases)


def test_breaking_change_footer_is_on_top_with_its_text(two_releases: GitRepo) -> None:
    text = notes(two_releases)
    assert text.index("## ⚠ Breaking changes") < text.index("## Features")
    assert "workers older than v0.2.0 must stop" in section(text, "⚠ Breaking changes")


def test_migration_added_between_tags_is_listed_with_revision_and_message(
        two_releases: GitRepo) -> None:
    body = section(notes(two_releases), "Database migrations")
    assert "- added `0002` add jobs (revises `0001`)" in body
    assert "0001` create users" not in body


def test_changed_checkpoint_shows_old_and_new_hash_prefix_from_version_files(
        two_releases: GitRepo) -> None:
    old = hashlib.sha256(b"ranker-1").hexdigest()[:12]
    new = hashlib.sha256(b"ranker-2").hexdigest()[:12]
    body = section(notes(two_releases), "Checkpoints")
    assert f"- `ranker.safetensors`: `{old}` → `{new}` (changed)" in body
    assert "embedder.onnx" not in body


def test_without_version_files_checkpoint_changes_come_from_committed_blobs(
        git_repo: GitRepo) -> None:
    git_repo.write("checkpoints/model.pt", b"one")
    git_repo.commit("add model")
    git_repo.tag("v1.0.0")
    git_repo.write("checkpoints/model.pt", b"two")
    git_repo.write("checkpoints/extra.ckpt", b"new")
    git_repo.commit("retrain")
    git_repo.tag("v1.1.0")
    body = section(notes(git_repo, "v1.0.0", "v1.1.0"), "Checkpoints")
    assert f"`{hashlib.sha256(b'one').hexdigest()[:12]}` → " in body
    assert "- `extra.ckpt`: — → " in body


def test_default_range_is_the_newest_tag_since_the_release_before_it(
        two_releases: GitRepo) -> None:
    assert notes(two_releases, None, None) == notes(two_releases)


def test_unreleased_changes_are_those_since_the_newest_release_in_head(
        two_releases: GitRepo) -> None:
    two_releases.write("later.txt", "x")
    two_releases.commit("fix: after the release")
    text = notes(two_releases, None, "HEAD")
    assert text.startswith("# Release notes: v0.2.0 → HEAD\n")
    assert section(text, "Fixes").count("\n- ") == 1
    assert "## Features" not in text


def test_non_conventional_history_lists_every_commit_under_other(git_repo: GitRepo) -> None:
    git_repo.commit("Initial import")
    git_repo.tag("v0.1.0")
    git_repo.commit("Make the worker faster")
    git_repo.commit("Merge-ready: handle empty queue")
    git_repo.tag("v0.2.0")
    text = notes(git_repo)
    assert section(text, "Other").count("\n- ") == 2
    assert "## Features" not in text


def test_merge_commits_are_left_out_and_their_branch_commits_kept(git_repo: GitRepo) -> None:
    git_repo.commit("base")
    git_repo.tag("v0.1.0")
    git_repo.git("checkout", "-q", "-b", "topic")
    git_repo.commit("feat: from the branch")
    git_repo.git("checkout", "-q", "main")
    git_repo.git("merge", "-q", "--no-ff", "-m", "Merge branch 'topic'", "topic")
    git_repo.tag("v0.2.0")
    text = notes(git_repo)
    assert "from the branch" in text
    assert "Merge branch" not in text


def test_unknown_tag_is_a_usage_error_naming_it(two_releases: GitRepo) -> None:
    with pytest.raises(UsageError, match=r"unknown revision 'v9\.9\.9'"):
        notes(two_releases, "v9.9.9", "v0.2.0")


def test_task_writes_the_notes_to_the_output_file(two_releases: GitRepo) -> None:
    two_releases.write("tasks.py", "from ops.tasks import ns\n")
    done = subprocess.run([INVOKE, "release-notes", "--from", "v0.1.0", "--to", "v0.2.0",
                           "--output", "NOTES.md"], cwd=two_releases.path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (two_releases.path / "NOTES.md").read_text().startswith(
        "# Release notes: v0.1.0 → v0.2.0\n")


def test_task_with_unknown_tag_exits_2_with_one_line(two_releases: GitRepo) -> None:
    two_releases.write("tasks.py", "from ops.tasks import ns\n")
    done = subprocess.run([INVOKE, "release-notes", "--from", "v0.0.9"], cwd=two_releases.path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unknown revision 'v0.0.9' (hint: list release tags with `git tag --list 'v*'`)"]
