"""The Invoke collection: what ``invoke --list`` shows.

Each task parses its arguments, calls one function of ``ops`` and lets ``boundary`` map errors to
exit codes. Topic modules (``ops/release/tasks.py``, ``ops/deploy/tasks.py``, …) hold their own
tasks; this module assembles them into one flat namespace with the configuration defaults.
"""

from __future__ import annotations

import sys

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from ops.config import defaults
from ops.errors import ChecksFailed, UsageError
from ops.taskkit import boundary, optional_path, project_root, settings_from


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
    from ops.checks import SECTIONS, CheckContext, run_predeploy
    from ops.report import choose_format, emit
    from ops.versioning import parse_version

    release = parse_version(version)
    out = optional_path(output)
    choose_format(format or None, out)  # a bad --format is a usage error before any check runs
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
    emit(report, fmt=format or None, output=out)
    if not report.ok:
        raise ChecksFailed(f"predeploy checks failed for {release}")


@task(auto_shortflags=False, help={"env": "show only this environment's settings"})
@boundary
def config(c: Context, env: str = "") -> None:
    """Show the effective settings: defaults, invoke.yaml and INVOKE_OPS_* merged and validated."""
    import yaml

    settings = settings_from(c)
    data = settings.environment(env).model_dump(mode="json") if env else \
        settings.model_dump(mode="json")
    sys.stdout.write(yaml.safe_dump({"ops": data} if not env else {env: data}, sort_keys=False))


ns = Collection()
ns.add_task(predeploy)
ns.add_task(config)
from ops.release import notes_tasks  # noqa: E402 - topic modules join the flat namespace here

ns.add_task(notes_tasks.release_notes)
ns.add_task(notes_tasks.checklist)
ns.add_task(notes_tasks.demo)
from ops.deploy import backup_tasks  # noqa: E402

ns.add_task(backup_tasks.backup)
ns.add_task(backup_tasks.restore)
ns.add_task(backup_tasks.backups)
from ops.release import tasks as release_tasks  # noqa: E402

ns.add_task(release_tasks.create_release)
ns.add_task(release_tasks.build)
ns.add_task(release_tasks.verify_release)
from ops.deploy import tasks as deploy_tasks  # noqa: E402

ns.add_task(deploy_tasks.deploy)
ns.add_task(deploy_tasks.smoke_test)
ns.add_task(deploy_tasks.rollback)
ns.add_task(deploy_tasks.scale)
ns.add_task(deploy_tasks.history)
ns.add_task(deploy_tasks.releases)
ns.add_task(deploy_tasks.base_image)
ns.configure({"ops": defaults()})
