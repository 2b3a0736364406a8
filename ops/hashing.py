"""The one SHA-256 engine: predeploy, create-release, verify-release and the deploy tamper gate
all hash checkpoints through here.

(First version: streamed reads in a thread pool. The performance issue refines it with a cache.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(paths: Sequence[Path], *, workers: int = 2) -> dict[Path, str]:
    """SHA-256 of each path; hashlib releases the GIL, so threads keep every core busy."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(paths, pool.map(sha256_file, paths), strict=True))


def checkpoint_files(root: Path, directory: Path, patterns: Sequence[str]) -> list[Path]:
    """Model files under ``directory`` matching ``patterns``, sorted, never following a symlink
    out of the repository."""
    base = directory if directory.is_absolute() else root / directory
    if not base.is_dir():
        return []
    found: set[Path] = set()
    for pattern in patterns:
        for path in base.rglob(pattern):
            if path.is_symlink() or not path.is_file():
                continue
            found.add(path)
    return sorted(found)
