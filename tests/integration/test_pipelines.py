"""The pipelines on real git repositories made by the demo builder: what each step decides, the
error a failing step ends the pipeline with, and what ``--dry-run`` leaves untouched.
(``Pipeline`` itself, the chain of steps, is specified in tests/unit/test_pipeline_steps.py.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

import git
import pytest

from ops.dev.demo import build_demo, demo_settings
from ops.errors import ChecksFailed, ExitCode
from ops.pipelines import post_deployment, pre_deployment
from ops.versioning import parse_version

pytestmark = pytest.mark.integration

V020 = parse_version("v0.2.0")
V030 = parse_version("v0.3.0")


def commit_a_feature(root: Path) -> git.Repo:
    (root / "service" / "feature.py").write_text("FLAG = True\n", encoding="utf-8")
    repo = git.Repo(root)
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "feat: a flag")
    return repo


def audit_lines(root: Path) -> list[dict[str, object]]:
    log = root / "releases" / "deployments.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_pre_deployment_cuts_a_missing_release_then_stops_at_strict_checks_without_images(
        tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    repo = commit_a_feature(demo.root)
    out = io.StringIO()
    with pytest.raises(ChecksFailed) as caught:
        pre_deployment(demo.root, demo_settings(demo.root), V030, build=False, out=out)
    assert "v0.3.0" in {t.name for t in repo.tags}
    assert "artifacts.images" in caught.value.message
    text = out.getvalue()
    assert "[✓] create-release (when the tag is missing)" in text
    assert "[✓] build images" in text and "skipped (--no-build)" in text
    assert "[✗] predeploy --strict" in text
    assert "manifest and release notes" not in text


def test_pre_deployment_does_not_recut_an_existing_release(tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    repo = git.Repo(demo.root)
    tagged, head = repo.tags["v0.2.0"].commit.hexsha, repo.head.commit.hexsha
    out = io.StringIO()
    with pytest.raises(ChecksFailed) as caught:
        pre_deployment(demo.root, demo_settings(demo.root), V020, build=False, out=out)
    # the existing release goes on to the strict checks, which stop it only for its unbuilt images
    assert caught.value.message == "predeploy --strict for v0.2.0 failed: artifacts.images"
    assert caught.value.exit_code is ExitCode.FAILED
    assert "[✓] create-release (when the tag is missing) (" in out.getvalue()
    assert "tag v0.2.0 exists: create-release not needed" in out.getvalue()
    assert repo.tags["v0.2.0"].commit.hexsha == tagged
    assert repo.head.commit.hexsha == head


def test_pre_deployment_dry_run_cuts_nothing_and_says_what_it_would_do(tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    repo = commit_a_feature(demo.root)
    head = repo.head.commit.hexsha
    out = io.StringIO()
    pre_deployment(demo.root, demo_settings(demo.root), V030, build=False, dry_run=True, out=out)
    assert "v0.3.0" not in {t.name for t in repo.tags}
    assert repo.head.commit.hexsha == head
    assert not repo.is_dirty(untracked_files=True)
    text = out.getvalue()
    assert "dry run: would cut v0.3.0 on main" in text
    assert "[dry-run]" in text
    assert "[✓] predeploy --strict" in text and "skipped (--dry-run" in text
    assert text.rstrip().endswith("(dry run: nothing was changed)")


def test_post_deployment_records_a_failed_verification_in_the_audit_log(
        tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    # what runs is not what was released: a model file changed after the release was cut
    (demo.root / "checkpoints" / "ranker.safetensors").write_bytes(b"not the released weights")
    out = io.StringIO()
    with pytest.raises(ChecksFailed) as caught:
        post_deployment(demo.root, demo_settings(demo.root), "production", V020, out=out)
    assert caught.value.message == "predeploy for v0.2.0 failed: artifacts.models_match_release"
    assert "smoke-test" not in out.getvalue()  # it stopped at the verification, before the stack
    [line] = audit_lines(demo.root)
    assert (line["action"], line["result"], line["to_version"]) == \
        ("post-deployment", "failed", "v0.2.0")
    assert line["details"] == {"steps": ["predeploy (again, on what was deployed)"]}


def test_post_deployment_dry_run_writes_no_audit_line(tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    (demo.root / "checkpoints" / "ranker.safetensors").write_bytes(b"not the released weights")
    out = io.StringIO()
    with pytest.raises(ChecksFailed):
        post_deployment(demo.root, demo_settings(demo.root), "production", V020, dry_run=True,
                        out=out)
    assert audit_lines(demo.root) == []
    assert "[dry-run] append the post-deployment line (failed)" in out.getvalue()
