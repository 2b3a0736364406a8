"""Tasks deploy, smoke-test, rollback, scale, history and releases.

Each reads its arguments and the settings, calls one function of ``ops.deploy`` and lets
``boundary`` turn an ``OpsError`` into one line and the exit code. ``--json`` prints the result
object instead of the last line; ``--output FILE`` writes it, failed or not, so CI can tell a
rolled-back deploy (``"result": "rolled_back"``) from a failed one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TextIO

from invoke.context import Context
from invoke.tasks import task

from ops.atomic import atomic_write_text
from ops.config import resolve_path
from ops.deploy.audit import read_events
from ops.deploy.deploy import DeployOptions, DeployResult
from ops.deploy.deploy import deploy as run_deploy
from ops.deploy.history import history_table
from ops.deploy.outcome import Outcome
from ops.deploy.rollback import releases as list_releases
from ops.deploy.rollback import rollback as run_rollback
from ops.deploy.scale import parse_targets
from ops.deploy.scale import scale as run_scale
from ops.deploy.smoke import print_metrics_table
from ops.deploy.smoke import smoke_test as run_smoke
from ops.deploy.stack import open_stack
from ops.taskkit import ReportOutput, boundary, optional_path, project_root, say, settings_from


def _result_sink(as_json: bool, output: str) -> Callable[[DeployResult], None]:
    """What to do with a result: print JSON and/or write it atomically to ``output``."""
    out = optional_path(output)

    def sink(result: DeployResult) -> None:
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
        if out is not None:
            atomic_write_text(out, text)
        if as_json:
            sys.stdout.write(text)
        elif result.result is not Outcome.ROLLED_BACK:
            say(result.message)

    return sink


def _stream(as_json: bool) -> TextIO:
    """Under --json, progress goes to stderr so stdout stays one JSON document."""
    return sys.stderr if as_json else sys.stdout


@task(auto_shortflags=False, positional=["env", "version"], help={
    "env": "environment to deploy to, e.g. production (positional)",
    "version": "release to deploy, e.g. v0.2.0 (positional); its images must be built",
    "strategy": "rolling or recreate (default: each service's configured strategy)",
    "dry-run": "print every command and engine action in order; change nothing",
    "skip-backup": "do not take a backup first (recorded in the audit log)",
    "skip-checks": "skip the strict predeploy checks and the tamper gate (recorded)",
    "no-auto-rollback": "on failure leave the new version in place instead of rolling back",
    "lock-wait": "seconds to wait for another deploy's lock before giving up (default 0)",
    "watch": "seconds of post-deploy watch (default: the environment's watch_s, 60); 0 skips",
    "batch": "old replicas drained and stopped together once the new ones are healthy and "
             "routed (default 0: all at once, one drain period; 1: one at a time)",
    "json": "print the result as JSON (progress goes to stderr)",
    "output": "also write the JSON result to this file",
})
@boundary
def deploy(c: Context, env: str, version: str, strategy: str = "",
           dry_run: bool = False, skip_backup: bool = False, skip_checks: bool = False,
           no_auto_rollback: bool = False, lock_wait: float = 0.0, watch: float = -1.0,
           batch: int = 0, json: bool = False, output: str = "") -> None:
    """Deploy a release to an environment: gates, backup, migrations, rolling switch, watch."""
    settings = settings_from(c)
    opts = DeployOptions(env=env, version=version, strategy=strategy, dry_run=dry_run,
                         skip_checks=skip_checks, skip_backup=skip_backup,
                         auto_rollback=not no_auto_rollback, lock_wait_s=lock_wait,
                         watch_s=None if watch < 0 else watch, batch=batch)
    run_deploy(project_root(c, settings), settings, opts, out=_stream(json),
               on_result=_result_sink(json, output))


@task(auto_shortflags=False, help={
    "env": "environment to test (default: production)",
    "url": "health URL to probe (default: the environment's health_url)",
    "output": "also write the report to this file (.json → JSON, .xml → JUnit)",
    "format": "report format: text, json or junit (default: from --output's extension)",
})
@boundary
def smoke_test(c: Context, env: str = "production", url: str = "", output: str = "",
               format: str = "") -> None:
    """Smoke-test what runs: health, containers, p95, logs, smoke_urls, error rate, metrics."""
    report_output = ReportOutput.chosen(format, output)
    settings = settings_from(c)
    stack = open_stack(project_root(c, settings), settings, env)
    report_output.finish(run_smoke(stack, url=url or None), f"smoke test of {env} failed",
                         on_console=print_metrics_table)


@task(auto_shortflags=False, positional=["version"], help={
    "version": "version to go back to, or `previous` for the one before the running one "
               "(from the audit log)",
    "env": "environment (default: production)",
    "with-db": "also roll the database back: restore or downgrade, per db_rollback",
    "dry-run": "print every command and engine action in order; change nothing",
    "lock-wait": "seconds to wait for another deploy's lock before giving up (default 0)",
    "json": "print the result as JSON (progress goes to stderr)",
    "output": "also write the JSON result to this file",
})
@boundary
def rollback(c: Context, version: str, env: str = "production", with_db: bool = False,
             dry_run: bool = False, lock_wait: float = 0.0, json: bool = False,
             output: str = "") -> None:
    """Roll back to an earlier release's images (rolling, no dropped requests); --with-db too."""
    settings = settings_from(c)
    wanted = None if version in {"", "previous", "-"} else version
    run_rollback(project_root(c, settings), settings, env, wanted, with_db=with_db,
                 dry_run=dry_run, lock_wait_s=lock_wait, out=_stream(json),
                 on_result=_result_sink(json, output))


@task(auto_shortflags=False, positional=["targets"], help={
    "targets": "SERVICE=N, several separated by commas or quoted spaces: app=5,worker=1",
    "env": "environment (default: production)",
    "step": "replicas removed per step when scaling down, each drained first (default 1)",
    "dry-run": "print every command and engine action in order; change nothing",
    "lock-wait": "seconds to wait for another deploy's lock before giving up (default 0)",
    "json": "print the result as JSON (progress goes to stderr)",
})
@boundary
def scale(c: Context, targets: str, env: str = "production", step: int = 1,
          dry_run: bool = False, lock_wait: float = 0.0, json: bool = False) -> None:
    """Scale services: up at once, down a step at a time with a drain; required stay >= 1."""
    wanted = parse_targets([targets])
    settings = settings_from(c)
    run_scale(project_root(c, settings), settings, env, wanted, step=step, dry_run=dry_run,
              lock_wait_s=lock_wait, out=_stream(json), on_result=_result_sink(json, ""))


@task(auto_shortflags=False, help={
    "env": "show only this environment (default: all)",
    "limit": "show the last N entries (default 20; 0 = all)",
    "json": "print the entries as JSON lines instead of a table",
})
@boundary
def history(c: Context, env: str = "", limit: int = 20, json: bool = False) -> None:
    """Show the audit log: every deploy, rollback, scale, backup and restore, newest last."""
    settings = settings_from(c)
    path = resolve_path(project_root(c, settings), settings.audit_log)
    events = list(read_events(path, env=env or None))
    if limit > 0:
        events = events[-limit:]
    if json:
        import json as json_module

        for event in events:
            sys.stdout.write(json_module.dumps(event, sort_keys=True) + "\n")
        return
    if not events:
        say(f"no entries in {path}" + (f" for {env}" if env else ""))
        return
    say(history_table(events))


@task(auto_shortflags=False, help={
    "env": "environment whose running version is marked (default: production)",
})
@boundary
def releases(c: Context, env: str = "production") -> None:
    """List the versions that can be deployed or rolled back to (images present locally)."""
    from tabulate import tabulate

    settings = settings_from(c)
    stack = open_stack(project_root(c, settings), settings, env)
    rows = list_releases(stack)
    if not rows:
        say("no release images in the local engine (build one: invoke build --version vX.Y.Z)")
        return
    say(tabulate([(r["version"], "● running" if r["running"] else "",
                   r["last_deployed"] or "-") for r in rows],
                 headers=["version", env, "last deployed"]))
