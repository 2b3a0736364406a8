"""release_tag.worktree_clean's advice: an environment file holds secrets, so it is ignored by
git, never committed or stashed; real git repositories with no .gitignore of their own."""

from __future__ import annotations

import pytest

from ops.checks import CheckContext
from ops.checks.release_tag import check_worktree_clean
from ops.config import Settings
from ops.report import Finding, Status
from ops.runtime.git import open_repo
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration


def committed(repo: GitRepo) -> GitRepo:
    repo.write("service/app.py", "print('v1')\n")
    repo.write(".env.example", "SECRET_KEY=\n")
    repo.commit("feat: the service")
    return repo


def worktree_clean(repo: GitRepo) -> Finding:
    ctx = CheckContext(root=repo.path, settings=Settings(), version=parse_version("v0.1.0"))
    return check_worktree_clean(ctx, open_repo(repo.path))


def test_an_untracked_env_file_is_to_be_ignored_not_committed(git_repo: GitRepo) -> None:
    repo = committed(git_repo)
    repo.write(".env", "SECRET_KEY=abc\n")
    finding = worktree_clean(repo)
    assert finding.status is Status.WARN
    assert finding.hint is not None
    assert finding.hint.startswith("add .env to .gitignore")
    assert "commit or stash" not in finding.hint


def test_the_env_file_of_another_environment_is_to_be_ignored_too(git_repo: GitRepo) -> None:
    repo = committed(git_repo)
    repo.write(".env.staging", "SECRET_KEY=abc\n")
    finding = worktree_clean(repo)
    assert finding.hint is not None
    assert finding.hint.startswith("add .env.staging to .gitignore")


def test_other_changes_beside_an_env_file_are_still_to_be_committed(git_repo: GitRepo) -> None:
    repo = committed(git_repo)
    repo.write(".env", "SECRET_KEY=abc\n")
    repo.write("service/app.py", "print('v2')\n")
    finding = worktree_clean(repo)
    assert finding.hint is not None
    assert finding.hint.startswith("add .env to .gitignore")
    assert finding.hint.endswith("; commit or stash the other changes")


def test_a_tracked_env_file_that_changed_is_to_be_untracked(git_repo: GitRepo) -> None:
    repo = committed(git_repo)
    repo.write(".env", "SECRET_KEY=abc\n")
    repo.commit("oops: the env file")
    repo.write(".env", "SECRET_KEY=def\n")
    finding = worktree_clean(repo)
    assert finding.hint is not None
    assert finding.hint.startswith("stop tracking .env (`git rm --cached`)")


def test_ordinary_changes_keep_the_commit_or_stash_advice(git_repo: GitRepo) -> None:
    repo = committed(git_repo)
    repo.write("service/app.py", "print('v2')\n")
    finding = worktree_clean(repo)
    assert finding.hint == "commit or stash them, so what you check is what the tag holds"
