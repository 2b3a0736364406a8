"""A git command that fails on a real, damaged repository ends as one line, never GitPython's
multi-line error with the whole command and every line git printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.checks import CheckContext
from ops.checks.release_tag import check_worktree_clean
from ops.config import Settings
from ops.release.create import create_release
from ops.release.notes import release_notes
from ops.report import Status
from ops.runtime.git import GIT_ERROR_LIMIT, GitFailed, open_repo
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

#: git's own test switch: treat every repository as owned by another user, as a checkout mounted
#: into a container often is (what git then refuses until it is a safe.directory).
OTHER_OWNER = {"GIT_TEST_ASSUME_DIFFERENT_OWNER": "1"}


def with_unreadable_history(repo: GitRepo) -> GitRepo:
    """HEAD reads, but its parent commit's object is gone (a damaged or partial clone)."""
    repo.write("tasks.py", "from ops.tasks import ns\n")
    first = repo.commit("feat: first")
    repo.write("service/app.py", "print('v2')\n")
    repo.commit("feat: second")
    (repo.path / ".git" / "objects" / first[:2] / first[2:]).unlink()
    return repo


def with_corrupt_index(repo: GitRepo) -> GitRepo:
    """A repository whose index git cannot read, so `git status` fails."""
    repo.write("service/app.py", "print('v1')\n")
    repo.commit("feat: the service")
    (repo.path / ".git" / "index").write_bytes(b"not an index" * 10)
    return repo


def test_release_notes_over_history_git_cannot_read_fail_in_one_line(git_repo: GitRepo) -> None:
    repo = with_unreadable_history(git_repo)
    with pytest.raises(GitFailed) as caught:
        release_notes(repo.path, Settings())
    message = caught.value.one_line()
    assert message.startswith("git log failed: ")
    assert len(message) <= GIT_ERROR_LIMIT
    assert "cmdline" not in message


def test_release_notes_task_exits_2_with_one_line_when_git_log_fails(git_repo: GitRepo) -> None:
    repo = with_unreadable_history(git_repo)
    done = subprocess.run([sys.executable, "-m", "invoke", "release-notes"], cwd=repo.path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: git log failed: ")


def test_create_release_where_git_status_fails_is_one_line(git_repo: GitRepo) -> None:
    repo = with_corrupt_index(git_repo)
    with pytest.raises(GitFailed) as caught:
        create_release(repo.path, Settings(), parse_version("v0.1.0"))
    assert caught.value.message.startswith("git status failed: ")
    assert "\n" not in caught.value.one_line()


def test_worktree_clean_fails_in_one_line_when_git_status_fails(git_repo: GitRepo) -> None:
    repo = with_corrupt_index(git_repo)
    ctx = CheckContext(root=repo.path, settings=Settings(), version=parse_version("v0.1.0"))
    finding = check_worktree_clean(ctx, open_repo(Path(repo.path)))
    assert finding.status is Status.FAIL
    assert finding.message.startswith("cannot tell whether the working tree is clean: "
                                      "git status failed: ")
    assert "\n" not in finding.message


def test_create_release_in_a_checkout_git_refuses_says_so_with_gits_advice(
        git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    git_repo.write("service/app.py", "print('v1')\n")
    git_repo.commit("feat: the service")
    for name, value in OTHER_OWNER.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(GitFailed) as caught:
        create_release(git_repo.path, Settings(), parse_version("v0.1.0"))
    assert "detected dubious ownership" in caught.value.message
    assert caught.value.hint == ("`git config --global --add safe.directory "
                                 f"{git_repo.path}`")


def test_release_notes_task_in_a_checkout_git_refuses_exits_2_in_one_line(
        git_repo: GitRepo) -> None:
    git_repo.write("tasks.py", "from ops.tasks import ns\n")
    git_repo.commit("feat: the service")
    done = subprocess.run([sys.executable, "-m", "invoke", "release-notes"], cwd=git_repo.path,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **OTHER_OWNER})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: git rev-parse failed: fatal: detected dubious ownership")
    assert "safe.directory" in line
