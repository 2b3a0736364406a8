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


def test_rendered_file_lists_header_then_one_name_hash_line_per_file() -> None:
    lines = vfile.render(sample()).splitlines()
    body = [line for line in lines if not line.startswith("#")]
    assert body == ["version: v0.2.0", f"commit: {'1' * 40}", "date: 2026-11-26T12:00:00Z", "",
                    f"model.pt: {A}", f"sub/enc: v2.onnx: {B}"]


def test_parse_reads_back_what_render_wrote_including_names_with_colons() -> None:
    assert vfile.parse(vfile.render(sample())) == sample()


def test_a_file_named_like_a_header_key_is_still_a_file() -> None:
    text = vfile.render(VersionFile("v1.0.0", "c" * 40, "d", {"version": A}))
    assert vfile.parse(text).files == {"version": A}


def test_parse_names_the_line_of_a_malformed_hash() -> None:
    text = f"version: v0.2.0\ncommit: abc\ndate: d\n\nmodel.pt: {A}\nbad.pt: 1234\n"
    with pytest.raises(ReleaseFileError, match=r"VERSION file:6: 'bad.pt' has no valid sha256"):
        vfile.parse(text)


def test_parse_refuses_a_file_listed_twice() -> None:
    text = f"version: v0.2.0\ncommit: abc\ndate: d\n\nm.pt: {A}\nm.pt: {B}\n"
    with pytest.raises(ReleaseFileError, match="listed twice"):
        vfile.parse(text)


def test_parse_requires_version_commit_and_date() -> None:
    with pytest.raises(ReleaseFileError, match="missing commit, date"):
        vfile.parse(f"version: v0.2.0\n\nm.pt: {A}\n")


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
