"""Section 1, Release Tag, against real git repositories: one planted defect per finding id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ops.checks import CheckContext
from ops.checks.release_tag import run
from ops.config import Settings
from ops.report import Finding, Status
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

IDS = ["release_tag.format", "release_tag.exists", "release_tag.annotated",
       "release_tag.points_at_head", "release_tag.commit", "release_tag.worktree_clean",
       "release_tag.monotonic", "release_tag.checkpoint_version"]


def released(repo: GitRepo, version: str = "v0.2.0") -> GitRepo:
    """A repository whose HEAD is the annotated release ``version``, after a v0.1.0."""
    repo.write("service/app.py", "print('v1')\n")
    repo.write("checkpoints/VERSION_v0.1.0.txt", "version: v0.1.0\n")
    repo.commit("feat: first release")
    repo.tag("v0.1.0")
    repo.write("service/app.py", "print('v2')\n")
    repo.write(f"checkpoints/VERSION_{version}.txt", f"version: {version}\n")
    repo.commit("feat: second release")
    repo.tag(version)
    return repo


def check(root: Path, version: str = "v0.2.0") -> list[Finding]:
    ctx = CheckContext(root=root, settings=Settings(), version=parse_version(version))
    return list(run(ctx))


def by_id(findings: list[Finding], finding_id: str) -> Finding:
    [finding] = [f for f in findings if f.id == finding_id]
    return finding


def not_passing(findings: list[Finding]) -> dict[str, Status]:
    return {f.id: f.status for f in findings if f.status is not Status.PASS}


def test_clean_release_passes_every_release_tag_check(git_repo: GitRepo) -> None:
    findings = check(released(git_repo).path)
    assert [f.id for f in findings] == IDS
    assert not_passing(findings) == {}


def test_missing_tag_fails_exists_and_skips_what_needs_the_tag(git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.git("tag", "-d", "v0.2.0")
    findings = check(git_repo.path)
    assert not_passing(findings) == {
        "release_tag.exists": Status.FAIL,
        "release_tag.annotated": Status.SKIP,
        "release_tag.points_at_head": Status.SKIP,
        "release_tag.commit": Status.SKIP,
    }
    assert "v0.2.0 does not exist" in by_id(findings, "release_tag.exists").message


def test_shallow_clone_says_tags_may_be_missing_instead_of_tag_missing(
        git_repo: GitRepo, tmp_path: Path) -> None:
    released(git_repo)
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--no-tags",
                    f"file://{git_repo.path}", str(clone)], check=True)
    finding = by_id(check(clone), "release_tag.exists")
    assert finding.status is Status.FAIL
    assert "shallow clone: tags may be missing, run `git fetch --unshallow --tags`" \
        in finding.message


def test_lightweight_tag_warns_annotated_only(git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.git("tag", "-d", "v0.2.0")
    git_repo.tag("v0.2.0", annotated=False)
    findings = check(git_repo.path)
    assert not_passing(findings) == {"release_tag.annotated": Status.WARN}
    assert "lightweight" in by_id(findings, "release_tag.annotated").message


def test_tag_behind_head_fails_points_at_head_naming_both_commits(git_repo: GitRepo) -> None:
    released(git_repo)
    tagged = git_repo.head
    head = git_repo.commit("fix: after the tag")
    findings = check(git_repo.path)
    assert not_passing(findings) == {"release_tag.points_at_head": Status.FAIL}
    message = by_id(findings, "release_tag.points_at_head").message
    assert tagged[:8] in message
    assert head[:8] in message


def test_commit_reports_the_tagged_short_sha(git_repo: GitRepo) -> None:
    released(git_repo)
    finding = by_id(check(git_repo.path), "release_tag.commit")
    assert finding.status is Status.PASS
    assert git_repo.head[:8] in finding.message
    assert finding.detail == {"commit": git_repo.head}


def test_uncommitted_changes_warn_listing_five_paths_and_the_rest_counted(
        git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.write("service/app.py", "print('edited')\n")
    for number in range(6):
        git_repo.write(f"notes/n{number}.txt", "draft\n")
    findings = check(git_repo.path)
    assert not_passing(findings) == {"release_tag.worktree_clean": Status.WARN}
    message = by_id(findings, "release_tag.worktree_clean").message
    assert "7 uncommitted change(s)" in message
    assert " and 2 more" in message
    assert "service/app.py (modified)" in message


def test_build_recording_image_ids_in_this_releases_manifest_keeps_the_tree_clean(
        git_repo: GitRepo) -> None:
    git_repo.write("releases/manifest_v0.2.0.json", '{"docker_images": {}}\n')
    git_repo.write("releases/manifest_v0.2.0.sha256", "0  manifest_v0.2.0.json\n")
    released(git_repo)
    git_repo.write("releases/manifest_v0.2.0.json", '{"docker_images": {"app": {}}}\n')
    git_repo.write("releases/manifest_v0.2.0.sha256", "1  manifest_v0.2.0.json\n")
    finding = by_id(check(git_repo.path), "release_tag.worktree_clean")
    assert finding.status is Status.PASS
    assert "image ids" in finding.message


def test_this_releases_sign_off_record_keeps_the_tree_clean(git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.write("releases/signoff_v0.2.0.json", '{"engineer": {"name": "Jiwoo"}}\n')
    assert by_id(check(git_repo.path), "release_tag.worktree_clean").status is Status.PASS


def test_an_edited_manifest_of_another_release_still_warns(git_repo: GitRepo) -> None:
    git_repo.write("releases/manifest_v0.1.0.json", "{}\n")
    released(git_repo)
    git_repo.write("releases/manifest_v0.1.0.json", '{"edited": true}\n')
    finding = by_id(check(git_repo.path), "release_tag.worktree_clean")
    assert finding.status is Status.WARN
    assert "releases/manifest_v0.1.0.json (modified)" in finding.message


def test_earlier_or_equal_existing_release_fails_monotonic(git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.tag("v0.3.0")
    findings = check(git_repo.path)
    assert not_passing(findings) == {"release_tag.monotonic": Status.FAIL}
    assert "v0.3.0" in by_id(findings, "release_tag.monotonic").message


def test_prerelease_of_an_existing_release_is_not_monotonic(git_repo: GitRepo) -> None:
    released(git_repo, "v1.0.0-rc.1")
    git_repo.tag("v1.0.0")
    finding = by_id(check(git_repo.path, "v1.0.0-rc.1"), "release_tag.monotonic")
    assert finding.status is Status.FAIL
    assert "v1.0.0" in finding.message


def test_missing_checkpoint_version_file_fails_naming_the_path(git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.write("checkpoints/model.pt", b"weights")
    git_repo.git("add", "checkpoints/model.pt")
    git_repo.git("rm", "-q", "checkpoints/VERSION_v0.2.0.txt")
    git_repo.git("commit", "-q", "--amend", "--no-edit")
    git_repo.git("tag", "-f", "-a", "v0.2.0", "-m", "release v0.2.0")
    findings = check(git_repo.path)
    assert not_passing(findings) == {"release_tag.checkpoint_version": Status.FAIL}
    finding = by_id(findings, "release_tag.checkpoint_version")
    assert "checkpoints/VERSION_v0.2.0.txt" in finding.message
    assert finding.hint is not None
    assert "create-release" in finding.hint


def test_directory_without_git_fails_exists_without_a_traceback(tmp_path: Path) -> None:
    findings = check(tmp_path)
    assert by_id(findings, "release_tag.exists").status is Status.FAIL
    assert "not a git repository" in by_id(findings, "release_tag.exists").message
    assert by_id(findings, "release_tag.monotonic").status is Status.SKIP


def test_first_release_is_monotonic(git_repo: GitRepo) -> None:
    git_repo.write("checkpoints/VERSION_v0.1.0.txt", "version: v0.1.0\n")
    git_repo.commit("feat: first")
    git_repo.tag("v0.1.0")
    findings = check(git_repo.path, "v0.1.0")
    assert not_passing(findings) == {}
    assert "first release" in by_id(findings, "release_tag.monotonic").message


# --- through the real invoke program -------------------------------------------------------------


def predeploy(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real program, with a tasks.py git does not see (the tree stays clean)."""
    (root / "tasks.py").write_text("from ops.tasks import ns\n", encoding="utf-8")
    (root / ".git/info/exclude").write_text("tasks.py\n__pycache__/\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "invoke", "predeploy", "--version", "v0.2.0",
                           "--only", "release_tag", *args], cwd=root, capture_output=True,
                          text=True, timeout=120, check=False)


def test_lightweight_tag_passes_the_run_but_fails_it_under_strict(git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.git("tag", "-d", "v0.2.0")
    git_repo.tag("v0.2.0", annotated=False)
    assert predeploy(git_repo.path).returncode == 0
    strict = predeploy(git_repo.path, "--strict")
    assert strict.returncode == 1
    assert "(release_tag.annotated)" in strict.stdout


def test_json_report_carries_every_release_tag_id(git_repo: GitRepo) -> None:
    released(git_repo)
    done = predeploy(git_repo.path, "--format", "json")
    assert done.returncode == 0, done.stderr
    [section] = json.loads(done.stdout)["sections"]
    assert [f["id"] for f in section["findings"]] == IDS


def test_a_mistyped_tag_listed_in_ignore_tags_is_not_a_release(git_repo: GitRepo) -> None:
    released(git_repo)
    git_repo.tag("v202030505")  # an upstream typo for v20230505
    ctx = CheckContext(root=git_repo.path, version=parse_version("v0.2.0"),
                       settings=Settings.model_validate({"release": {"ignore_tags": ["v2020*"]}}))
    assert by_id(list(run(ctx)), "release_tag.monotonic").status is Status.PASS


def test_monotonic_names_the_highest_release_above_first(git_repo: GitRepo) -> None:
    released(git_repo)
    for tag in ("v0.3.0", "v0.9.0", "v0.5.0"):
        git_repo.tag(tag)
    finding = by_id(check(git_repo.path), "release_tag.monotonic")
    assert finding.message.endswith("v0.9.0, v0.5.0, v0.3.0 exist")
    assert "above v0.9.0" in (finding.hint or "")


def test_unprefixed_tag_of_the_version_is_the_release_tag(git_repo: GitRepo) -> None:
    """Teams that tag ``0.2.0`` (lightweight, as many do) release v0.2.0: no 'does not exist'."""
    git_repo.write("service/app.py", "print('v2')\n")
    git_repo.commit("feat: second release")
    git_repo.tag("0.2.0", annotated=False)
    findings = check(git_repo.path)
    assert by_id(findings, "release_tag.exists").message == "tag 0.2.0 exists (release v0.2.0)"
    assert by_id(findings, "release_tag.points_at_head").status is Status.PASS
    assert by_id(findings, "release_tag.annotated").message.startswith("0.2.0 is a lightweight")


def test_short_tag_names_the_release_with_patch_zero(git_repo: GitRepo) -> None:
    git_repo.write("service/app.py", "print('v23')\n")
    git_repo.commit("feat: chapter 23")
    git_repo.tag("v0.23")
    findings = check(git_repo.path, "v0.23.0")
    assert by_id(findings, "release_tag.exists").message == "tag v0.23 exists (release v0.23.0)"
    assert not_passing(findings) == {}


@pytest.mark.parametrize("committed", [False, True])
def test_audit_lines_appended_after_the_release_keep_the_tree_clean(git_repo: GitRepo,
                                                                     committed: bool) -> None:
    """A deploy, backup or incident appends to releases/deployments.jsonl after the tag: the next
    (strict) predeploy must not call tminus's own audit log an uncommitted change."""
    if committed:
        git_repo.write("releases/deployments.jsonl", '{"action": "deploy"}\n')
    released(git_repo)
    (git_repo.path / "releases").mkdir(exist_ok=True)
    with (git_repo.path / "releases" / "deployments.jsonl").open("a") as log:
        log.write('{"action": "incident"}\n')
    finding = by_id(check(git_repo.path), "release_tag.worktree_clean")
    assert finding.status is Status.PASS
    assert "the audit log" in finding.message
