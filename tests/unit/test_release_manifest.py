"""The artifact manifest and its sha256sum-format checksum."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ops.release import manifest as mf
from ops.release.version_file import ReleaseFileError

H = "e" * 64


def sample() -> mf.Manifest:
    return mf.Manifest(
        "v0.2.0", "2026-11-26T12:00:00Z", mf.GitInfo("1" * 40, "main", "v0.2.0"),
        [mf.Artifact("checkpoints/model.pt", 3, H),
         mf.Artifact("checkpoints/VERSION_v0.2.0.txt", 200, H, kind="version_file")],
        {"app": mf.ImageRecord("demo/app:v0.2.0")})


def test_manifest_json_carries_the_fields_of_the_design(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    data = json.loads(path.read_text())
    assert data["version"] == "v0.2.0"
    assert data["git"]["commit"] == "1" * 40
    assert data["git"]["tag"] == "v0.2.0"
    assert data["artifacts"][0] == {"path": "checkpoints/model.pt", "kind": "checkpoint",
                                    "size": 3, "sha256": H}
    assert data["docker_images"] == {"app": {"image": "demo/app:v0.2.0", "id": None,
                                             "repo_digest": None}}


def test_checksum_file_is_sha256sum_format_with_the_bare_manifest_name(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (tmp_path / "manifest_v0.2.0.sha256").read_text() == (
        f"{digest}  manifest_v0.2.0.json\n")


def test_read_returns_what_write_wrote(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    assert mf.read(path) == sample()


def test_untouched_manifest_verifies(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    assert mf.verify_checksum(path).ok


def test_edited_manifest_fails_its_checksum_naming_both_files(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    path.write_text(path.read_text().replace(H, "f" * 64, 1))
    result = mf.verify_checksum(path)
    assert not result.ok
    assert "manifest_v0.2.0.json does not match manifest_v0.2.0.sha256" in result.message


def test_missing_checksum_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    (tmp_path / "manifest_v0.2.0.sha256").unlink()
    assert mf.verify_checksum(path).message == "manifest_v0.2.0.sha256 is missing"


def test_checksum_for_another_file_name_does_not_vouch_for_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "manifest_v0.2.0.sha256").write_text(f"{digest}  xmanifest_v0.2.0.json\n")
    assert "has no line for manifest_v0.2.0.json" in mf.verify_checksum(path).message


def test_binary_mode_checksum_line_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "manifest_v0.2.0.json"
    mf.write(path, sample())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "manifest_v0.2.0.sha256").write_text(f"{digest} *manifest_v0.2.0.json\n")
    assert mf.verify_checksum(path).ok


def test_manifest_that_is_not_json_is_a_release_file_error() -> None:
    with pytest.raises(ReleaseFileError, match=r"m.json: not valid JSON \(line 1\)"):
        mf.parse("{nope", source="m.json")


def test_manifest_without_git_section_is_a_release_file_error() -> None:
    with pytest.raises(ReleaseFileError, match="missing or malformed field"):
        mf.parse(json.dumps({"version": "v0.2.0", "release_date": "d", "artifacts": []}))


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "checkpoints/../../x"])
def test_artifact_path_leaving_the_repository_is_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(ReleaseFileError, match="leaves the repository"):
        mf.artifact_location(tmp_path, mf.Artifact(path, 1, H))


def test_recorded_images_replace_the_unbuilt_entries_and_keep_the_rest() -> None:
    base = sample().with_images({"worker": mf.ImageRecord("demo/worker:v0.2.0")})
    updated = base.with_images({"app": mf.ImageRecord("demo/app:v0.2.0", "sha256:1", None)})
    assert updated.docker_images == {
        "app": mf.ImageRecord("demo/app:v0.2.0", "sha256:1", None),
        "worker": mf.ImageRecord("demo/worker:v0.2.0")}


# --- the T-1 document's original scripts ---------------------------------------------------------

T1_MANIFEST = """\
{
  "version": "v0.2.0",
  "release_date": "2025-10-14T15:30:00Z",
  "git": {"commit": "abc123de", "branch": "main", "tag": "v0.2.0"},
  "artifacts": {"models": "tagged", "checkpoints": "tagged"},
  "docker_images": {"app": "myapp:v0.2.0", "worker": "myapp-worker:v0.2.0"}
}
"""


def test_t1_manifest_is_read_with_its_labels_and_image_references() -> None:
    manifest = mf.parse(T1_MANIFEST)
    assert (manifest.layout, manifest.version, manifest.git) == (
        mf.T1, "v0.2.0", mf.GitInfo("abc123de", "main", "v0.2.0"))
    assert manifest.labels == {"models": "tagged", "checkpoints": "tagged"}
    assert manifest.docker_images == {"app": mf.ImageRecord("myapp:v0.2.0"),
                                      "worker": mf.ImageRecord("myapp-worker:v0.2.0")}


def test_t1_manifest_records_no_hashes_and_says_so() -> None:
    manifest = mf.parse(T1_MANIFEST)
    assert manifest.artifacts == []
    assert not manifest.records_hashes
    assert mf.parse(mf.render(sample())).records_hashes


def test_t1_manifest_without_branch_or_tag_takes_the_version_as_tag() -> None:
    text = json.dumps({"version": "v0.2.0", "git": {"commit": "abc123de"},
                       "artifacts": {"models": "tagged"}})
    assert mf.parse(text).git == mf.GitInfo("abc123de", "", "v0.2.0")


def test_t1_manifest_without_a_commit_is_a_release_file_error() -> None:
    text = json.dumps({"version": "v0.2.0", "git": {}, "artifacts": {"models": "tagged"}})
    with pytest.raises(ReleaseFileError, match="missing or malformed field"):
        mf.parse(text)


def test_t1_manifest_renders_back_in_its_own_layout() -> None:
    manifest = mf.parse(T1_MANIFEST)
    assert json.loads(mf.render(manifest)) == json.loads(T1_MANIFEST)


def test_plain_string_image_is_read_in_the_tminus_layout_too() -> None:
    data = json.loads(mf.render(sample()))
    data["docker_images"] = {"app": "demo/app:v0.2.0"}
    assert mf.parse(json.dumps(data)).docker_images == {"app": mf.ImageRecord("demo/app:v0.2.0")}


def test_checksum_naming_the_manifest_by_its_path_from_the_root_vouches_for_it(
        tmp_path: Path) -> None:
    """What `sha256sum releases/manifest_v0.2.0.json > …` writes when run from the root."""
    path = tmp_path / "manifest_v0.2.0.json"
    path.write_text(T1_MANIFEST)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "manifest_v0.2.0.sha256").write_text(
        f"{digest}  releases/manifest_v0.2.0.json\n")
    assert mf.verify_checksum(path).ok
