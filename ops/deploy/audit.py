"""The audit log: one JSON line per deploy, rollback, scale, backup and restore.

Appended with one ``os.write`` on an ``O_APPEND`` descriptor, so concurrent writers never
interleave and a crash never leaves half a line behind; opened with ``O_NOFOLLOW``, so a
``releases/deployments.jsonl`` that is a symlink (committed, or planted) is refused rather than
appended to wherever it points.

Read as untrusted input: the log is a file in the repository that anyone with write access can
edit, and a line that is not UTF-8, not JSON, nested 100 000 deep or gigabytes long must not
make every backup fail (``UnicodeDecodeError``, ``RecursionError``) or hide the events after it.
Such a line is skipped, with a warning on stderr (the ``ops.audit`` logger) naming its number.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import socket
import stat
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from ops.bounded import Refused, loads_json
from ops.deploy.outcome import Outcome
from ops.errors import OpsError, UsageError
from ops.stamps import operator, utc_stamp

log = logging.getLogger("ops.audit")

#: A line longer than this is no event tminus wrote: skipped without being held in memory.
MAX_LINE_BYTES = 1 << 20
#: Created as before: readable by the team that reads the history.
MODE = 0o644

ACTIONS = ("deploy", "rollback", "scale", "backup", "restore")


@dataclass
class AuditEvent:
    action: str
    env: str
    #: written as its ``recorded`` value: success | failed | rolled_back | dry_run (one of
    #: those words as a plain string is taken too)
    result: Outcome | str
    from_version: str | None = None
    to_version: str | None = None
    duration_s: float = 0.0
    skipped_checks: bool = False
    skipped_backup: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    who: str = field(default_factory=operator)
    host: str = field(default_factory=socket.gethostname)
    at: str = field(default_factory=utc_stamp)

    def to_json(self) -> str:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        data["result"] = Outcome(self.result).recorded
        return json.dumps(data, sort_keys=True, ensure_ascii=False)


class AuditNotWritten(OpsError, OSError):
    """Appending the audit line failed (a full disk): exit 1, and no torn line is left. An
    ``OSError`` too, for callers that tolerate a failing audit write while reporting another."""


class AuditLogRefused(UsageError, OSError):
    """The audit log's path is a symlink or not a regular file: never written through.

    A usage error (exit 2, one line naming the path) that is also an ``OSError``, so a caller
    that already tolerates a failing audit write while it reports another failure (a full disk)
    tolerates this one the same way instead of hiding the first error.
    """


def record(log_path: Path, event: AuditEvent) -> None:
    append_event_line(log_path, event.to_json())


def append_event_line(path: Path, line: str) -> None:
    """Append ``line`` with one ``os.write`` on an ``O_APPEND | O_NOFOLLOW`` descriptor, then
    fsync. POSIX makes such appends atomic with respect to each other; ``O_NOFOLLOW`` makes the
    open fail on a symlink, and ``O_NONBLOCK`` keeps a FIFO in its place from blocking it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a lone surrogate (bytes that were not UTF-8 in an argument) becomes a JSON escape, so the
    # line is always UTF-8 and still reads back as what was recorded
    data = (line.rstrip("\n") + "\n").encode("utf-8", "backslashreplace")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AuditLogRefused(f"{path} is a symlink: the audit log is never written through "
                                  "one", hint="replace it with a regular file") from None
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads
            raise AuditLogRefused(f"{path} is not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuditLogRefused(f"{path} is not a regular file")
        _write_whole_line(fd, data, info.st_size, path)
    finally:
        os.close(fd)


def _write_all_or_raise(fd: int, data: bytes) -> None:
    """One ``os.write``; a short one (the disk filled up half-way) is ENOSPC."""
    if os.write(fd, data) != len(data):
        raise OSError(errno.ENOSPC, "short write")


def _write_whole_line(fd: int, data: bytes, size_before: int, path: Path) -> None:
    """The line and its fsync, or nothing: a full disk must not leave half a line behind."""
    try:
        _write_all_or_raise(fd, data)
        os.fsync(fd)
    except OSError as exc:
        with suppress(OSError):  # only a torn tail of ours can sit past size_before
            if os.fstat(fd).st_size > size_before:
                os.ftruncate(fd, size_before)
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise AuditNotWritten(f"the audit line was not written to {path}: {reason}",
                              hint="free space on that disk; the action itself is described "
                                   "above") from None


def read_events(log_path: Path, *, env: str | None = None) -> Iterator[dict[str, Any]]:
    """Events oldest first; a line that is not an event is skipped with a warning naming it,
    rather than hiding every later one or failing the task that reads the log."""
    handle = _open_for_reading(Path(log_path))
    if handle is None:
        return
    with handle:
        for number, raw in enumerate(_lines(handle), start=1):
            event, problem = _event(raw)
            if problem is not None:
                _warn_once(log_path, number, problem)
            if event is not None and (env is None or event.get("env") == env):
                yield event


def _open_for_reading(path: Path) -> IO[bytes] | None:
    """The log opened without following a symlink or blocking on a FIFO; None when it is
    absent, and None with a warning when it is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = "is a symlink" if exc.errno == errno.ELOOP else \
            f"cannot be read ({exc.strerror or type(exc).__name__})"
        _warn_once(path, 0, f"{why}: not read")
        return None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        _warn_once(path, 0, "is not a regular file: not read")
        return None
    return handle


def _lines(handle: IO[bytes]) -> Iterator[bytes | None]:
    """Each line; None for one over ``MAX_LINE_BYTES``, whose bytes are read on in chunks and
    dropped, never held whole."""
    while line := handle.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def _event(raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """(the event, None), (None, why the line is no event), or (None, None) for a blank line."""
    if raw is None:
        return None, f"longer than {MAX_LINE_BYTES} bytes"
    if not raw.strip():
        return None, None
    try:
        event = loads_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError:
        return None, "not JSON"
    except Refused as exc:
        return None, f"JSON that {exc}"
    return (event, None) if isinstance(event, dict) else (None, "JSON but not an event object")


#: A count above this in a replicas record is no count tminus wrote (the log is a file anyone
#: with write access to the repository can edit): the record is ignored.
MAX_RECORDED_REPLICAS = 200
_SCALE_TARGET = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)=(\d{1,6})")


def asked_replicas(events: Iterable[dict[str, Any]], *, project: str | None = None
                   ) -> dict[str, int]:
    """Per service, the replica count the latest successful deploy, rollback or scale left
    (``details.replicas``; a scale line written before that field, from its ``app=2`` label):
    what the operator last asked for, which a later deploy restores when replicas were lost in
    between. Lines of another compose ``project`` (``details.project``) do not count, and a
    value that is no small count is ignored."""
    asked: dict[str, int] = {}
    for event in events:
        details = event.get("details")
        if (event.get("action") not in {"deploy", "rollback", "scale"}
                or event.get("result") != Outcome.SUCCESS.recorded
                or not isinstance(details, dict)):
            continue
        if project is not None and details.get("project") not in {None, project}:
            continue
        counts = details.get("replicas")
        if counts is None and event.get("action") == "scale":
            label = event.get("to_version")
            counts = dict(_SCALE_TARGET.findall(label)) if isinstance(label, str) else None
            counts = {k: int(v) for k, v in (counts or {}).items()}
        if not isinstance(counts, dict):
            continue
        for service, count in counts.items():
            if (isinstance(service, str) and type(count) is int
                    and 0 <= count <= MAX_RECORDED_REPLICAS):
                asked[service] = count
    return asked


_warned: set[tuple[str, int]] = set()


def _warn_once(path: Path, number: int, problem: str) -> None:
    """One warning per bad line per process: a task reads the log several times."""
    key = (str(path), number)
    if key in _warned:
        return
    _warned.add(key)
    where = f"{path}, line {number}" if number else str(path)
    log.warning("audit log %s: %s%s", where, problem, "; skipped" if number else "")
