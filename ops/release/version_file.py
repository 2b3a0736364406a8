"""The checkpoint VERSION file: ``checkpoints/VERSION_vX.Y.Z.txt``.

It pins, in a form a person can read and ``grep``, which model files a release ships. tminus
writes it in the T-1 document's own layout, so a team that follows the document by hand and a
team that runs ``invoke create-release`` keep the same file::

    v0.2.0
    Commit: abc123de
    Date: 2025-10-14T15:30:00Z

    Checkpoint Files:
      model_epoch_100.pt: <sha256>

A name is the path relative to the checkpoints directory. The reader also takes the layout earlier
tminus releases wrote (``version:``/``commit:``/``date:`` lines, a blank line, then ``name:
sha256`` lines, ``#`` comments), because their tags still hold such files. This module is the
one parser of both: the verifiers read it strictly, the release notes leniently. The manifest
repeats these hashes for machines; this file exists so that the checkpoints directory describes
itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ops.atomic import atomic_write_text
from ops.bounded import NAME_CHARS, Refused, clipped, read_capped
from ops.config import Settings, resolve_path
from ops.errors import OpsError
from ops.hashing import HashCache, checkpoint_files, hash_files
from ops.versioning import ReleaseVersion

_HEADER_KEYS = ("version", "commit", "date")
#: A release file larger than this is refused: 300 000 checkpoint lines fit, a runaway does not.
MAX_RELEASE_FILE_BYTES = 32 << 20
FILES_HEADING = "Checkpoint Files:"
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
    """The T-1 document's layout, byte for byte: what ``create-release`` writes."""
    lines = [vf.version, f"Commit: {vf.commit}", f"Date: {vf.date}", "", FILES_HEADING]
    lines += [f"  {name}: {digest}" for name, digest in sorted(vf.files.items())]
    return "\n".join(lines) + "\n"


def parse(text: str, *, source: str = "VERSION file", strict: bool = True) -> VersionFile:
    """Read either layout: the document's (bare version line, ``Commit:``, ``Date:``, a
    ``Checkpoint Files:`` heading, indented ``name: sha256`` lines) or earlier tminus's
    (``version:``/``commit:``/``date:``, a blank line, ``name: sha256`` lines).

    Header keys are matched without regard to case, and only before the first file, so a
    checkpoint named ``version`` is still a file. A name may itself contain ``":"``, so a file
    line is split at its last colon; the digest never contains one. Hex digits are read in
    either case and kept lowercase, as ``sha256sum`` prints them.

    ``strict`` (the verifiers) refuses any line it cannot read, naming it; without it (the release
    notes, which must not fail on an old tag's hand-edited file) such lines are skipped and a
    missing header is allowed.
    """
    header: dict[str, str] = {}
    files: dict[str, str] = {}
    in_files = False

    def bad(number: int, problem: str) -> None:
        if strict:
            raise ReleaseFileError(f"{source}:{number}: {problem}")

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            in_files = in_files or bool(header)
            continue
        if line.casefold() == FILES_HEADING.casefold() and not files:
            in_files = True
            continue
        key, key_sep, rest = line.partition(":")
        if not in_files and not header and not key_sep:
            header["version"] = line  # the document's layout opens with the bare version
            continue
        if not in_files and key_sep and key.strip().casefold() in _HEADER_KEYS:
            header[key.strip().casefold()] = rest.strip()
            continue
        name, sep, value = line.rpartition(":")
        name = name.rstrip()
        if not sep:
            bad(number, "expected `name: sha256` (a checkpoint file and its hash)")
            continue
        in_files = True
        digest = value.strip().lower()
        if len(digest) != 64 or not set(digest) <= _HEX:
            bad(number, f"{_quoted(name)} has no valid sha256")
            continue
        if name in files:
            bad(number, f"{_quoted(name)} is listed twice")
            continue
        files[name] = digest
    missing = [key for key in _HEADER_KEYS if key not in header]
    if missing and strict:
        raise ReleaseFileError(f"{source}: missing {', '.join(missing)} line(s)")
    return VersionFile(header.get("version", ""), header.get("commit", ""),
                       header.get("date", ""), files)


def _quoted(name: str) -> str:
    """A file name in an error: quoted as before, but a 50 MB name is cut to a line."""
    return repr(name) if len(name) <= NAME_CHARS else f"'{clipped(name)}'"


def names_version(vf: VersionFile, version: ReleaseVersion) -> bool:
    """Whether the file's version line is ``version``; hand-written files may drop the ``v``."""
    return vf.version.removeprefix("v") == version.tag.removeprefix("v")


def write(path: Path, vf: VersionFile) -> None:
    atomic_write_text(path, render(vf))


def read_release_text(path: Path) -> str:
    """The text of a VERSION file or manifest, or a ReleaseFileError naming it.

    At most ``MAX_RELEASE_FILE_BYTES`` of a regular file are read (``ops.bounded.read_capped``):
    these files are committed by whoever can push, and a FIFO or a 5 GiB file in their place
    must be a finding, not a hang or an exhausted runner.
    """
    try:
        data = read_capped(path, MAX_RELEASE_FILE_BYTES)
    except Refused as exc:
        raise ReleaseFileError(f"{path.name} {exc}") from None
    except OSError as exc:
        raise ReleaseFileError(f"{path.name}: cannot be read ({type(exc).__name__})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ReleaseFileError(f"{path.name}:{line}: not UTF-8 text") from None


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
