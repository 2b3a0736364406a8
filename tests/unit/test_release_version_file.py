"""The checkpoint VERSION file: what create-release writes and every verifier reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.config import Settings
from ops.release import version_file as vfile
from ops.release.version_file import ReleaseFileError, VersionFile
from ops.versioning import parse_version

A = "a" * 64
B = "b" * 64


def sample() -> VersionFile:
    return VersionFile("v0.2.0", "1" * 40, "2026-11-26T12:00:00Z",
                       {"model.pt": A, "sub/enc: v2.onnx": B})


def test_rendered_file_is_the_t1_document_layout_exactly() -> None:
    assert vfile.render(sample()) == (
        "v0.2.0\n"
        f"Commit: {'1' * 40}\n"
        "Date: 2026-11-26T12:00:00Z\n"
        "\n"
        "Checkpoint Files:\n"
        f"  model.pt: {A}\n"
        f"  sub/enc: v2.onnx: {B}\n")


def test_parse_reads_back_what_render_wrote_including_names_with_colons() -> None:
    assert vfile.parse(vfile.render(sample())) == sample()


def test_parse_reads_the_t1_document_example_written_by_hand() -> None:
    text = ("v0.2.0\n"
            "Commit: abc123de\n"
            "Date: 2025-10-14T15:30:00Z\n"
            "\n"
            "Checkpoint Files:\n"
            f"  model_epoch_100.pt: {A}\n"
            f"  optimizer_state.pt: {B}\n")
    assert vfile.parse(text) == VersionFile(
        "v0.2.0", "abc123de", "2025-10-14T15:30:00Z",
        {"model_epoch_100.pt": A, "optimizer_state.pt": B})


def test_parse_reads_the_layout_earlier_tminus_releases_wrote() -> None:
    text = ("# Checkpoint hashes of this release, written by `invoke create-release`.\n"
            "# commit: the source commit the release was cut from (parent of the tagged commit).\n"
            f"version: v0.1.0\ncommit: {'c' * 40}\ndate: 2026-11-26T12:09:00Z\n\n"
            f"model.pt: {A}\nsub/enc: v2.onnx: {B}\n")
    assert vfile.parse(text) == VersionFile("v0.1.0", "c" * 40, "2026-11-26T12:09:00Z",
                                            {"model.pt": A, "sub/enc: v2.onnx": B})


def test_uppercase_hex_is_read_and_kept_lowercase() -> None:
    text = f"v0.2.0\nCommit: abc\nDate: d\n\nCheckpoint Files:\n  m.pt: {A.upper()}\n"
    assert vfile.parse(text).files == {"m.pt": A}


def test_a_file_named_like_a_header_key_is_still_a_file() -> None:
    text = vfile.render(VersionFile("v1.0.0", "c" * 40, "d", {"version": A, "Date": B}))
    assert vfile.parse(text).files == {"version": A, "Date": B}


def test_a_file_named_like_a_header_key_is_still_a_file_in_the_earlier_layout() -> None:
    text = f"version: v1.0.0\ncommit: c\ndate: d\n\nversion: {A}\n"
    assert vfile.parse(text).files == {"version": A}


def test_parse_names_the_line_of_a_malformed_hash() -> None:
    text = f"version: v0.2.0\ncommit: abc\ndate: d\n\nmodel.pt: {A}\nbad.pt: 1234\n"
    with pytest.raises(ReleaseFileError, match=r"VERSION file:6: 'bad.pt' has no valid sha256"):
        vfile.parse(text)


def test_parse_names_the_line_that_is_not_a_file_and_its_hash() -> None:
    text = f"v0.2.0\nCommit: abc\nDate: d\n\nCheckpoint Files:\n  m.pt: {A}\n  stray words\n"
    with pytest.raises(ReleaseFileError, match=r"VERSION file:7: expected `name: sha256`"):
        vfile.parse(text)


def test_parse_refuses_a_file_listed_twice() -> None:
    text = f"version: v0.2.0\ncommit: abc\ndate: d\n\nm.pt: {A}\nm.pt: {B}\n"
    with pytest.raises(ReleaseFileError, match="listed twice"):
        vfile.parse(text)


def test_parse_requires_version_commit_and_date() -> None:
    with pytest.raises(ReleaseFileError, match="missing commit, date"):
        vfile.parse(f"version: v0.2.0\n\nm.pt: {A}\n")


def test_parse_requires_commit_and_date_in_the_t1_layout_too() -> None:
    with pytest.raises(ReleaseFileError, match="missing date"):
        vfile.parse(f"v0.2.0\nCommit: abc\n\nCheckpoint Files:\n  m.pt: {A}\n")


def test_lenient_parse_skips_unreadable_lines_and_keeps_the_hashes() -> None:
    text = f"v0.2.0\n\nCheckpoint Files:\n  m.pt: {A}\n  stray words\n  bad.pt: 12\n"
    found = vfile.parse(text, strict=False)
    assert (found.version, found.files) == ("v0.2.0", {"m.pt": A})


def test_version_line_may_omit_the_leading_v() -> None:
    found = VersionFile("0.2.0", "c", "d")
    assert vfile.names_version(found, parse_version("v0.2.0"))
    assert not vfile.names_version(found, parse_version("v0.2.1"))


def test_write_then_read_round_trips_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "VERSION_v0.2.0.txt"
    vfile.write(path, sample())
    assert vfile.read(path) == sample()
    assert [p.name for p in path.parent.iterdir()] == ["VERSION_v0.2.0.txt"]  # no temp left


def test_version_file_lives_in_the_configured_checkpoints_dir(tmp_path: Path) -> None:
    settings = Settings.model_validate({"artifacts": {"checkpoints_dir": "models"}})
    path = vfile.version_file_path(tmp_path, settings, parse_version("v1.4.0-rc.1"))
    assert path == tmp_path / "models" / "VERSION_v1.4.0-rc.1.txt"


def test_compare_names_changed_missing_and_extra_files() -> None:
    expected = {"same.pt": A, "changed.pt": A, "gone.pt": A}
    actual = {"same.pt": A, "changed.pt": B, "new.pt": B}
    assert vfile.compare(expected, actual) == (["changed.pt"], ["gone.pt"], ["new.pt"])


def test_hash_checkpoints_keys_files_relative_to_the_checkpoints_dir(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / "sub").mkdir(parents=True)
    (tmp_path / "checkpoints" / "sub" / "m.onnx").write_bytes(b"abc")
    (tmp_path / "checkpoints" / "notes.txt").write_text("not a model")
    current = vfile.hash_checkpoints(tmp_path, Settings())
    # the FIPS 180-2 test vector for "abc"
    abc = ("ba7816bf8f01cfea414140de5dae2223"  # pragma: allowlist secret
           "b00361a396177a9cb410ff61f20015ad")  # pragma: allowlist secret
    assert current.by_name() == {"sub/m.onnx": abc}
    assert current.total_bytes == 3
