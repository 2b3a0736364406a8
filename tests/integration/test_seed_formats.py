"""Releases cut the T-1 document's way, by hand, are read and verified as far as their files go.

Every release file here is written by the test, in the document's own layout: a VERSION file
opening with the bare version and listing ``Checkpoint Files:``, and the original scripts'
manifest (``artifacts`` an object of labels, ``docker_images`` plain ``name:tag`` strings, no
``.sha256``). A fixture tminus generated itself would prove only that tminus reads tminus.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ops.checks import CheckContext
from ops.checks.artifacts import run as artifacts
from ops.checks.release_tag import check_checkpoint_version
from ops.config import Settings
from ops.release.verify import verify_release
from ops.report import Finding, Status
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

MODEL = b"model weights, epoch 100"
OPTIMIZER = b"optimizer state"
V = parse_version("v0.2.0")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def t1_version_file(commit: str, files: dict[str, bytes]) -> str:
    """The document's VERSION file, as its release script writes it."""
    lines = ["v0.2.0", f"Commit: {commit}", "Date: 2025-10-14T15:30:00Z", "",
             "Checkpoint Files:"]
    lines += [f"  {name}: {sha(data)}" for name, data in files.items()]
    return "\n".join(lines) + "\n"


def t1_manifest(commit: str, images: dict[str, str] | None = None) -> str:
    """The document's manifest: labels for artifacts, plain references for images."""
    return json.dumps({
        "version": "v0.2.0",
        "release_date": "2025-10-14T15:30:00Z",
        "git": {"commit": commit, "branch": "main", "tag": "v0.2.0"},
        "artifacts": {"models": "tagged", "checkpoints": "tagged"},
        "docker_images": images or {},
    }, indent=2) + "\n"


def cut_by_hand(repo: GitRepo, images: dict[str, str] | None = None) -> GitRepo:
    """The document's release procedure: models committed, then the release files, then a tag."""
    repo.write("checkpoints/model_epoch_100.pt", MODEL)
    repo.write("checkpoints/optimizer_state.pt", OPTIMIZER)
    repo.commit("feat: train epoch 100")
    short = repo.git("rev-parse", "--short=8", "HEAD")
    repo.write("checkpoints/VERSION_v0.2.0.txt", t1_version_file(
        short, {"model_epoch_100.pt": MODEL, "optimizer_state.pt": OPTIMIZER}))
    repo.write("releases/manifest_v0.2.0.json", t1_manifest(short, images))
    repo.commit("release: v0.2.0")
    repo.tag("v0.2.0")
    return repo


def predeploy(repo: GitRepo) -> dict[str, Finding]:
    ctx = CheckContext(root=repo.path, settings=Settings(), version=V)
    return {f.id: f for f in artifacts(ctx)}


def gate(repo: GitRepo, engine: Any | None = None) -> dict[str, Finding]:
    return {f.id: f for f in verify_release(repo.path, Settings(), V, engine=engine)}


# --- the VERSION file ----------------------------------------------------------------------------


def test_t1_version_file_matches_the_checkpoints_in_predeploy(git_repo: GitRepo) -> None:
    finding = predeploy(cut_by_hand(git_repo))["artifacts.models_match_release"]
    assert finding.status is Status.PASS
    assert finding.message == (
        "2 checkpoint file(s) match VERSION_v0.2.0.txt (hashes from VERSION_v0.2.0.txt, "
        "manifest_v0.2.0.json has none: it is in the T-1 scripts' layout)")


def test_t1_version_file_passes_the_release_tag_checkpoint_version_check(
        git_repo: GitRepo) -> None:
    cut_by_hand(git_repo)
    ctx = CheckContext(root=git_repo.path, settings=Settings(), version=V)
    (finding,) = check_checkpoint_version(ctx)
    assert (finding.status, finding.message) == (
        Status.PASS, "checkpoints/VERSION_v0.2.0.txt exists")


def test_changed_checkpoint_fails_against_the_t1_version_file(git_repo: GitRepo) -> None:
    cut_by_hand(git_repo)
    (git_repo.path / "checkpoints/optimizer_state.pt").write_bytes(b"poisoned")
    finding = gate(git_repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert finding.message == "checkpoints differ from release v0.2.0: changed optimizer_state.pt"


def test_checkpoint_swapped_with_its_version_line_fails_against_the_tagged_copy(
        git_repo: GitRepo) -> None:
    """The T-1 manifest pins no hash, so the committed VERSION file is what catches this."""
    cut_by_hand(git_repo)
    (git_repo.path / "checkpoints/model_epoch_100.pt").write_bytes(b"poisoned")
    path = git_repo.path / "checkpoints/VERSION_v0.2.0.txt"
    path.write_text(path.read_text().replace(sha(MODEL), sha(b"poisoned")))
    finding = gate(git_repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert finding.message == ("checkpoints differ from release v0.2.0: VERSION_v0.2.0.txt "
                               "differs from the one committed at v0.2.0")


def test_version_file_of_another_release_fails(git_repo: GitRepo) -> None:
    cut_by_hand(git_repo)
    path = git_repo.path / "checkpoints/VERSION_v0.2.0.txt"
    path.write_text(path.read_text().replace("v0.2.0\n", "v0.1.0\n", 1))
    git_repo.commit("copy the old VERSION file")
    git_repo.git("tag", "-f", "-a", "v0.2.0", "-m", "release v0.2.0")
    finding = predeploy(git_repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert "VERSION_v0.2.0.txt is for v0.1.0, not v0.2.0" in finding.message


def test_version_file_in_the_earlier_tminus_layout_is_still_read(git_repo: GitRepo) -> None:
    git_repo.write("checkpoints/model.pt", MODEL)
    git_repo.write("checkpoints/VERSION_v0.2.0.txt", (
        "# Checkpoint hashes of this release, written by `invoke create-release`.\n"
        f"version: v0.2.0\ncommit: {'c' * 40}\ndate: 2026-11-26T12:09:00Z\n\n"
        f"model.pt: {sha(MODEL)}\n"))
    git_repo.commit("release written by an earlier tminus")
    finding = predeploy(git_repo)["artifacts.models_match_release"]
    assert (finding.status, finding.message) == (
        Status.PASS, "1 checkpoint file(s) match VERSION_v0.2.0.txt")


def test_earlier_tminus_release_verifies_through_its_manifest(git_repo: GitRepo) -> None:
    """The old layout's VERSION file, pinned by hash in a tminus manifest, as v0.1.x wrote."""
    git_repo.write("checkpoints/model.pt", MODEL)
    source = git_repo.commit("feat: model")
    version_text = (f"version: v0.2.0\ncommit: {source}\ndate: 2026-11-26T12:09:00Z\n\n"
                    f"model.pt: {sha(MODEL)}\n")
    manifest = json.dumps({
        "schema": 1, "tool": "tminus", "version": "v0.2.0",
        "release_date": "2026-11-26T12:09:00Z",
        "git": {"commit": source, "branch": "main", "tag": "v0.2.0"},
        "artifacts": [
            {"path": "checkpoints/model.pt", "kind": "checkpoint", "size": len(MODEL),
             "sha256": sha(MODEL)},
            {"path": "checkpoints/VERSION_v0.2.0.txt", "kind": "version_file",
             "size": len(version_text), "sha256": sha(version_text.encode())}],
        "docker_images": {}}, indent=2) + "\n"
    git_repo.write("checkpoints/VERSION_v0.2.0.txt", version_text)
    git_repo.write("releases/manifest_v0.2.0.json", manifest)
    git_repo.write("releases/manifest_v0.2.0.sha256",
                   f"{sha(manifest.encode())}  manifest_v0.2.0.json\n")
    git_repo.commit("chore(release): v0.2.0")
    git_repo.tag("v0.2.0")
    assert {k: f.status for k, f in gate(git_repo).items()} == {
        "artifacts.manifest": Status.PASS, "artifacts.manifest_integrity": Status.PASS,
        "artifacts.models_match_release": Status.PASS, "artifacts.images": Status.SKIP}


# --- the manifest --------------------------------------------------------------------------------


def test_t1_release_passes_the_tamper_gate_with_each_weaker_proof_said(
        git_repo: GitRepo) -> None:
    found = gate(cut_by_hand(git_repo))
    assert {k: f.status for k, f in found.items()} == {
        "artifacts.manifest": Status.PASS, "artifacts.manifest_integrity": Status.PASS,
        "artifacts.models_match_release": Status.PASS, "artifacts.images": Status.SKIP}
    assert found["artifacts.manifest"].message.startswith(
        "releases/manifest_v0.2.0.json (the T-1 scripts' layout: artifacts {models: tagged, "
        "checkpoints: tagged}, no per-file hashes): 0 image(s) by reference, cut from ")
    assert found["artifacts.manifest_integrity"].message == (
        "manifest_v0.2.0.json equals the one committed at v0.2.0 "
        "(no manifest_v0.2.0.sha256: the T-1 scripts write none)")
    assert found["artifacts.images"].message == "manifest_v0.2.0.json records no image"


def test_short_commit_in_the_t1_manifest_names_the_release_commit_parent(
        git_repo: GitRepo) -> None:
    cut_by_hand(git_repo)
    finding = gate(git_repo)["artifacts.manifest"]
    assert finding.detail is not None
    assert git_repo.git("rev-parse", "v0.2.0^{commit}^").startswith(finding.detail["commit"])
    assert finding.status is Status.PASS


def test_edited_t1_manifest_without_a_checksum_fails_against_the_tagged_copy(
        git_repo: GitRepo) -> None:
    cut_by_hand(git_repo)
    path = git_repo.path / "releases/manifest_v0.2.0.json"
    path.write_text(path.read_text().replace('"main"', '"hotfix"'))
    finding = gate(git_repo)["artifacts.manifest_integrity"]
    assert (finding.status, finding.message) == (
        Status.FAIL, "manifest_v0.2.0.json differs from the one committed at v0.2.0 in git")


def test_uncommitted_t1_manifest_without_a_checksum_skips_integrity_with_the_reason(
        git_repo: GitRepo) -> None:
    git_repo.write("checkpoints/model.pt", MODEL)
    git_repo.commit("feat: model")
    git_repo.write("releases/manifest_v0.2.0.json", t1_manifest(git_repo.head))
    finding = predeploy(git_repo)["artifacts.manifest_integrity"]
    assert finding.status is Status.SKIP
    assert finding.message == ("no manifest_v0.2.0.sha256 (the T-1 scripts write none) and no "
                               "copy of manifest_v0.2.0.json committed at v0.2.0 to compare with")


def test_t1_manifest_checksum_written_from_the_root_verifies(git_repo: GitRepo) -> None:
    cut_by_hand(git_repo)
    manifest = (git_repo.path / "releases/manifest_v0.2.0.json").read_bytes()
    git_repo.write("releases/manifest_v0.2.0.sha256",
                   f"{sha(manifest)}  releases/manifest_v0.2.0.json\n")
    finding = gate(git_repo)["artifacts.manifest_integrity"]
    assert finding.status is Status.PASS
    assert finding.message.startswith("manifest_v0.2.0.json matches manifest_v0.2.0.sha256")


def test_t1_manifest_and_no_version_file_fails_saying_nothing_proves_the_checkpoints(
        git_repo: GitRepo) -> None:
    cut_by_hand(git_repo)
    git_repo.git("rm", "-q", "checkpoints/VERSION_v0.2.0.txt")
    finding = gate(git_repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert finding.message == (
        "manifest_v0.2.0.json records no per-file hashes (the T-1 scripts' layout) and "
        "VERSION_v0.2.0.txt does not exist: nothing proves the 2 checkpoint file(s)")


# --- images by plain reference (the real engine) -------------------------------------------------


@pytest.fixture
def scratch_image(docker_client: Any) -> Iterator[str]:
    """A layer-less image under a unique reference, built on the engine and removed after."""
    reference = f"tminus-test/seed-{uuid.uuid4().hex[:10]}:v0.2.0"
    dockerfile = io.BytesIO(b"FROM scratch\nLABEL tminus.test=seed-formats\n")
    docker_client.images.build(fileobj=dockerfile, tag=reference, rm=True)
    try:
        yield reference
    finally:
        docker_client.images.remove(reference, force=True)


def test_t1_image_reference_is_checked_for_presence_and_says_ids_are_not_compared(
        git_repo: GitRepo, docker_client: Any, scratch_image: str) -> None:
    cut_by_hand(git_repo, images={"app": scratch_image})
    finding = gate(git_repo, engine=docker_client)["artifacts.images"]
    assert finding.status is Status.PASS
    assert finding.message.endswith(
        "(ids not compared: manifest_v0.2.0.json records image references only, in the T-1 "
        "scripts' layout)")


def test_t1_image_missing_from_the_engine_fails_naming_it(
        git_repo: GitRepo, docker_client: Any) -> None:
    absent = f"tminus-test/absent-{uuid.uuid4().hex[:10]}:v0.2.0"
    cut_by_hand(git_repo, images={"app": absent})
    finding = gate(git_repo, engine=docker_client)["artifacts.images"]
    assert (finding.status, finding.message) == (
        Status.FAIL, f"app: {absent} is not in the engine")


# --- a service that ships no checkpoints ---------------------------------------------------------


def test_service_without_checkpoint_files_needs_no_version_file(git_repo: GitRepo) -> None:
    git_repo.write("app.py", "print('no models here')\n")
    git_repo.commit("feat: an api without models")
    git_repo.tag("v0.2.0")
    ctx = CheckContext(root=git_repo.path, settings=Settings(), version=V)
    (finding,) = check_checkpoint_version(ctx)
    assert finding.status is Status.PASS
    assert finding.message == ("no checkpoint files under checkpoints/ (*.pt *.pth *.bin "
                               "*.safetensors *.onnx *.ckpt): v0.2.0 needs no VERSION file")


def test_checkpoint_files_without_a_version_file_still_fail(git_repo: GitRepo) -> None:
    git_repo.write("checkpoints/model.pt", MODEL)
    git_repo.commit("feat: model")
    ctx = CheckContext(root=git_repo.path, settings=Settings(), version=V)
    (finding,) = check_checkpoint_version(ctx)
    assert (finding.status, finding.message) == (
        Status.FAIL, "checkpoints/VERSION_v0.2.0.txt is missing (1 checkpoint file(s) under "
                     "checkpoints/)")


def test_version_file_naming_another_release_fails_the_checkpoint_version_check(
        git_repo: GitRepo) -> None:
    git_repo.write("checkpoints/VERSION_v0.2.0.txt", t1_version_file("abc123de", {}).replace(
        "v0.2.0", "v0.1.0"))
    git_repo.commit("copied")
    ctx = CheckContext(root=git_repo.path, settings=Settings(), version=V)
    (finding,) = check_checkpoint_version(ctx)
    assert (finding.status, finding.message) == (
        Status.FAIL, "checkpoints/VERSION_v0.2.0.txt is for v0.1.0, not v0.2.0")
