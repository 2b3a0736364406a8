"""A failed git command in one line: the subcommand and git's first meaningful line, bounded.

The errors are GitPython's own, raised by running the real git binary in a temporary directory;
only the unsafe-directory case is built by hand, since it needs a checkout owned by another user.
"""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from ops.errors import ExitCode
from ops.runtime.git import GIT_ERROR_LIMIT, GitFailed, git_errors, git_failure, git_subcommand


def failure_of(run: object) -> git.GitCommandError:
    assert callable(run)
    with pytest.raises(git.GitCommandError) as caught:
        run()
    return caught.value


def test_summary_names_the_subcommand_and_gits_fatal_line(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    exc = failure_of(lambda: repo.git.log("--format=%H%x1f%an%x1f%aI%x1f%B"))
    problem = git_failure(exc)
    assert problem.message.startswith("git log failed: fatal: ")
    assert "--format" not in problem.message


def test_summary_is_bounded_however_long_gits_line(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    exc = failure_of(lambda: repo.git.rev_parse("x" * 5000))  # git echoes the name
    problem = git_failure(exc)
    assert problem.message.startswith("git rev-parse failed: fatal: ")
    assert len(problem.message) == GIT_ERROR_LIMIT
    assert problem.message.endswith("…")


def test_a_failed_git_command_is_a_usage_error_with_exit_2(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    assert git_failure(failure_of(repo.git.log)).exit_code == ExitCode.USAGE


def test_git_errors_turns_gitpythons_error_into_git_failed(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    with pytest.raises(GitFailed, match=r"^git log failed: fatal: "), git_errors():
        repo.git.log()


def test_git_errors_leaves_other_errors_alone() -> None:
    with pytest.raises(KeyError), git_errors():
        raise KeyError("not git's")


def test_subcommand_skips_gits_own_options_and_their_values() -> None:
    assert git_subcommand(["/usr/bin/git", "-c", "core.quotepath=false", "-C", "/srv/app",
                           "--no-pager", "status", "--porcelain"]) == "status"


def test_gits_advice_to_mark_the_directory_safe_becomes_the_hint() -> None:
    stderr = (b"fatal: detected dubious ownership in repository at '/srv/app'\n"
              b"To add an exception for this directory, call:\n\n"
              b"\tgit config --global --add safe.directory /srv/app")
    problem = git_failure(git.GitCommandError(["git", "status", "--porcelain"], 128, stderr))
    assert problem.message == ("git status failed: fatal: detected dubious ownership in "
                               "repository at '/srv/app'")
    assert problem.hint == "`git config --global --add safe.directory /srv/app`"
