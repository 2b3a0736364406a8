"""Backups of an environment's Postgres and Redis: created, verified, listed, pruned.

A backup is a directory ``<backup.dir>/<env>/<UTC timestamp>_<version>/`` holding
``postgres.dump`` (pg_dump custom format), ``redis.tmdump`` (see ``ops.runtime.redis``) and
``backup.json``. It is built in a dot-prefixed sibling directory that listing ignores and renamed
into place only once it has been verified: pg_restore reads the archive's table of contents,
backup.json is written, read back, and every file is hashed again against it. Anything that goes
wrong on the way (the database stopping, a full disk, SIGINT or SIGTERM) stops pg_dump, deletes the
partial directory and appends an audit line with the reason, so a backup that is listed is a
backup that restores.

Retention (``prune``) keeps the newest ``backup.keep`` ordinary backups and, counted apart, the
newest ``backup.keep`` safety backups (``label: safety``, taken by restore before it overwrites
anything); never the newest complete backup, the one the current deployment took before it ran,
or one that a live process is restoring from (``pinned``: a ``.restoring`` file in the backup,
honoured by every process's prune).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ops import __version__
from ops.atomic import atomic_write_text, fsync_dir
from ops.bounded import loads_json, read_capped
from ops.config import Settings, resolve_path
from ops.deploy.action import Act, Outcome, changing_action
from ops.deploy.audit import AuditEvent, read_events
from ops.deploy.backend import store_route
from ops.deploy.lock import _process_start, pid_alive
from ops.errors import ConfigError, DeployFailed, OpsError, UsageError
from ops.hashing import hash_files, sha256_file
from ops.redact import mask_url, scrub
from ops.runtime import postgres as pg
from ops.runtime import redis as rds
from ops.runtime.envfile import service_url
from ops.runtime.process import Background, Completed, Runner
from ops.stamps import utc_stamp

BACKUP_JSON = "backup.json"
PG_FILE = "postgres.dump"
REDIS_FILE = "redis.tmdump"
FORMAT = 1
PARTIAL_PREFIX = ".partial-"
DELETING_PREFIX = ".deleting-"
#: The label of the backups restore takes of the current state before it overwrites it.
SAFETY_LABEL = "safety"
#: Inside a backup directory while a process restores from it: retention leaves it alone.
PIN_FILE = ".restoring"
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
    def is_safety(self) -> bool:
        return self.label == SAFETY_LABEL

    @property
    def restore_of(self) -> str | None:
        value = self.meta.get("restore_of")
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
        """The backup in ``path``, or None when it is not a complete one.

        backup.json is read as untrusted input (anyone who can write to the backups directory
        can craft one): at most ``MAX_META_BYTES`` of a regular file, nesting bounded, and every
        field the code reads later checked for its shape here, so a crafted file is "not a
        backup" (restore: a usage error naming the id) instead of a ``ValueError`` in the middle
        of a restore, and a listed file name can never point outside the backup directory.
        """
        try:
            meta = loads_json(read_capped(path / BACKUP_JSON, MAX_META_BYTES))
        except (OSError, ValueError):  # Refused and JSONDecodeError are ValueErrors
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or _malformed(meta):
            return None
        return cls(id=path.name, env=str(meta.get("env", path.parent.name)), path=path, meta=meta)


#: backup.json is a few KiB; even a database of 100 000 tables' row counts fits.
MAX_META_BYTES = 16 << 20
_TEXT_FIELDS = ("id", "env", "label", "version", "created_at", "restore_of", "tminus_version")


def _malformed(meta: dict[str, Any]) -> bool:
    """Whether a field of backup.json has a shape that ``Backup``'s readers cannot take."""

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def plain_name(name: Any) -> bool:
        return isinstance(name, str) and name not in ("", ".", "..") and not (
            set(name) & {"/", "\\", "\0"})

    if any(meta.get(key) is not None and not isinstance(meta[key], str) for key in _TEXT_FIELDS):
        return True
    files = meta.get("files")
    if files is not None and not (isinstance(files, dict) and all(
            plain_name(name) and isinstance(entry, dict) and count(entry.get("size"))
            and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64
            for name, entry in files.items())):
        return True
    postgres, redis = meta.get("postgres"), meta.get("redis")
    if postgres and not (isinstance(postgres, dict)
                         and isinstance(postgres.get("row_counts") or {}, dict)
                         and all(isinstance(k, str) and count(v)
                                 for k, v in (postgres.get("row_counts") or {}).items())
                         and isinstance(postgres.get("alembic_revision") or "", str)):
        return True
    if redis and not (isinstance(redis, dict) and count(redis.get("keys"))):
        return True
    duration = meta.get("duration_s")
    return duration is not None and (isinstance(duration, bool)
                                      or not isinstance(duration, int | float))


@dataclass(frozen=True)
class Targets:
    """What an environment's backup covers: its database and its Redis (either may be absent)."""

    database_url: str | None
    redis_url: str | None


def targets(root: Path, settings: Settings, env: str) -> Targets:
    """The environment's URLs, each checked the way its client reads it (a ``ConfigError``
    naming where it came from, before anything runs)."""
    env_settings = settings.environment(env)
    database = service_url(root, env_settings.env_file, env_settings.database_url, "DATABASE_URL")
    redis = service_url(root, env_settings.env_file, env_settings.redis_url, "REDIS_URL")
    if not database and not redis:
        raise ConfigError(
            f"environment {env!r} has neither a database nor a Redis to back up",
            hint=f"set DATABASE_URL / REDIS_URL in {env_settings.env_file} or "
                 f"ops.environments.{env}.database_url / redis_url")

    def where(configured: str | None, setting: str, variable: str) -> str:
        return (f"ops.environments.{env}.{setting}" if configured
                else f"{variable} in {env_settings.env_file}")

    if database:
        pg.libpq_params(database, key=where(env_settings.database_url, "database_url",
                                            "DATABASE_URL"))
    if redis:
        rds.url_db_index(redis, key=where(env_settings.redis_url, "redis_url", "REDIS_URL"))
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
                  out: TextIO | None = None, restore_of: str | None = None,
                  reached: Targets | None = None) -> Backup:
    """Back up the environment's Postgres and Redis into a new verified backup directory.

    ``version`` is the release running now (default: the last successful deploy or rollback of
    ``env`` in the audit log, else ``unknown``). ``protect`` names backups retention must keep
    besides the newest ones (restore protects the backup it is about to read). ``restore_of``
    makes it a safety backup (``label: safety``) of the state before that backup's restore.
    The stores are reached through the environment's backend (``backend.store_route``: on a
    swarm, a tunnel to the stack's network); ``reached`` is a caller's route already open
    (restore's), so the safety backup opens no second one.
    """
    if restore_of is not None:
        label = SAFETY_LABEL
    started = time.perf_counter()
    now = datetime.now(UTC)
    found = targets(root, settings, env)
    version = version or deployed_version(root, settings, env)
    base = backups_dir(root, settings, env)
    backup_id = _new_id(base, now, version)
    final = base / backup_id
    runner = Runner(dry_run=dry_run, out=out or sys.stdout)
    audit_path = resolve_path(root, settings.audit_log)
    partial = base / f"{PARTIAL_PREFIX}{backup_id}-{os.getpid()}"
    made: list[Backup] = []

    def describe(act: Act) -> AuditEvent:
        details: dict[str, Any] = {"backup_id": backup_id, "label": label}
        if act.outcome is Outcome.DRY_RUN:
            return AuditEvent(action="backup", env=env, result=act.outcome, to_version=version,
                              details=details)
        if act.error is not None:
            failure = _as_ops_error(act.error, partial)
            details["error"] = failure.message if failure else _reason(act.error)
        else:
            details["size_bytes"] = made[0].size_bytes
        return AuditEvent(action="backup", env=env, result=act.outcome,
                          to_version=version, duration_s=act.duration_s, details=details)

    if dry_run:
        _describe_dry_run(runner, found, final)
    try:
        # no lock: a backup changes no service (a deploy takes one inside its own lock);
        # a full disk that fails the audit line must not hide the backup's own error
        with changing_action(root, env, action="backup", version=version, describe=describe,
                             audit_log=audit_path, lock=False, dry_run=dry_run,
                             started=started, quiet_audit_after_failure=True) as act:
            if dry_run:
                act.outcome = Outcome.DRY_RUN
                return Backup(backup_id, env, final, {"version": version, "label": label,
                                                      "env": env}, dry_run=True)
            try:
                with _route(root, settings, env, found, reached, runner.out) as usable:
                    meta = _build(usable, partial, runner, progress)
                for store, configured in (("postgres", found.database_url),
                                          ("redis", found.redis_url)):
                    if meta.get(store) and configured:  # the configured URL, not the tunnel's
                        meta[store]["url"] = mask_url(configured)
                meta.update({"format": FORMAT, "id": backup_id, "env": env, "label": label,
                             "version": version,
                             "created_at": utc_stamp(now),
                             "tminus_version": __version__})
                if restore_of is not None:
                    meta["restore_of"] = restore_of
                meta["duration_s"] = round(time.perf_counter() - started, 3)
                _seal(partial, meta)
                partial.rename(final)
                fsync_dir(base)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            made.append(Backup(backup_id, env, final, meta))
    except BaseException as exc:
        failure = _as_ops_error(exc, partial)
        if failure is not None and failure is not exc:
            raise failure from None
        raise
    prune(root, settings, env, protect=protect)
    return made[0]


@contextlib.contextmanager
def _route(root: Path, settings: Settings, env: str, found: Targets, reached: Targets | None,
           out: TextIO) -> Iterator[Targets]:
    """The stores' URLs as this process connects to them (see ``create_backup``)."""
    if reached is not None:
        yield reached
        return
    with store_route(root, settings, env, out=out).reach(
            [found.database_url, found.redis_url]) as (database, redis):
        yield Targets(database, redis)


def _reason(exc: BaseException) -> str:
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__


def _as_ops_error(exc: BaseException, partial: Path) -> OpsError | None:
    if isinstance(exc, OpsError):
        return exc
    if type(exc).__module__.split(".")[0] == "psycopg":  # the snapshot or the row counts
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return DeployFailed(f"Postgres stopped answering during the backup ({first}); "
                            "nothing was kept",
                            hint="check that the database runs, then back up again")
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
    (and ``alongside`` runs in another thread); returns both results.

    pg_dump runs from this (the main) thread, so an interruption (Ctrl-C, or SIGTERM through
    ``ops.taskkit.install_sigterm_as_interrupt``) stops it before the partial directory goes.
    """
    with pg.exported_snapshot(url) as (conn, snapshot), ThreadPoolExecutor(2) as pool:
        dump_started = time.perf_counter()
        dump = Background(pg.pg_dump_argv(url, target, snapshot=snapshot), pg.client_env(url))
        side = pool.submit(alongside) if alongside is not None else None
        facts = pool.submit(_facts, conn)

        def tick() -> None:
            if progress:
                progress("postgres", _size(target))

        try:
            _check_dump(dump.wait(tick), url)
            dump_s = time.perf_counter() - dump_started
            counts, revision, server = facts.result()
            other = side.result() if side is not None else None
        except BaseException:
            dump.stop()
            # the dump's own error is the one that matters: a stopped database cannot be
            # cancelled ("cancel failed"), and that must not replace it
            with contextlib.suppress(Exception):
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


#: pg_dump's words for "the server went away" (a stop, a crash, a restart, the network).
_SERVER_GONE = ("server closed the connection", "terminating connection",
                "could not receive data from server", "could not send data to server",
                "no connection to the server", "the database system is shutting down",
                "Connection refused", "SSL SYSCALL error")


def _check_dump(done: Completed, url: str) -> None:
    if done.ok:
        return
    if done.returncode < 0:
        raise DeployFailed(f"pg_dump was killed (signal {-done.returncode}); nothing was kept")
    reason = _pg_dump_reason(done.stderr, url)
    if any(words in done.stderr for words in _SERVER_GONE):
        raise DeployFailed(f"Postgres stopped answering during the backup (pg_dump: {reason}); "
                           "nothing was kept",
                           hint="check that the database runs, then back up again")
    raise DeployFailed(f"pg_dump failed (exit {done.returncode}): {reason}")


def _pg_dump_reason(stderr: str, url: str) -> str:
    """pg_dump's error line, and the server's message when it quoted one, as one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    error = next((line for line in lines if "error:" in line), lines[-1] if lines else "")
    reason = error.removeprefix("pg_dump: ").removeprefix("error: ")
    server = next((line.split("Error message from server:", 1)[1].strip() for line in lines
                   if "Error message from server:" in line), "")
    if server and server not in reason:
        reason = f"{reason.rstrip('.')}: {server}"
    return scrub(reason or "no output", url)


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
    """Delete old backups; returns the ids deleted.

    Kept: the newest ``backup.keep`` ordinary backups and, counted apart, the newest
    ``backup.keep`` safety backups; the newest complete backup whatever it is; the one the
    latest successful deploy took first; those in ``protect``; and every backup a live process
    is restoring from (``pinned``). A doomed backup is first renamed to a dot-prefixed name, so
    listing never shows one that is half deleted, and given back if a restore pinned it in the
    meantime. Partial and half-deleted directories of processes that no longer run go too.
    """
    backups = list_backups(root, settings, env)
    count = settings.backup.keep
    keep = {b.id for b in [b for b in backups if not b.is_safety][:count]}
    keep |= {b.id for b in [b for b in backups if b.is_safety][:count]}
    keep |= set(protect)
    if backups:
        keep.add(backups[0].id)
    protected = pre_deploy_backup_id(root, settings, env)
    if protected:
        keep.add(protected)
    base = backups_dir(root, settings, env)
    removed = []
    for backup in backups:
        if backup.id in keep or pinned(backup.path):
            continue
        doomed = backup.path.with_name(f"{DELETING_PREFIX}{backup.id}")
        try:
            backup.path.rename(doomed)
        except OSError:  # another process pruned it first
            continue
        if pinned(doomed):  # a restore pinned it between our look and the rename
            with contextlib.suppress(OSError):
                doomed.rename(backup.path)
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(backup.id)
    for stale in base.glob(f"{PARTIAL_PREFIX}*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    for stale in base.glob(f"{DELETING_PREFIX}*"):  # a prune that was killed half-way
        if not pinned(stale):
            shutil.rmtree(stale, ignore_errors=True)
    return removed


# --- pinning a backup against retention ----------------------------------------------------------


def _pin_text() -> str:
    pid = os.getpid()
    return json.dumps({"pid": pid, "pid_start": _process_start(pid),
                       "host": socket.gethostname()}, sort_keys=True) + "\n"


def pinned(path: Path) -> bool:
    """A live process (or one on another host, which cannot be checked) restores from ``path``.

    The pin of a process that is gone (a restore killed with SIGKILL) is ignored.
    """
    try:
        pin = json.loads((path / PIN_FILE).read_text(encoding="utf-8"))
        pid, start, host = int(pin["pid"]), pin.get("pid_start"), pin.get("host")
    except FileNotFoundError:
        return False
    except (OSError, ValueError, TypeError, KeyError):
        return True  # unreadable: being written right now, or foreign; err on the kept side
    if host != socket.gethostname():
        return True
    return pid_alive(pid, str(start) if start is not None else None)


@contextlib.contextmanager
def pin(backup: Backup, *, settle_s: float = 2.0) -> Iterator[Backup]:
    """Pin ``backup`` against every process's retention for the block; yields it re-read.

    A prune that had already renamed the directory when the pin was written gives it back
    (see ``prune``); this waits up to ``settle_s`` for that. ``DeployFailed`` when the backup
    is gone (retention deleted it before it could be pinned).
    """
    text = _pin_text()
    gone = DeployFailed(f"backup {backup.id} was deleted by retention before the restore could "
                        "pin it; nothing was changed", hint="choose another backup")
    try:
        atomic_write_text(backup.path / PIN_FILE, text, mode=0o600)
    except FileNotFoundError:
        raise gone from None
    try:
        deadline = time.monotonic() + settle_s
        while (current := Backup.load(backup.path)) is None \
                or _read(backup.path / PIN_FILE) != text:
            if time.monotonic() >= deadline:
                raise gone
            time.sleep(0.05)
        yield current
    finally:
        if _read(backup.path / PIN_FILE) == text:
            with contextlib.suppress(OSError):
                (backup.path / PIN_FILE).unlink()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
