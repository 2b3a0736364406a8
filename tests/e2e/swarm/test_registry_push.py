"""`invoke build VERSION --push` against a real registry (TLS from a CA the test made, htpasswd
auth), the content digests it records, and the tamper gate that compares them with the registry.

The image is a tiny ``FROM scratch`` one with the host's static busybox, so these specs need no
base image and take seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.checks import CheckContext, artifacts
from ops.config import EnvironmentSettings, Settings
from ops.errors import UsageError
from ops.release import verify
from ops.release.build import build_images
from ops.release.create import create_release
from ops.release.verify import verify_release
from ops.report import Finding, Status
from ops.runtime import registry as reg
from ops.versioning import parse_version
from tests.conftest import GitRepo
from tests.e2e.conftest import BUSYBOX, BUSYBOX_DOCKERFILE, lay_out_busybox_app
from tests.e2e.swarm.harness import TestRegistry, host_engine, run

V020 = parse_version("v0.2.0")

pytestmark = pytest.mark.e2e

INVOKE = str(Path(sys.executable).with_name("invoke"))


@pytest.fixture
def name() -> str:
    return f"tminus-e2e-reg-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def repo(git_repo: GitRepo, name: str, registry: TestRegistry,
         docker_client: Any) -> Iterator[GitRepo]:
    lay_out_busybox_app(git_repo, name)
    git_repo.write("invoke.yaml", f"ops:\n  environments:\n    production:\n"
                                  f"      registry: {registry.address}/team\n")
    git_repo.write(".gitignore", ".docker/\n")
    git_repo.commit("feat: app image")
    with host_engine():
        yield git_repo
    ids = {image.id for repository in (f"{name}/app", f"{registry.address}/team/{name}/app")
           for image in docker_client.images.list(name=repository)}
    for image_id in ids:
        docker_client.images.remove(image_id, force=True)


def settings(registry: TestRegistry) -> Settings:
    return Settings(environments={"production": EnvironmentSettings(
        registry=f"{registry.address}/team")})


def creds(registry: TestRegistry) -> dict[str, str]:
    return {reg.USERNAME_VARIABLE: registry.username, reg.PASSWORD_VARIABLE: registry.password}


def logged_in(registry: TestRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's credentials in this process's environment, as an operator sets them."""
    for key, value in creds(registry).items():
        monkeypatch.setenv(key, value)


def cut_build_push(repo: GitRepo, registry: TestRegistry, version: str = "v0.2.0") -> None:
    release = parse_version(version)
    create_release(repo.path, settings(registry), release)
    build_images(repo.path, settings(registry), release, push=True, environ=creds(registry))


def recorded(repo: GitRepo, version: str = "v0.2.0") -> dict[str, Any]:
    manifest = json.loads((repo.path / f"releases/manifest_{version}.json").read_text())
    images: dict[str, Any] = manifest["docker_images"]
    return images


def gate(repo: GitRepo, registry: TestRegistry, monkeypatch: pytest.MonkeyPatch,
         version: str = "v0.2.0") -> dict[str, Finding]:
    logged_in(registry, monkeypatch)
    return {f.id: f for f in verify_release(repo.path, settings(registry),
                                            parse_version(version))}


def test_push_records_the_digest_the_registry_serves_under_the_registry_name(
        repo: GitRepo, name: str, registry: TestRegistry, docker_client: Any) -> None:
    cut_build_push(repo, registry)
    pinned = recorded(repo)["app"]["repo_digest"]
    assert pinned.startswith(f"{registry.address}/team/{name}/app@sha256:")
    served = reg.served_digest(docker_client, f"{registry.address}/team/{name}/app:v0.2.0",
                               auth={"username": registry.username,
                                     "password": registry.password})
    assert served == reg.digest_of(pinned)


def test_pushed_manifest_still_verifies_with_sha256sum(repo: GitRepo,
                                                       registry: TestRegistry) -> None:
    cut_build_push(repo, registry)
    done = subprocess.run(["sha256sum", "-c", "manifest_v0.2.0.sha256"],
                          cwd=repo.path / "releases", capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_push_task_never_shows_or_records_the_password(repo: GitRepo,
                                                       registry: TestRegistry) -> None:
    create_release(repo.path, settings(registry), V020)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")},
           **creds(registry), "DOCKER_CONFIG": str(repo.path / ".docker")}
    done = subprocess.run([INVOKE, "build", "v0.2.0", "--push"], cwd=repo.path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pushed as" in done.stdout
    manifest = (repo.path / "releases/manifest_v0.2.0.json").read_text()
    assert registry.password not in done.stdout + done.stderr + manifest


def test_push_uses_docker_login_when_no_credentials_are_in_the_environment(
        repo: GitRepo, registry: TestRegistry, tmp_path: Path) -> None:
    config = tmp_path / "docker-config"
    registry.login(config)
    create_release(repo.path, settings(registry), V020)
    os.environ["DOCKER_CONFIG"] = str(config)  # the SDK reads the login from here
    try:
        build_images(repo.path, settings(registry), V020, push=True, environ={})
    finally:
        del os.environ["DOCKER_CONFIG"]
    assert recorded(repo)["app"]["repo_digest"].startswith(registry.address)


def test_push_without_credentials_fails_and_says_where_they_come_from(
        repo: GitRepo, registry: TestRegistry, tmp_path: Path) -> None:
    create_release(repo.path, settings(registry), V020)
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("INVOKE_", "TMINUS_REGISTRY_"))},
           "DOCKER_CONFIG": str(tmp_path / "empty-config")}
    done = subprocess.run([INVOKE, "build", "v0.2.0", "--push"], cwd=repo.path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "docker login" in done.stdout + done.stderr
    assert recorded(repo)["app"]["repo_digest"] is None


def test_push_without_a_configured_registry_is_refused_before_building(repo: GitRepo) -> None:
    create_release(repo.path, Settings(), V020)
    with pytest.raises(UsageError, match="no registry configured for production"):
        build_images(repo.path, Settings(), V020, push=True, environ={})


def test_tamper_gate_passes_when_the_registry_serves_the_recorded_digests(
        repo: GitRepo, registry: TestRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    cut_build_push(repo, registry)
    finding = gate(repo, registry, monkeypatch)["artifacts.registry_digests"]
    assert finding.status is Status.PASS, finding.message


def test_tag_pushed_over_in_the_registry_fails_the_tamper_gate(
        repo: GitRepo, name: str, registry: TestRegistry, docker_client: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cut_build_push(repo, registry)
    target = f"{registry.address}/team/{name}/app:v0.2.0"
    other = repo.path / "other"
    other.mkdir()
    shutil.copy(BUSYBOX, other / "busybox")
    (other / "Dockerfile").write_text(BUSYBOX_DOCKERFILE.replace("unset", "tampered"))
    run("docker", "build", "-q", "--build-arg", "GREETING=tampered", "-t", target, str(other))
    reg.push(docker_client, target, target, auth={"username": registry.username,
                                                  "password": registry.password})
    finding = gate(repo, registry, monkeypatch)["artifacts.registry_digests"]
    assert finding.status is Status.FAIL
    assert "v0.2.0 now names sha256:" in finding.message


def on_swarm(registry: TestRegistry) -> Settings:
    return Settings(environments={"production": EnvironmentSettings(
        backend="swarm", registry=f"{registry.address}/team")})


def drop_local_images(name: str, registry: TestRegistry, docker_client: Any) -> None:
    """The operator's engine holds none of the release's images (a manager that never ran
    them): only the registry has them."""
    for repository in (f"{name}/app", f"{registry.address}/team/{name}/app"):
        for image in docker_client.images.list(name=repository):
            docker_client.images.remove(image.id, force=True)


def images_finding(repo: GitRepo, registry: TestRegistry) -> Finding:
    ctx = CheckContext(root=repo.path, settings=on_swarm(registry), version=V020)
    return artifacts.images(ctx, verify.load_record(repo.path, ctx.settings, V020))


def test_on_a_swarm_predeploy_finds_the_images_in_the_registry_not_in_the_local_engine(
        repo: GitRepo, name: str, registry: TestRegistry, docker_client: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cut_build_push(repo, registry)
    drop_local_images(name, registry, docker_client)
    logged_in(registry, monkeypatch)
    finding = images_finding(repo, registry)
    assert finding.status is Status.PASS, finding.message
    assert "served by the registry at their recorded digests" in finding.message


def test_on_a_swarm_a_recorded_digest_the_registry_does_not_serve_fails_predeploy(
        repo: GitRepo, registry: TestRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    cut_build_push(repo, registry)
    path = repo.path / "releases/manifest_v0.2.0.json"
    manifest = json.loads(path.read_text())
    pinned = manifest["docker_images"]["app"]["repo_digest"]
    manifest["docker_images"]["app"]["repo_digest"] = pinned.split("@")[0] + "@sha256:" + "0" * 64
    path.write_text(json.dumps(manifest))
    logged_in(registry, monkeypatch)
    finding = images_finding(repo, registry)
    assert finding.status is Status.FAIL
    assert "app: the registry does not serve" in finding.message


def test_on_a_swarm_the_tamper_gate_checks_the_images_in_the_registry_too(
        repo: GitRepo, name: str, registry: TestRegistry, docker_client: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cut_build_push(repo, registry)
    drop_local_images(name, registry, docker_client)
    logged_in(registry, monkeypatch)
    findings = {f.id: f for f in verify_release(repo.path, on_swarm(registry), V020)}
    assert findings["artifacts.images"].status is Status.PASS, findings["artifacts.images"]
