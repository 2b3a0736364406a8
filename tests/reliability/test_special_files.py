"""``.env``, ``.env.example`` and ``RUNBOOK.md`` that are not what they claim to be.

Each is planted as a real FIFO, a symlink to ``/dev/zero``, a symlink to a file outside the
repository (holding a canary) and a 5 MiB file. Each is a finding naming the problem — never
read, never a hang (a FIFO with no writer blocks a plain ``open`` forever), never memory
exhaustion, never the outside file's content in a message. Every test is bounded by a timeout,
so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from ops.checks import CheckContext
from ops.checks import runbook as runbook_check
from ops.checks import secrets as secrets_check
from ops.config import Settings
from ops.report import Finding, Status
from ops.runtime.envfile import read_env, service_url
from ops.runtime.files import MAX_TEXT_BYTES, UnsafeFile, read_bytes_safely, read_text_safely
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

OUTSIDE_CANARY = "KcOutsideFile7Zq"
RUNBOOK = ("# Runbook\n## Health\nok\n## Rollback\nok\n## Scaling\nok\n## Monitoring\nok\n"
           "## Emergency contacts\n- Alex Kim +1-555-0100\n")
EXAMPLE = "DATABASE_URL=postgresql://app:change-me@db:5432/app\nLOG_LEVEL=info\n"


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write(".gitignore", ".env\n.tminus/\n")
    git_repo.write(".env.example", EXAMPLE)
    git_repo.write("RUNBOOK.md", RUNBOOK)
    git_repo.commit("feat: service")
    git_repo.write(".env", "DATABASE_URL=postgresql://app:s3cret-pw@db:5432/app\n"
                           "LOG_LEVEL=info\n").chmod(0o600)
    return git_repo


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "elsewhere" / "id_rsa"
    target.parent.mkdir()
    target.write_text(f"{OUTSIDE_CANARY}=1\n# {OUTSIDE_CANARY}\n", encoding="utf-8")
    return target


def plant_fifo(path: Path, _outside: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def plant_dev_zero(path: Path, _outside: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


def plant_outside_link(path: Path, outside: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(outside)


def plant_5_mib(path: Path, _outside: Path) -> None:
    path.write_bytes(b"# padding\n" * (5 * 2**20 // 10))


Plant = Callable[[Path, Path], None]
PLANTS: list[tuple[str, Plant, str]] = [
    ("fifo", plant_fifo, "is a FIFO (named pipe), not a regular file"),
    ("dev-zero", plant_dev_zero, "is a symlink pointing outside the repository"),
    ("outside-link", plant_outside_link, "is a symlink pointing outside the repository"),
    ("5-mib", plant_5_mib, "is 5.0 MiB, over the 1.0 MiB limit for a text file"),
]
IDS = [name for name, _, _ in PLANTS]


def context(repo: GitRepo) -> CheckContext:
    return CheckContext(root=repo.path, settings=Settings(), version=parse_version("v0.2.0"))


def findings(run: Callable[[CheckContext], Iterable[Finding]],
             repo: GitRepo) -> dict[str, Finding]:
    found: dict[str, Finding] = {}
    for finding in run(context(repo)):
        found.setdefault(finding.id, finding)
    return found


def shown(found: dict[str, Finding]) -> str:
    return "\n".join(f"{f.message} {f.hint or ''} {f.detail or ''}" for f in found.values())


# --- .env ----------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("plant", "problem"), [(p, m) for _, p, m in PLANTS], ids=IDS)
def test_a_special_env_file_fails_env_file_naming_the_problem(
        repo: GitRepo, outside: Path, plant: Plant, problem: str) -> None:
    plant(repo.path / ".env", outside)
    found = findings(secrets_check.run, repo)
    assert found["secrets.env_file"].status is Status.FAIL
    assert found["secrets.env_file"].message == f".env {problem}"
    assert found["secrets.required"].status is Status.SKIP
    assert OUTSIDE_CANARY not in shown(found)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("plant", "problem"), [(p, m) for _, p, m in PLANTS], ids=IDS)
def test_a_special_env_example_fails_required_naming_the_problem(
        repo: GitRepo, outside: Path, plant: Plant, problem: str) -> None:
    plant(repo.path / ".env.example", outside)
    found = findings(secrets_check.run, repo)
    assert found["secrets.required"].status is Status.FAIL
    assert found["secrets.required"].message == \
        f".env.example {problem}: no template to compare against"
    assert OUTSIDE_CANARY not in shown(found)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("plant", [p for _, p, _ in PLANTS], ids=IDS)
def test_a_special_env_file_is_refused_when_a_url_is_looked_up_in_it(
        repo: GitRepo, outside: Path, plant: Plant) -> None:
    plant(repo.path / ".env", outside)
    with pytest.raises(UnsafeFile) as refused:
        service_url(repo.path, Path(".env"), None, "DATABASE_URL")
    assert OUTSIDE_CANARY not in refused.value.one_line()


# --- RUNBOOK.md ----------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("plant", "problem"), [(p, m) for _, p, m in PLANTS], ids=IDS)
def test_a_special_runbook_fails_exists_naming_the_problem(
        repo: GitRepo, outside: Path, plant: Plant, problem: str) -> None:
    if plant is plant_5_mib:  # a runbook may be larger than a .env: 8 MiB
        problem = "is 9.0 MiB, over the 8.0 MiB limit for a text file"
        (repo.path / "RUNBOOK.md").write_bytes(b"# padding\n" * (9 * 2**20 // 10))
    else:
        plant(repo.path / "RUNBOOK.md", outside)
    found = findings(runbook_check.run, repo)
    assert found["runbook.exists"].status is Status.FAIL
    assert found["runbook.exists"].message == f"RUNBOOK.md {problem}"
    assert found["runbook.section.rollback"].status is Status.SKIP
    assert OUTSIDE_CANARY not in shown(found)


# --- the real program ----------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_predeploy_with_a_fifo_env_and_a_dev_zero_runbook_finishes_with_findings(
        repo: GitRepo) -> None:
    repo.write("tasks.py", "from ops.tasks import ns\n")
    plant_fifo(repo.path / ".env", repo.path)
    plant_dev_zero(repo.path / "RUNBOOK.md", repo.path)
    done = subprocess.run([sys.executable, "-m", "invoke", "predeploy", "--version", "v0.2.0",
                           "--format", "json", "--only", "secrets,runbook"],
                          cwd=repo.path, capture_output=True, text=True, timeout=15, check=False)
    assert done.returncode == 1, done.stderr
    assert ".env is a FIFO (named pipe), not a regular file" in done.stdout
    assert "RUNBOOK.md is a symlink pointing outside the repository" in done.stdout


# --- the reader itself ---------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_symlink_to_a_file_inside_the_repository_is_read(tmp_path: Path) -> None:
    (tmp_path / "real.env").write_text("A=1\n", encoding="utf-8")
    (tmp_path / ".env").symlink_to("real.env")
    assert read_text_safely(tmp_path, tmp_path / ".env") == "A=1\n"


@pytest.mark.timeout(20)
def test_a_configured_path_outside_the_repository_is_read_when_it_is_a_regular_file(
        tmp_path: Path, outside: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    assert read_env(outside, repository) == {OUTSIDE_CANARY: "1"}


@pytest.mark.timeout(20)
def test_a_directory_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "RUNBOOK.md").mkdir()
    with pytest.raises(UnsafeFile, match=r"^RUNBOOK\.md is a directory, not a regular file$"):
        read_bytes_safely(tmp_path, tmp_path / "RUNBOOK.md")


@pytest.mark.timeout(20)
def test_a_dangling_symlink_is_refused_but_is_not_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / ".env").symlink_to("gone.env")
    with pytest.raises(UnsafeFile) as refused:
        read_bytes_safely(tmp_path, tmp_path / ".env")
    assert refused.value.problem == "is a symlink to a file that does not exist"
    assert not refused.value.missing


@pytest.mark.timeout(20)
def test_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(UnsafeFile, match="symlink loop"):
        read_bytes_safely(tmp_path, tmp_path / "a")


@pytest.mark.timeout(20)
def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"x" * MAX_TEXT_BYTES)
    assert len(read_bytes_safely(tmp_path, tmp_path / ".env")) == MAX_TEXT_BYTES
