"""Bad input is one line on stderr, exit 2, nothing executed, and it takes bounded time.

Every test drives the real ``invoke`` program in a fresh git repository whose tasks.py is
``from ops.tasks import ns``, with a timeout: a hang is a failure, not a slow pass. The inputs are
the ones issue 11 found crashing or hanging the tool: a broken or hostile ``invoke.yaml`` (read by
Invoke itself before any task runs), environment names that are paths, oversized versions,
revisions that name no commit, crafted release files and backup metadata, labels that are not
UTF-8, and runbooks of 20 000+ headings and links.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

#: Every run here must end well within this; before the fixes some ran for minutes.
TIMEOUT_S = 60
SHA = "a" * 64


def invoke(cwd: Path, *args: str | bytes, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """The real program, its output decoded leniently (a test about bad bytes must not fail on
    decoding what the program printed)."""
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **(env or {})}
    environ.pop("TMINUS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True,
                          timeout=TIMEOUT_S, check=False, env=environ, text=True,
                          errors="backslashreplace")


def assert_usage_error(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, and the line says ``expected``."""
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write("tasks.py", "from ops.tasks import ns\n")
    git_repo.commit("tasks")
    return git_repo


# --- invoke.yaml ---------------------------------------------------------------------------------

BILLION_LAUGHS = "".join(
    [f'a: &a [{",".join(["x"] * 9)}]\n']
    + [f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi",
                                                                   strict=True)])

BROKEN_YAML = {
    "syntax error": ("ops: [\n", "invoke.yaml:2:1: expected the node content"),
    "tab indentation": ("ops:\n\trunbook: {}\n", "invoke.yaml:2:1: found character '\\t'"),
    "ops is a list": ("ops: [1, 2]\n", "invoke.yaml:1:6: ops must be a mapping of settings, "
                                       "found a list"),
    "ops is empty": ("ops:\n", "invoke.yaml:1:5: ops is empty"),
    "top-level list": ("- 1\n- 2\n", "invoke.yaml:1:1: expected settings (a mapping"),
    "top-level string": ('"hello"\n', "invoke.yaml:1:1: expected settings"),
    "python object tag": ("ops: !!python/object:os.system {}\n",
                          "invoke.yaml:1:6: unknown tag '!!python/object:os.system'"),
    "custom tag": ("ops: !vault secret\n", "invoke.yaml:1:6: unknown tag '!vault'"),
    "billion laughs": (BILLION_LAUGHS, "expands to more than 100 000 values"),
    "alias to itself": ("ops: &a [*a]\n", "alias *a refers to a value that contains it"),
    "100 000 brackets deep": ("ops: " + "[" * 100_000 + "]" * 100_000 + "\n",
                              "invoke.yaml:1:69: nested deeper than 64 levels"),
    "section of the wrong shape": ("ops:\n  environments: [production]\n",
                                   "invoke.yaml:2:17: ops.environments must be a mapping"),
    "mapping where a value goes": ("ops:\n  project_root: {a: 1}\n",
                                   "invoke.yaml:2:17: ops.project_root must be a string, "
                                   "found a mapping"),
    "invoke's own section of the wrong shape": ("run: [1]\n", "invoke.yaml:1:6: run must be a "
                                                              "mapping"),
    "a number as a key": ("1: 2\n", "invoke.yaml:1:1: key 1 is read as a number"),
    "a boolean as a key": ("ops:\n  environments:\n    on: {}\n",
                           "invoke.yaml:3:5: key on is read as a boolean"),
    "a control character": ("ops: \x07\n", "invoke.yaml:1:6: character #x0007 is not allowed"),
}


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(text, expected, id=case) for case, (text, expected) in BROKEN_YAML.items()])
def test_an_invoke_yaml_that_cannot_be_used_exits_2_naming_the_file_and_the_position(
        repo: GitRepo, text: str, expected: str) -> None:
    repo.write("invoke.yaml", text)
    assert_usage_error(invoke(repo.path, "config"), expected)


def test_an_invoke_yaml_that_is_not_utf8_names_the_line(repo: GitRepo) -> None:
    repo.write("invoke.yaml", b"ops:\n  runbook:\n    path: \xff\xfe.md\n")
    assert_usage_error(invoke(repo.path, "config"), "invoke.yaml:3: not UTF-8 text")


def test_a_broken_invoke_yaml_stops_the_run_before_any_task_executes(repo: GitRepo) -> None:
    repo.write("invoke.yaml", "ops: [1, 2]\n")
    done = invoke(repo.path, "backup", "--dry-run")
    assert_usage_error(done, "invoke.yaml:1:6")
    assert done.stdout == ""
    assert not (repo.path / "releases").exists()  # no audit line: nothing ran


def test_a_config_file_given_with_dash_f_is_read_within_the_same_bounds(repo: GitRepo) -> None:
    repo.write("other.yaml", BILLION_LAUGHS)
    assert_usage_error(invoke(repo.path, "-f", "other.yaml", "config"),
                       "other.yaml:", "expands to more than 100 000 values")


def test_a_fifo_in_place_of_invoke_yaml_is_refused_without_blocking(repo: GitRepo) -> None:
    os.mkfifo(repo.path / "invoke.yaml")
    assert_usage_error(invoke(repo.path, "config"), "invoke.yaml is not a regular file")


def test_an_invoke_yaml_over_one_mebibyte_is_refused_unread(repo: GitRepo) -> None:
    repo.write("invoke.yaml", "# padding\n" * 120_000)
    assert_usage_error(invoke(repo.path, "config"), "invoke.yaml is 1.1 MiB, over the 1.0 MiB")


def test_anchors_and_merge_keys_within_bounds_still_configure(repo: GitRepo) -> None:
    repo.write("invoke.yaml", "defaults: &backup {keep: 3}\n"
                              "ops:\n  backup:\n    <<: *backup\n")
    done = invoke(repo.path, "config")
    assert done.returncode == 0, done.stderr
    assert "  backup:\n    dir: backups\n    keep: 3\n" in done.stdout


def test_an_empty_invoke_yaml_is_no_settings_at_all(repo: GitRepo) -> None:
    repo.write("invoke.yaml", "# nothing yet\n")
    done = invoke(repo.path, "config")
    assert done.returncode == 0, done.stderr
    assert "keep: 7" in done.stdout


# --- environment names ---------------------------------------------------------------------------

ESCAPE = "../../escape"


@pytest.mark.parametrize("args", [
    ("backup", "--env", ESCAPE),
    ("backup", "--env", ESCAPE, "--dry-run"),
    ("backups", "--env", ESCAPE),
    ("restore", "latest", "--env", ESCAPE, "--yes"),
    ("deploy", ESCAPE, "v0.1.0", "--dry-run"),
    ("rollback", "v0.1.0", "--env", ESCAPE),
    ("scale", "app=2", "--env", ESCAPE),
    ("smoke-test", "--env", ESCAPE),
    ("predeploy", "--version", "v0.1.0", "--env", ESCAPE),
    ("config", "--env", ESCAPE),
], ids=lambda args: args[0] + ("-dry-run" if "--dry-run" in args else ""))
def test_an_environment_name_that_is_a_path_exits_2_and_writes_nothing_outside(
        repo: GitRepo, args: tuple[str, ...]) -> None:
    repo.write(".env", "DATABASE_URL=postgresql://app@127.0.0.1:1/app\n")
    done = invoke(repo.path, *args)
    assert_usage_error(done, f"'{ESCAPE}' is not an environment name")
    assert not (repo.path.parent / "escape").exists()
    assert not (repo.path / "backups").exists()


def test_an_environment_in_invoke_yaml_whose_name_is_a_path_exits_2(repo: GitRepo) -> None:
    repo.write("invoke.yaml", "ops:\n  environments:\n    ../x: {}\n")
    assert_usage_error(invoke(repo.path, "config"),
                       "ops.environments: '../x' is not an environment name")


# --- versions and revisions ----------------------------------------------------------------------


@pytest.mark.parametrize("task", ["predeploy", "create-release", "verify-release"])
def test_a_5000_character_pre_release_version_exits_2_before_any_file_is_named(
        repo: GitRepo, task: str) -> None:
    version = "v1.0.0-" + "a" * 5000
    args = ("predeploy", "--version", version) if task == "predeploy" else (task, version)
    assert_usage_error(invoke(repo.path, *args), "release version too long (5007 characters")


@pytest.fixture
def notes_repo(repo: GitRepo) -> GitRepo:
    """A release, a later commit, and tags that point at a tree and at a blob."""
    repo.write("f.txt", "x\n")
    repo.commit("feat: first")
    repo.tag("v0.1.0")
    repo.write("f.txt", "y\n")
    repo.commit("fix: second")
    repo.git("tag", "tree-tag", "HEAD^{tree}")
    repo.git("tag", "-a", "annotated-tree-tag", "-m", "a tree", "HEAD^{tree}")
    repo.git("tag", "blob-tag", repo.git("rev-parse", "HEAD:f.txt"))
    return repo


@pytest.mark.parametrize(("ref", "problem"), [
    ("HEAD:../../etc/passwd", "unknown revision 'HEAD:../../etc/passwd'"),
    ("@{-1}", "unknown revision '@{-1}'"),
    ("--output=/tmp/owned", "unknown revision '--output=/tmp/owned'"),
    ("tree-tag", "'tree-tag' names a tree, not a commit"),
    ("annotated-tree-tag", "tag 'annotated-tree-tag' points at a tree, not a commit"),
    ("blob-tag", "'blob-tag' names a blob, not a commit"),
    ("HEAD:f.txt", "'HEAD:f.txt' names a blob, not a commit"),
])
def test_release_notes_from_a_revision_that_is_no_commit_exits_2(
        notes_repo: GitRepo, ref: str, problem: str) -> None:
    assert_usage_error(invoke(notes_repo.path, "release-notes", "--from", ref), problem)


def test_release_notes_still_start_at_a_tag_of_a_commit(notes_repo: GitRepo) -> None:
    done = invoke(notes_repo.path, "release-notes", "--from", "v0.1.0", "--to", "HEAD")
    assert done.returncode == 0, done.stderr
    assert "second" in done.stdout


# --- release files -------------------------------------------------------------------------------


@pytest.fixture
def released(repo: GitRepo) -> GitRepo:
    """A repository with one checkpoint and the v0.2.0 tag; each test plants its release file."""
    repo.write("checkpoints/model.pt", b"weights")
    repo.commit("feat: model")
    repo.tag("v0.2.0")
    return repo


def artifacts_message(repo: GitRepo, finding_id: str) -> str:
    report = repo.path / "report.json"
    done = invoke(repo.path, "predeploy", "--version", "v0.2.0", "--only", "artifacts",
                  "--output", str(report))
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    findings = {f["id"]: f for s in data["sections"] for f in s["findings"]}
    return str(findings[finding_id]["message"])


def test_a_manifest_nested_100000_deep_is_a_finding_not_a_crash(released: GitRepo) -> None:
    released.write("releases/manifest_v0.2.0.json", "[" * 100_000 + "]" * 100_000)
    message = artifacts_message(released, "artifacts.manifest")
    assert message == "manifest_v0.2.0.json nests deeper than 64 levels"


def test_a_version_file_naming_300000_missing_files_lists_three_and_counts_the_rest(
        released: GitRepo) -> None:
    lines = [f"  gone_{n:06d}.pt: {SHA}" for n in range(300_000)]
    released.write("checkpoints/VERSION_v0.2.0.txt",
                   "v0.2.0\nCommit: abc1234\nDate: 2026-01-01T00:00:00Z\n\nCheckpoint Files:\n"
                   + "\n".join(lines) + "\n")
    message = artifacts_message(released, "artifacts.models_match_release")
    assert "missing gone_000000.pt, gone_000001.pt, gone_000002.pt and 299 997 more" in message
    assert len(message) < 500


def test_a_20_mb_file_name_in_a_version_file_is_shown_as_its_start_and_length(
        released: GitRepo) -> None:
    name = "n" * 20_000_000
    released.write("checkpoints/VERSION_v0.2.0.txt",
                   f"v0.2.0\nCommit: abc1234\nDate: 2026-01-01T00:00:00Z\n\nCheckpoint Files:\n"
                   f"  {name}: not-a-hash\n")
    message = artifacts_message(released, "artifacts.models_match_release")
    assert "VERSION_v0.2.0.txt:6: 'nnnn" in message
    assert "…(20 000 000 chars)' has no valid sha256" in message
    assert len(message) < 500


def test_a_50_mb_manifest_is_refused_unread_as_a_finding(released: GitRepo) -> None:
    released.write("releases/manifest_v0.2.0.json",
                   '{"version": "v0.2.0", "name": "' + "n" * 50_000_000 + '"}')
    message = artifacts_message(released, "artifacts.manifest")
    assert message == "manifest_v0.2.0.json is 47.7 MiB, over the 32.0 MiB limit"


# --- backups -------------------------------------------------------------------------------------

GOOD_META: dict[str, object] = {"format": 1, "id": "20260101T000000Z_v0.1.0", "env": "production",
             "label": None, "version": "v0.1.0", "created_at": "2026-01-01T00:00:00Z",
             "postgres": None, "redis": {"keys": 1, "file": "redis.tmdump"},
             "files": {"redis.tmdump": {"size": 3, "sha256": SHA}}, "duration_s": 0.5}

CRAFTED_META: dict[str, dict[str, object]] = {
    "a listed file outside the backup": {"files": {"../../../etc/passwd": {"size": 1,
                                                                         "sha256": SHA}}},
    "a size that is text": {"files": {"redis.tmdump": {"size": "3 bytes", "sha256": SHA}}},
    "files as a list": {"files": ["redis.tmdump"]},
    "a key count that is text": {"redis": {"keys": "many"}},
    "row counts as a list": {"postgres": {"row_counts": [1, 2]}},
    "a negative row count": {"postgres": {"row_counts": {"users": -1}}},
    "a label that is an object": {"label": {"text": "x"}},
    "a duration that is text": {"duration_s": "fast"},
}


def plant_backup(repo: GitRepo, meta: dict[str, object] | str) -> Path:
    backup = repo.path / "backups" / "production" / "20260101T000000Z_v0.1.0"
    backup.mkdir(parents=True)
    (backup / "redis.tmdump").write_bytes(b"abc")
    text = meta if isinstance(meta, str) else json.dumps(meta)
    (backup / "backup.json").write_text(text, encoding="utf-8")
    return backup


def test_a_well_formed_backup_is_listed(repo: GitRepo) -> None:
    plant_backup(repo, GOOD_META)
    done = invoke(repo.path, "backups")
    assert done.returncode == 0, done.stderr
    assert "20260101T000000Z_v0.1.0" in done.stdout


@pytest.mark.parametrize("change", list(CRAFTED_META.values()), ids=list(CRAFTED_META))
def test_a_crafted_backup_json_is_not_a_backup_and_crashes_nothing(
        repo: GitRepo, change: dict[str, object]) -> None:
    plant_backup(repo, {**GOOD_META, **change})
    done = invoke(repo.path, "backups")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no backups for production\n"


def test_a_backup_json_nested_100000_deep_is_not_a_backup(repo: GitRepo) -> None:
    plant_backup(repo, '{"format": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    done = invoke(repo.path, "backups")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no backups for production\n"


def test_restoring_a_crafted_backup_is_a_usage_error_naming_it(repo: GitRepo) -> None:
    repo.write(".env", "REDIS_URL=redis://127.0.0.1:1/0\n")
    plant_backup(repo, {**GOOD_META, **CRAFTED_META["a listed file outside the backup"]})
    done = invoke(repo.path, "restore", "20260101T000000Z_v0.1.0", "--yes", "--dry-run")
    assert_usage_error(done, "no backup '20260101T000000Z_v0.1.0'")


@pytest.mark.parametrize(("label", "problem"), [
    (b"caf\xe9 latin-1", "--label is not UTF-8 text"),
    (b"red \x1b[31malert", "--label holds control characters"),
    (b"x" * 201, "--label is 201 characters, at most 200"),
])
def test_a_backup_label_that_is_not_printable_utf8_exits_2_before_anything_runs(
        repo: GitRepo, label: bytes, problem: str) -> None:
    repo.write(".env", "DATABASE_URL=postgresql://app@127.0.0.1:1/app\n")
    done = invoke(repo.path, b"backup", b"--dry-run", b"--label", label)
    assert_usage_error(done, problem)
    assert not (repo.path / "releases").exists()  # not even the dry-run's audit line


# --- the runbook ---------------------------------------------------------------------------------

RUNBOOK_HEAD = ("# Runbook\n\n## Health checks\n\ncurl /health\n\n"
                "## Rollback\n\ninvoke rollback\n\n"
                "## Scaling\n\ninvoke scale\n\n## Monitoring\n\ngrafana\n\n"
                "## Emergency contacts\n\n- Alice Example, +1 555 0100\n\n")


def test_a_runbook_of_20000_headings_and_20000_anchor_links_is_reviewed_in_bounded_time(
        repo: GitRepo) -> None:
    """Before the review was linear this took minutes (every anchor link re-parsed its target,
    every heading searched all later ones); ``TIMEOUT_S`` is the bound, not a benchmark."""
    repo.write("docs/OPS.md", "".join(f"## Topic {n}\n\nbody\n\n" for n in range(2000)))
    steps = "".join(f"### Step {n}\n\n- [up](#health-checks) [topic](docs/OPS.md#topic-{n % 2000})"
                    "\n\n" for n in range(20_000))
    repo.write("RUNBOOK.md", RUNBOOK_HEAD + steps)
    repo.commit("runbook")
    done = invoke(repo.path, "predeploy", "--version", "v0.1.0", "--only", "runbook")
    assert "Traceback" not in done.stderr
    assert "RUNBOOK.md (20006 headings)  (runbook.exists)" in done.stdout
    assert "40000 local link(s) resolve  (runbook.links)" in done.stdout
