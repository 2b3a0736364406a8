"""Rollback: an earlier version's images back in place, rolling; optionally the data too.

Without a version it takes the one the audit log says ran before the current one. A version whose
images are gone from the engine is refused with the list of versions that can be used. With
``--with-db`` the database follows, the way the environment's ``db_rollback`` says: ``restore``
the backup taken before the deploy being undone, or ``downgrade`` to the Alembic revision that
release ran (its Alembic head, read from the tree its manifest names, else from that
backup's record) — and the output says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ops.config import Settings
from ops.deploy.action import Outcome
from ops.deploy.audit import read_events
from ops.deploy.backup import find_backup
from ops.deploy.deploy import (
    DeployOptions,
    DeployResult,
    changing_action,
    interrupted_action,
    running_version,
    services_of,
    switch_services,
    take_over,
    usable_versions,
)
from ops.deploy.intent import Intent, Tracker
from ops.deploy.restore import restore_backup
from ops.deploy.stack import Stack, audit_path, open_stack
from ops.errors import DeployFailed, OpsError, UsageError
from ops.release import manifest as mf
from ops.runtime.alembic_scripts import ScriptGraph, discover_configured, judge, revisions_in_texts
from ops.runtime.git import open_repo, python_sources_mentioning
from ops.runtime.process import fault_point
from ops.versioning import parse_version

#: Why a rollback without --with-db takes no backup and runs no checks: said in its output and
#: its audit line (``details.fast_path``).
FAST_PATH = ("no backup (the data stays as it is), no predeploy checks (the release passed "
             "them when it was deployed), images already local")


def previous_version(events: list[dict[str, Any]], current: str | None) -> str | None:
    """The version that ran before ``current``: the newest successful change *to* it says so --
    or a deploy that rolled one service back and kept the others on ``current`` (the release
    still runs there: ``rollback previous`` takes them back too)."""
    for event in reversed(events):
        if event.get("action") not in {"deploy", "rollback"}:
            continue
        if not brought_in(event) or event.get("to_version") != current:
            continue
        before = event.get("from_version")
        if before and before != current:
            return str(before)
    return None


def undone_deploy(events: list[dict[str, Any]], current: str | None) -> dict[str, Any] | None:
    """The deploy that brought ``current`` in (successful, or rolled back on one service with
    the others kept on it): its backup is the data to go back to."""
    for event in reversed(events):
        if (event.get("action") == "deploy" and brought_in(event)
                and event.get("to_version") == current):
            return dict(event)
    return None


def brought_in(event: dict[str, Any]) -> bool:
    """The change left its ``to_version`` running: it succeeded, or it rolled one service
    back and kept the others on it (``details.kept``)."""
    details = event.get("details")
    return event.get("result") == "success" or (
        event.get("result") == "rolled_back" and isinstance(details, dict)
        and bool(details.get("kept")))


def rollback(root: Path, settings: Settings, env: str, version: str | None = None, *,
             with_db: bool = False, dry_run: bool = False, lock_wait_s: float = 0.0,
             out: TextIO | None = None, stack: Stack | None = None,
             on_result: Callable[[DeployResult], None] | None = None) -> DeployResult:
    """Roll ``env`` back to ``version`` (None: the previous one); DeployFailed (exit 1) when a
    step fails, UsageError (exit 2) when there is nothing to go back to.

    The target is chosen before the lock (to refuse at once what cannot work) and again once the
    lock is held, from what is true then: an interrupted deploy found there makes ``previous``
    the version it was switching away from (an interrupted rollback: the one it was going to).
    """
    started = time.perf_counter()
    stack = stack or open_stack(root, settings, env, dry_run=dry_run, out=out)
    services = stack.versioned_services()

    def choose(recovered: Intent | None, current: str | None) -> str:
        events = list(read_events(audit_path(stack), env=env))
        target = rollback_target(events, current, recovered, version)
        if target is None:
            raise UsageError(f"no earlier version of {env} in the audit log",
                             hint="name the version: invoke rollback vX.Y.Z (see invoke releases)")
        require_usable(stack, target)
        return target

    seen = interrupted_action(stack)
    current = seen.settled_version if seen else running_version(stack, services)
    target = choose(seen, current)
    result = DeployResult("rollback", env, target, from_version=current)
    trackers: list[Tracker] = []
    try:
        with changing_action(stack, "rollback", target, lock_wait_s, result, trackers,
                             on_result, started=started) as act:
            try:
                tracker = take_over(stack, "rollback", target, result, choose_target=choose,
                                    header=lambda was, to: (f"rollback {was or 'nothing'} → "
                                                            f"{to} on {env} "
                                                            f"(project {stack.project})"))
                trackers.append(tracker)
                target = result.to_version
                if with_db:
                    tracker.step("database")
                    stack.steps.phase("database")
                    events = list(read_events(audit_path(stack), env=env))
                    result.db = roll_back_data(stack, events, result.from_version, target,
                                               interrupted=tracker.recovered)
                if not with_db:
                    result.fast_path = FAST_PATH
                    stack.steps.say(f"  quick rollback: {FAST_PATH}")
                opts = DeployOptions(env=env, version=target, dry_run=dry_run)
                result.services = services_of(
                    switch_services(stack, services, parse_version(target), opts, tracker))
                fault_point("rollback:switched")
                stack.steps.say(stack.steps.phase_summary())
                if dry_run:
                    result.result = Outcome.DRY_RUN
            finally:
                act.outcome, act.reason = result.result, result.reason
    except OpsError as exc:
        raise DeployFailed(f"rollback to {result.to_version} failed: {exc.message}",
                           hint=exc.hint) from None
    return result


def rollback_target(events: list[dict[str, Any]], current: str | None,
                    recovered: Intent | None, version: str | None) -> str | None:
    """The version to go back to: the one named; else, after an interrupted deploy, the version
    it was switching away from (after an interrupted rollback, the one it was going to); else
    the one the audit log says ran before ``current``."""
    if version:
        return parse_version(version).tag
    target = recovered.settled_version if recovered is not None else None
    return target or previous_version(events, current)


def require_usable(stack: Stack, target: str) -> None:
    if stack.env.backend == "swarm":
        return  # the nodes pull by digest: the swarm backend fails when the registry lacks it
    usable = usable_versions(stack)
    if stack.client is not None and target not in usable:
        raise UsageError(f"cannot roll back to {target}: its images are not in the local engine",
                         hint="usable: " + (", ".join(usable) or "none"))


def roll_back_data(stack: Stack, events: list[dict[str, Any]], current: str | None,
                   target: str, *, interrupted: Intent | None = None) -> str:
    """Restore or downgrade the database, per ``db_rollback``; returns what was done.

    The deploy being undone is the one that brought ``current`` in, or an interrupted deploy
    this rollback took over: its backup and its (newer) migrations come from its record.
    """
    if interrupted is not None and interrupted.action == "deploy":
        backup_id: Any = interrupted.backup_id
        current = interrupted.to_version
    else:
        undone = undone_deploy(events, current) or {}
        backup_id = (undone.get("details") or {}).get("backup_id")
    if stack.env.db_rollback == "restore":
        if not backup_id:
            raise UsageError(f"no backup was taken before the deploy of {current}",
                             hint="set db_rollback: downgrade, or restore a backup by hand")
        with stack.steps.step(f"database: restore backup {backup_id} (db_rollback: restore)"):
            restore_backup(stack.root, stack.settings, stack.env_name, str(backup_id),
                           assume_yes=True, dry_run=stack.dry_run, out=stack.steps.out)
        return f"restored backup {backup_id}"
    revision = (release_revision(stack.root, stack.settings, target)
                or backup_revision(stack, backup_id))
    if not revision:
        raise UsageError(f"no Alembic revision recorded for {target}",
                         hint="neither its release's migrations nor the pre-deploy backup name one")
    newer = current or target
    with stack.steps.step(f"database: alembic downgrade {revision} (db_rollback: downgrade, "
                          f"with {newer}'s migrations)"):
        stack.run_at(newer, stack.compose.downgrade(stack.versioned_services()[0], revision))
    return f"downgraded to {revision}"


def release_revision(root: Path, settings: Settings, version: str) -> str | None:
    """The Alembic head ``version`` shipped, from its release's own tree; None when unknown.

    The manifest records no revision: it names the commit the release was cut from
    (``git.commit``), whose tree holds that release's migrations. Those revision files are read
    from git and parsed, never imported; a release with several heads (or none, or a tree git
    cannot read) has no single revision to go down to.
    """
    rev = _manifest_commit(root, settings, version) or version
    try:
        repo = open_repo(root)
    except OpsError:
        return None
    sources = python_sources_mentioning(repo, rev, "down_revision")
    if not sources:
        return None
    folders = _migration_folders(root, settings)
    if folders:
        sources = {path: text for path, text in sources.items() if path.startswith(folders)}
    graph = ScriptGraph(None, revisions_in_texts(sources))
    judge(graph)
    return graph.heads[0] if graph.sound and len(graph.heads) == 1 else None


def _manifest_commit(root: Path, settings: Settings, version: str) -> str | None:
    """The source commit the release manifest of ``version`` names (either layout)."""
    try:
        manifest = mf.read(mf.releases_dir(root, settings) / f"manifest_{version}.json")
    except OpsError:
        return None
    return manifest.git.commit or None


def _migration_folders(root: Path, settings: Settings) -> tuple[str, ...]:
    """The revision folders (posix, relative to the root, with a trailing slash) the project's
    Alembic configuration names today; empty when it cannot tell (then every revision file in
    the tree counts)."""
    try:
        found = discover_configured(root, settings.migrations)
    except OpsError:
        return ()
    if found.chosen is None:
        return ()
    folders = []
    for folder in found.chosen.version_dirs:
        try:
            folders.append(folder.resolve().relative_to(root.resolve()).as_posix().rstrip("/")
                           + "/")
        except ValueError:
            return ()
    return tuple(folders)


def backup_revision(stack: Stack, backup_id: Any) -> str | None:
    if not backup_id:
        return None
    try:
        backup = find_backup(stack.root, stack.settings, stack.env_name, str(backup_id))
    except OpsError:
        return None
    return backup.alembic_revision


def releases(stack: Stack) -> list[dict[str, Any]]:
    """Versions that can be rolled back to (images present), newest first, with what ran when."""
    services = stack.versioned_services()
    current = running_version(stack, services)
    last_seen: dict[str, str] = {}
    for event in read_events(audit_path(stack), env=stack.env_name):
        if event.get("result") == "success" and event.get("to_version"):
            last_seen[str(event["to_version"])] = str(event.get("at", ""))
    rows = []
    for version in reversed(usable_versions(stack)):
        rows.append({"version": version, "running": version == current,
                     "last_deployed": last_seen.get(version)})
    return rows
