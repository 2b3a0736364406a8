"""The environment's deploy lock: one deploy, rollback or scale at a time, and never a stuck one.

The lock is a small JSON file (holder, host, pid, the pid's start time, version, action, start
time). It is created complete or not at all: the details are written to a temporary file which
is then hard-linked to the lock path, and ``link`` fails when the path exists (the O_EXCL of
rename). A lock whose process is gone on this host — a deploy killed with SIGKILL — is reclaimed
with a warning, so a crash can never block the next deploy; a live holder makes the next one wait
up to ``--lock-wait`` and then exit 1 naming the holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.atomic import atomic_write_text, make_ignored_dir
from ops.errors import LockHeld
from ops.stamps import utc_stamp


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses): field 3,
    the state, is index 0; empty when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return []
    return stat.rsplit(")", 1)[-1].split()


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat): guards against pid reuse."""
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else None


def _process_state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def pid_alive(pid: int, start: str | None = None) -> bool:
    """True while ``pid`` runs and is the same process (not a zombie, not a reused pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _process_state(pid) in {"Z", "X"}:
        return False
    return not (start is not None and _process_start(pid) not in {None, start})


@dataclass(frozen=True)
class LockInfo:
    env: str
    action: str
    version: str | None
    holder: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    pid_start: str | None = None
    started_at: str = field(default_factory=utc_stamp)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def describe(self) -> str:
        what = f"{self.action} of {self.version}" if self.version else self.action
        return (f"{self.holder}@{self.host} (pid {self.pid}, {what}, "
                f"since {self.started_at})")

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        data: dict[str, Any] = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def lock_path(root: Path, env: str) -> Path:
    return root / ".tminus" / "locks" / f"deploy-{env}.lock"


class DeployLock:
    """``with DeployLock(path, info, wait_s=…):`` holds the environment for the block."""

    def __init__(self, path: Path, info: LockInfo, *, wait_s: float = 0.0,
                 poll_s: float = 0.5, warn: Callable[[str], None] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.info = info if info.pid_start else LockInfo(**{**asdict(info),
                                                            "pid_start": _process_start(info.pid)})
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.warn = warn or (lambda _m: None)
        self.progress = progress or (lambda _m: None)
        self.held = False

    def __enter__(self) -> DeployLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def acquire(self) -> LockInfo:
        deadline = time.monotonic() + self.wait_s
        announced = False
        while True:
            if self._try_create():
                self.held = True
                return self.info
            holder = self.read()
            if holder is None or self._stale(holder):
                continue  # reclaimed (or vanished between our attempts): try again at once
            if time.monotonic() >= deadline:
                raise LockHeld(
                    f"the {self.info.env} deploy lock is held by {holder.describe()}",
                    hint=(f"wait for it to finish (or pass --lock-wait); if that process is "
                          f"gone on another host, remove {self.path}"))
            if not announced:
                self.progress(f"waiting up to {self.wait_s:.0f}s for the {self.info.env} lock "
                              f"held by {holder.describe()}")
                announced = True
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))

    def read(self) -> LockInfo | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return LockInfo.from_json(text)
        except (ValueError, TypeError):
            # Never written by us half-way (we link complete files), so it is foreign junk.
            self.warn(f"reclaiming unreadable lock file {self.path}")
            self._remove_if_unchanged(text)
            return None

    def release(self) -> None:
        """Remove the lock only if it is still ours (a reclaimer may have taken it)."""
        if not self.held:
            return
        self.held = False
        current = self.read()
        if current is not None and current.token == self.info.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _try_create(self) -> bool:
        make_ignored_dir(self.path.parent)  # a lock left by a kill never dirties the tree
        staging = self.path.with_name(f".{self.path.name}.{self.info.token}")
        atomic_write_text(staging, json.dumps(asdict(self.info), sort_keys=True) + "\n")
        try:
            os.link(staging, self.path)
        except FileExistsError:
            return False
        finally:
            staging.unlink(missing_ok=True)
        return True

    def _stale(self, holder: LockInfo) -> bool:
        """Reclaim a lock whose process died on this host; a remote holder is never guessed."""
        if holder.host != socket.gethostname() or pid_alive(holder.pid, holder.pid_start):
            return False
        self.warn(f"reclaiming the {holder.env} deploy lock of {holder.describe()}: "
                  "that process is gone")
        with contextlib.suppress(FileNotFoundError):
            self._remove_if_unchanged(self.path.read_text(encoding="utf-8"))
        return True

    def _remove_if_unchanged(self, seen: str) -> None:
        """Two reclaimers must not delete each other's fresh lock: move aside, compare, drop."""
        aside = self.path.with_name(f".{self.path.name}.stale.{self.info.token}")
        try:
            self.path.rename(aside)
        except FileNotFoundError:
            return
        if aside.read_text(encoding="utf-8") != seen:
            # someone re-created it in between: put theirs back if the slot is free
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        aside.unlink(missing_ok=True)


@contextlib.contextmanager
def deploy_lock(root: Path, info: LockInfo, *, wait_s: float = 0.0,
                warn: Callable[[str], None] | None = None,
                progress: Callable[[str], None] | None = None) -> Iterator[DeployLock]:
    lock = DeployLock(lock_path(root, info.env), info, wait_s=wait_s, warn=warn,
                      progress=progress)
    with lock:
        yield lock
