"""The embedded demo, run as a user runs it: ``invoke demo`` in a subprocess from a temp dir."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest

from ops.checks import SECTIONS
from ops.dev.demo import checkout_root, checkpoint_bytes, demo_env, without_sections
from ops.runtime.envfile import read_env

pytestmark = pytest.mark.integration

INVOKE = str(Path(sys.executable).with_name("invoke"))


@dataclass
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    kept: Path


def run_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INVOKE, "--search-root", str(checkout_root()), "demo", *args],
                          cwd=cwd, capture_output=True, text=True, check=False, timeout=600)


def laid_into(stdout: str) -> Path:
    match = re.search(r"^Laying the demo service into (\S+) ", stdout, flags=re.MULTILINE)
    assert match, stdout
    return Path(match[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """One kept demo run for the whole module (it cuts two real releases)."""
    cwd = tmp_path_factory.mktemp("demo-run")
    done = run_demo(cwd, "--keep", "--output", "x.json")
    kept = laid_into(done.stdout)
    try:
        assert (cwd / "x.json").is_file(), done.stdout + done.stderr
        yield DemoRun(done.returncode, done.stdout, done.stderr,
                      json.loads((cwd / "x.json").read_text(encoding="utf-8")), kept)
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def test_report_is_for_v0_2_0_with_the_five_sections_in_order(demo: DemoRun) -> None:
    assert demo.report["release"] == "v0.2.0"
    assert [s["id"] for s in demo.report["sections"]] == [sid for sid, _ in SECTIONS]


def test_exit_code_follows_the_report_result(demo: DemoRun) -> None:
    assert demo.report["result"] in {"passed", "failed"}
    assert demo.returncode == (0 if demo.report["result"] == "passed" else 1), demo.stderr


def test_report_is_printed_and_the_kept_path_named(demo: DemoRun) -> None:
    assert "T-1 PRE-DEPLOYMENT CHECK — v0.2.0" in demo.stdout
    assert f"Demo repository kept at {demo.kept}" in demo.stdout


def test_no_check_crashed_inside_the_demo(demo: DemoRun) -> None:
    errors = [f["id"] for s in demo.report["sections"] for f in s["findings"]
              if f["id"].endswith(".error")]
    assert errors == []


def test_both_releases_are_annotated_tags_on_release_commits(demo: DemoRun) -> None:
    repo = git.Repo(demo.kept)
    tags = {t.name: t for t in repo.tags}
    assert set(tags) == {"v0.1.0", "v0.2.0"}
    assert all(t.tag is not None for t in tags.values())
    assert repo.head.commit == tags["v0.2.0"].commit
    assert str(tags["v0.2.0"].commit.message).startswith("chore(release): v0.2.0")


def test_newest_migration_arrives_only_in_the_second_release(demo: DemoRun) -> None:
    repo = git.Repo(demo.kept)
    first = {b.name for b in (repo.commit("v0.1.0").tree / "migrations/versions").blobs}
    second = {b.name for b in (repo.commit("v0.2.0").tree / "migrations/versions").blobs}
    assert second - first == {"0002_add_jobs.py"}


def test_a_checkpoint_changes_between_the_releases(demo: DemoRun) -> None:
    notes = git.Repo(demo.kept).git.tag("-l", "--format=%(contents)", "v0.2.0")
    assert re.search(r"`ranker\.safetensors`: `[0-9a-f]{12}` → `[0-9a-f]{12}` \(changed\)", notes)


def test_env_is_not_committed_and_none_of_its_secrets_reach_the_output(demo: DemoRun) -> None:
    repo = git.Repo(demo.kept)
    assert ".env" not in repo.git.ls_files().splitlines()
    assert (demo.kept / ".env").stat().st_mode & 0o077 == 0
    values = read_env(demo.kept / ".env")
    shown = demo.stdout + demo.stderr + json.dumps(demo.report)
    for key in ("SECRET_KEY", "JWT_SECRET", "DATABASE_URL"):
        assert values[key] not in shown


def test_without_keep_the_demo_directory_is_removed(tmp_path: Path) -> None:
    done = run_demo(tmp_path)
    assert done.returncode in {0, 1}, done.stderr
    assert not laid_into(done.stdout).exists()


def test_the_first_release_alone_is_the_repository_as_it_was_on_its_day(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--version", "v0.1.0", "--keep", "--output", "r.json")
    kept = laid_into(done.stdout)
    try:
        report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
        repo = git.Repo(kept)
        assert report["release"] == "v0.1.0"
        assert [t.name for t in repo.tags] == ["v0.1.0"]
        assert not (kept / "migrations" / "versions" / "0002_add_jobs.py").exists()
        assert read_env(kept / ".env")["APP_VERSION"] == "v0.1.0"
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def test_a_version_the_demo_does_not_have_exits_2_before_building(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--version", "v0.3.0")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: the demo has releases v0.1.0 and v0.2.0, not v0.3.0"
    assert "Laying" not in done.stdout


def test_generated_secrets_are_fresh_strong_and_never_the_example_values() -> None:
    example = {"SECRET_KEY": "your-secret-key-here",  # pragma: allowlist secret
               "STRIPE_API_KEY": "sk_test_your-key",  # pragma: allowlist secret
               "DATABASE_URL": "postgresql://app:change-me@db:5432/app",  # pragma: allowlist secret
               "LOG_LEVEL": "info"}
    first, second = demo_env(example, "v0.2.0"), demo_env(example, "v0.2.0")
    assert len(first["SECRET_KEY"]) >= 32
    assert first["SECRET_KEY"] != second["SECRET_KEY"]
    assert first["STRIPE_API_KEY"].startswith("sk_test_")
    assert "@127.0.0.1:5432/" in first["DATABASE_URL"]
    assert not set(first.values()) & {v for k, v in example.items() if k != "LOG_LEVEL"}


def test_checkpoints_are_a_few_kib_of_reproducible_bytes_that_change_per_generation() -> None:
    first = checkpoint_bytes("ranker.safetensors", 1)
    assert len(first) == 4096
    assert first == checkpoint_bytes("ranker.safetensors", 1)
    assert first != checkpoint_bytes("ranker.safetensors", 2)
    assert first != checkpoint_bytes("embedder.onnx", 1)


def test_the_first_release_changelog_drops_only_the_held_back_revision() -> None:
    text = "# Schema\n\n## 0002 — add jobs\n- jobs\n\n## 0001 — create users\n- users\n"
    assert without_sections(text, ["0002"]) == "# Schema\n\n## 0001 — create users\n- users\n"
