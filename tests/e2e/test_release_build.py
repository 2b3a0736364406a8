"""build and the image checks against the real Docker engine, with a tiny locally made image.

No registry is reachable, so the image is ``FROM scratch`` plus the static busybox of the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.checks import CheckContext
from ops.checks.artifacts import run as run_artifacts
from ops.config import Settings
from ops.errors import BuildFailed, UsageError
from ops.release.build import build_images
from ops.release.create import create_release
from ops.release.verify import verify_release
from ops.report import Finding, Status
from ops.versioning import parse_version
from tests.conftest import GitRepo
from tests.e2e.conftest import lay_out_busybox_app

pytestmark = pytest.mark.e2e

@pytest.fixture
def name() -> str:
    return f"tminus-e2e-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def repo(git_repo: GitRepo, name: str, docker_client: Any) -> Iterator[GitRepo]:
    lay_out_busybox_app(git_repo, name, more_services='  cache:\n    image: "redis:7"\n')
    git_repo.write("checkpoints/model.pt", b"weights")
    git_repo.commit("feat: app image")
    yield git_repo
    for image in docker_client.images.list(name=f"{name}/app"):
        docker_client.images.remove(image.id, force=True)


def cut_and_build(repo: GitRepo, version: str = "v0.2.0", **kw: Any) -> None:
    create_release(repo.path, Settings(), parse_version(version))
    build_images(repo.path, Settings(), parse_version(version), **kw)


def findings(repo: GitRepo, version: str = "v0.2.0") -> dict[str, Finding]:
    return {f.id: f for f in verify_release(repo.path, Settings(), parse_version(version))}


def test_build_tags_the_image_with_the_version_and_labels_it(repo: GitRepo, name: str,
                                                             docker_client: Any) -> None:
    cut_and_build(repo)
    labels = docker_client.images.get(f"{name}/app:v0.2.0").labels
    assert labels["tminus.version"] == "v0.2.0"
    assert labels["tminus.service"] == "app"


def test_build_args_from_the_compose_file_reach_the_build(repo: GitRepo, name: str,
                                                          docker_client: Any) -> None:
    cut_and_build(repo)
    assert docker_client.images.get(f"{name}/app:v0.2.0").labels["greeting"] == "hello"


def test_command_line_build_arg_overrides_the_compose_file(repo: GitRepo, name: str,
                                                           docker_client: Any) -> None:
    cut_and_build(repo, build_args={"GREETING": "bonjour"})
    assert docker_client.images.get(f"{name}/app:v0.2.0").labels["greeting"] == "bonjour"


def test_build_records_the_image_id_and_the_checksum_still_verifies(
        repo: GitRepo, name: str, docker_client: Any) -> None:
    cut_and_build(repo)
    manifest = json.loads((repo.path / "releases/manifest_v0.2.0.json").read_text())
    assert manifest["docker_images"]["app"] == {
        "image": f"{name}/app:v0.2.0", "id": docker_client.images.get(f"{name}/app:v0.2.0").id,
        "repo_digest": None}
    assert "cache" not in manifest["docker_images"]
    done = subprocess.run(["sha256sum", "-c", "manifest_v0.2.0.sha256"],
                          cwd=repo.path / "releases", capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_built_release_verifies_every_image(repo: GitRepo) -> None:
    cut_and_build(repo)
    finding = findings(repo)["artifacts.images"]
    assert finding.status is Status.PASS
    assert finding.message.startswith("1 image(s) present: app sha256:")


def test_recorded_image_ids_are_not_drift_from_the_tagged_manifest(repo: GitRepo) -> None:
    cut_and_build(repo)
    assert findings(repo)["artifacts.manifest_integrity"].status is Status.PASS


def test_image_rebuilt_under_the_same_tag_fails_verification_naming_the_service(
        repo: GitRepo, name: str, docker_client: Any) -> None:
    cut_and_build(repo)
    docker_client.images.build(path=str(repo.path / "app"), tag=f"{name}/app:v0.2.0",
                               buildargs={"GREETING": "tampered"}, rm=True)
    finding = findings(repo)["artifacts.images"]
    assert finding.status is Status.FAIL
    assert finding.message.startswith(f"app: {name}/app:v0.2.0 is sha256:")
    assert "the manifest recorded sha256:" in finding.message


def test_unbuilt_release_image_fails_the_predeploy_image_check(repo: GitRepo, name: str) -> None:
    create_release(repo.path, Settings(), parse_version("v0.2.0"))
    ctx = CheckContext(root=repo.path, settings=Settings(), version=parse_version("v0.2.0"))
    finding = {f.id: f for f in run_artifacts(ctx)}["artifacts.images"]
    assert finding.status is Status.FAIL
    assert finding.message == f"app: {name}/app:v0.2.0 is not in the engine"
    assert finding.hint == "`invoke build v0.2.0` builds the images and records their ids"


def test_image_check_is_skipped_with_the_reason_when_no_engine_answers(
        repo: GitRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cut_and_build(repo)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    finding = findings(repo)["artifacts.images"]
    assert finding.status is Status.SKIP
    assert finding.message.startswith("image ids not checked: no Docker engine answers")


def test_failing_dockerfile_step_fails_the_build_naming_the_service(repo: GitRepo) -> None:
    repo.write("app/Dockerfile", "FROM scratch\nCOPY missing-file /x\n")
    repo.commit("fix: broken image")
    create_release(repo.path, Settings(), parse_version("v0.2.0"))
    with pytest.raises(BuildFailed, match=r"^app: .*missing-file"):
        build_images(repo.path, Settings(), parse_version("v0.2.0"))


def test_build_refuses_to_record_ids_in_an_edited_manifest(repo: GitRepo, name: str,
                                                           docker_client: Any) -> None:
    create_release(repo.path, Settings(), parse_version("v0.2.0"))
    path = repo.path / "releases/manifest_v0.2.0.json"
    path.write_text(path.read_text().replace('"main"', '"evil"'))
    with pytest.raises(UsageError, match="refusing to record image ids"):
        build_images(repo.path, Settings(), parse_version("v0.2.0"))
    assert docker_client.images.list(name=f"{name}/app") == []


def test_build_task_streams_engine_progress_and_reports_the_id(repo: GitRepo) -> None:
    create_release(repo.path, Settings(), parse_version("v0.2.0"))
    done = subprocess.run([sys.executable, "-m", "invoke", "build", "v0.2.0"], cwd=repo.path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Step 1/" in done.stdout
    assert "Recorded image ids in manifest_v0.2.0.json" in done.stdout


def test_build_dry_run_prints_the_docker_build_command_and_builds_nothing(
        repo: GitRepo, name: str, docker_client: Any) -> None:
    done = subprocess.run([sys.executable, "-m", "invoke", "build", "v0.2.0", "--dry-run"],
                          cwd=repo.path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"[dry-run] docker build --tag {name}/app:v0.2.0" in done.stdout
    assert docker_client.images.list(name=f"{name}/app") == []
