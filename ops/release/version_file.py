"""The checkpoint VERSION file: ``checkpoints/VERSION_vX.Y.Z.txt``.

It pins, in a form a person can read and ``grep``, which model files a release ships: the version,
the source commit it was cut from, the date, then one ``name: sha256`` line per checkpoint file,
where ``name`` is the path relative to the checkpoints directory. The manifest repeats these hashes
for machines; this file exists so that the checkpoints directory describes itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ops.atomic import atomic_write_text
from ops.config import Settings, resolve_path
from ops.errors import OpsError
from ops.hashing import checkpoint_files
from ops.versioning import ReleaseVersion

_HEADER_KEYS = ("version", "commit", "date")
_HEX = frozenset("0123456789abcdef")


class ReleaseFileError(OpsError):
    """A VERSION file or manifest exists but cannot be trusted as written (exit 1)."""


@dataclass(frozen=True)
class VersionFile:
    version: str
    commit: str
    date: str
    files: dict[str, str] = field(default_factory=dict)  # name (relative, posix) -> sha256


def version_file_path(root: Path, settings: Settings, version: ReleaseVersion) -> Path:
    return resolve_path(root, settings.artifacts.checkpoints_dir) / f"VERSION_{version.tag}.txt"


def render(vf: VersionFile) -> str:
    lines = [
        "# Checkpoint hashes of this release, written by `invoke create-release`.",
        "# commit: the source commit the release was cut from (parent of the tagged commit).",
        f"version: {vf.version}",
        f"commit: {vf.commit}",
        f"date: {vf.date}",
        "",
    ]
    lines += [f"{name}: {digest}" for name, digest in sorted(vf.files.items())]
    return "\n".join(lines) + "\n"


def parse(text: str, *, source: str = "VERSION file") -> VersionFile:
    """Header lines up to the first blank line, then one ``name: sha256`` per line.

    A name may itself contain ``": "``, so a line is split at its last separator; the digest never
    contains one.
    """
    header: dict[str, str] = {}
    files: dict[str, str] = {}
    in_files = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            in_files = in_files or bool(header)
            continue
        name, sep, value = line.rpartition(": ")
        if not sep:
            raise ReleaseFileError(f"{source}:{number}: expected `name: value`")
        if not in_files and name in _HEADER_KEYS:
            header[name] = value
            continue
        in_files = True
        if len(value) != 64 or not set(value) <= _HEX:
            raise ReleaseFileError(f"{source}:{number}: {name!r} has no valid sha256")
        if name in files:
            raise ReleaseFileError(f"{source}:{number}: {name!r} is listed twice")
        files[name] = value
    missing = [key for key in _HEADER_KEYS if key not in header]
    if missing:
        raise ReleaseFileError(f"{source}: missing {', '.join(missing)} line(s)")
    return VersionFile(header["version"], header["commit"], header["date"], files)


def write(path: Path, vf: VersionFile) -> None:
    atomic_write_text(path, render(vf))


def read_release_text(path: Path) -> str:
    """The text of a VERSION file or manifest, or a ReleaseFileError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReleaseFileError(f"{path.name}: cannot be read ({type(exc).__name__})") from None


def read(path: Path) -> VersionFile:
    return parse(read_release_text(path), source=path.name)


# --- hashing the checkpoints ----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointHashes:
    """The current checkpoint files, hashed: what the release files are compared against."""

    directory: Path
    hashes: dict[Path, str]  # absolute path -> sha256
    sizes: dict[Path, int]

    def by_name(self) -> dict[str, str]:
        """Hashes keyed as the VERSION file keys them: relative to the checkpoints dir."""
        return {p.relative_to(self.directory).as_posix(): h for p, h in self.hashes.items()}

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def hash_paths(paths: list[Path], settings: Settings, root: Path, *, use_cache: bool = True,
               progress: bool = False) -> dict[Path, str]:
    """Every hash goes through ``ops.hashing.hash_files``, the one engine, with its cache."""
    from ops.hashing import HashCache, hash_files

    cache = HashCache.for_project(root, settings, use_cache=use_cache)
    return hash_files(paths, cache=cache, progress=progress)


def hash_checkpoints(root: Path, settings: Settings, *, use_cache: bool = True,
                     progress: bool = False) -> CheckpointHashes:
    directory = resolve_path(root, settings.artifacts.checkpoints_dir)
    paths = checkpoint_files(root, settings.artifacts.checkpoints_dir, settings.artifacts.patterns)
    try:
        sizes = {p: p.stat().st_size for p in paths}
        hashes = hash_paths(paths, settings, root, use_cache=use_cache, progress=progress)
    except OSError as exc:
        name = Path(exc.filename).name if exc.filename else "a checkpoint file"
        raise ReleaseFileError(f"cannot read {name}: {exc.strerror or type(exc).__name__}",
                               hint="check the file's permissions") from None
    return CheckpointHashes(directory, hashes, sizes)


def compare(expected: Mapping[str, str], actual: Mapping[str, str]) -> tuple[
        list[str], list[str], list[str]]:
    """(changed, missing, extra) names, each sorted: what a mismatch message lists."""
    changed = sorted(n for n in expected.keys() & actual.keys() if expected[n] != actual[n])
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    return changed, missing, extra
