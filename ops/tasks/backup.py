"""Tasks ``backup``, ``restore`` and ``backups``: thin wrappers over ops.deploy.backup/restore."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from invoke.context import Context
from invoke.tasks import task

from ops.bounded import human_bytes
from ops.deploy.backup import create_backup, list_backups, pre_deploy_backup_id
from ops.deploy.restore import restore_backup
from ops.errors import UsageError
from ops.taskkit import boundary, project_root, say, settings_from

LINE_EVERY_S = 5.0
#: A label is a note shown in one column of `invoke backups`.
MAX_LABEL = 200


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@contextmanager
def progress_reporter() -> Iterator[Callable[[str, int], None]]:
    """A live byte counter on a terminal (rich), else one plain line every few seconds."""
    if sys.stdout.isatty():
        from rich.progress import (
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        # started on the first update, so a confirmation prompt before it is not drawn over
        bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), DownloadColumn(),
                       TransferSpeedColumn(), TimeElapsedColumn(), transient=True)
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int) -> None:
            if not tasks:
                bar.start()
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=None)
            bar.update(tasks[phase], completed=done)

        try:
            yield update
        finally:
            if tasks:
                bar.stop()
        return
    last: dict[str, float] = {}

    def line(phase: str, done: int) -> None:
        now = time.monotonic()
        if phase not in last:
            last[phase] = now
            if done == 0:
                say(f"{phase}: started")
                return
        if now - last[phase] >= LINE_EVERY_S:
            last[phase] = now
            say(f"{phase}: {human_bytes(done)} written")

    yield line


@task(auto_shortflags=False, help={
    "env": "environment whose database and Redis are backed up (default: production)",
    "label": "free text stored in backup.json and shown by `invoke backups`",
    "dry-run": "print the commands and the target directory; write nothing",
})
@boundary
def backup(c: Context, env: str = "production", label: str = "", dry_run: bool = False) -> None:
    """Back up an environment's Postgres and Redis into a verified backup directory."""
    settings = settings_from(c)
    root = project_root(c, settings)
    with progress_reporter() as progress:
        made = create_backup(root, settings, env, label=checked_label(label), dry_run=dry_run,
                             progress=progress)
    if made.dry_run:
        say(f"dry run: would write backup {made.id} to {made.path}")
        return
    parts = [human_bytes(made.size_bytes)]
    if made.postgres:
        parts.append(f"{plural(len(made.row_counts), 'table')}, "
                     f"{plural(sum(made.row_counts.values()), 'row')}")
    if made.redis_keys is not None:
        parts.append(plural(made.redis_keys, "Redis key"))
    say(f"backup {made.id} verified ({', '.join(parts)}) in "
        f"{made.meta.get('duration_s', 0):.1f}s → {made.path}")


def checked_label(label: str) -> str | None:
    """``--label`` as backup.json and the audit log store it, or a usage error (exit 2).

    Python hands bytes that are not UTF-8 over as lone surrogates, which no JSON writer can
    encode: the backup would fail after the dump with ``UnicodeEncodeError``. Control characters
    would reach the terminal through ``invoke backups``. Both are refused before anything runs.
    """
    if not label:
        return None
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("--label is not UTF-8 text",
                         hint="use letters, digits and punctuation in your terminal's UTF-8"
                         ) from None
    if not label.isprintable():
        raise UsageError("--label holds control characters", hint="use printable text")
    if len(label) > MAX_LABEL:
        raise UsageError(f"--label is {len(label)} characters, at most {MAX_LABEL}",
                         hint="a label is a short note, e.g. 'before the v0.3 migration'")
    return label


@task(auto_shortflags=False, help={
    "backup-id": "backup to restore, as listed by `invoke backups` (or `latest`)",
    "env": "environment to restore into (default: production)",
    "yes": "do not ask for confirmation (required when stdin is not a terminal)",
    "dry-run": "verify the backup and print the steps; change nothing",
    "lock-wait": "seconds to wait for a deploy's lock before giving up (default 0)",
})
@boundary
def restore(c: Context, backup_id: str, env: str = "production", yes: bool = False,
            dry_run: bool = False, lock_wait: float = 0.0) -> None:
    """Restore an environment's Postgres and Redis from a backup, all or nothing.

    A safety backup is taken first, under the environment's deploy lock."""
    settings = settings_from(c)
    root = project_root(c, settings)
    confirm = _ask if sys.stdin.isatty() else None
    with progress_reporter() as progress:
        result = restore_backup(root, settings, env, backup_id, assume_yes=yes, dry_run=dry_run,
                                confirm=confirm, progress=progress, lock_wait_s=lock_wait)
    if result.dry_run:
        say(f"dry run: backup {result.backup.id} verified; nothing was changed")
        return
    parts = []
    if result.backup.postgres:
        parts.append(f"{plural(result.tables, 'table')}, {plural(result.rows, 'row')}")
    if result.redis_keys is not None:
        parts.append(plural(result.redis_keys, "Redis key"))
    safety = f"; previous state saved as {result.safety_backup.id}" if result.safety_backup else ""
    say(f"restored {result.backup.id} into {env} and verified ({', '.join(parts)}) in "
        f"{result.duration_s:.1f}s{safety}")


def _label(backup: Any) -> str:
    if backup.is_safety and backup.restore_of:
        return f"safety (before restore of {backup.restore_of})"
    return str(backup.label or "")


def _ask(question: str) -> bool:
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


@task(auto_shortflags=False, help={
    "env": "environment whose backups are listed (default: production)",
})
@boundary
def backups(c: Context, env: str = "production") -> None:
    """List an environment's complete backups, newest first."""
    from tabulate import tabulate

    settings = settings_from(c)
    root = project_root(c, settings)
    found = list_backups(root, settings, env)
    if not found:
        say(f"no backups for {env}")
        return
    pinned = pre_deploy_backup_id(root, settings, env)
    rows = [[b.id + (" *" if b.id == pinned else ""), b.created_at, b.version,
             human_bytes(b.size_bytes), b.alembic_revision or "-",
             "-" if b.postgres is None else sum(b.row_counts.values()),
             "-" if b.redis_keys is None else b.redis_keys, _label(b)] for b in found]
    say(tabulate(rows, headers=["id", "created (UTC)", "version", "size", "alembic", "rows",
                                "redis keys", "label"], disable_numparse=[4]))
    if pinned in {b.id for b in found}:
        say("* taken before the current deployment: kept by retention")
