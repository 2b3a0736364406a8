"""Restore an environment's Postgres and Redis from a backup: all or nothing, under the lock.

The order is the safety argument:

1. The environment's deploy lock is taken, on a swarm the swarm's too (a deploy, rollback or
   scale holding it makes the restore refuse, naming the holder), and the backup is pinned so
   that no process's retention deletes it while it is read; then it is verified (checksums,
   pg_restore reads it, the Redis file parses).
2. A spare, empty db index of the Redis server is claimed (SWAPDB needs Redis 4.0; no spare
   index, or an older Redis, refuses before anything is touched), and a safety backup of the
   current state is taken (``label: safety``; retention keeps it apart from ``keep``).
3. Redis: every key is RESTOREd into the spare index; no client of the real index sees anything.
4. Postgres is restored in place in one transaction (``ops.runtime.postgres.apply_restore``),
   verified inside it (every table's row count and the alembic revision against backup.json)
   before COMMIT.
5. ``SWAPDB`` makes the staged keys the real index's content in one atomic step, checked against
   the backup's key count; the previous keys, now in the spare index, are dropped.

A failure in 3 or 4 leaves both stores exactly as they were (the staged keys are discarded, the
transaction rolls back). A failure in 5, after Postgres committed, returns Postgres to its state
before the restore from the safety backup, automatically. Every failure message says what state
the stores are in and names the safety backup.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ops.config import Settings, resolve_path
from ops.deploy.action import Act, Outcome, changing_action
from ops.deploy.audit import AuditEvent
from ops.deploy.backend import store_route
from ops.deploy.backup import (
    PG_FILE,
    REDIS_FILE,
    Backup,
    ProgressFn,
    Targets,
    create_backup,
    deployed_version,
    find_backup,
    pin,
    targets,
    verify_backup,
)
from ops.deploy.lock import _process_start, lock_path, pid_alive
from ops.errors import ConfigError, DeployFailed, OpsError, UsageError
from ops.redact import mask_url
from ops.runtime import postgres as pg
from ops.runtime import redis as rds


@dataclass(frozen=True)
class RestoreResult:
    backup: Backup
    safety_backup: Backup | None
    tables: int
    rows: int
    redis_keys: int | None
    duration_s: float
    dry_run: bool = False


def restore_backup(root: Path, settings: Settings, env: str, backup_id: str, *,
                   assume_yes: bool = False, dry_run: bool = False,
                   confirm: Callable[[str], bool] | None = None,
                   progress: ProgressFn | None = None, out: TextIO | None = None,
                   safety_backup: bool = True, lock_wait_s: float = 0.0) -> RestoreResult:
    """Replace ``env``'s database and Redis content with backup ``backup_id``, all or nothing.

    Without ``assume_yes`` the caller must pass ``confirm`` (a question → yes/no prompt); with
    neither, nothing is done. ``safety_backup=False`` is for a caller that has just taken one
    (without it, a failure after Postgres committed cannot give Postgres back). ``lock_wait_s``:
    how long to wait for a deploy that holds the environment's lock.
    """
    started = time.perf_counter()
    backup = find_backup(root, settings, env, backup_id)
    found = targets(root, settings, env)
    _check_coverage(backup, found, env)
    stream = out or sys.stdout
    audit_path = resolve_path(root, settings.audit_log)
    current: str | None = None
    safety: list[Backup] = []  # filled once taken: the failure path names it
    restored: list[RestoreResult] = []

    def describe(act: Act) -> AuditEvent:
        if act.outcome is Outcome.DRY_RUN:
            return AuditEvent(action="restore", env=env, result=act.outcome,
                              to_version=backup.version, details={"backup_id": backup.id})
        if act.error is not None:
            exc = act.error
            message = exc.message if isinstance(exc, OpsError) else (
                "interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__)
            return AuditEvent(
                action="restore", env=env, result=act.outcome, from_version=current,
                to_version=backup.version, duration_s=time.perf_counter() - started,
                details={"backup_id": backup.id,
                         "safety_backup_id": safety[0].id if safety else None,
                         "error": message})
        result = restored[0]
        return AuditEvent(
            action="restore", env=env, result=act.outcome, from_version=current,
            to_version=backup.version, duration_s=result.duration_s,
            details={"backup_id": backup.id,
                     "safety_backup_id": result.safety_backup.id if result.safety_backup
                     else None,
                     "tables": result.tables, "rows": result.rows,
                     "redis_keys": result.redis_keys})

    def say(line: str) -> None:
        stream.write(f"{line}\n")

    if dry_run:
        verify_backup(backup)
        _describe_dry_run(root, settings, env, backup, found, stream)
        with changing_action(root, env, action="restore", version=backup.version,
                             describe=describe, audit_log=audit_path, lock=False,
                             dry_run=True, started=started) as act:
            act.outcome = Outcome.DRY_RUN
        return RestoreResult(backup, None, len(backup.row_counts), sum(backup.row_counts.values()),
                             backup.redis_keys, time.perf_counter() - started, dry_run=True)
    _confirmed(backup, env, assume_yes=assume_yes, confirm=confirm)
    current = deployed_version(root, settings, env)
    # the environment's deploy lock (LockHeld, exit 1, naming the holder, as for a deploy); not
    # taken again when this very process holds it (rollback --with-db restores inside its lock)
    # the stores through the environment's backend (on a swarm, a tunnel to the stack's
    # network: ops.deploy.backend.store_route), opened once for the safety backup and the
    # restore; on a swarm the swarm's deploy lock is held too (operators on other machines)
    route = store_route(root, settings, env, out=stream)
    with changing_action(root, env, action="restore", version=backup.version,
                         describe=describe, audit_log=audit_path, reentrant=True,
                         lock_wait_s=lock_wait_s, started=started, say=say,
                         warn=lambda m: say(f"warning: {m}"), progress=say,
                         cluster_lock=route.cluster_lock("restore", backup.version,
                                                         lock_wait_s)), \
            pin(backup) as pinned, \
            route.reach([found.database_url, found.redis_url]) as (database, redis):
        verify_backup(pinned)
        restored.append(_restore(root, settings, env, pinned, Targets(database, redis), current,
                                 safety if safety_backup else None, started, progress, stream))
    return restored[0]


def _check_coverage(backup: Backup, found: Targets, env: str) -> None:
    if backup.postgres and not found.database_url:
        raise ConfigError(f"backup {backup.id} holds a Postgres dump but {env!r} has no database",
                          hint=f"set DATABASE_URL or ops.environments.{env}.database_url")
    if backup.redis and not found.redis_url:
        raise ConfigError(f"backup {backup.id} holds Redis keys but {env!r} has no Redis",
                          hint=f"set REDIS_URL or ops.environments.{env}.redis_url")


def _confirmed(backup: Backup, env: str, *, assume_yes: bool,
               confirm: Callable[[str], bool] | None) -> None:
    if assume_yes:
        return
    what = " and ".join(name for name, present in (("database", backup.postgres),
                                                   ("Redis", backup.redis)) if present)
    if confirm is None:
        raise UsageError(f"restore overwrites {env}'s {what}; refusing without confirmation",
                         hint="pass --yes (stdin is not a terminal)")
    if not confirm(f"Replace {env}'s {what} with backup {backup.id} "
                   f"(version {backup.version})?"):
        raise UsageError("restore cancelled; nothing was changed")


def _describe_dry_run(root: Path, settings: Settings, env: str, backup: Backup, found: Targets,
                      out: TextIO) -> None:
    out.write(f"[dry-run] take the {env} deploy lock ({lock_path(root, env)}) and pin "
              f"backup {backup.id} against retention\n")
    create_backup(root, settings, env, restore_of=backup.id, dry_run=True, out=out)
    if backup.redis and found.redis_url:
        out.write(f"[dry-run] redis RESTORE {backup.redis_keys} keys into a spare empty db index "
                  f"of {mask_url(found.redis_url)} (nothing visible yet)\n")
    if backup.postgres and found.database_url:
        pg.apply_restore(found.database_url, backup.path / PG_FILE, [], dry_run=True, echo=out)
    if backup.redis and found.redis_url:
        out.write(f"[dry-run] redis SWAPDB the spare index with db "
                  f"{rds.url_db_index(found.redis_url)}, then drop the previous keys\n")


def _restore(root: Path, settings: Settings, env: str, backup: Backup, found: Targets,
             current: str, safety: list[Backup] | None, started: float,
             progress: ProgressFn | None, out: TextIO) -> RestoreResult:
    """Steps 2-5 of the module docstring; on failure, the state named in the message."""
    staging = _claim_spare(found.redis_url) if backup.redis and found.redis_url else None
    committed = False
    try:
        if safety is not None:
            safety.append(create_backup(root, settings, env, version=current, progress=progress,
                                        protect={backup.id}, restore_of=backup.id,
                                        reached=found))
        if staging is not None:
            _phase(progress, "restore redis")
            rds.stage_keys(staging, backup.path / REDIS_FILE)
        if backup.postgres and found.database_url:
            _phase(progress, "restore postgres")
            with pg.connect(found.database_url) as conn:
                schemas = pg.user_schemas(conn)
            pg.apply_restore(found.database_url, backup.path / PG_FILE, schemas,
                             verify_sql=pg.verify_restore_sql(backup.row_counts,
                                                              backup.alembic_revision))
            committed = True
        keys: int | None = None
        if staging is not None:
            _phase(progress, "swap redis")
            keys = rds.swap_in(staging, backup.redis_keys or 0)
    except BaseException as exc:
        state = _after_failure(backup, found, staging, committed,
                               safety[0] if safety else None)
        if isinstance(exc, OpsError):
            exc.message = f"restore of {backup.id} failed: {exc.message}; {state}"
            raise
        if isinstance(exc, KeyboardInterrupt):
            out.write(f"restore of {backup.id} interrupted; {state}\n")
            raise
        raise DeployFailed(f"restore of {backup.id} failed ({type(exc).__name__}); "
                           f"{state}") from exc
    finally:
        if staging is not None:
            with contextlib.suppress(Exception):  # a Redis that went away: nothing to clean
                rds.discard(staging)
            staging.target.close()
    return RestoreResult(backup, safety[0] if safety else None, len(backup.row_counts),
                         sum(backup.row_counts.values()), keys, time.perf_counter() - started)


def _phase(progress: ProgressFn | None, name: str) -> None:
    if progress:
        progress(name, 0)


def _claim_spare(url: str) -> rds.Staging:
    client = rds.connect(url)
    try:
        return rds.claim_spare(client, owner=_claim_owner(), stale=_stale_claim)
    except BaseException:
        client.close()
        raise


def _claim_owner() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _stale_claim(claim: bytes) -> bool:
    """A spare index claimed by a restore on this host whose process is gone (SIGKILL)."""
    owner = claim.decode("utf-8", "replace").split(" ", 1)[0]
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not pid_alive(int(pid), None if start in {"", "None"} else start)


def _after_failure(backup: Backup, found: Targets, staging: rds.Staging | None, committed: bool,
                   safety: Backup | None) -> str:
    """Put back what the failed restore changed; returns the stores' state, for the message."""
    saved = f" (the state before the restore is saved as backup {safety.id})" if safety else ""
    if staging is not None and staging.swapped is None:
        postgres = "holds the backup's data" if committed else "is unchanged"
        return (f"Redis stopped answering during the swap, so whether db {staging.target_db} "
                f"holds the backup's keys is unknown; Postgres {postgres}{saved}")
    needs_undo = committed and staging is not None and staging.swapped is False
    if not needs_undo:
        done = committed or (staging is not None and staging.swapped)
        return f"the restore had completed{saved}" if done else f"nothing was changed{saved}"
    if safety is None or not found.database_url:
        return ("Postgres holds the backup's data but Redis its previous keys, and there is no "
                "safety backup to return Postgres to its previous state")
    try:
        with pg.connect(found.database_url) as conn:
            schemas = pg.user_schemas(conn)
        pg.apply_restore(found.database_url, safety.path / PG_FILE, schemas,
                         verify_sql=pg.verify_restore_sql(safety.row_counts,
                                                          safety.alembic_revision))
    except (OpsError, OSError) as undo:
        why = undo.message if isinstance(undo, OpsError) else type(undo).__name__
        return (f"Postgres holds the backup's data but Redis its previous keys, and returning "
                f"Postgres to safety backup {safety.id} failed too ({why}): run "
                f"`invoke restore {safety.id} --env {backup.env} --yes`")
    return (f"nothing was changed: Postgres was returned to its state before the restore from "
            f"safety backup {safety.id}, Redis kept its keys")
