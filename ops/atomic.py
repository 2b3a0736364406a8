"""Atomic writes: a reader sees the old file or the new one, never half of either.

Manifests, VERSION files, backup metadata and lock files go through here (audit lines are
appended by ops/deploy/audit.py, one write each)
(DESIGN.md: temp file + fsync + rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def make_ignored_dir(directory: Path) -> None:
    """Create a cache directory that keeps itself out of ``git status``: a ``.gitignore`` holding
    ``*`` (as pytest and mypy mark their caches), so a project whose own .gitignore does not list
    it still has a clean work tree (an untracked cache file would make release_tag.worktree_clean
    warn and create-release refuse a "dirty" tree).

    Only a directory created here gets the marker: an existing one (``cache_dir: "."``, or a
    folder the project made) may hold files that are tracked, and is left as it is.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True)
    except FileExistsError:  # made before, or by a concurrent run that writes the marker itself
        return
    atomic_write_text(directory / ".gitignore", "# tminus's local cache: never committed\n*\n")


def fsync_dir(directory: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
