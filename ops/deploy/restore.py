"""Restore an environment's Postgres and Redis from a backup, proving the result afterwards.

The order is the safety argument: the backup is verified (checksums, pg_restore reads it, the
Redis file parses) before anything is touched; a safety backup of the current state is taken next
(and kept by retention); Postgres is restored in place in one transaction (see
``ops.runtime.postgres.apply_restore``: all or nothing, objects newer than the backup included);
Redis's db index is flushed and refilled; finally every table's row count, the alembic revision
and the Redis key count are compared with backup.json. A failure after the safety backup names it,
so the previous state is one command away.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ops.config import Settings, resolve_path
from ops.deploy.audit import AuditEvent, record
from ops.deploy.backup import (
    PG_FILE,
    REDIS_FILE,
    Backup,
    ProgressFn,
    Targets,
    create_backup,
    deployed_version,
    find_backup,
    targets,
    verify_backup,
)
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
                   safety_backup: bool = True) -> RestoreResult:
    """Replace ``env``'s database and Redis content with backup ``backup_id``.

    Without ``assume_yes`` the caller must pass ``confirm`` (a question → yes/no prompt); with
    neither, nothing is done. ``safety_backup=False`` is for a caller that has just taken one.
    """
    started = time.perf_counter()
    backup = find_backup(root, settings, env, backup_id)
    found = targets(root, settings, env)
    _check_coverage(backup, found, env)
    verify_backup(backup)
    stream = out or sys.stdout
    audit_path = resolve_path(root, settings.audit_log)
    if dry_run:
        _describe_dry_run(root, settings, env, backup, found, stream)
        record(audit_path, AuditEvent(action="restore", env=env, result="dry_run",
                                      to_version=backup.version,
                                      details={"backup_id": backup.id}))
        return RestoreResult(backup, None, len(backup.row_counts), sum(backup.row_counts.values()),
                             backup.redis_keys, time.perf_counter() - started, dry_run=True)
    _confirmed(backup, env, assume_yes=assume_yes, confirm=confirm)
    current = deployed_version(root, settings, env)
    safety: Backup | None = None
    try:
        if safety_backup:
            safety = create_backup(root, settings, env, label=f"before restore of {backup.id}",
                                   version=current, progress=progress, protect={backup.id})
        result = _restore(backup, found, safety, started, progress)
    except BaseException as exc:
        message = exc.message if isinstance(exc, OpsError) else type(exc).__name__
        record(audit_path, AuditEvent(
            action="restore", env=env, result="failed", from_version=current,
            to_version=backup.version, duration_s=time.perf_counter() - started,
            details={"backup_id": backup.id, "safety_backup_id": safety.id if safety else None,
                     "error": message}))
        if safety is not None and isinstance(exc, OpsError) and exc.hint is None:
            exc.hint = f"the state before the restore is in backup {safety.id}"
        raise
    record(audit_path, AuditEvent(
        action="restore", env=env, result="success", from_version=current,
        to_version=backup.version, duration_s=result.duration_s,
        details={"backup_id": backup.id, "safety_backup_id": safety.id if safety else None,
                 "tables": result.tables, "rows": result.rows, "redis_keys": result.redis_keys}))
    return result


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
    create_backup(root, settings, env, label=f"before restore of {backup.id}", dry_run=True,
                  out=out)
    if backup.postgres and found.database_url:
        pg.apply_restore(found.database_url, backup.path / PG_FILE, [], dry_run=True, echo=out)
    if backup.redis and found.redis_url:
        out.write(f"[dry-run] redis FLUSHDB + RESTORE {backup.redis_keys} keys into "
                  f"{mask_url(found.redis_url)}\n")


def _restore(backup: Backup, found: Targets, safety: Backup | None, started: float,
             progress: ProgressFn | None) -> RestoreResult:
    problems: list[str] = []
    rows = tables = 0
    if backup.postgres and found.database_url:
        if progress:
            progress("restore postgres", 0)
        with pg.connect(found.database_url) as conn:
            schemas = pg.user_schemas(conn)
        pg.apply_restore(found.database_url, backup.path / PG_FILE, schemas)
        with pg.connect(found.database_url) as conn:
            counts = pg.row_counts(conn)
            revision = pg.alembic_revision(conn)
        problems += _compare_counts(backup.row_counts, counts)
        if revision != backup.alembic_revision:
            problems.append(f"alembic revision {revision} (backup: {backup.alembic_revision})")
        tables, rows = len(counts), sum(counts.values())
    keys: int | None = None
    if backup.redis and found.redis_url:
        if progress:
            progress("restore redis", 0)
        client = rds.connect(found.redis_url)
        try:
            rds.import_keys(client, backup.path / REDIS_FILE)
            keys = rds.key_count(client)
        finally:
            client.close()
        if keys != backup.redis_keys:
            problems.append(f"Redis holds {keys} keys (backup: {backup.redis_keys})")
    if problems:
        where = f"; the previous state is in backup {safety.id}" if safety else ""
        raise DeployFailed(f"restore of {backup.id} did not verify: {'; '.join(problems[:5])}"
                           f"{where}")
    return RestoreResult(backup, safety, tables, rows, keys, time.perf_counter() - started)


def _compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    problems = [f"table {name} missing" for name in sorted(set(expected) - set(actual))]
    problems += [f"table {name} not in the backup" for name in sorted(set(actual) - set(expected))]
    problems += [f"{name} has {actual[name]} rows (backup: {count})"
                 for name, count in sorted(expected.items())
                 if name in actual and actual[name] != count]
    return problems
