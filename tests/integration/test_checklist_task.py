"""The checklist on a real release: the demo repository, predeploy run for real, sign-offs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ops.checklist import make_checklist
from ops.dev.demo import build_demo, demo_settings
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

V020 = parse_version("v0.2.0")

INVOKE = str(Path(sys.executable).with_name("invoke"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo") / "repo").root


@pytest.fixture
def repo(built: Path, tmp_path: Path) -> Path:
    """A private copy of the demo repository (releases v0.1.0 and v0.2.0, .env written)."""
    target = tmp_path / "repo"
    shutil.copytree(built, target, symlinks=True)
    return target


def move_head_past_the_tag(root: Path) -> None:
    (root / "NOTES.txt").write_text("after the release\n", encoding="utf-8")
    subprocess.run(["git", "add", "NOTES.txt"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "docs: a commit after the tag"], cwd=root, check=True)


def invoke(root: Path, *args: str, task: str = "checklist") -> subprocess.CompletedProcess[str]:
    return subprocess.run([INVOKE, task, *args], cwd=root, capture_output=True, text=True,
                          check=False, timeout=300)


def test_checklist_is_written_under_tminus_with_proven_items_ticked(repo: Path) -> None:
    result = make_checklist(repo, demo_settings(repo), V020)
    assert result.path == repo / ".tminus" / "checklists" / "CHECKLIST_v0.2.0.md"
    text = result.path.read_text(encoding="utf-8")
    assert "- [x] Release tag exists (release_tag.exists)" in text
    assert "- [x] Checkpoints match the release's VERSION file (artifacts.models_match_release)" \
        in text


def test_sign_off_is_recorded_in_the_release_record_and_shown(repo: Path) -> None:
    result = make_checklist(repo, demo_settings(repo), V020, engineer="Jiwoo Park")
    failing = [f.id for f in result.report.findings() if f.status.value == "fail"]
    assert result.report.ok, f"the demo release should pass predeploy; failing: {failing}"
    record = json.loads((repo / "releases" / "signoff_v0.2.0.json").read_text(encoding="utf-8"))
    assert [(s["role"], s["name"], s["predeploy_result"], s["env"])
            for s in record["signoffs"]] == [("engineer", "Jiwoo Park", "passed", "production")]
    assert "| engineer | Jiwoo Park |" in result.path.read_text(encoding="utf-8")


def test_sign_off_is_refused_while_predeploy_fails_but_the_checklist_is_written(
        repo: Path) -> None:
    move_head_past_the_tag(repo)
    result = make_checklist(repo, demo_settings(repo), V020, engineer="Jiwoo Park")
    assert not result.signed
    assert not (repo / "releases" / "signoff_v0.2.0.json").exists()
    text = result.path.read_text(encoding="utf-8")
    assert "- [ ] ✗ Tag points at the commit being deployed (release_tag.points_at_head)" in text
    assert "| engineer | _not signed_ | | |" in text


def test_task_exits_1_with_one_line_when_predeploy_fails(repo: Path) -> None:
    move_head_past_the_tag(repo)
    done = invoke(repo, "--version", "v0.2.0", "--sign-engineer", "Jiwoo Park")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: predeploy failed for v0.2.0: ")
    assert "(no sign-off recorded)" in line
    assert (repo / ".tminus" / "checklists" / "CHECKLIST_v0.2.0.md").is_file()


def test_task_refuses_a_reviewer_who_is_the_engineer_with_exit_2(repo: Path) -> None:
    done = invoke(repo, "--version", "v0.2.0", "--sign-engineer", "Jiwoo Park",
                  "--sign-reviewer", "Jiwoo Park")
    assert done.returncode == 2
    assert done.stderr.startswith("error: Jiwoo Park cannot review their own release")
    assert not (repo / "releases" / "signoff_v0.2.0.json").exists()


def test_task_rejects_a_malformed_version_before_running_any_check(repo: Path) -> None:
    done = invoke(repo, "--version", "v0.2")
    assert done.returncode == 2
    assert done.stderr.startswith("error: malformed release version v0.2")
    assert not list(repo.rglob("CHECKLIST_*.md"))


def test_output_writes_the_checklist_where_asked_relative_to_the_current_directory(
        repo: Path) -> None:
    (repo / "review").mkdir()
    done = invoke(repo / "review", "--version", "v0.2.0", "--output", "T-1.md")
    assert done.returncode == 0, done.stderr
    assert "- [x] Release tag exists (release_tag.exists)" in \
        (repo / "review" / "T-1.md").read_text(encoding="utf-8")
    assert not (repo / ".tminus" / "checklists").exists()


def test_the_next_predeploy_finds_the_tree_clean_in_a_repository_that_does_not_ignore_it(
        git_repo: GitRepo) -> None:
    """A service repository that installs tminus has no CHECKLIST_*.md line in .gitignore."""
    git_repo.write("tasks.py", "from ops.tasks import ns\n")
    git_repo.commit("feat: the service")
    git_repo.tag("v0.1.0")
    invoke(git_repo.path, "--version", "v0.1.0")
    assert git_repo.git("status", "--porcelain", "--untracked-files=all") == ""
    done = invoke(git_repo.path, "--version", "v0.1.0", "--only", "release_tag", "--format",
                  "json", task="predeploy")
    [clean] = [f for s in json.loads(done.stdout)["sections"] for f in s["findings"]
               if f["id"] == "release_tag.worktree_clean"]
    assert clean["status"] == "pass", clean["message"]
