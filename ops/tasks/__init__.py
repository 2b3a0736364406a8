"""The Invoke collection: what ``invoke --list`` shows.

Each task parses its arguments, calls one function of ``ops`` and lets ``boundary`` map errors to
exit codes. Topic modules (``release.py``, ``notes.py``, ``deploy.py``, ``backup.py`` beside this
one) hold their own tasks; this module assembles them into one flat namespace with the
configuration defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import Task, task

from ops import pipelines
from ops.checks import SECTIONS, CheckContext, run_predeploy
from ops.config import defaults
from ops.errors import UsageError
from ops.redact import install_log_redaction, masked_settings
from ops.taskkit import ReportOutput, boundary, project_root, settings_from
from ops.tasks import backup as backup_tasks
from ops.tasks import deploy as deploy_tasks
from ops.tasks import incident as incident_tasks
from ops.tasks import notes as notes_tasks
from ops.tasks import release as release_tasks
from ops.versioning import parse_version


@task(
    auto_shortflags=False,
    aliases=["predeploy-check"],
    help={
        "version": "release to check, e.g. v0.2.0 (required)",
        "strict": "treat warnings as failures (exit 1 on any warn)",
        "output": "also write the report to this file (.json → JSON, .xml → JUnit)",
        "format": "report format: text, json or junit (default: from --output's extension)",
        "env": "environment whose .env and database are checked (default: production)",
        "online": "also check external links in the runbook (HEAD/GET with short timeouts)",
        "only": "run only these sections, comma-separated (release_tag,migrations,...)",
        "no-cache": "re-hash every checkpoint instead of trusting the hash cache",
    },
)
@boundary
def predeploy(c: Context, version: str = "", strict: bool = False, output: str = "",
              format: str = "", env: str = "production", online: bool = False,
              only: str = "", no_cache: bool = False) -> None:
    """Run the five T-1 checks for a release: tag, migrations, secrets, artifacts, runbook."""
    release = parse_version(version)
    report_output = ReportOutput.chosen(format, output)
    sections = [s.strip() for s in only.split(",") if s.strip()]
    unknown = set(sections) - {sid for sid, _ in SECTIONS}
    if unknown:
        raise UsageError(f"unknown section(s) {', '.join(sorted(unknown))}",
                         hint="choose from " + ", ".join(sid for sid, _ in SECTIONS))
    settings = settings_from(c)
    settings.environment(env)
    ctx = CheckContext(root=project_root(c, settings), settings=settings, version=release,
                       env=env, online=online, progress=sys.stderr.isatty(),
                       use_cache=not no_cache)
    report = run_predeploy(ctx, strict=strict, only=sections or None)
    report_output.finish(report, f"predeploy checks failed for {release}")


@task(auto_shortflags=False, help={"env": "show only this environment's settings"})
@boundary
def config(c: Context, env: str = "") -> None:
    """Show the effective settings: defaults, invoke.yaml and INVOKE_OPS_* merged and validated.

    Credentials in URLs and the values of secret-looking keys are masked (``ops.redact``): this
    output is pasted into tickets and chat.
    """
    import yaml

    settings = settings_from(c)
    data = settings.environment(env).model_dump(mode="json") if env else \
        settings.model_dump(mode="json")
    shown = masked_settings({"ops": data} if not env else {env: data})
    sys.stdout.write(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True))


@task(auto_shortflags=False, positional=["version"], help={
    "version": "release to prepare, e.g. v0.2.0 (positional)",
    "env": "environment whose settings and .env the checks use (default: production)",
    "no-build": "do not build images (e.g. where no Docker engine is available)",
    "dry-run": "run every step in its dry-run mode: print what would be done, change nothing",
})
@boundary
def pre_deployment(c: Context, version: str, env: str = "production",
                   no_build: bool = False, dry_run: bool = False) -> None:
    """Pipeline: create-release if the tag is missing, build, predeploy --strict, notes."""
    release = parse_version(version)
    settings = settings_from(c)
    pipelines.pre_deployment(project_root(c, settings), settings, release, env=env,
                             build=not no_build, dry_run=dry_run)


@task(auto_shortflags=False, positional=["env", "version"], help={
    "env": "environment to deploy to (positional)",
    "version": "release to deploy, e.g. v0.2.0 (positional)",
    "strategy": "rolling or recreate (default: each service's configured strategy)",
    "watch": "seconds of post-deploy watch (default: the environment's watch_s); 0 skips",
    "skip-checks": "skip the strict predeploy gate and tamper gate (recorded in the audit log)",
    "dry-run": "run every step in its dry-run mode: print what would be done, change nothing",
})
@boundary
def deployment(c: Context, env: str, version: str, strategy: str = "",
               watch: float = -1.0, skip_checks: bool = False, dry_run: bool = False) -> None:
    """Pipeline: backup, deploy (gates, migrations, rolling switch, watch), smoke-test."""
    release = parse_version(version)
    settings = settings_from(c)
    pipelines.deployment(project_root(c, settings), settings, env, release, strategy=strategy,
                         watch_s=None if watch < 0 else watch, skip_checks=skip_checks,
                         dry_run=dry_run)


@task(auto_shortflags=False, positional=["env", "version"], help={
    "env": "environment that was deployed (positional)",
    "version": "release that was deployed (positional)",
    "dry-run": "run every step in its dry-run mode: print what would be done, change nothing",
    "output": "also write the metrics summary (and the watch's figures) to this JSON file",
})
@boundary
def post_deployment(c: Context, env: str, version: str, dry_run: bool = False,
                    output: str = "") -> None:
    """Pipeline: predeploy again, smoke-test, metrics summary, audit line."""
    release = parse_version(version)
    settings = settings_from(c)
    pipelines.post_deployment(project_root(c, settings), settings, env, release, dry_run=dry_run,
                              output=Path(output) if output else None)


@task(auto_shortflags=False, positional=["env", "version"], help={
    "env": "environment to roll back (positional)",
    "version": "version to go back to, or `previous` for the one before (positional)",
    "with-db": "also roll the database back: restore or downgrade, per db_rollback",
    "dry-run": "run every step in its dry-run mode: print what would be done, change nothing",
})
@boundary
def rollback_pipeline(c: Context, env: str, version: str, with_db: bool = False,
                      dry_run: bool = False) -> None:
    """Pipeline: rollback (to VERSION or the previous release), then smoke-test."""
    settings = settings_from(c)
    wanted = None if version in {"", "previous", "-"} else version
    pipelines.rollback_pipeline(project_root(c, settings), settings, env, wanted, with_db=with_db,
                                dry_run=dry_run)


# `invoke --debug` logs every configuration source verbatim, invoke.yaml's URLs included; the
# collection is imported before Invoke reads invoke.yaml, so the filter is in place in time.
install_log_redaction()

#: The tasks every repository that installs tminus gets (``invoke --list`` sorts them by name).
TASKS: tuple[Task[Any], ...] = (
    predeploy, config,
    release_tasks.create_release, release_tasks.build, release_tasks.verify_release,
    notes_tasks.release_notes, notes_tasks.checklist,
    backup_tasks.backup, backup_tasks.restore, backup_tasks.backups,
    deploy_tasks.deploy, deploy_tasks.smoke_test, deploy_tasks.rollback, deploy_tasks.scale,
    deploy_tasks.history, deploy_tasks.releases, incident_tasks.incident,
    pre_deployment, deployment, post_deployment, rollback_pipeline,
)


def collection(*extra: Task[Any]) -> Collection:
    """One flat namespace: tminus's tasks, then ``extra`` (e.g. ``ops.dev.tasks.TASKS``).

    A service repository's ``tasks.py`` is ``from ops.tasks import ns``; one that also wants
    its own or tminus's development tasks builds ``ns = collection(*its_tasks)`` instead.
    """
    made = Collection()
    for each in (*TASKS, *extra):
        made.add_task(each)
    made.configure({"ops": defaults()})
    return made


ns = collection()
