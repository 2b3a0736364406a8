"""create-release and verify-release on real git repositories, with a real bare remote."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ops.config import Settings
from ops.errors import ExitCode, UsageError
from ops.release.create import ReleaseFailed, create_release
from ops.release.verify import verify_release
from ops.report import Finding, Status
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

SETTINGS = Settings()


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write("checkpoints/model.pt", b"weights-v1")
    git_repo.write("checkpoints/sub/encoder.onnx", b"encoder")
    git_repo.write("app.py", "print('hi')\n")
    git_repo.commit("feat: first")
    return git_repo


def cut(repo: GitRepo, version: str = "v0.2.0", **kw: object) -> object:
    """create-release as the task calls it: the version string parsed first."""
    return create_release(repo.path, SETTINGS, parse_version(version), **kw)  # type: ignore[arg-type]


def by_id(findings: list[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in findings}


# --- what a release writes -----------------------------------------------------------------------


def test_release_writes_version_file_manifest_and_checksum_in_the_release_commit(
        repo: GitRepo) -> None:
    cut(repo)
    committed = repo.git("show", "--name-only", "--format=", "v0.2.0^{commit}").splitlines()
    assert sorted(committed) == ["checkpoints/VERSION_v0.2.0.txt",
                                 "releases/manifest_v0.2.0.json",
                                 "releases/manifest_v0.2.0.sha256"]


def test_manifest_verifies_with_the_real_sha256sum_run_in_the_releases_dir(repo: GitRepo) -> None:
    cut(repo)
    done = subprocess.run(["sha256sum", "-c", "manifest_v0.2.0.sha256"],
                          cwd=repo.path / "releases", capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "manifest_v0.2.0.json: OK"


def test_manifest_lists_each_checkpoint_and_the_version_file_with_size_and_hash(
        repo: GitRepo) -> None:
    cut(repo)
    data = json.loads((repo.path / "releases/manifest_v0.2.0.json").read_text())
    paths = {a["path"]: a for a in data["artifacts"]}
    assert set(paths) == {"checkpoints/model.pt", "checkpoints/sub/encoder.onnx",
                          "checkpoints/VERSION_v0.2.0.txt"}
    assert paths["checkpoints/model.pt"]["size"] == len(b"weights-v1")
    assert paths["checkpoints/VERSION_v0.2.0.txt"]["kind"] == "version_file"


def test_tag_is_annotated_and_its_commit_is_the_child_of_the_manifest_commit(
        repo: GitRepo) -> None:
    source = repo.head
    cut(repo)
    data = json.loads((repo.path / "releases/manifest_v0.2.0.json").read_text())
    assert repo.git("cat-file", "-t", "v0.2.0") == "tag"
    assert repo.git("rev-parse", "v0.2.0^{commit}") == repo.head
    assert repo.git("rev-parse", "v0.2.0^{commit}^") == source == data["git"]["commit"]
    assert f"\nCommit: {source}\n" in (repo.path / "checkpoints/VERSION_v0.2.0.txt").read_text()
    assert data["git"]["branch"] == "main"


def test_tag_message_carries_the_given_release_notes(repo: GitRepo) -> None:
    cut(repo, message="## Highlights\n- faster model")
    body = repo.git("tag", "-l", "--format=%(contents)", "v0.2.0")
    assert body.startswith("Release v0.2.0")
    assert "## Highlights\n- faster model" in body


def test_tag_message_can_come_from_a_notes_file(repo: GitRepo, tmp_path: Path) -> None:
    notes = tmp_path / "NOTES.md"
    notes.write_text("Notes from a file\n")
    cut(repo, notes_file=notes)
    assert "Notes from a file" in repo.git("tag", "-l", "--format=%(contents)", "v0.2.0")


def test_generated_tag_message_mentions_the_commits_since_the_last_release(
        repo: GitRepo) -> None:
    cut(repo, "v0.1.0")
    repo.write("app.py", "print('v2')\n")
    repo.commit("fix: greet properly")
    cut(repo)
    assert "greet properly" in repo.git("tag", "-l", "--format=%(contents)", "v0.2.0")


def test_worktree_is_clean_after_a_release(repo: GitRepo) -> None:
    cut(repo)
    assert repo.git("status", "--porcelain") == ""


def test_version_file_is_written_in_the_t1_document_layout(repo: GitRepo) -> None:
    source = repo.head
    cut(repo)
    lines = (repo.path / "checkpoints/VERSION_v0.2.0.txt").read_text().splitlines()
    date = json.loads((repo.path / "releases/manifest_v0.2.0.json").read_text())["release_date"]
    model = hashlib.sha256(b"weights-v1").hexdigest()
    encoder = hashlib.sha256(b"encoder").hexdigest()
    assert lines == ["v0.2.0", f"Commit: {source}", f"Date: {date}", "", "Checkpoint Files:",
                     f"  model.pt: {model}", f"  sub/encoder.onnx: {encoder}"]


def test_release_without_checkpoint_files_writes_no_version_file(git_repo: GitRepo) -> None:
    git_repo.write("app.py", "print('an api without models')\n")
    git_repo.commit("feat: api")
    result = create_release(git_repo.path, SETTINGS, parse_version("v0.2.0"))
    committed = git_repo.git("show", "--name-only", "--format=", "v0.2.0^{commit}").splitlines()
    assert sorted(committed) == ["releases/manifest_v0.2.0.json",
                                 "releases/manifest_v0.2.0.sha256"]
    assert result.version_file is None
    assert result.steps[0] == "no checkpoint files under checkpoints/: no VERSION file to write"


def test_release_without_checkpoint_files_verifies(git_repo: GitRepo) -> None:
    git_repo.write("app.py", "print('an api without models')\n")
    git_repo.commit("feat: api")
    create_release(git_repo.path, SETTINGS, parse_version("v0.2.0"))
    found = verify(git_repo)
    assert found["artifacts.models_match_release"].message == (
        "0 checkpoint file(s) match manifest_v0.2.0.json")
    assert [f.id for f in found.values() if f.status is Status.FAIL] == []


def test_service_built_without_image_is_recorded_under_the_compose_name(repo: GitRepo) -> None:
    repo.write("docker-compose.yml", "services:\n  app:\n    build: .\n  redis:\n"
                                     "    image: redis:7\n")
    repo.commit("feat: compose")
    cut(repo)
    data = json.loads((repo.path / "releases/manifest_v0.2.0.json").read_text())
    # the directory is `repo`, the environment production; `_` under docker-compose v1
    assert list(data["docker_images"]) == ["app"]
    assert data["docker_images"]["app"]["image"] in {"repo-production-app:v0.2.0",
                                                     "repo-production_app:v0.2.0"}


def test_configured_project_name_names_the_recorded_image(repo: GitRepo) -> None:
    repo.write("docker-compose.yml", "services:\n  app:\n    build: .\n")
    repo.commit("feat: compose")
    settings = Settings.model_validate(
        {"environments": {"production": {"project_name": "storefront"}}})
    create_release(repo.path, settings, parse_version("v0.2.0"))
    data = json.loads((repo.path / "releases/manifest_v0.2.0.json").read_text())
    assert data["docker_images"]["app"]["image"] in {"storefront-app:v0.2.0",
                                                     "storefront_app:v0.2.0"}


# --- refusals ------------------------------------------------------------------------------------


def refusal(repo: GitRepo, version: str = "v0.2.0", **kw: object) -> UsageError:
    before = repo.head
    with pytest.raises(UsageError) as info:
        cut(repo, version, **kw)
    assert info.value.exit_code == ExitCode.USAGE
    assert repo.head == before
    assert not (repo.path / "releases").exists()
    return info.value


def test_malformed_version_is_refused(repo: GitRepo) -> None:
    assert "malformed release version 0.2" in refusal(repo, "0.2").message


def test_existing_tag_is_refused(repo: GitRepo) -> None:
    repo.tag("v0.2.0")
    assert refusal(repo).message == "tag v0.2.0 already exists"


def test_version_not_greater_than_the_latest_release_is_refused(repo: GitRepo) -> None:
    repo.tag("v0.3.0")
    assert refusal(repo).message == "v0.2.0 is not greater than the latest release v0.3.0"


def test_pre_release_of_an_already_released_version_is_refused(repo: GitRepo) -> None:
    repo.tag("v1.0.0")
    assert "not greater than the latest release v1.0.0" in refusal(repo, "v1.0.0-rc.1").message


def test_branch_outside_the_release_branches_is_refused(repo: GitRepo) -> None:
    repo.git("checkout", "-q", "-b", "feature/x")
    error = refusal(repo)
    assert error.message == "branch 'feature/x' is not a release branch"
    assert error.hint is not None
    assert "main, master" in error.hint


def test_configured_release_branch_is_accepted(repo: GitRepo) -> None:
    repo.git("checkout", "-q", "-b", "release")
    settings = Settings.model_validate({"release": {"branches": ["release"]}})
    create_release(repo.path, settings, parse_version("v0.2.0"))
    assert repo.git("tag") == "v0.2.0"


def test_uncommitted_change_is_refused_naming_the_path(repo: GitRepo) -> None:
    repo.write("app.py", "print('edited')\n")
    assert refusal(repo).message == "uncommitted changes: app.py"


def test_untracked_file_is_refused(repo: GitRepo) -> None:
    repo.write("stray.txt", "x")
    assert refusal(repo).message == "uncommitted changes: stray.txt"


def test_repository_without_commits_is_refused(git_repo: GitRepo) -> None:
    with pytest.raises(UsageError, match="the repository has no commits yet"):
        create_release(git_repo.path, SETTINGS, parse_version("v0.1.0"))


def test_detached_head_is_refused(repo: GitRepo) -> None:
    repo.git("checkout", "-q", "--detach")
    assert refusal(repo).message == "HEAD is detached: check out a release branch first"


def test_message_and_notes_file_together_are_refused(repo: GitRepo, tmp_path: Path) -> None:
    error = refusal(repo, message="a", notes_file=tmp_path / "n.md")
    assert error.message == "give either --message or --notes-file, not both"


# --- dry run, interruption -----------------------------------------------------------------------


def test_dry_run_changes_nothing_and_lists_the_steps(repo: GitRepo) -> None:
    before = repo.head
    result = create_release(repo.path, SETTINGS, parse_version("v0.2.0"), push=True, dry_run=True)
    assert repo.head == before
    assert repo.git("tag") == ""
    assert repo.git("status", "--porcelain") == ""
    assert result.release_commit is None
    assert result.steps[-1] == "push main and v0.2.0 to origin"


def test_release_commit_is_bookkeeping_that_commit_hooks_do_not_block(repo: GitRepo) -> None:
    hook = repo.path / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    cut(repo)
    assert repo.git("rev-parse", "v0.2.0^{commit}") == repo.head
    assert repo.git("log", "-1", "--format=%s") == "chore(release): v0.2.0"
    assert repo.git("status", "--porcelain") == ""


def test_failure_to_move_the_branch_removes_the_tag_and_the_files(repo: GitRepo) -> None:
    lock = repo.path / ".git/refs/heads/main.lock"  # another git process holds the branch
    lock.write_text("")
    before = repo.head
    with pytest.raises(ReleaseFailed, match=r"could not commit and tag v0\.2\.0"):
        cut(repo)
    lock.unlink()
    assert repo.head == before
    assert repo.git("tag") == ""
    assert repo.git("status", "--porcelain") == ""


def test_failure_to_tag_after_the_commit_resets_the_branch_to_the_source_commit(
        repo: GitRepo) -> None:
    # a ref named v0.2.0/x makes refs/tags/v0.2.0 impossible to create: git itself refuses
    repo.git("tag", "v0.2.0/x")
    before = repo.head
    with pytest.raises(ReleaseFailed, match=r"could not commit and tag v0\.2\.0"):
        cut(repo)
    assert repo.head == before
    assert repo.git("status", "--porcelain") == ""
    assert not (repo.path / "releases/manifest_v0.2.0.json").exists()


# --- push ----------------------------------------------------------------------------------------


@pytest.fixture
def remote(repo: GitRepo, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    return bare


def test_push_sends_the_release_commit_and_the_tag_to_the_remote(repo: GitRepo,
                                                                  remote: Path) -> None:
    result = cut(repo, push=True)
    assert getattr(result, "pushed_to", None) == "origin"
    remote_git = ["git", f"--git-dir={remote}"]
    tags = subprocess.run([*remote_git, "tag"], capture_output=True, text=True, check=True)
    head = subprocess.run([*remote_git, "rev-parse", "main"], capture_output=True, text=True,
                          check=True)
    assert tags.stdout.strip() == "v0.2.0"
    assert head.stdout.strip() == repo.head


def test_rejected_push_keeps_the_local_tag_and_says_how_to_retry(repo: GitRepo, remote: Path,
                                                                tmp_path: Path) -> None:
    other = GitRepo(tmp_path / "other")
    other.git("pull", "-q", str(remote), "main")
    other.write("other.txt", "someone else's work")
    other.commit("feat: elsewhere")
    other.git("push", "-q", str(remote), "main")
    with pytest.raises(ReleaseFailed) as info:
        cut(repo, push=True)
    assert info.value.exit_code == ExitCode.FAILED
    assert "push to origin was rejected" in info.value.message
    assert info.value.hint is not None
    assert "git push --atomic origin main refs/tags/v0.2.0" in info.value.hint
    assert repo.git("tag") == "v0.2.0"
    remote_tags = subprocess.run(["git", f"--git-dir={remote}", "tag"], capture_output=True,
                                 text=True, check=True)
    assert remote_tags.stdout.strip() == ""


# --- verify-release: the tamper gate -------------------------------------------------------------


def verify(repo: GitRepo, version: str = "v0.2.0") -> dict[str, Finding]:
    return by_id(verify_release(repo.path, SETTINGS, parse_version(version)))


def test_untouched_release_verifies_with_images_skipped_when_none_are_built(
        repo: GitRepo) -> None:
    cut(repo)
    found = verify(repo)
    assert {k: f.status for k, f in found.items()} == {
        "artifacts.manifest": Status.PASS, "artifacts.manifest_integrity": Status.PASS,
        "artifacts.models_match_release": Status.PASS, "artifacts.images": Status.SKIP}


def test_changed_checkpoint_fails_naming_the_file(repo: GitRepo) -> None:
    cut(repo)
    (repo.path / "checkpoints/model.pt").write_bytes(b"poisoned")
    finding = verify(repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert "changed model.pt" in finding.message
    assert finding.detail is not None
    assert finding.detail["changed"] == ["model.pt"]


def test_missing_and_extra_checkpoints_are_named(repo: GitRepo) -> None:
    cut(repo)
    (repo.path / "checkpoints/sub/encoder.onnx").unlink()
    (repo.path / "checkpoints/new.bin").write_bytes(b"new")
    message = verify(repo)["artifacts.models_match_release"].message
    assert "missing sub/encoder.onnx" in message
    assert "extra new.bin" in message


def test_edited_version_file_is_caught_through_the_manifest(repo: GitRepo) -> None:
    cut(repo)
    path = repo.path / "checkpoints/VERSION_v0.2.0.txt"
    path.write_text(path.read_text().replace("Date:", "Date: 1999 "))
    finding = verify(repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert "changed VERSION_v0.2.0.txt" in finding.message


def test_edited_manifest_fails_integrity(repo: GitRepo) -> None:
    cut(repo)
    path = repo.path / "releases/manifest_v0.2.0.json"
    path.write_text(path.read_text().replace('"main"', '"hotfix"'))
    finding = verify(repo)["artifacts.manifest_integrity"]
    assert finding.status is Status.FAIL
    assert "does not match manifest_v0.2.0.sha256" in finding.message


def test_manifest_rewritten_with_a_matching_checksum_still_fails_against_the_tag(
        repo: GitRepo) -> None:
    """Someone swaps a checkpoint, puts its hash in the manifest and re-hashes the manifest."""
    from dataclasses import replace

    from ops.release import manifest as mf
    from ops.release.version_file import hash_checkpoints

    cut(repo)
    (repo.path / "checkpoints/model.pt").write_bytes(b"poisoned")
    path = repo.path / "releases/manifest_v0.2.0.json"
    poisoned = hash_checkpoints(repo.path, SETTINGS).by_name()["model.pt"]
    manifest = mf.read(path)
    forged = [replace(a, sha256=poisoned) if a.path.endswith("model.pt") else a
              for a in manifest.artifacts]
    mf.write(path, replace(manifest, artifacts=forged))
    finding = verify(repo)["artifacts.manifest_integrity"]
    assert finding.status is Status.FAIL
    assert finding.message == ("manifest_v0.2.0.json differs from the one committed at v0.2.0 "
                               "in artifacts")


def test_missing_manifest_fails_the_gate_and_names_the_task_that_writes_it(
        repo: GitRepo) -> None:
    finding = verify(repo)["artifacts.manifest"]
    assert finding.status is Status.FAIL
    assert finding.message == "releases/manifest_v0.2.0.json does not exist"
    assert finding.hint == "`invoke create-release v0.2.0` writes it"


def test_tag_moved_away_from_the_release_commit_fails_the_manifest(repo: GitRepo) -> None:
    cut(repo)
    repo.write("app.py", "print('later')\n")
    repo.commit("feat: later work")
    repo.git("tag", "-f", "-a", "v0.2.0", "-m", "moved")
    finding = verify(repo)["artifacts.manifest"]
    assert finding.status is Status.FAIL
    assert "neither the manifest's commit" in finding.message


# --- the tasks as a user runs them ---------------------------------------------------------------


def invoke(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    (repo.path / "tasks.py").write_text("from ops.tasks import ns\n")
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=repo.path,
                          capture_output=True, text=True, check=False)


def test_create_release_task_refuses_a_wrong_branch_with_one_line_and_exit_2(
        repo: GitRepo) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("tasks.py", "from ops.tasks import ns\n")
    repo.commit("chore: tasks")
    done = invoke(repo, "create-release", "v0.2.0")
    assert done.returncode == 2
    assert done.stderr == ("error: branch 'feature' is not a release branch "
                           "(hint: allowed: main, master (ops.release.branches))\n")


def test_verify_release_task_exits_1_on_a_tampered_checkpoint(repo: GitRepo) -> None:
    repo.write("tasks.py", "from ops.tasks import ns\n")
    repo.commit("chore: tasks")
    assert invoke(repo, "create-release", "v0.2.0").returncode == 0
    assert invoke(repo, "verify-release", "v0.2.0").returncode == 0
    (repo.path / "checkpoints/model.pt").write_bytes(b"poisoned")
    done = invoke(repo, "verify-release", "v0.2.0")
    assert done.returncode == 1
    assert "changed model.pt  (artifacts.models_match_release)" in done.stdout


def test_tminus_hash_cache_in_the_worktree_does_not_block_the_next_release(
        repo: GitRepo) -> None:
    cache = repo.path / ".tminus/cache/hashes.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("{}")
    cut(repo)
    assert repo.git("tag") == "v0.2.0"
