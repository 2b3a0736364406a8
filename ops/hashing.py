"""The one SHA-256 engine: predeploy, create-release, verify-release, backups and the deploy
tamper gate all hash through here, so making it fast once makes every caller fast.

Why it is shaped this way (figures in docs/performance.md):

- ``hashlib`` is OpenSSL and releases the GIL on large buffers, so a thread pool keeps every core
  busy when there are several files; files are handed out largest first so one huge checkpoint
  does not start last and leave a core idle at the end.
- SHA-256 of one file is inherently sequential: a single huge file runs on one core, read with
  ``readinto`` into one reused buffer per worker. Memory stays constant whatever the file sizes.
  ``mmap`` would save one copy (measured 0-8 % less CPU here), but a file truncated while
  mapped kills the process with SIGBUS, which no ``except`` can turn into a message.
- The cache (:class:`HashCache`) trusts a digest only while the file's identity — size,
  mtime_ns, ctime_ns, inode, device — is unchanged, the way git's index does; a file changed
  within the last seconds is never trusted ("racily clean", as git calls it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.atomic import atomic_write_text, make_ignored_dir

if TYPE_CHECKING:
    from ops.config import Settings

log = logging.getLogger("ops.hashing")

#: Read size: small enough to stay in the L2 cache between the copy and the hash, large enough to
#: keep syscalls rare. 256 KiB to 1 MiB measured within 5 % of each other; 512 KiB came out best.
CHUNK = 512 * 1024
#: A file whose mtime is this close to "now" may still change within one timestamp tick, so its
#: digest is not cached (2 s covers filesystems with coarse timestamps).
RACY_WINDOW_NS = 2_000_000_000
#: Below this many bytes to read, a progress bar would only flicker.
PROGRESS_MIN_BYTES = 64 * 1024 * 1024
CACHE_FILE = "hashes.json"
CACHE_FORMAT = 1

#: Called from worker threads with the number of bytes just hashed.
ProgressCallback = Callable[[int], None]


def sha256_file(path: Path, *, progress: ProgressCallback | None = None) -> str:
    """SHA-256 hex digest of one file, in constant memory."""
    return _hash_open(Path(path), bytearray(CHUNK), progress)[0]


@dataclass(frozen=True)
class FileIdentity:
    """What must stay equal for a cached digest to still describe the file's bytes."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def settled(self, now_ns: int) -> bool:
        """False while a same-size rewrite could still land in the same mtime tick (git's
        "racily clean" rule). A future mtime is never settled."""
        return self.mtime_ns < now_ns - RACY_WINDOW_NS


class HashCache:
    """Digests of files already read, keyed on their absolute path and :class:`FileIdentity`.

    Stored as JSON under ``ops.artifacts.cache_dir`` (default ``.tminus/cache/hashes.json``,
    ignored by git) and written atomically. It is an accelerator, never a source of truth: a
    corrupt or unwritable cache file costs speed, not correctness, and the release's VERSION file
    remains what checkpoints are compared against. With ``trust=False`` (``--no-cache``) every
    file is read again and the fresh digests replace the stored ones.
    """

    def __init__(self, path: Path, *, trust: bool = True) -> None:
        self.path = Path(path)
        self.trust = trust
        self._entries: dict[str, dict[str, Any]] | None = None
        self._changed: set[str] = set()

    @classmethod
    def for_project(cls, root: Path, settings: Settings, *,
                    use_cache: bool = True) -> HashCache | None:
        """The project's cache, or None when ``ops.artifacts.cache`` is off."""
        if not settings.artifacts.cache:
            return None
        directory = settings.artifacts.cache_dir
        base = directory if directory.is_absolute() else root / directory
        return cls(base / CACHE_FILE, trust=use_cache)

    def lookup(self, path: Path, identity: FileIdentity) -> str | None:
        if not self.trust:
            return None
        entry = self._load().get(_key(path))
        if entry is None or _identity(entry) != identity:
            return None
        digest = entry.get("sha256")
        return digest if isinstance(digest, str) and len(digest) == 64 else None

    def store(self, path: Path, identity: FileIdentity, digest: str) -> None:
        key = _key(path)
        self._load()[key] = {"size": identity.size, "mtime_ns": identity.mtime_ns,
                             "ctime_ns": identity.ctime_ns, "ino": identity.ino,
                             "dev": identity.dev, "sha256": digest}
        self._changed.add(key)

    def save(self) -> None:
        """Merge with what another process may have saved meanwhile, drop entries of files that
        are gone, and replace the file atomically. Failure to write is logged, never raised."""
        if not self._changed:
            return
        ours = self._load()
        merged = {k: v for k, v in _read_entries(self.path).items() if Path(k).exists()}
        merged.update({k: ours[k] for k in self._changed})
        text = json.dumps({"format": CACHE_FORMAT, "entries": merged}, sort_keys=True)
        try:
            make_ignored_dir(self.path.parent)
            atomic_write_text(self.path, text + "\n", mode=0o600)
        except OSError as exc:
            log.warning("hash cache not saved (%s): %s", self.path, exc.strerror or exc)
            return
        self._entries = merged
        self._changed.clear()

    def __len__(self) -> int:
        return len(self._load())

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = _read_entries(self.path)
        return self._entries


@dataclass
class HashRun:
    """Digests plus what it took to get them: what a report or a benchmark shows."""

    digests: dict[Path, str] = field(default_factory=dict)
    files_read: int = 0
    bytes_read: int = 0
    cache_hits: int = 0
    bytes_cached: int = 0
    seconds: float = 0.0

    @property
    def read_rate(self) -> float:
        """Bytes per second actually hashed (0 when nothing was read)."""
        return self.bytes_read / self.seconds if self.bytes_read and self.seconds else 0.0


def hash_many(paths: Iterable[Path], *, workers: int | None = None,
              cache: HashCache | None = None,
              progress: bool | ProgressCallback = False) -> HashRun:
    """Hash every path (duplicates once), reading only what the cache cannot vouch for.

    ``workers`` defaults to the CPUs this process may run on. ``progress=True`` shows a
    transient bar on stderr when it is a terminal and there is enough to read; a callable
    receives byte counts instead. Read errors propagate as ``OSError`` naming the file.
    """
    started = time.perf_counter()
    ordered = list(dict.fromkeys(Path(p) for p in paths))
    run = HashRun()
    found: dict[Path, str] = {}
    todo: list[tuple[Path, int]] = []
    for path in ordered:
        seen = FileIdentity.of(path.stat())
        digest = cache.lookup(path, seen) if cache is not None else None
        if digest is None:
            todo.append((path, seen.size))
        else:
            found[path] = digest
            run.cache_hits += 1
            run.bytes_cached += seen.size
    todo.sort(key=lambda item: item[1], reverse=True)  # largest first: no idle core at the end
    total = sum(size for _, size in todo)
    with _progress_sink(progress, total) as sink:
        for path, digest, identity, read in _read_all([p for p, _ in todo], workers, sink):
            found[path] = digest
            run.files_read += 1
            run.bytes_read += read
            if cache is not None and identity is not None:
                cache.store(path, identity, digest)
    if cache is not None:
        cache.save()
    run.digests = {path: found[path] for path in ordered}
    run.seconds = time.perf_counter() - started
    return run


def hash_files(paths: Sequence[Path], *, workers: int | None = None,
               cache: HashCache | None = None,
               progress: bool | ProgressCallback = False) -> dict[Path, str]:
    """SHA-256 of each path, in the order given (see :func:`hash_many` for the options)."""
    return hash_many(paths, workers=workers, cache=cache, progress=progress).digests


def checkpoint_files(root: Path, directory: Path, patterns: Sequence[str]) -> list[Path]:
    """Model files under ``directory`` matching ``patterns``, sorted. Symlinks are never
    followed, neither to files nor to directories: a link may lead out of the repository, and
    what is hashed must be what the release ships."""
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


# --- reading --------------------------------------------------------------------------------------

_Result = tuple[Path, str, FileIdentity | None, int]


def _read_all(paths: list[Path], workers: int | None,
              progress: ProgressCallback | None) -> Iterator[_Result]:
    """Hash ``paths`` (already in the order to start them); yields as each finishes."""
    count = min(len(paths), max(1, workers or _cpus()))
    if count <= 1:
        buffer = bytearray(CHUNK)
        for path in paths:
            yield _read_one(path, buffer, progress)
        return
    local = threading.local()

    def job(path: Path) -> _Result:
        buffer: bytearray | None = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = bytearray(CHUNK)  # one per worker thread: constant memory
        return _read_one(path, buffer, progress)

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="sha256") as pool:
        yield from pool.map(job, paths)


def _read_one(path: Path, buffer: bytearray, progress: ProgressCallback | None) -> _Result:
    """One file; the identity is returned only when the bytes read are the bytes the identity
    describes (unchanged during the read, and settled), so only then may it be cached."""
    now_ns = time.time_ns()
    digest, before, after, read = _hash_open(path, buffer, progress)
    stable = before == after and read == before.size and before.settled(now_ns)
    return path, digest, before if stable else None, read


def _hash_open(path: Path, buffer: bytearray,
               progress: ProgressCallback | None) -> tuple[str, FileIdentity, FileIdentity, int]:
    view = memoryview(buffer)
    digest = sha256()
    read = 0
    with path.open("rb", buffering=0) as handle:
        fd = handle.fileno()
        before = FileIdentity.of(os.fstat(fd))
        with contextlib.suppress(AttributeError, OSError):  # a hint: not on every platform
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            read += count
            if progress is not None:
                progress(count)
        after = FileIdentity.of(os.fstat(fd))
    return digest.hexdigest(), before, after, read


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS
        return os.cpu_count() or 1


# --- the cache file -------------------------------------------------------------------------------


def _key(path: Path) -> str:
    return str(path.absolute())


def _identity(entry: dict[str, Any]) -> FileIdentity | None:
    try:
        return FileIdentity(int(entry["size"]), int(entry["mtime_ns"]), int(entry["ctime_ns"]),
                            int(entry["ino"]), int(entry["dev"]))
    except (KeyError, TypeError, ValueError):
        return None


def _read_entries(path: Path) -> dict[str, dict[str, Any]]:
    """The stored entries; a missing, unreadable or foreign file is an empty cache."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {str(k): v for k, v in entries.items() if isinstance(v, dict)}


# --- progress -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _progress_sink(progress: bool | ProgressCallback,
                   total: int) -> Iterator[ProgressCallback | None]:
    """A callable given by the caller, a rich bar on a terminal, or nothing. rich is imported
    only when a bar is really shown, so a predeploy over tiny checkpoints never pays for it."""
    if callable(progress):
        yield progress
        return
    if not progress or total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("hashing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("hashing", total=total)
        yield lambda count: bar.advance(task, count)
