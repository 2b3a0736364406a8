"""The artifact manifest ``releases/manifest_vX.Y.Z.json`` and its ``.sha256``.

The manifest is what the deploy tamper gate trusts: every shipped file with its size and SHA-256,
the git coordinates, and each built service image with its id. Its checksum file is in
``sha256sum`` format with the manifest's bare file name, so it verifies from the releases
directory: ``cd releases && sha256sum -c manifest_v0.2.0.sha256``.

A manifest written by the T-1 document's original scripts is read too: its ``artifacts`` is an
object of labels (``{"models": "tagged"}``) and its ``docker_images`` plain ``name:tag``
strings. Such a manifest (``layout == T1``) records no per-file hashes and no image ids; the
verifiers say so and take the hashes from the VERSION file instead. tminus itself always writes
its own layout (``layout == TMINUS``).

``git.commit`` is the *source* commit the release was cut from. The release commit that adds the
VERSION file and this manifest is its child, and the tag points at that release commit: a file
cannot name the commit that contains it, so the manifest names its parent, and ``git.commit_is``
spells that relation out for a reader. ``verify_release`` checks it: the tag's commit must be the
manifest's commit or a child of it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ops.atomic import atomic_write_text
from ops.bounded import Refused, clipped, loads_json
from ops.config import Settings, resolve_path
from ops.release.version_file import ReleaseFileError, read_release_text
from ops.versioning import ReleaseVersion

SCHEMA = 1
TMINUS = "tminus"  # the layout tminus writes: per-file hashes, image ids
T1 = "t1"  # the T-1 document's scripts: artifact labels, image references only
COMMIT_MEANING = ("source commit the release was cut from; "
                  "the tag points at its child, the release commit")


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the project root, posix
    size: int
    sha256: str
    kind: str = "checkpoint"  # checkpoint | version_file

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class ImageRecord:
    image: str  # the reference at this version, from the compose file
    id: str | None = None  # filled in by `invoke build`
    repo_digest: str | None = None  # only once the image has been pushed to a registry

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "id": self.id, "repo_digest": self.repo_digest}


@dataclass(frozen=True)
class GitInfo:
    commit: str
    branch: str
    tag: str

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "commit_is": COMMIT_MEANING, "branch": self.branch,
                "tag": self.tag}


@dataclass(frozen=True)
class Manifest:
    version: str
    release_date: str
    git: GitInfo
    artifacts: list[Artifact] = field(default_factory=list)
    docker_images: dict[str, ImageRecord] = field(default_factory=dict)
    layout: str = TMINUS
    labels: dict[str, str] = field(default_factory=dict)  # T1's ``artifacts`` object, as read

    @property
    def records_hashes(self) -> bool:
        """Whether the manifest can vouch for files and image ids (only tminus's layout does)."""
        return self.layout == TMINUS

    def to_dict(self) -> dict[str, Any]:
        if self.layout == T1:
            return {"version": self.version, "release_date": self.release_date,
                    "git": {"commit": self.git.commit, "branch": self.git.branch,
                            "tag": self.git.tag},
                    "artifacts": dict(self.labels),
                    "docker_images": {s: r.image for s, r in self.docker_images.items()}}
        return {
            "schema": SCHEMA,
            "tool": "tminus",
            "version": self.version,
            "release_date": self.release_date,
            "git": self.git.to_dict(),
            "artifacts": [a.to_dict() for a in self.artifacts],
            "docker_images": {s: r.to_dict() for s, r in self.docker_images.items()},
        }

    def with_images(self, images: dict[str, ImageRecord]) -> Manifest:
        return replace(self, docker_images={**self.docker_images, **images})


# --- paths ---------------------------------------------------------------------------------------


def releases_dir(root: Path, settings: Settings) -> Path:
    return resolve_path(root, settings.release.releases_dir)


def manifest_path(root: Path, settings: Settings, version: ReleaseVersion) -> Path:
    return releases_dir(root, settings) / f"manifest_{version.tag}.json"


def checksum_path(manifest: Path) -> Path:
    return manifest.with_suffix(".sha256")


# --- text ----------------------------------------------------------------------------------------


def render(manifest: Manifest) -> str:
    return json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_checksum(manifest_file: Path, data: bytes) -> str:
    """``sha256sum`` text mode format: hex, two spaces, the bare file name."""
    return f"{hashlib.sha256(data).hexdigest()}  {manifest_file.name}\n"


def parse(text: str, *, source: str = "manifest") -> Manifest:
    """Either layout: tminus's (``artifacts`` a list) or the T-1 scripts' (an object)."""
    try:
        data = loads_json(text)  # nesting is bounded: 100 000 brackets deep is a finding
    except json.JSONDecodeError as exc:
        raise ReleaseFileError(f"{source}: not valid JSON (line {exc.lineno})") from None
    except Refused as exc:
        raise ReleaseFileError(f"{source} {exc}") from None
    try:
        if isinstance(data["artifacts"], dict):
            return _parse_t1(data)
        git = data["git"]
        artifacts = [Artifact(str(a["path"]), int(a["size"]), str(a["sha256"]),
                              str(a.get("kind", "checkpoint"))) for a in data["artifacts"]]
        return Manifest(str(data["version"]), str(data["release_date"]),
                        GitInfo(str(git["commit"]), str(git["branch"]), str(git["tag"])),
                        artifacts, _images(data))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # the exception text may quote a value from the file (a 50 MB "size"): cut to a line
        raise ReleaseFileError(f"{source}: missing or malformed field ({type(exc).__name__}: "
                               f"{clipped(str(exc))})") from None


def _parse_t1(data: dict[str, Any]) -> Manifest:
    """The document's scripts: a commit is required (the tag check needs it), the rest may be
    absent, since those scripts were edited by hand from team to team."""
    git = data.get("git") or {}
    version = str(data["version"])
    labels = {str(k): v if isinstance(v, str) else json.dumps(v)
              for k, v in data["artifacts"].items()}
    return Manifest(version, str(data.get("release_date") or ""),
                    GitInfo(str(git["commit"]), str(git.get("branch") or ""),
                            str(git.get("tag") or version)),
                    [], _images(data), layout=T1, labels=labels)


def _images(data: dict[str, Any]) -> dict[str, ImageRecord]:
    """``docker_images``: service → a record object, or a plain ``name:tag`` string."""
    images: dict[str, ImageRecord] = {}
    for service, raw in (data.get("docker_images") or {}).items():
        if isinstance(raw, str):
            images[str(service)] = ImageRecord(raw)
        else:
            images[str(service)] = ImageRecord(str(raw["image"]), _opt(raw.get("id")),
                                               _opt(raw.get("repo_digest")))
    return images


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def artifact_location(root: Path, artifact: Artifact) -> Path:
    """Where an artifact lives; a path that would leave the repository is refused outright."""
    relative = PurePosixPath(artifact.path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ReleaseFileError(f"artifact path '{clipped(artifact.path)}' leaves the repository")
    return root.joinpath(*relative.parts)


# --- files ---------------------------------------------------------------------------------------


def write(path: Path, manifest: Manifest) -> None:
    """Manifest first, then its checksum; each file is atomic on its own."""
    text = render(manifest)
    atomic_write_text(path, text)
    atomic_write_text(checksum_path(path), render_checksum(path, text.encode("utf-8")))


def read(path: Path) -> Manifest:
    return parse(read_release_text(path), source=path.name)


@dataclass(frozen=True)
class ChecksumResult:
    ok: bool
    message: str


def verify_checksum(path: Path) -> ChecksumResult:
    """What ``sha256sum -c`` would say about the manifest's ``.sha256``, in one sentence."""
    sums = checksum_path(path)
    if not sums.is_file():
        return ChecksumResult(False, f"{sums.name} is missing")
    try:
        lines = [ln for ln in sums.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        return ChecksumResult(False, f"{sums.name} cannot be read ({type(exc).__name__})")
    entries = dict(_checksum_entry(line) for line in lines)
    expected = entries.get(path.name)
    if expected is None:
        # `sha256sum releases/manifest_….json > …` run from the root names the path: the same
        # bytes are vouched for, though `sha256sum -c` then only works from the root
        expected = next((digest for name, digest in entries.items()
                         if PurePosixPath(name).name == path.name), None)
    if expected is None:
        return ChecksumResult(False, f"{sums.name} has no line for {path.name}")
    try:
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return ChecksumResult(False, f"{path.name} cannot be read ({type(exc).__name__})")
    if actual != expected:
        return ChecksumResult(False, f"{path.name} does not match {sums.name}: expected "
                                     f"{expected[:12]}…, found {actual[:12]}…")
    return ChecksumResult(True, f"{path.name} matches {sums.name} (sha256 {actual[:12]}…)")


def _checksum_entry(line: str) -> tuple[str, str]:
    """(file name, hex) of a ``sha256sum`` line: ``<hex>  name`` or ``<hex> *name``."""
    digest, _, rest = line.rstrip("\n").partition(" ")
    name = rest[1:] if rest[:1] in (" ", "*") else rest
    return name, digest.lower()
