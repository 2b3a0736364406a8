"""The SHA-256 engine on real files in a temp dir: its digests are hashlib's, whatever the size,
order or number of workers, and it never walks a symlink out of the repository."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from ops.hashing import (
    CHUNK,
    PROGRESS_MIN_BYTES,
    checkpoint_files,
    hash_files,
    hash_many,
    sha256_file,
)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def reference(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_digest_equals_hashlib_around_the_read_size(tmp_path: Path, size: int) -> None:
    path = write(tmp_path / "model.bin", os.urandom(size))
    assert sha256_file(path) == reference(path)


def test_empty_file_has_the_digest_of_no_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.pt", b"")
    assert hash_files([path]) == {path: hashlib.sha256(b"").hexdigest()}


def test_many_files_on_two_workers_keep_the_callers_order(tmp_path: Path) -> None:
    sizes = [5, 3 * CHUNK, 0, CHUNK + 1, 7, 2 * CHUNK]  # the largest are read first
    paths = [write(tmp_path / f"m{i}.bin", os.urandom(size)) for i, size in enumerate(sizes)]
    digests = hash_files(paths, workers=2)
    assert list(digests) == paths
    assert digests == {path: reference(path) for path in paths}


def test_a_path_given_twice_is_read_once(tmp_path: Path) -> None:
    path = write(tmp_path / "model.bin", b"weights")
    run = hash_many([path, tmp_path / "model.bin"])
    assert run.files_read == 1
    assert run.digests == {path: reference(path)}


def test_progress_callback_receives_every_byte_read(tmp_path: Path) -> None:
    paths = [write(tmp_path / "a.bin", os.urandom(2 * CHUNK + 3)),
             write(tmp_path / "b.bin", os.urandom(11))]
    advanced: list[int] = []
    run = hash_many(paths, workers=2, progress=advanced.append)
    assert sum(advanced) == run.bytes_read == 2 * CHUNK + 3 + 11


def test_progress_bar_stays_silent_when_stderr_is_not_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "model.bin", os.urandom(CHUNK))
    hash_files([path], progress=True)
    assert capsys.readouterr() == ("", "")


def test_missing_file_raises_oserror_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        hash_files([tmp_path / "gone.pt"])
    assert caught.value.filename == str(tmp_path / "gone.pt")


def test_symlink_to_a_file_outside_the_repository_is_not_listed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    outside = write(tmp_path / "elsewhere" / "secret.pt", b"not ours")
    kept = write(root / "checkpoints" / "model.pt", b"ours")
    (root / "checkpoints" / "link.pt").symlink_to(outside)
    assert checkpoint_files(root, Path("checkpoints"), ["*.pt"]) == [kept]


def test_symlinked_directory_outside_the_repository_is_not_walked(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(tmp_path / "elsewhere" / "big.safetensors", b"not ours")
    kept = write(root / "checkpoints" / "model.safetensors", b"ours")
    (root / "checkpoints" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert checkpoint_files(root, Path("checkpoints"), ["*.safetensors"]) == [kept]


def test_checkpoint_files_match_patterns_at_any_depth_sorted(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    deep = write(root / "checkpoints" / "v2" / "b.onnx", b"b")
    top = write(root / "checkpoints" / "a.pt", b"a")
    write(root / "checkpoints" / "notes.txt", b"not a model")
    assert checkpoint_files(root, Path("checkpoints"), ["*.pt", "*.onnx"]) == [top, deep]


def test_progress_bar_is_drawn_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    with model.open("wb") as handle:
        handle.truncate(PROGRESS_MIN_BYTES)  # sparse: enough bytes to earn a bar, no disk
    terminal, child_end = pty.openpty()
    script = ("import sys; from pathlib import Path; from ops.hashing import hash_files; "
              "print(hash_files([Path(sys.argv[1])], progress=True)[Path(sys.argv[1])])")
    done = subprocess.run([sys.executable, "-c", script, str(model)], stderr=child_end,
                          stdout=subprocess.PIPE, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    os.close(child_end)
    drawn = b""
    with contextlib.suppress(OSError):  # EIO once the child's end is closed and drained
        while chunk := os.read(terminal, 65536):
            drawn += chunk
    os.close(terminal)
    assert done.stdout.strip() == hashlib.sha256(bytes(PROGRESS_MIN_BYTES)).hexdigest()
    assert b"hashing" in drawn
    assert b"67.1 MB" in drawn  # the total, in rich's decimal units
