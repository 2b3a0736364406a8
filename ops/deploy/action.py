"""One way to run a changing action: the lock, the clock, the outcome, the audit line.

Deploy, rollback, scale, backup and restore all end the same way, whichever way they end::

    with changing_action(root, env, action="scale", describe=line, audit_log=log) as act:
        ...                                  # the action itself; it may set act.outcome

takes the environment's deploy lock (unless ``lock=False``: a backup changes no service, so it
runs beside a deploy; with ``reentrant=True`` a lock this very process holds is not taken again:
``rollback --with-db`` restores inside the rollback's lock), times the action, turns every way
out — success, a failure, a rollback the body reports, Ctrl-C or SIGTERM — into one ``Outcome``,
writes the one audit line ``describe`` builds from it (inside the lock, so the history changes
before the environment is free) and hands the finished ``Act`` to ``done``. Kamal's ``with_lock``
is the model.

The body reports what the exception cannot say: ``act.outcome = Outcome.ROLLED_BACK`` (with
``act.reason``) before raising, or ``Outcome.DRY_RUN``. An exception otherwise makes the outcome
``FAILED`` (``INTERRUPTED`` for KeyboardInterrupt) with the reason ``failure_reason`` gives.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.deploy.audit import AuditEvent, record
from ops.deploy.lock import LockInfo, deploy_lock, lock_path
from ops.deploy.outcome import SETTLED, Outcome, failure_reason, outcome_of
from ops.stamps import operator

__all__ = ["SETTLED", "Act", "Outcome", "changing_action", "failure_reason", "outcome_of"]


@dataclass
class Act:
    """One changing action under way, then ended: what ``describe`` and ``done`` read."""

    action: str
    env: str
    version: str | None
    started: float
    dry_run: bool = False
    #: what the body reports (ROLLED_BACK, DRY_RUN, FAILED); the wrapper settles it on the way out
    outcome: Outcome = Outcome.SUCCESS
    reason: str | None = None
    #: the exception the action ended with (None: it returned)
    error: BaseException | None = None
    duration_s: float = 0.0
    #: True once the lock was held (or, unlocked or dry, once the body ran)
    locked: bool = False
    #: the audit line was written (False: describe gave none, or writing it failed)
    audited: bool = False
    #: writing the audit line failed (a full disk): ``done`` still runs, and can tell
    audit_failed: bool = False

    @property
    def interrupted(self) -> bool:
        return self.outcome is Outcome.INTERRUPTED

    @property
    def settled(self) -> bool:
        return self.outcome in SETTLED

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def end(self, exc: BaseException | None) -> None:
        """Settle the outcome and the reason from the way out (``exc``: None for a return)."""
        self.duration_s = self.elapsed()
        if exc is None:
            return
        self.error = exc
        outcome = outcome_of(exc, self.outcome)
        if outcome is not self.outcome:  # a reported FAILED or ROLLED_BACK keeps its reason
            self.outcome, self.reason = outcome, failure_reason(exc)


@contextmanager
def changing_action(root: Path, env: str, *, action: str, version: str | None = None,
                    describe: Callable[[Act], AuditEvent | None],
                    audit_log: Path,
                    done: Callable[[Act], None] | None = None,
                    lock: bool = True, reentrant: bool = False, dry_run: bool = False,
                    lock_wait_s: float = 0.0, started: float | None = None,
                    say: Callable[[str], None] | None = None,
                    progress: Callable[[str], None] | None = None,
                    warn: Callable[[str], None] | None = None,
                    dry_lock_note: bool = True,
                    quiet_audit_after_failure: bool = False,
                    cluster_lock: AbstractContextManager[Any] | None = None) -> Iterator[Act]:
    """Run the block as ``action`` on ``env``: locked, timed, its outcome settled and audited.

    ``describe(act)`` builds the audit line (None: no line, e.g. a deploy's dry run); it runs
    once, after the block, inside the lock. ``done(act)`` runs after the line is written (or
    failed to be: ``act.audit_failed``), with the lock still held, whether the action succeeded
    or not (for ``--json`` and ``--output``, which CI reads precisely when it failed). A lock
    that cannot be had (``LockHeld``) is a way out like any other: audited as failed, with
    ``act.locked`` False.
    ``quiet_audit_after_failure``: when the action failed and the audit line cannot be written
    either (a full disk), the action's own error is the one raised. ``cluster_lock``: a lock
    shared by operators on other machines (a swarm's, ``ops.deploy.swarm_lock``), taken inside
    the file lock.
    """
    act = Act(action, env, version, started if started is not None else time.perf_counter(),
              dry_run=dry_run)
    speak = say or (lambda _line: None)
    ended = False
    try:
        with ExitStack() as held:
            if lock:
                held.enter_context(_environment_lock(root, env, action, version, dry_run=dry_run,
                                                     wait_s=lock_wait_s, reentrant=reentrant,
                                                     say=speak, progress=progress or speak,
                                                     warn=warn or (lambda m: speak(
                                                         f"  warning: {m}")),
                                                     dry_note=dry_lock_note))
                if cluster_lock is not None:
                    held.enter_context(cluster_lock)
            act.locked = True
            try:
                yield act
            except BaseException as exc:
                act.end(exc)
                raise
            else:
                act.end(None)
            finally:
                ended = True
                _close(act, describe, audit_log, done, quiet_audit_after_failure)
    except BaseException as exc:
        if not ended:  # the lock refused it: nothing ran, the attempt is still on record
            act.end(exc)
            _close(act, describe, audit_log, done, quiet_audit_after_failure)
        raise


def _close(act: Act, describe: Callable[[Act], AuditEvent | None], audit_log: Path,
           done: Callable[[Act], None] | None, quiet: bool) -> None:
    try:
        event = describe(act)
        if event is not None:
            record(audit_log, event)
            act.audited = True
    except BaseException as exc:
        act.audit_failed = True
        if not (quiet and act.error is not None and isinstance(exc, OSError)):
            raise
    finally:
        if done is not None:
            done(act)


@contextmanager
def _environment_lock(root: Path, env: str, action: str, version: str | None, *,
                      dry_run: bool, wait_s: float, reentrant: bool,
                      say: Callable[[str], None], progress: Callable[[str], None],
                      warn: Callable[[str], None], dry_note: bool) -> Iterator[None]:
    """The environment's deploy lock for the block (``LockHeld``, exit 1, naming the holder);
    none under ``--dry-run`` (it says so), and none again when ``reentrant`` and this very
    process holds it."""
    path = lock_path(root, env)
    if dry_run:
        if dry_note:
            say(f"[dry-run] take the {env} deploy lock ({path})")
        yield
        return
    if reentrant and held_by_this_process(path):
        yield
        return
    info = LockInfo(env=env, action=action, version=version, holder=operator())
    with deploy_lock(root, info, wait_s=wait_s, warn=warn, progress=progress):
        yield


def held_by_this_process(path: Path) -> bool:
    try:
        holder = LockInfo.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False
    return holder.pid == os.getpid() and holder.host == socket.gethostname()
