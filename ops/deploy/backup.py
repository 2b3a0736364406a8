"""Backups of an environment's Postgres and Redis: created, verified, listed, pruned.

A backup is a directory ``<backup.dir>/<env>/<UTC timestamp>_<version>/`` holding
``postgres.dump`` (pg_dump custom format), ``redis.tmdump`` (see ``ops.runtime.redis``) and
``backup.json``. It is built in a dot-prefixed sibling directory that listing ignores and renamed
into place only once it has been verified: pg_restore reads the archive's table of contents,
backup.json is written, read back, and every file is hashed again against it. Anything that goes
wrong on the way deletes the partial directory, so a backup that is listed is a backup that
restores.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ops import __version__
from ops.atomic import atomic_write_text, fsync_dir
from ops.config import Settings, resolve_path
from ops.deploy.audit import AuditEvent, read_events, record
from ops.deploy.lock import pid_alive
from ops.errors import ConfigError, DeployFailed, OpsError, UsageError
from ops.hashing import hash_files, sha256_file
from ops.redact import mask_url, scrub
from ops.runtime import postgres as pg
from ops.runtime import redis as rds
from ops.runtime.envfile import service_url
from ops.runtime.process import Completed, Runner

BACKUP_JSON = "backup.json"
PG_FILE = "postgres.dump"
REDIS_FILE = "redis.tmdump"
FORMAT = 1
PARTIAL_PREFIX = ".partial-"
_ID_TIME = "%Y%m%dT%H%M%SZ"

#: ``progress(phase, bytes_done)``: called every few hundred ms while a dump is written.
ProgressFn = Callable[[str, int], None]


@dataclass(frozen=True)
class Backup:
    """One complete backup (or, under ``dry_run``, the one that would be made)."""

    id: str
    env: str
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def created_at(self) -> str:
        return str(self.meta.get("created_at", ""))

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unknown"))

    @property
    def label(self) -> str | None:
        value = self.meta.get("label")
        return str(value) if value else None

    @property
    def size_bytes(self) -> int:
        return sum(int(f.get("size", 0)) for f in self.files.values())

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return dict(self.meta.get("files") or {})

    @property
    def postgres(self) -> dict[str, Any] | None:
        value = self.meta.get("postgres")
        return dict(value) if value else None

    @property
    def redis(self) -> dict[str, Any] | None:
        value = self.meta.get("redis")
        return dict(value) if value else None

    @property
    def alembic_revision(self) -> str | None:
        return (self.postgres or {}).get("alembic_revision")

    @property
    def row_counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in ((self.postgres or {}).get("row_counts") or {}).items()}

    @property
    def redis_keys(self) -> int | None:
        redis = self.redis
        return int(redis["keys"]) if redis else None

    @classmethod
    def load(cls, path: Path) -> Backup | None:
        """The backup in ``path``, or None when it is not a complete one."""
        try:
            meta = json.loads((path / BACKUP_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return None
        return cls(id=path.name, env=str(meta.get("env", path.parent.name)), path=path, meta=meta)


@dataclass(frozen=True)
class Targets:
    """What an environment's backup covers: its database and its Redis (either may be absent)."""

    database_url: str | None
    redis_url: str | None


def targets(root: Path, settings: Settings, env: str) -> Targets:
    env_settings = settings.environment(env)
    database = service_url(root, env_settings.env_file, env_settings.database_url, "DATABASE_URL")
    redis = service_url(root, env_settings.env_file, env_settings.redis_url, "REDIS_URL")
    if not database and not redis:
        raise ConfigError(
            f"environment {env!r} has neither a database nor a Redis to back up",
            hint=f"set DATABASE_URL / REDIS_URL in {env_settings.env_file} or "
                 f"ops.environments.{env}.database_url / redis_url")
    return Targets(database, redis)


def backups_dir(root: Path, settings: Settings, env: str) -> Path:
    settings.environment(env)  # an unknown environment is a usage error, not an empty list
    return resolve_path(root, settings.backup.dir) / env


def list_backups(root: Path, settings: Settings, env: str) -> list[Backup]:
    """Complete backups of ``env``, newest first; partial and foreign directories are ignored."""
    base = backups_dir(root, settings, env)
    if not base.is_dir():
        return []
    found = [b for p in base.iterdir()
             if p.is_dir() and not p.name.startswith(".") and (b := Backup.load(p)) is not None]
    return sorted(found, key=lambda b: (b.created_at, b.id), reverse=True)


def find_backup(root: Path, settings: Settings, env: str, backup_id: str) -> Backup:
    """The backup named ``backup_id`` (``latest`` for the newest), or a usage error."""
    import difflib

    backups = list_backups(root, settings, env)
    if backup_id == "latest" and backups:
        return backups[0]
    for backup in backups:
        if backup.id == backup_id:
            return backup
    ids = [b.id for b in backups]
    close = difflib.get_close_matches(backup_id, ids, n=1)
    hint = (f"did you mean {close[0]!r}?" if close
            else "run `invoke backups --env " + env + "` to list them" if ids
            else f"there is no backup for {env} yet")
    raise UsageError(f"no backup {backup_id!r} for environment {env!r}", hint=hint)


# --- create --------------------------------------------------------------------------------------


def create_backup(root: Path, settings: Settings, env: str, *, label: str | None = None,
                  version: str | None = None, dry_run: bool = False,
                  progress: ProgressFn | None = None, protect: Collection[str] = (),
                  out: TextIO | None = None) -> Backup:
    """Back up the environment's Postgres and Redis into a new verified backup directory.

    ``version`` is the release running now (default: the last successful deploy or rollback of
    ``env`` in the audit log, else ``unknown``). ``protect`` names backups retention must keep
    besides the newest ones (restore protects the backup it is about to read).
    """
    started = time.perf_counter()
    now = datetime.now(UTC)
    found = targets(root, settings, env)
    version = version or deployed_version(root, settings, env)
    base = backups_dir(root, settings, env)
    backup_id = _new_id(base, now, version)
    final = base / backup_id
    runner = Runner(dry_run=dry_run, out=out or sys.stdout)
    audit_path = resolve_path(root, settings.audit_log)
    if dry_run:
        _describe_dry_run(runner, found, final)
        record(audit_path, AuditEvent(action="backup", env=env, result="dry_run",
                                      to_version=version,
                                      details={"backup_id": backup_id, "label": label}))
        return Backup(backup_id, env, final, {"version": version, "label": label, "env": env},
                      dry_run=True)
    partial = base / f"{PARTIAL_PREFIX}{backup_id}-{os.getpid()}"
    try:
        meta = _build(found, partial, runner, progress)
        meta.update({"format": FORMAT, "id": backup_id, "env": env, "label": label,
                     "version": version, "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "tminus_version": __version__})
        meta["duration_s"] = round(time.perf_counter() - started, 3)
        _seal(partial, meta)
        partial.rename(final)
        fsync_dir(base)
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        failure = _as_ops_error(exc, partial)
        with contextlib.suppress(OSError):  # a full disk must not hide the original error
            record(audit_path, AuditEvent(
                action="backup", env=env, result="failed", to_version=version,
                duration_s=time.perf_counter() - started,
                details={"backup_id": backup_id, "label": label,
                         "error": failure.message if failure else type(exc).__name__}))
        if failure is not None and failure is not exc:
            raise failure from None
        raise
    backup = Backup(backup_id, env, final, meta)
    record(audit_path, AuditEvent(
        action="backup", env=env, result="success", to_version=version,
        duration_s=time.perf_counter() - started,
        details={"backup_id": backup_id, "label": label, "size_bytes": backup.size_bytes}))
    prune(root, settings, env, protect=protect)
    return backup


def _as_ops_error(exc: BaseException, partial: Path) -> OpsError | None:
    if isinstance(exc, OpsError):
        return exc
    if isinstance(exc, OSError):
        what = exc.strerror or type(exc).__name__
        return DeployFailed(f"backup failed writing {partial.parent}: {what}; nothing was kept",
                            hint="free space or choose another ops.backup.dir")
    return None


def _new_id(base: Path, now: datetime, version: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", version).strip("-") or "unknown"
    stem = f"{now.strftime(_ID_TIME)}_{safe}"
    candidate, n = stem, 1
    while (base / candidate).exists() or any(base.glob(f"{PARTIAL_PREFIX}{candidate}-*")):
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def _describe_dry_run(runner: Runner, found: Targets, final: Path) -> None:
    if found.database_url:
        runner.run(pg.pg_dump_argv(found.database_url, final / PG_FILE))
        runner.run(pg.pg_restore_list_argv(final / PG_FILE))
    if found.redis_url:
        runner.out.write(f"[dry-run] redis SCAN+DUMP {mask_url(found.redis_url)} → "
                         f"{final / REDIS_FILE}\n")


def _build(found: Targets, partial: Path, runner: Runner,
           progress: ProgressFn | None) -> dict[str, Any]:
    """Dump everything into ``partial``; returns backup.json's content minus identity fields.

    Redis is exported while pg_dump runs, right after the Postgres snapshot is taken, so both
    halves describe (nearly) the same moment and Redis costs no extra wall time.
    """
    redis_client = rds.connect(found.redis_url) if found.redis_url else None  # fail before dumping
    partial.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial.mkdir(mode=0o700)
    meta: dict[str, Any] = {"postgres": None, "redis": None}
    export: Callable[[], dict[str, Any]] | None = None
    if redis_client is not None and found.redis_url:
        redis_url = found.redis_url

        def export() -> dict[str, Any]:
            keys = rds.export_keys(redis_client, partial / REDIS_FILE)
            return {"url": mask_url(redis_url), "file": REDIS_FILE,
                    "format": rds.FILE_FORMAT, "db": rds.db_index(redis_client),
                    "keys": keys, "server_version": rds.server_version(redis_client)}

    try:
        if found.database_url:
            meta["postgres"], meta["redis"] = _dump_postgres(
                found.database_url, partial / PG_FILE, runner, progress, alongside=export)
        elif export is not None:
            meta["redis"] = export()
    finally:
        if redis_client is not None:
            redis_client.close()
    return meta


def _dump_postgres(url: str, target: Path, runner: Runner, progress: ProgressFn | None, *,
                   alongside: Callable[[], dict[str, Any]] | None = None
                   ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """pg_dump under an exported snapshot while the same snapshot counts every table's rows
    (and ``alongside`` runs in a third thread); returns both results."""
    with pg.exported_snapshot(url) as (conn, snapshot), ThreadPoolExecutor(3) as pool:
        runner.env = pg.client_env(url)
        dump_started = time.perf_counter()
        dump: Future[Completed] = pool.submit(
            runner.run, pg.pg_dump_argv(url, target, snapshot=snapshot), check=False)
        side = pool.submit(alongside) if alongside is not None else None
        facts = pool.submit(_facts, conn)
        try:
            while not _wait(dump, 0.25):
                if progress:
                    progress("postgres", _size(target))
            _check_dump(dump.result(), url)
            dump_s = time.perf_counter() - dump_started
            counts, revision, server = facts.result()
            other = side.result() if side is not None else None
        except BaseException:
            conn.cancel()
            raise
    if progress:
        progress("postgres", _size(target))
    listing = runner.run(pg.pg_restore_list_argv(target), check=False)
    if not listing.ok:
        raise DeployFailed(f"pg_restore cannot read the new dump: {scrub(listing.stderr, url)}")
    return {"url": mask_url(url), "file": PG_FILE, "format": "pg_dump custom",
            "alembic_revision": revision, "row_counts": counts, "tables": len(counts),
            "toc_entries": pg.toc_entries(listing.stdout), "server_version": server,
            "pg_dump_s": round(dump_s, 3),
            "pg_dump_version": pg.tool_version(pg.pg_dump_version_argv())}, other


def _facts(conn: Any) -> tuple[dict[str, int], str | None, str]:
    return pg.row_counts(conn), pg.alembic_revision(conn), pg.server_version(conn)


def _wait(future: Future[Any], seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        future.result(timeout=seconds)
    return future.done()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _check_dump(done: Completed, url: str) -> None:
    if done.ok:
        return
    if done.returncode < 0:
        raise DeployFailed(f"pg_dump was killed (signal {-done.returncode}); nothing was kept")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    reason = scrub(lines[-1] if lines else "no output", url).removeprefix("pg_dump: error: ")
    raise DeployFailed(f"pg_dump failed (exit {done.returncode}): {reason}")


def _seal(partial: Path, meta: dict[str, Any]) -> None:
    """Checksums into backup.json, then read it back and re-hash every file against it."""
    names = [n for n in (PG_FILE, REDIS_FILE) if (partial / n).is_file()]
    for name in names:
        (partial / name).chmod(0o600)
    digests = hash_files([partial / n for n in names])
    meta["files"] = {p.name: {"size": p.stat().st_size, "sha256": d} for p, d in digests.items()}
    meta["size_bytes"] = sum(f["size"] for f in meta["files"].values())
    atomic_write_text(partial / BACKUP_JSON, json.dumps(meta, indent=2, sort_keys=True) + "\n",
                      mode=0o600)
    written = Backup.load(partial)
    if written is None or written.files != meta["files"]:
        raise DeployFailed("backup.json did not read back as written; nothing was kept")
    check_files(written)
    redis = written.redis
    if redis and rds.count_records(partial / REDIS_FILE) != int(redis["keys"]):
        raise DeployFailed(f"{REDIS_FILE} does not hold the {redis['keys']} keys exported; "
                           "nothing was kept")


# --- verify --------------------------------------------------------------------------------------


def check_files(backup: Backup) -> None:
    """Every file listed in backup.json is there with its size and SHA-256, and nothing else is."""
    listed = backup.files
    present = {p.name for p in backup.path.iterdir() if p.name != BACKUP_JSON}
    missing = sorted(set(listed) - present)
    if missing:
        raise DeployFailed(f"backup {backup.id} is incomplete: {', '.join(missing)} missing")
    extra = sorted(n for n in present - set(listed) if not n.startswith("."))
    if extra:
        raise DeployFailed(f"backup {backup.id} holds unlisted files: {', '.join(extra)}")
    for name, expected in sorted(listed.items()):
        path = backup.path / name
        if path.stat().st_size != int(expected["size"]) or sha256_file(path) != expected["sha256"]:
            raise DeployFailed(f"backup {backup.id}: {name} does not match its checksum "
                               "(damaged or altered)", hint="restore another backup")


def verify_backup(backup: Backup, *, runner: Runner | None = None) -> None:
    """Checksums, then pg_restore reads the archive and the Redis file parses to its key count."""
    check_files(backup)
    runner = runner or Runner()
    if backup.postgres:
        listing = runner.run(pg.pg_restore_list_argv(backup.path / PG_FILE), check=False)
        if not listing.ok:
            raise DeployFailed(f"backup {backup.id}: pg_restore cannot read {PG_FILE}")
    redis = backup.redis
    if redis:
        found = rds.count_records(backup.path / REDIS_FILE)
        if found != int(redis["keys"]):
            raise DeployFailed(f"backup {backup.id}: {REDIS_FILE} holds {found} keys, "
                               f"backup.json says {redis['keys']}")


# --- retention and the audit log -----------------------------------------------------------------


def deployed_version(root: Path, settings: Settings, env: str) -> str:
    """The version the audit log says was last deployed (or rolled back to) successfully."""
    version = "unknown"
    for event in read_events(resolve_path(root, settings.audit_log), env=env):
        if event.get("action") in {"deploy", "rollback"} and event.get("result") == "success" \
                and event.get("to_version"):
            version = str(event["to_version"])
    return version


def pre_deploy_backup_id(root: Path, settings: Settings, env: str) -> str | None:
    """The backup the latest successful deploy took first: what a rollback would restore."""
    backup_id: str | None = None
    for event in read_events(resolve_path(root, settings.audit_log), env=env):
        if event.get("action") == "deploy" and event.get("result") == "success":
            details = event.get("details") or {}
            backup_id = str(details["backup_id"]) if details.get("backup_id") else None
    return backup_id


def prune(root: Path, settings: Settings, env: str, *, protect: Collection[str] = ()
          ) -> list[str]:
    """Delete all but the newest ``backup.keep`` backups, never the pre-deploy one.

    A doomed backup is first renamed to a dot-prefixed name, so listing never shows one that is
    half deleted. Partial directories left by a process that no longer runs are removed too.
    """
    keep = {b.id for b in list_backups(root, settings, env)[: settings.backup.keep]}
    keep |= set(protect)
    protected = pre_deploy_backup_id(root, settings, env)
    if protected:
        keep.add(protected)
    base = backups_dir(root, settings, env)
    removed = []
    for backup in list_backups(root, settings, env):
        if backup.id in keep:
            continue
        doomed = backup.path.with_name(f".deleting-{backup.id}")
        backup.path.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(backup.id)
    for stale in base.glob(f"{PARTIAL_PREFIX}*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return removed


    return True
