"""create-release killed or interrupted at every step leaves no lie, and the next run converges.

Each test runs the real CLI (``invoke create-release``) in its own session, with the fault hook
``TMINUS_FAULT_AT`` delivering SIGKILL to the process, or SIGINT/SIGTERM to its whole process
group as a terminal would, at one step of the cut. Then it checks what the issue forbids — a
release commit on the branch without its tag, staged release files, a second release commit — and
runs create-release again, which must finish (or redo) the release exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

STEPS = ("written", "committed", "tagged", "moved")
SIGNALS = ("SIGKILL", "SIGINT", "SIGTERM")
INVOKE = [sys.executable, "-m", "invoke"]


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    """A service with one checkpoint, released once as v0.1.0, ready to cut v0.2.0."""
    git_repo.write("tasks.py", "from ops.tasks import ns\n")
    git_repo.write("checkpoints/model.pt", b"weights v1")
    git_repo.write(".gitignore", ".env\n")
    git_repo.commit("feat: model")
    git_repo.tag("v0.1.0")
    git_repo.write("checkpoints/model.pt", b"weights v2")
    git_repo.commit("feat: better model")
    return git_repo


def create_release(repo: GitRepo, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("TMINUS_FAULT_AT", None)
    if fault:
        env["TMINUS_FAULT_AT"] = fault
    return subprocess.run([*INVOKE, "create-release", "v0.2.0"], cwd=repo.path, env=env,
                          capture_output=True, text=True, timeout=120, check=False,
                          start_new_session=True)


def release_commits(repo: GitRepo) -> list[str]:
    return repo.git("log", "--format=%H", "--grep=^chore(release): v0.2.0$").split()


def assert_no_lie(repo: GitRepo) -> None:
    """The branch never holds a release commit without its tag, and no release file is staged
    on top of the branch (the real index may only lag behind a branch that already moved)."""
    head_subject = repo.git("log", "-1", "--format=%s")
    if head_subject == "chore(release): v0.2.0":
        assert repo.git("rev-parse", "v0.2.0^{commit}") == repo.head
    assert repo.git("diff", "--cached", "--name-only", "--diff-filter=AM") == ""


def assert_released_once(repo: GitRepo, source: str) -> None:
    assert release_commits(repo) == [repo.head]
    assert repo.git("rev-parse", "v0.2.0^{commit}") == repo.head
    assert repo.git("rev-parse", "HEAD^") == source
    assert repo.git("status", "--porcelain") == ""


@pytest.mark.parametrize("signal_name", SIGNALS)
@pytest.mark.parametrize("step", STEPS)
def test_killed_or_interrupted_cut_leaves_no_lie_and_the_retry_converges(
        repo: GitRepo, step: str, signal_name: str) -> None:
    source = repo.head
    first = create_release(repo, f"create-release:{step}:{signal_name}")
    if signal_name == "SIGKILL":
        assert first.returncode == -signal.SIGKILL
    else:
        assert first.returncode == 130, first.stderr
        assert "Traceback" not in first.stderr
        assert "BrokenPipe" not in first.stderr
    assert_no_lie(repo)
    retry = create_release(repo)
    if signal_name != "SIGKILL":  # the interrupt was held until the cut was whole
        assert retry.returncode == 2, retry.stdout + retry.stderr
        assert "tag v0.2.0 already exists" in retry.stderr
    else:
        assert retry.returncode == 0, retry.stdout + retry.stderr
    assert_released_once(repo, source)


def test_retry_after_a_kill_between_tag_and_branch_says_it_completed(repo: GitRepo) -> None:
    create_release(repo, "create-release:tagged")
    retry = create_release(repo)
    assert "completed the release an interrupted run left half-made" in retry.stdout


def test_retry_after_a_kill_before_the_commit_removes_the_leftovers_and_cuts(
        repo: GitRepo) -> None:
    create_release(repo, "create-release:written")
    assert (repo.path / "releases/manifest_v0.2.0.json").exists()
    retry = create_release(repo)
    assert retry.returncode == 0, retry.stderr
    assert "removed what an interrupted create-release left" in retry.stdout


def test_an_interrupted_cut_exits_130_saying_the_release_is_complete(repo: GitRepo) -> None:
    first = create_release(repo, "create-release:committed:SIGINT")
    assert first.returncode == 130
    assert "v0.2.0 was completed first" in first.stderr


def test_release_commit_left_without_tag_by_an_older_run_gets_its_tag(repo: GitRepo) -> None:
    source = repo.head
    repo.write("releases/manifest_v0.2.0.json", "{}\n")
    repo.commit("chore(release): v0.2.0")
    retry = create_release(repo)
    assert retry.returncode == 0, retry.stderr
    assert release_commits(repo) == [repo.head]
    assert repo.git("rev-parse", "v0.2.0^{commit}") == repo.head
    assert repo.git("rev-parse", "HEAD^") == source


def test_a_hand_made_commit_reusing_the_subject_is_not_tagged(repo: GitRepo) -> None:
    repo.write("service/app.py", "print('not release files')\n")
    repo.commit("chore(release): v0.2.0")
    before = repo.head
    retry = create_release(repo)
    assert retry.returncode == 0, retry.stderr
    assert repo.git("rev-parse", "HEAD^") == before  # a fresh release commit on top of it
