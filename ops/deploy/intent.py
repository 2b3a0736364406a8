"""The record of a deploy or rollback in flight: what it changes, from what, and how far it got.

Written atomically once the environment's deploy lock is held and before anything changes
(``.tminus/deploys/<env>.json``, a folder that keeps itself out of ``git status``), rewritten at
each step, removed when the action ends in a way it can observe. So a file that outlives its
process names an action that was killed (SIGKILL, the OOM killer, a lost host). The next deploy
or rollback of the environment — which could take the lock only because that process is gone —
reads it to learn the version that really ran before (the majority label of a half-switched stack
is not it) and the latency baseline measured before the switch began.

An action interrupted in a way it *can* observe (Ctrl-C, SIGTERM) while it was changing the stack
removes the file like any other ending, and leaves the same record in its audit line instead
(``details.interrupted``); ``interrupted_in_log`` reads it back, so both kinds of interruption
recover the same way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ops.atomic import atomic_write_text, make_ignored_dir
from ops.deploy.lock import _process_start, pid_alive
from ops.stamps import utc_stamp

#: Far more than any state file tminus writes (a few hundred bytes); anything bigger is not one.
MAX_BYTES = 64 * 1024
#: Steps before any of these have changed nothing in the stack (checks, a backup, measuring).
UNCHANGED_STEPS = frozenset({"started", "gates", "backup", "baseline"})


class IntentUnreadable(ValueError):
    """The state file exists but is no intent tminus wrote (it writes complete files only)."""


@dataclass(frozen=True)
class Intent:
    """One deploy or rollback of one environment, as far as it got."""

    action: str  # deploy | rollback
    env: str
    from_version: str | None  # what really ran before it (never the majority of a mixed stack)
    to_version: str
    step: str = "started"  # gates, backup, baseline, migrate, switching <service>, watch, …
    baseline_p95_ms: float | None = None
    backup_id: str | None = None  # the backup taken before it (what --with-db goes back to)
    pid: int = field(default_factory=os.getpid)
    pid_start: str | None = field(default_factory=lambda: _process_start(os.getpid()))
    host: str = field(default_factory=socket.gethostname)
    started_at: str = field(default_factory=utc_stamp)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def settled_version(self) -> str | None:
        """The version the environment counts as running while this action is unfinished: a
        deploy's ``from`` (it never passed its watch), a rollback's target (the decision to go
        back stands, and a recovering run completes it)."""
        return self.to_version if self.action == "rollback" else self.from_version

    @property
    def changed_stack(self) -> bool:
        """Whether it had begun to change what runs (migrations, a switch, the watch after it)."""
        return self.step not in UNCHANGED_STEPS

    def describe(self) -> str:
        """``deploy of v0.4.0 from v0.3.0, stopped at: switching app``"""
        return (f"{self.action} of {self.to_version} from {self.from_version or 'nothing'}, "
                f"stopped at: {self.step}")

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "env": self.env, "from": self.from_version,
                "to": self.to_version, "step": self.step,
                "baseline_p95_ms": self.baseline_p95_ms, "backup_id": self.backup_id,
                "pid": self.pid,
                "pid_start": self.pid_start, "host": self.host, "started_at": self.started_at,
                "token": self.token}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Intent:
        """Raises IntentUnreadable when ``data`` is not an intent (a key missing or mistyped)."""
        def text(key: str, *, optional: bool = False) -> Any:
            value = data.get(key)
            if value is None and optional:
                return None
            if not isinstance(value, str) or not value or len(value) > 200:
                raise IntentUnreadable(f"{key!r} is not a short string")
            return value

        pid = data.get("pid")
        baseline = data.get("baseline_p95_ms")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise IntentUnreadable("'pid' is not an integer")
        if baseline is not None and (isinstance(baseline, bool)
                                     or not isinstance(baseline, int | float) or baseline < 0):
            raise IntentUnreadable("'baseline_p95_ms' is not a non-negative number")
        action = text("action")
        if action not in {"deploy", "rollback"}:
            raise IntentUnreadable(f"unknown action {action!r}")
        return cls(action=action, env=text("env"), from_version=text("from", optional=True),
                   to_version=text("to"), step=text("step"),
                   baseline_p95_ms=None if baseline is None else float(baseline),
                   backup_id=text("backup_id", optional=True), pid=pid,
                   pid_start=text("pid_start", optional=True), host=text("host"),
                   started_at=text("started_at"), token=text("token", optional=True) or "")


def intent_path(root: Path, env: str) -> Path:
    return root / ".tminus" / "deploys" / f"{env}.json"


def write_intent(path: Path, intent: Intent) -> None:
    """Atomically (temp file + fsync + rename): a reader sees the previous step or this one."""
    make_ignored_dir(path.parent)
    atomic_write_text(path, json.dumps(intent.to_dict(), sort_keys=True) + "\n")


def read_intent(path: Path) -> Intent | None:
    """The recorded intent, or None when there is none.

    Read as untrusted (it lives in the work tree): never through a symlink, never a FIFO, never
    more than ``MAX_BYTES``. Raises IntentUnreadable for anything tminus did not write.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = "is a symlink" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror})"
        raise IntentUnreadable(why) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IntentUnreadable("is not a regular file")
        raw = handle.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise IntentUnreadable(f"is larger than {MAX_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise IntentUnreadable("is not JSON") from None
    if not isinstance(data, dict):
        raise IntentUnreadable("is not a JSON object")
    return Intent.from_dict(data)


def remove_intent(path: Path, intent: Intent) -> None:
    """Remove the file only while it still records ``intent`` (never a successor's)."""
    try:
        current = read_intent(path)
    except IntentUnreadable:
        return
    if current is not None and current.token == intent.token:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def is_orphaned(intent: Intent) -> bool:
    """True when the process that recorded ``intent`` can no longer be running it.

    On this host: its pid is gone, a zombie, or now another program (the pid's start time
    differs), or it is this very process (an earlier action in it ended without removing the
    file). On another host nothing can be checked from here; the environment's lock, which a
    live holder keeps, is what protects it — a caller holding the lock may treat such an intent
    as interrupted, since the other host's lock had to be removed by hand for it to get there.
    """
    if intent.host != socket.gethostname():
        return True
    if intent.pid == os.getpid():
        return True
    return not pid_alive(intent.pid, intent.pid_start)


def interrupted_in_log(events: Iterable[Mapping[str, Any]], env: str) -> Intent | None:
    """The intent an interrupted (Ctrl-C, SIGTERM) deploy or rollback of ``env`` left in its
    audit line, when that is the newest deploy or rollback of ``env`` that began (one refused
    before it held the lock looked at nothing and passed nothing on); None otherwise."""
    newest: Mapping[str, Any] | None = None
    for event in events:
        details = event.get("details")
        refused = isinstance(details, dict) and details.get("began") is False
        if event.get("env") == env and event.get("action") in {"deploy", "rollback"} \
                and not refused:
            newest = event
    if newest is None:
        return None
    snapshot = (newest.get("details") or {}).get("interrupted")
    if not isinstance(snapshot, dict):
        return None
    try:
        return Intent.from_dict(snapshot)
    except IntentUnreadable:
        return None


# --- the latency baseline ------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineChoice:
    """Where the watch's p95 baseline comes from: ``recorded`` (by the interrupted run, before
    its switch), ``measure`` (now, on a stack that runs one version), ``none`` (nothing ran
    before) or ``skip`` (a mixed stack and nothing recorded: the p95 rule is off, and why)."""

    source: str
    p95_ms: float | None = None
    reason: str | None = None


def choose_baseline(running_versions: Iterable[str | None], recorded_p95_ms: float | None,
                    *, has_previous: bool) -> BaselineChoice:
    """Never a baseline from a mixed stack: its p95 is partly the new release's own."""
    if recorded_p95_ms is not None:
        return BaselineChoice("recorded", recorded_p95_ms)
    if not has_previous:
        return BaselineChoice("none", reason="nothing ran before")
    versions = sorted({v for v in running_versions if v})
    if len(versions) > 1:
        return BaselineChoice("skip", reason=(
            f"the running replicas carry {' and '.join(versions)} (an interrupted switch) and "
            "no baseline was recorded before it: the p95 rule is off, only the error rate "
            "counts"))
    return BaselineChoice("measure")


# --- the file as an action goes ----------------------------------------------------------------


@dataclass
class Tracker:
    """The state file of the running action: ``step()`` and ``baseline()`` rewrite it.

    ``path`` None (a dry run) records nothing. ``recovered`` is the interrupted action this one
    took over, if any.
    """

    path: Path | None
    intent: Intent
    recovered: Intent | None = None

    def start(self) -> None:
        if self.path is not None:
            write_intent(self.path, self.intent)

    def step(self, name: str) -> None:
        self._update(replace(self.intent, step=name))

    def baseline(self, p95_ms: float | None) -> None:
        self._update(replace(self.intent, baseline_p95_ms=p95_ms))

    def backup(self, backup_id: str | None) -> None:
        self._update(replace(self.intent, backup_id=backup_id))

    def left_unfinished(self, *, settled: bool, interrupted: bool) -> Intent | None:
        """What the ended action leaves for the next one to recover (see ``unfinished``)."""
        return unfinished(self.intent, self.recovered, settled=settled, interrupted=interrupted)

    def close(self, *, keep: Intent | None = None) -> None:
        """Remove the state file; or, with ``keep``, leave that record in it (the audit line
        that should have carried it could not be written)."""
        if self.path is None:
            return
        if keep is not None:
            write_intent(self.path, keep)
        else:
            remove_intent(self.path, self.intent)

    def _update(self, intent: Intent) -> None:
        self.intent = intent
        if self.path is not None:
            write_intent(self.path, intent)


def unfinished(own: Intent, recovered: Intent | None, *, settled: bool,
               interrupted: bool) -> Intent | None:
    """What an action that ended leaves for the next deploy or rollback to recover.

    Nothing once what runs is one version again (success, rolled back); its own record when it
    was interrupted (Ctrl-C, SIGTERM) while it was changing the stack; the interrupted action it
    took over when it ended before changing anything (the stack is still as that one left it);
    nothing when it failed after changing the stack by its own decision (``--no-auto-rollback``).
    """
    if settled:
        return None
    if own.changed_stack:
        return own if interrupted else None
    return recovered
